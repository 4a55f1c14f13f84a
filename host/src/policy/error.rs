//! Policy errors: every one names the file, the line and the key, and says how to fix it.

use super::location::KeyPath;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct PolicyError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: KeyPath,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": `{}`: {}", self.key, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// All the problems found in one policy file.
#[derive(Debug, Clone)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, e) in self.0.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// Collects errors against one file's source, resolving lines as they come.
pub struct Problems<'a> {
    file: PathBuf,
    source: &'a str,
    pub errors: Vec<PolicyError>,
    pub warnings: Vec<PolicyError>,
}

impl<'a> Problems<'a> {
    pub fn new(file: PathBuf, source: &'a str) -> Self {
        Problems { file, source, errors: Vec::new(), warnings: Vec::new() }
    }

    pub fn make(&self, key: &KeyPath, message: impl Into<String>, hint: Option<String>) -> PolicyError {
        PolicyError { file: self.file.clone(), line: key.line_in(self.source), key: key.clone(), message: message.into(), hint }
    }

    pub fn error(&mut self, key: &KeyPath, message: impl Into<String>, hint: impl Into<Option<String>>) {
        let e = self.make(key, message, hint.into());
        self.errors.push(e);
    }

    pub fn warn(&mut self, key: &KeyPath, message: impl Into<String>, hint: impl Into<Option<String>>) {
        let e = self.make(key, message, hint.into());
        self.warnings.push(e);
    }
}
