//! Small helpers the federation's steps share: provider text made safe for a
//! message, and JSON that refuses duplicate keys (the SDK's).

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

/// Parses a JSON object, refusing duplicate keys at any depth (the SDK's
/// [`portcullis_plugin::strict_json`]).
pub fn strict_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    portcullis_plugin::strict_json::object(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_printable_ascii_survives() {
        assert_eq!(printable("invalid_grant", 64), "invalid_grant");
        assert_eq!(printable("bad\r\nINFO forged line\u{7}é", 64), "badINFO forged line");
        assert_eq!(printable(&"x".repeat(300), 200).len(), 200);
        assert!(printable(&"x".repeat(300), 200).ends_with("..."));
        assert_eq!(printable("", 10), "");
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
