//! The globs of `rules`: `*` matches any run of characters (none included),
//! `?` exactly one character, everything else itself. Nothing else is special:
//! tool names and resource URIs are full of `.`, `/`, `[` and `\`, and a rule
//! author should not have to escape them.

/// A glob as written, ready to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob { pattern: pattern.chars().collect() }
    }

    /// Whether `text` matches the whole pattern.
    ///
    /// The usual two-cursor walk: on a mismatch after a `*`, the `*` takes one
    /// more character and the rest is tried again. Only the latest `*` needs
    /// remembering, so the time is at most pattern × text, with no recursion
    /// for a hostile name to exhaust.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let pattern = &self.pattern;
        let (mut p, mut t) = (0, 0);
        // Where the latest `*` is, and where in the text it currently stops.
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match pattern.get(p) {
                Some('*') => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(&c) if c == '?' || c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((star_p, star_t)) => {
                        p = star_p + 1;
                        t = star_t + 1;
                        star = Some((star_p, star_t + 1));
                    }
                    None => return false,
                },
            }
        }
        // The text is used up: what is left of the pattern must be all `*`.
        pattern[p..].iter().all(|&c| c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn matches(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).matches(text)
    }

    #[test]
    fn literals_match_only_themselves() {
        assert!(matches("echo", "echo"));
        assert!(!matches("echo", "echoes"));
        assert!(!matches("echo", "ech"));
        assert!(!matches("echo", "Echo"), "case matters: tool names are case-sensitive");
        assert!(matches("", ""));
        assert!(!matches("", "a"));
    }

    #[test]
    fn star_matches_any_run() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything at all"));
        assert!(matches("deploy_*", "deploy_"));
        assert!(matches("deploy_*", "deploy_prod"));
        assert!(!matches("deploy_*", "deploy"));
        assert!(!matches("deploy_*", "undeploy_prod"));
        assert!(matches("*_delete", "repo_delete"));
        assert!(!matches("*_delete", "repo_delete_all"));
        assert!(matches("*admin*", "admin"));
        assert!(matches("*admin*", "super_admin_tool"));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(matches("**", "x"));
        assert!(matches("a**b", "ab"));
    }

    #[test]
    fn star_backtracks() {
        // The first `b` the star could stop at is the wrong one.
        assert!(matches("*bc", "abbc"));
        assert!(matches("a*ab", "aaab"));
        assert!(!matches("a*ab", "aaba"));
        assert!(matches("*a*a*a", "banana"));
    }

    #[test]
    fn question_mark_is_one_character() {
        assert!(matches("v?", "v1"));
        assert!(!matches("v?", "v"));
        assert!(!matches("v?", "v10"));
        assert!(matches("v??", "v10"));
        assert!(matches("?*", "x"));
        assert!(!matches("?*", ""));
        assert!(matches("caf?", "café"), "a character, not a byte");
    }

    #[test]
    fn nothing_else_is_special() {
        assert!(matches("file:///data/*.csv", "file:///data/q1.csv"));
        assert!(!matches("file:///data/*.csv", "file:///data/q1xcsv"), "`.` is a dot");
        assert!(matches("[a]", "[a]"));
        assert!(!matches("[ab]", "a"), "brackets are not a class");
        assert!(matches("a\\*", "a\\bc"), "a backslash escapes nothing");
        assert!(matches("{x,y}", "{x,y}"));
        // A `*` spans `/`: globs are not path patterns.
        assert!(matches("file:///*", "file:///etc/passwd"));
    }

    #[test]
    fn long_hostile_input_is_fast() {
        let text = "a".repeat(5000);
        let pattern = "*a*a*a*a*a*a*a*b";
        assert!(!matches(pattern, &text));
    }
}
