//! Text from outside (an identity provider's error fields, the gateway's error
//! descriptions) made safe to put in a log line or a message: printable ASCII
//! only, and short, so that a hostile provider cannot forge log lines or fill
//! a response with its own prose.

/// `text` with everything but printable ASCII removed, cut to `max` characters
/// (with `...` when cut).
pub fn printable(text: &str, max: usize) -> String {
    let mut kept: String = text.chars().filter(|c| (' '..='~').contains(c)).collect();
    if kept.len() > max {
        kept.truncate(max.saturating_sub(3));
        kept.push_str("...");
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn only_short_printable_ascii_survives() {
        assert_eq!(printable("invalid_grant", 64), "invalid_grant");
        assert_eq!(printable("bad\r\nINFO forged line\u{7}é", 64), "badINFO forged line");
        assert_eq!(printable(&"x".repeat(300), 200).len(), 200);
        assert!(printable(&"x".repeat(300), 200).ends_with("..."));
        assert_eq!(printable("", 10), "");
    }
}
