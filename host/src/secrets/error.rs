//! Why the secret store could not be used, for every part of it (file and key).

use super::PASSWORD_ENV;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SecretStoreError {
    #[error(
        "the secret store {path} is protected by a password: set {PASSWORD_ENV} (it was empty or unset)",
        path = .path.display()
    )]
    PasswordNeeded { path: PathBuf },
    #[error(
        "the key does not open the secret store {path}: a wrong password, another store's keychain key, or a damaged file; nothing was changed",
        path = .path.display()
    )]
    WrongPassword { path: PathBuf },
    #[error("no OS keychain is available ({reason}); set {PASSWORD_ENV} to protect the secret store with a password instead")]
    NoKeychain { reason: String },
    #[error(
        "the key of the secret store {path} is not in the OS keychain; if you exported it, restore it with \
         `portcullis secrets import-key FILE`, otherwise move the file away and set the secrets again",
        path = .path.display()
    )]
    KeychainKeyMissing { path: PathBuf },
    #[error("{why} (tried again at most once a second)")]
    StillUnavailable { why: String },
    #[error("there is no secret store at {path} yet", path = .path.display())]
    NoStore { path: PathBuf },
    #[error("the secret store {path} is protected by a password, not by a keychain key: the password is what recovers it", path = .path.display())]
    NotKeychain { path: PathBuf },
    #[error("not a usable key recovery file: {why}")]
    BadRecoveryFile { why: String },
    #[error("{path} is not a valid secret store: {why}", path = .path.display())]
    Corrupt { path: PathBuf, why: String },
    #[error("cannot {action} {path}: {source}", path = .path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error(
        "another process is writing the secret store {path}, and its lock stayed taken for as long as this write could wait",
        path = .path.display()
    )]
    Busy { path: PathBuf },
    #[error("invalid secret name {0:?}: use letters, digits and `:._-/`, at most 200 characters")]
    InvalidName(String),
}
