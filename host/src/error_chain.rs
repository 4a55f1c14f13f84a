//! An error with its causes, on one line: `outer: cause: root cause`. What
//! anyhow's `{:#}` does, for a plain `std::error::Error` (reqwest's and
//! hyper's say what failed, refused, TLS or DNS, only in their sources).

use std::error::Error;
use std::fmt;

/// Displays `error` and each of its sources, joined with `: `.
pub struct Chain<'a>(pub &'a dyn Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Chain;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn every_cause_is_shown_in_order() {
        let error = Layer("request failed", Some(Box::new(Layer("connect", Some(Box::new(Layer("connection refused", None)))))));
        assert_eq!(Chain(&error).to_string(), "request failed: connect: connection refused");
        assert_eq!(Chain(&Layer("alone", None)).to_string(), "alone");
    }
}
