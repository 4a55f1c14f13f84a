//! Small helpers the federation's steps share: provider text made safe for a
//! message, JSON that refuses duplicate keys (the SDK's), and random values.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// `text` with everything but printable ASCII removed, cut to `max`
/// characters (with `...` when cut): a hostile provider cannot forge log
/// lines or fill a page with its own prose.
pub fn printable(text: &str, max: usize) -> String {
    let mut kept: String = text.chars().filter(|c| (' '..='~').contains(c)).collect();
    if kept.len() > max {
        kept.truncate(max.saturating_sub(3));
        kept.push_str("...");
    }
    kept
}

/// 32 random bytes as base64url without padding (43 characters): a `state`,
/// a PKCE verifier (RFC 7636 §4.1) or a `nonce`.
pub fn random_value() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no secure random numbers are available: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `text` could be a [`random_value`]: checked before a value from a
/// request becomes part of a store key.
pub fn is_random_value(text: &str) -> bool {
    text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Parses a JSON object, refusing duplicate keys at any depth (the SDK's
/// [`portcullis_plugin::strict_json`]).
pub fn strict_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    portcullis_plugin::strict_json::object(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values() {
        let (a, b) = (random_value().unwrap(), random_value().unwrap());
        assert_ne!(a, b);
        assert!(is_random_value(&a) && is_random_value(&b));
        for bad in ["", "short", &"a".repeat(44), &format!("{}:", "a".repeat(42)), &format!("{}=", "a".repeat(42))] {
            assert!(!is_random_value(bad), "{bad}");
        }
    }

    #[test]
    fn strict_json() {
        assert!(strict_object(br#"{"a":{"b":1},"c":[{"d":2}]}"#).is_ok());
        assert!(strict_object(br#"{"sub":"a","sub":"b"}"#).unwrap_err().contains("duplicate key `sub`"));
        assert!(strict_object(br#"{"a":{"b":1,"b":2}}"#).unwrap_err().contains("duplicate"));
        assert!(strict_object(br#"[1]"#).unwrap_err().contains("not a JSON object"));
        assert!(strict_object(b"<html>").is_err());
    }

    #[test]
    fn printable_text() {
        assert_eq!(printable("bad\r\nINFO forged\u{7}é", 64), "badINFO forged");
        assert_eq!(printable(&"x".repeat(300), 200).len(), 200);
    }
}
