//! Builds the built-in guest components (`guest-plugins/`) for `wasm32-wasip2`
//! so that `cargo build` yields a binary with them embedded; nobody runs a wasm
//! step by hand.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("guests");
    build_guests(&root.join("guest-plugins"), &root.join("target/guests"), &out, &["shared_key", "oidc_verifier", "registry_token", "cedar", "scopes"]);
    println!("cargo:rerun-if-changed={}", root.join("guest-plugins").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
}

include!("build_guests.rs");
