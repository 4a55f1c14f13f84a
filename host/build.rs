//! Builds the built-in guest components (`guest-plugins/`) for `wasm32-wasip2`
//! so that `cargo build` yields a binary with them embedded; nobody runs a wasm
//! step by hand.

use sha2::Digest as _;
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("guests");
    let guests = ["shared_key", "oidc_verifier", "registry_token", "cedar", "scopes"];
    build_guests(&root.join("guest-plugins"), &root.join("target/guests"), &out, &guests);
    // Each built-in's SHA-256, so that the gateway never reads (and so never
    // pages in) an embedded component it does not load.
    for name in guests {
        let wasm = std::fs::read(out.join(format!("{name}.wasm"))).expect("the built guest");
        let digest: String = sha2::Sha256::digest(&wasm).iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(out.join(format!("{name}.wasm.sha256")), digest).expect("writing the guest's digest");
    }
    println!("cargo:rerun-if-changed={}", root.join("guest-plugins").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
}

include!("build_guests.rs");
