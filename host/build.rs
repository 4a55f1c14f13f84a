//! Builds the built-in guest components (`guest-plugins/`) for `wasm32-wasip2`
//! so that `cargo build` yields a binary with them embedded; nobody runs a wasm
//! step by hand.

use sha2::Digest as _;
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("guests");
    let guests = ["shared_key", "oidc_verifier", "registry_token", "cedar", "scopes", "oauth_server", "upstream_token", "token_exchange"];
    // `fuzz/run` builds the host with a nightly toolchain that has no wasm
    // target: it builds the guests with the stable one first and points here.
    // Only a fuzzing build (`--cfg fuzzing`) listens, so a variable left in a
    // shell cannot put other components into a gateway.
    println!("cargo:rerun-if-env-changed=PORTCULLIS_PREBUILT_GUESTS");
    let prebuilt = std::env::var_os("PORTCULLIS_PREBUILT_GUESTS").filter(|_| std::env::var_os("CARGO_CFG_FUZZING").is_some());
    match prebuilt.map(PathBuf::from) {
        Some(prebuilt) => {
            println!("cargo:warning=fuzzing build: built-in components taken from {}", prebuilt.display());
            std::fs::create_dir_all(&out).expect("creating the guests' output directory");
            for name in guests {
                let file = prebuilt.join(format!("{name}.wasm"));
                println!("cargo:rerun-if-changed={}", file.display());
                std::fs::copy(&file, out.join(format!("{name}.wasm"))).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            }
        }
        None => build_guests(&root.join("guest-plugins"), &root.join("target/guests"), &out, &guests),
    }
    // Each built-in's SHA-256, so that the gateway never reads (and so never
    // pages in) an embedded component it does not load.
    for name in guests {
        let wasm = std::fs::read(out.join(format!("{name}.wasm"))).expect("the built guest");
        let digest: String = sha2::Sha256::digest(&wasm).iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(out.join(format!("{name}.wasm.sha256")), digest).expect("writing the guest's digest");
    }
    println!("cargo:rerun-if-changed={}", root.join("guest-plugins").display());
    // The rules the guests share with the host (portcullis-contract).
    println!("cargo:rerun-if-changed={}", root.join("contract").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
}

include!("build_guests.rs");
