//! The built-in components, compiled from `guest-plugins/` by `build.rs` and
//! embedded in the binary. A policy names them `builtin:<name>`.

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

pub struct Builtin {
    pub name: &'static str,
    pub wasm: &'static [u8],
}

static BUILTINS: &[Builtin] = &[
    Builtin { name: "shared-key", wasm: include_bytes!(concat!(env!("OUT_DIR"), "/guests/shared_key.wasm")) },
    Builtin { name: "oidc-verifier", wasm: include_bytes!(concat!(env!("OUT_DIR"), "/guests/oidc_verifier.wasm")) },
    Builtin { name: "registry-token", wasm: include_bytes!(concat!(env!("OUT_DIR"), "/guests/registry_token.wasm")) },
    Builtin { name: "cedar", wasm: include_bytes!(concat!(env!("OUT_DIR"), "/guests/cedar.wasm")) },
    Builtin { name: "scopes", wasm: include_bytes!(concat!(env!("OUT_DIR"), "/guests/scopes.wasm")) },
];

pub fn lookup(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}

impl Builtin {
    /// The component's SHA-256 (hex), computed once.
    pub fn sha256(&self) -> &'static str {
        static HASHES: OnceLock<Vec<String>> = OnceLock::new();
        let hashes = HASHES.get_or_init(|| BUILTINS.iter().map(|b| hex::encode(Sha256::digest(b.wasm))).collect());
        let index = BUILTINS.iter().position(|b| std::ptr::eq(b, self)).expect("a builtin from the table");
        &hashes[index]
    }
}
