//! The store's encryption key: from the OS keychain, or derived from a password.

use super::Key;
use super::error::SecretStoreError;
use super::keychain;
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::zeroize::Zeroizing;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How a store file's key is obtained; written in the file's clear header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Protection {
    /// A random key kept in the OS keychain under an entry named after the file.
    Keychain,
    /// Argon2id over `PORTCULLIS_SECRETS_PASSWORD`.
    Password(KdfParams),
}

/// The protection a store can be moved to (`portcullis secrets migrate --to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtectionKind {
    Keychain,
    Password,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Base64 salt, 16 random bytes.
    pub salt: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// OWASP's recommended Argon2id settings (19 MiB, 2 passes, 1 lane).
    pub fn new_random() -> Self {
        let salt: [u8; 16] = rand::random();
        KdfParams { salt: B64.encode(salt), memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

/// The protection a new store gets: a password when one is set in the
/// environment, else the keychain.
pub fn protection_for_new_store(password: Option<&str>) -> Protection {
    match password {
        Some(_) => Protection::Password(KdfParams::new_random()),
        None => Protection::Keychain,
    }
}

/// The keys that may open a store at `path` with `protection`, best first:
/// one, or two from a keychain whose copies disagree. `create` allows making
/// a new keychain entry (only for a store that does not exist yet).
pub fn obtain(path: &Path, protection: &Protection, password: Option<&str>, create: bool) -> Result<Vec<Key>, SecretStoreError> {
    match protection {
        Protection::Password(params) => {
            let password = password.ok_or_else(|| SecretStoreError::PasswordNeeded { path: path.to_owned() })?;
            derive(password, params, path).map(|key| vec![key])
        }
        Protection::Keychain => keychain_keys(path, create),
    }
}

/// The most a store file's header may ask of Argon2id. The parameters are read
/// before the file is authenticated (they are needed to derive the key that
/// authenticates it), so a hostile file must not be able to ask for terabytes
/// of memory or hours of work: 256 MiB, 10 passes, 8 lanes (what we write is
/// 19 MiB, 2 passes, 1 lane).
const MAX_MEMORY_KIB: u32 = 256 * 1024;
const MAX_ITERATIONS: u32 = 10;
const MAX_PARALLELISM: u32 = 8;

pub fn derive(password: &str, params: &KdfParams, path: &Path) -> Result<Key, SecretStoreError> {
    if password.is_empty() {
        return Err(SecretStoreError::PasswordNeeded { path: path.to_owned() });
    }
    let corrupt = |why: String| SecretStoreError::Corrupt { path: path.to_owned(), why };
    if params.memory_kib > MAX_MEMORY_KIB || params.iterations > MAX_ITERATIONS || params.parallelism > MAX_PARALLELISM {
        return Err(corrupt(format!(
            "its key-derivation parameters ({} KiB, {} passes, {} lanes) exceed what Portcullis accepts ({MAX_MEMORY_KIB} KiB, {MAX_ITERATIONS}, {MAX_PARALLELISM}); the file was not written by Portcullis",
            params.memory_kib, params.iterations, params.parallelism
        )));
    }
    let salt = B64.decode(&params.salt).map_err(|_| corrupt("the salt is not base64".into()))?;
    let argon_params =
        Params::new(params.memory_kib, params.iterations, params.parallelism, Some(32)).map_err(|e| corrupt(format!("bad key-derivation parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
        .hash_password_into(password.as_bytes(), &salt, key.as_mut())
        .map_err(|e| corrupt(format!("key derivation failed: {e}")))?;
    Ok(key)
}

/// The keychain keys of the store at `path`; `create` makes one when there is none.
fn keychain_keys(path: &Path, create: bool) -> Result<Vec<Key>, SecretStoreError> {
    let keys = keychain::load(path, create)?;
    match keys.is_empty() {
        false => Ok(keys),
        true if create => new_keychain_key(path).map(|key| vec![key]),
        true => Err(SecretStoreError::KeychainKeyMissing { path: path.to_owned() }),
    }
}

/// A fresh random key for the store at `path`, kept in the keychain (replacing any earlier one).
pub fn new_keychain_key(path: &Path) -> Result<Key, SecretStoreError> {
    let key: Key = Zeroizing::new(rand::random());
    keychain::save(path, &key)?;
    Ok(key)
}
