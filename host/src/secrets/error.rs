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
    #[error("wrong password for the secret store {path} (or the file is damaged); nothing was changed", path = .path.display())]
    WrongPassword { path: PathBuf },
    #[error("no OS keychain is available ({reason}); set {PASSWORD_ENV} to protect the secret store with a password instead")]
    NoKeychain { reason: String },
    #[error(
        "the key of the secret store {path} is not in the OS keychain (a kernel keyring does not survive a reboot); \
         restore the key or move the file away and set the secrets again",
        path = .path.display()
    )]
    KeychainKeyMissing { path: PathBuf },
    #[error("{path} is not a valid secret store: {why}", path = .path.display())]
    Corrupt { path: PathBuf, why: String },
    #[error("cannot {action} {path}: {source}", path = .path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("invalid secret name {0:?}: use letters, digits and `:._-/`, at most 200 characters")]
    InvalidName(String),
}
