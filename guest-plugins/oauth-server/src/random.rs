//! Random values (codes, tokens, ids) and the hashes they are stored under.
//!
//! A code or a refresh token is stored only as its SHA-256: someone who reads
//! the store (a Redis dump) cannot redeem what they find.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// 32 random bytes (256 bits) as base64url without padding (43 characters),
/// from the runtime's secure source (WASI `random` in the gateway).
pub fn value() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no secure random numbers are available: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `text` could be a [`value`] (43 base64url characters): checked
/// before a value from a request becomes part of a store key.
pub fn is_value(text: &str) -> bool {
    text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The SHA-256 of `secret`, base64url: the store key's suffix for a code or token.
pub fn hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_differ_and_hashes_hide_them() {
        let (a, b) = (value().unwrap(), value().unwrap());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(is_value(&a) && is_value(&b));
        for bad in ["", "short", &"a".repeat(44), &format!("{}:", "a".repeat(42)), &format!("{}=", "a".repeat(42))] {
            assert!(!is_value(bad), "{bad}");
        }
        assert_eq!(hash("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
        assert_ne!(hash(&a), a);
    }
}
