//! `builtin:shared-key`: the defaults the component applies and the gateway's
//! key commands (`portcullis keys`, `bridge`, `init`) assume, and the format
//! of the previous key during a rotation, which the gateway writes and the
//! component reads.

/// Where a client presents the key unless the policy says `header`.
pub const DEFAULT_HEADER: &str = "x-portcullis-key";

/// How long the previous key stays valid after a rotation unless the policy says `grace`.
pub const DEFAULT_GRACE_SECONDS: u64 = 600;

/// The secret holding a workload's key unless the policy says `secret`.
pub fn default_secret(workload: &str) -> String {
    format!("workload:{workload}:shared-key")
}

/// The secret holding the previous key during a rotation's grace period.
pub fn previous_secret(secret: &str) -> String {
    format!("{secret}:previous")
}

/// The previous key's stored form: `<rotated-at-unix-seconds> <key>`.
pub fn previous_value(rotated_at_unix: u64, key: &str) -> String {
    format!("{rotated_at_unix} {key}")
}

/// Reads [`previous_value`]'s form: the rotation time and the key. `None`
/// when it is not in that form or the key is empty (never a valid key).
pub fn parse_previous(stored: &str) -> Option<(u64, &str)> {
    let (rotated_at, key) = stored.split_once(' ')?;
    let rotated_at = rotated_at.parse().ok()?;
    (!key.is_empty()).then_some((rotated_at, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_previous_key_round_trip() {
        assert_eq!(default_secret("demo"), "workload:demo:shared-key");
        assert_eq!(previous_secret(&default_secret("demo")), "workload:demo:shared-key:previous");
        assert_eq!(parse_previous(&previous_value(1_700_000_000, "k3y")), Some((1_700_000_000, "k3y")));
        for bad in ["", "k3y", "1700000000", "1700000000 ", "-1 k", "x k", " 1 k"] {
            assert_eq!(parse_previous(bad), None, "{bad:?}");
        }
    }
}
