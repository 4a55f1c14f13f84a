//! The store key's entry in the OS keychain: one entry per store file.
//!
//! On Linux the Secret Service (GNOME Keyring, KWallet, KeePassXC, over D-Bus)
//! is where the key lives, because it keeps it across reboots; the kernel
//! keyring only caches it. Kernel keys vanish at reboot, so a store whose key
//! were only there would be lost with every secret in it. A new key is
//! therefore never kept in the kernel keyring alone: without a Secret Service,
//! creating a keychain store fails and points to `PORTCULLIS_SECRETS_PASSWORD`.
//!
//! Earlier Portcullis versions kept the key in the kernel keyring only. Such a
//! key is copied into the Secret Service the first time it is read there.
//!
//! When the two copies disagree (a keyring restored from a backup, say),
//! neither is overwritten on reading: both are offered, the store keeps the
//! one that opens it, and only then is it written to both.
//!
//! On macOS and Windows the platform keychain is durable by itself.

use super::Key;
use super::error::SecretStoreError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::zeroize::Zeroizing;
use std::path::Path;

const SERVICE: &str = "portcullis";

/// The entry's user name, one per store file so several `PORTCULLIS_HOME`s do not share a key.
fn user(path: &Path) -> String {
    format!("secrets-key:{}", path.display())
}

fn encode(key: &Key) -> Zeroizing<String> {
    Zeroizing::new(B64.encode(key.as_ref()))
}

fn decode(encoded: &str) -> Result<Key, SecretStoreError> {
    let invalid = || SecretStoreError::NoKeychain { reason: "the keychain entry does not hold a valid 32-byte key".into() };
    let bytes = Zeroizing::new(B64.decode(encoded.trim()).map_err(|_| invalid())?);
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(invalid());
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// The keys kept for the store at `path`, best first: one, or two when the
/// durable copy and the cache disagree; none when the keychain has no entry
/// for it. `for_new_store`: only a durable entry counts (on Linux, not a
/// kernel-keyring copy an earlier store left), so a new store never starts
/// with a key that a reboot would lose.
pub fn load(path: &Path, for_new_store: bool) -> Result<Vec<Key>, SecretStoreError> {
    let path = path.to_owned();
    bounded(move || platform::load(&path, for_new_store))
}

/// Keeps `key` for the store at `path` durably, replacing any earlier entry.
pub fn save(path: &Path, key: &Key) -> Result<(), SecretStoreError> {
    let (path, key) = (path.to_owned(), key.clone());
    bounded(move || platform::save(&path, &key))
}

/// The longest a keychain request may take: a locked desktop keyring may
/// show an unlock prompt and wait for it (a year, by default, over D-Bus).
const KEYCHAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether a keychain request is still running on its own thread.
static IN_FLIGHT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs a keychain request on a thread of its own and waits for it at most
/// [`KEYCHAIN_WAIT`]; while one is still running (say, on a prompt nobody
/// answers), further requests fail at once instead of piling up threads or
/// holding the gateway's worker threads.
fn bounded<T: Send + 'static>(request: impl FnOnce() -> Result<T, SecretStoreError> + Send + 'static) -> Result<T, SecretStoreError> {
    use std::sync::atomic::Ordering;
    if IN_FLIGHT.swap(true, Ordering::AcqRel) {
        return Err(SecretStoreError::NoKeychain { reason: "an earlier request to the OS keychain is still waiting for an answer (a locked keyring?)".into() });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("portcullis-keychain".into()).spawn(move || {
        let result = request();
        // Cleared before the answer is sent, so the caller's next request finds it clear.
        IN_FLIGHT.store(false, Ordering::Release);
        let _ = tx.send(result);
    });
    if let Err(e) = spawned {
        IN_FLIGHT.store(false, Ordering::Release);
        return Err(SecretStoreError::NoKeychain { reason: format!("cannot start a thread for the keychain request: {e}") });
    }
    rx.recv_timeout(KEYCHAIN_WAIT).unwrap_or_else(|_| {
        Err(SecretStoreError::NoKeychain {
            reason: format!("the OS keychain did not answer within {KEYCHAIN_WAIT:?}; unlock your desktop keyring (it may be waiting for an unlock prompt)"),
        })
    })
}

/// Forgets the key of the store at `path` (after the store moved to a password).
pub fn delete(path: &Path) {
    platform::delete(path)
}

#[cfg(target_os = "linux")]
mod platform {
    use super::{Key, SERVICE, SecretStoreError, Zeroizing, decode, encode, user};
    use keyring::Entry;
    use keyring::keyutils::KeyutilsCredential;
    use keyring::secret_service::SsCredential;
    use std::path::Path;

    /// The durable copy, in the Secret Service's default collection.
    fn secret_service(path: &Path) -> Result<Entry, keyring::Error> {
        Ok(Entry::new_with_credential(Box::new(SsCredential::new_with_target(None, SERVICE, &user(path))?)))
    }

    /// The cache, in the kernel keyring (session keyring, linked to the user's persistent keyring).
    fn kernel(path: &Path) -> Result<Entry, keyring::Error> {
        Ok(Entry::new_with_credential(Box::new(KeyutilsCredential::new_with_target(None, SERVICE, &user(path))?)))
    }

    fn unreachable(error: &keyring::Error) -> String {
        match error {
            keyring::Error::NoStorageAccess(_) => {
                format!("the Secret Service did not give access to its default collection; unlock your desktop keyring ({error})")
            }
            _ => format!(
                "no Secret Service answered on the D-Bus session bus ({error}); a desktop keyring such as GNOME Keyring, KWallet or KeePassXC provides one, \
                 and the kernel keyring alone does not survive a reboot"
            ),
        }
    }

    fn cache(path: &Path, encoded: &str) {
        if let Err(e) = kernel(path).and_then(|entry| entry.set_password(encoded)) {
            tracing::debug!(store = %path.display(), error = %e, "could not cache the secret-store key in the kernel keyring");
        }
    }

    pub fn load(path: &Path, for_new_store: bool) -> Result<Vec<Key>, SecretStoreError> {
        let durable = secret_service(path).and_then(|entry| entry.get_password());
        let cached = || kernel(path).and_then(|entry| entry.get_password()).ok().map(Zeroizing::new);
        let encoded = match durable {
            Ok(encoded) => {
                let encoded = Zeroizing::new(encoded);
                let key = decode(&encoded)?;
                return Ok(match cached() {
                    // A cache that disagrees is kept until the store says which key opens it.
                    Some(other) if other != encoded => match decode(&other) {
                        Ok(other) => {
                            tracing::warn!(store = %path.display(), "the Secret Service and the kernel keyring hold different keys for this store; trying both");
                            vec![key, other]
                        }
                        // Not a key at all: nothing to keep.
                        Err(_) => {
                            cache(path, &encoded);
                            vec![key]
                        }
                    },
                    Some(_) => vec![key],
                    None => {
                        cache(path, &encoded);
                        vec![key]
                    }
                });
            }
            Err(keyring::Error::NoEntry) if for_new_store => return Ok(Vec::new()),
            Err(error) if for_new_store => return Err(SecretStoreError::NoKeychain { reason: unreachable(&error) }),
            Err(keyring::Error::NoEntry) => match cached() {
                Some(encoded) => encoded,
                None => return Ok(Vec::new()),
            },
            Err(error) => match cached() {
                Some(encoded) => {
                    tracing::warn!(store = %path.display(), reason = %unreachable(&error), "using the secret-store key cached in the kernel keyring");
                    return decode(&encoded).map(|key| vec![key]);
                }
                None => return Err(SecretStoreError::NoKeychain { reason: unreachable(&error) }),
            },
        };
        // Kept only in the kernel keyring, by an earlier version: make it durable now.
        let key = decode(&encoded)?;
        match secret_service(path).and_then(|entry| entry.set_password(&encoded)) {
            Ok(()) => {
                tracing::info!(store = %path.display(), "copied the secret-store key from the kernel keyring into the Secret Service, so it survives a reboot")
            }
            Err(error) => {
                tracing::warn!(store = %path.display(), reason = %unreachable(&error), "the secret-store key is only in the kernel keyring, which a reboot clears")
            }
        }
        Ok(vec![key])
    }

    pub fn save(path: &Path, key: &Key) -> Result<(), SecretStoreError> {
        let encoded = encode(key);
        secret_service(path).and_then(|entry| entry.set_password(&encoded)).map_err(|error| SecretStoreError::NoKeychain { reason: unreachable(&error) })?;
        cache(path, &encoded);
        Ok(())
    }

    pub fn delete(path: &Path) {
        for entry in [secret_service(path), kernel(path)] {
            match entry.and_then(|entry| entry.delete_credential()) {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(e) => tracing::warn!(store = %path.display(), error = %e, "could not delete the old secret-store key from the keychain"),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use super::{Key, SERVICE, SecretStoreError, Zeroizing, decode, encode, user};
    use std::path::Path;

    fn entry(path: &Path) -> Result<keyring::Entry, SecretStoreError> {
        keyring::Entry::new(SERVICE, &user(path)).map_err(|e| SecretStoreError::NoKeychain { reason: e.to_string() })
    }

    pub fn load(path: &Path, _for_new_store: bool) -> Result<Vec<Key>, SecretStoreError> {
        match entry(path)?.get_password() {
            Ok(encoded) => decode(&Zeroizing::new(encoded)).map(|key| vec![key]),
            Err(keyring::Error::NoEntry) => Ok(Vec::new()),
            Err(e) => Err(SecretStoreError::NoKeychain { reason: e.to_string() }),
        }
    }

    pub fn save(path: &Path, key: &Key) -> Result<(), SecretStoreError> {
        entry(path)?.set_password(&encode(key)).map_err(|e| SecretStoreError::NoKeychain { reason: e.to_string() })
    }

    pub fn delete(path: &Path) {
        if let Ok(entry) = entry(path) {
            match entry.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(e) => tracing::warn!(store = %path.display(), error = %e, "could not delete the old secret-store key from the keychain"),
            }
        }
    }
}
