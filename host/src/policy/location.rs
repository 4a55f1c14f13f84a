//! Key paths (`workloads[0].inbound[1].component`) and the lines they are on.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Where in the policy a value sits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Segment>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    pub fn key(&self, key: &str) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.to_owned()));
        next
    }

    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    /// The 1-based line of the deepest part of this path present in `source`.
    pub fn line_in(&self, source: &str) -> Option<usize> {
        let doc = toml_edit::Document::parse(source).ok()?;
        let mut item = doc.as_item();
        let mut span = None;
        for segment in &self.0 {
            let next = match segment {
                Segment::Key(k) => {
                    if let Some(key) = item.as_table_like().and_then(|t| t.get_key_value(k)).map(|(key, _)| key) {
                        span = key.span().or(span);
                    }
                    item.get(k.as_str())
                }
                Segment::Index(i) => item.get(*i),
            };
            match next {
                Some(found) => {
                    item = found;
                    span = found.span().or(span);
                }
                None => break,
            }
        }
        // A key's own span points at the key; prefer it for the last segment.
        let start = span?.start;
        Some(source[..start.min(source.len())].matches('\n').count() + 1)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (n, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if n == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl From<&serde_path_to_error::Path> for KeyPath {
    fn from(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        KeyPath(
            path.iter()
                .filter_map(|s| match s {
                    S::Map { key } => Some(Segment::Key(key.clone())),
                    S::Seq { index } => Some(Segment::Index(*index)),
                    S::Enum { variant } => Some(Segment::Key(variant.clone())),
                    S::Unknown => None,
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_of_nested_keys() {
        let src = "version = 1\n\n[[workloads]]\nname = \"a\"\n\n[[workloads]]\nname = \"b\"\nupstream = \"x\"\n  [[workloads.inbound]]\n  component = \"c\"\n";
        let path = KeyPath::root().key("workloads").index(1).key("upstream");
        assert_eq!(path.to_string(), "workloads[1].upstream");
        assert_eq!(path.line_in(src), Some(8));
        let path = KeyPath::root().key("workloads").index(1).key("inbound").index(0).key("component");
        assert_eq!(path.line_in(src), Some(10));
        // A missing key points at its table's header.
        assert_eq!(KeyPath::root().key("workloads").index(0).key("listen").line_in(src), Some(3));
    }
}
