//! The built-in components, compiled from `guest-plugins/` by `build.rs` and
//! embedded in the binary. A policy names them `builtin:<name>`.

pub struct Builtin {
    pub name: &'static str,
    pub wasm: &'static [u8],
    /// The component's SHA-256 (hex), computed by `build.rs`: hashing here
    /// would page every embedded component into memory.
    sha256: &'static str,
}

macro_rules! builtin {
    ($name:literal, $file:literal) => {
        Builtin {
            name: $name,
            wasm: include_bytes!(concat!(env!("OUT_DIR"), "/guests/", $file, ".wasm")),
            sha256: include_str!(concat!(env!("OUT_DIR"), "/guests/", $file, ".wasm.sha256")),
        }
    };
}

static BUILTINS: &[Builtin] = &[
    builtin!("shared-key", "shared_key"),
    builtin!("oidc-verifier", "oidc_verifier"),
    builtin!("registry-token", "registry_token"),
    builtin!("cedar", "cedar"),
    builtin!("scopes", "scopes"),
    builtin!("oauth-server", "oauth_server"),
    builtin!("upstream-token", "upstream_token"),
    builtin!("token-exchange", "token_exchange"),
];

pub fn lookup(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}

impl Builtin {
    /// The component's SHA-256 (hex).
    pub fn sha256(&self) -> &'static str {
        self.sha256
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    #[test]
    fn each_digest_is_the_components() {
        for builtin in super::BUILTINS {
            assert_eq!(builtin.sha256(), hex::encode(Sha256::digest(builtin.wasm)), "{}", builtin.name);
        }
    }
}
