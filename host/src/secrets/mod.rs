//! The secret store: named secrets in one encrypted file.
//!
//! - [`store`]: reading and atomic, locked writing of the file.
//! - [`error`]: why the store could not be used.
//! - [`key`]: where the file's AES-256 key comes from — a random key held in the
//!   OS keychain, or Argon2id over `PORTCULLIS_SECRETS_PASSWORD` for headless machines.
//! - [`keychain`]: the key's keychain entry (on Linux, the Secret Service, with
//!   the kernel keyring as a cache).
//! - [`recovery`]: the key exported to a file the user keeps, and read back.
//!
//! Values are [`SecretString`]s: their `Debug` prints nothing, and they are only
//! exposed where a component asked for a granted name or the CLI was asked to print one.

mod error;
mod key;
mod keychain;
mod recovery;
mod store;

pub use error::SecretStoreError;
pub use key::ProtectionKind;
pub use secrecy::{ExposeSecret, SecretString};
pub use store::{NamedLock, SecretStore};

/// A store's AES-256 key, wiped from memory when dropped.
type Key = secrecy::zeroize::Zeroizing<[u8; 32]>;

/// The environment variable that selects password protection.
pub const PASSWORD_ENV: &str = "PORTCULLIS_SECRETS_PASSWORD";
