//! What differs per desktop OS, in one place: which conventions apply
//! ([`Os`], so that the path rules of every OS are unit-tested on any of
//! them), and on Windows the security descriptors that stand in for Unix
//! permission bits ([`acl`], parsed and built in safe code; `windows`, the
//! few system calls).

pub mod acl;
#[cfg(windows)]
pub mod windows;

use std::ffi::OsString;
use std::path::PathBuf;

/// The OS families whose conventions (data and config directories, private
/// files, signals) differ. The BSDs follow Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    MacOs,
    Windows,
}

impl Os {
    /// The OS this build runs on.
    pub const CURRENT: Os = if cfg!(windows) {
        Os::Windows
    } else if cfg!(target_os = "macos") {
        Os::MacOs
    } else {
        Os::Linux
    };
}

/// Reads an environment variable; tests pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// The process environment, an empty value counted as unset.
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// The user's home directory: `HOME`, or on Windows `USERPROFILE` (what
/// Node's `os.homedir()` and so Cursor, VS Code and Claude Code use), then `HOME`.
pub fn user_home(os: Os, env: Env<'_>) -> Option<PathBuf> {
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
    match os {
        Os::Windows => non_empty("USERPROFILE").or_else(|| non_empty("HOME")),
        Os::Linux | Os::MacOs => non_empty("HOME"),
    }
    .map(PathBuf::from)
}

/// `base` joined with each of `parts` (one component each, so the path uses
/// the OS's separator throughout).
pub fn under(base: impl Into<PathBuf>, parts: &[&str]) -> PathBuf {
    let mut path = base.into();
    for part in parts {
        path.push(part);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_home_directory_per_os() {
        let env = |name: &str| match name {
            "HOME" => Some(OsString::from("/home/u")),
            "USERPROFILE" => Some(OsString::from(r"C:\Users\u")),
            _ => None,
        };
        assert_eq!(user_home(Os::Linux, &env), Some(PathBuf::from("/home/u")));
        assert_eq!(user_home(Os::MacOs, &env), Some(PathBuf::from("/home/u")));
        assert_eq!(user_home(Os::Windows, &env), Some(PathBuf::from(r"C:\Users\u")));
        // Git Bash and MSYS set HOME only.
        let msys = |name: &str| (name == "HOME").then(|| OsString::from("/c/Users/u"));
        assert_eq!(user_home(Os::Windows, &msys), Some(PathBuf::from("/c/Users/u")));
        let empty = |_: &str| Some(OsString::new());
        assert_eq!(user_home(Os::Linux, &empty), None);
    }
}
