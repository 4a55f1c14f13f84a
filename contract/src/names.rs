//! The one rule for the names a person gives workloads and plugins.

/// The longest name.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` is 1 to 64 lower-case ASCII letters, digits, `-` or `_`.
///
/// These names end up in secret names (`workload:<name>:shared-key`), file
/// names, metrics labels and URLs; the narrow alphabet keeps each of those
/// free of separators, case folding and escaping.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// What [`is_valid_name`] asks for, in the words an error message uses.
pub const NAME_RULE: &str = "1-64 lower-case letters, digits, `-` or `_`";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "demo", "api-key_2", "0", &"x".repeat(64)] {
            assert!(is_valid_name(good), "{good:?}");
        }
        for bad in ["", "Demo", "a b", "a/b", "../x", "a:b", "a.b", "é", &"x".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
