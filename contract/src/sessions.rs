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
        for bad in ["", "short", &"a".repeat(44), &format!("{}:", "a".repeat(42)), &format!("{}*", "a".repeat(42))] {
            assert!(!is_session_id(bad), "{bad}");
        }
    }
}
