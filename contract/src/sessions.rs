//! A user's session at the embedded authorization server (`builtin:oauth-server`),
//! as three parties find it in the store namespace they share: the server,
//! which writes it at login; `builtin:upstream-token`, which renews and
//! injects the session's upstream tokens; and `portcullis sessions`, with
//! which an operator lists and ends sessions.
//!
//! - `session-info:{sid}`: what the session is, as a JSON object with no
//!   secret in it: `sub` (the user at the identity provider), `client_id`,
//!   `providers` (the upstream providers whose tokens it holds), `created_at`
//!   and `expires_at` (Unix seconds). While it exists the session lives: the
//!   server refreshes its access tokens only then.
//! - `session:{sid}:{provider}`: the provider's tokens, sealed (AES-256-GCM,
//!   the key in the secret store), readable only with the token key.
//!
//! A provider besides the one users log in with is asked for by a scope of
//! its own, [`provider_scope`]: a client that asks for it (or for no scope:
//! every one) logs in there too, and a call that needs a provider the
//! session lacks is answered `insufficient_scope` naming it.

/// The prefix of every session's info record.
pub const INFO_PREFIX: &str = "session-info:";

/// The key of session `sid`'s info record.
pub fn info_key(sid: &str) -> String {
    format!("{INFO_PREFIX}{sid}")
}

/// The key of session `sid`'s sealed tokens from `provider` (also the sealed
/// record's associated data: a record moved under another key does not open).
pub fn record_key(sid: &str, provider: &str) -> String {
    format!("session:{sid}:{provider}")
}

/// The scope a client asks for to have `provider`'s tokens in its session
/// (`upstream:github`). Provider names are letters, digits, `-` and `_`, so
/// this is a scope token (RFC 6749 §3.3).
pub fn provider_scope(provider: &str) -> String {
    format!("upstream:{provider}")
}

/// Whether `text` could be a session id: 43 base64url characters (256
/// random bits), so that one is safe in a store key and a command line.
pub fn is_session_id(text: &str) -> bool {
    text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_ids() {
        let sid = "a".repeat(43);
        assert_eq!(info_key(&sid), format!("session-info:{sid}"));
        assert_eq!(record_key(&sid, "corp"), format!("session:{sid}:corp"));
        assert!(is_session_id(&sid));
        assert_eq!(provider_scope("github"), "upstream:github");
        for bad in ["", "short", &"a".repeat(44), &format!("{}:", "a".repeat(42)), &format!("{}*", "a".repeat(42))] {
            assert!(!is_session_id(bad), "{bad}");
        }
    }
}
