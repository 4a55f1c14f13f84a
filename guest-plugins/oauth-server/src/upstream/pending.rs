//! The upstream leg of a login, kept under `up:{state}` between `begin` and
//! the callback, in the shared store (the callback may reach another replica).

use serde::{Deserialize, Serialize};

/// How long a login may take at the provider (seconds).
pub const TTL: u32 = 600;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    /// The authorize request in flight (`pending:{id}`) this login completes.
    pub pending_id: String,
    pub provider: String,
    /// The PKCE verifier (RFC 7636): useless without the code, and taken once.
    pub verifier: String,
    /// The OpenID Connect `nonce`; `None` for OAuth 2 providers.
    pub nonce: Option<String>,
    /// The `redirect_uri` sent, which the token request must repeat exactly.
    pub redirect_uri: String,
}

/// Never prints the verifier or the nonce.
impl std::fmt::Debug for Leg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leg").field("pending_id", &self.pending_id).field("provider", &self.provider).finish_non_exhaustive()
    }
}

pub fn key(state: &str) -> String {
    format!("up:{state}")
}

impl Leg {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Leg> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_no_secret_in_debug() {
        let leg = Leg {
            pending_id: "p-1".into(),
            provider: "corp".into(),
            verifier: "verifier-secret".into(),
            nonce: Some("nonce-secret".into()),
            redirect_uri: "https://gw/oauth/callback".into(),
        };
        assert_eq!(Leg::from_bytes(&leg.to_bytes()), Some(leg.clone()));
        assert_eq!(Leg::from_bytes(b"garbage"), None);
        let debug = format!("{leg:?}");
        assert!(debug.contains("p-1") && !debug.contains("secret"), "{debug}");
        assert_eq!(key("abc"), "up:abc");
    }
}
