//! The encrypted store file: `<home>/secrets.json`.
//!
//! The file is JSON with a clear header (format, version, how the key is
//! obtained) and one AES-256-GCM ciphertext of all entries; the header is bound
//! to the ciphertext as associated data, so it cannot be swapped undetected.
//! Writers take an exclusive lock on `secrets.lock`, re-read the file under the
//! lock, and replace it atomically (temp file, fsync, rename, fsync of the
//! directory) with mode 0600. Readers need no lock: they see the old file or
//! the new one, never a mix. A wrong password fails before anything is written.

use super::Key;
use super::PASSWORD_ENV;
use super::error::SecretStoreError;
use super::key::{self, Protection, ProtectionKind};
use super::{keychain, recovery};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FORMAT: &str = "portcullis-secrets";
const VERSION: u32 = 1;

/// The file's JSON form.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    format: String,
    version: u32,
    /// Where the key comes from (and, for a password, how it is derived).
    key: Protection,
    nonce: String,
    ciphertext: String,
}

impl StoreFile {
    fn associated_data(&self) -> Vec<u8> {
        // The header, in a fixed serialisation, authenticated with the ciphertext.
        serde_json::to_vec(&(&self.format, self.version, &self.key)).expect("header serialises")
    }
}

/// Whether the caller of [`SecretStore::load`] holds the writers' lock.
#[derive(Clone, Copy)]
enum Writers {
    Held,
    NotHeld,
}

/// Identifies a version of the file, to notice changes made by other processes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    mtime_ns: i128,
}

struct Loaded {
    stamp: Option<Stamp>,
    /// When `stamp` was last compared with the file.
    checked: Instant,
    protection: Protection,
    key: Key,
    entries: BTreeMap<String, SecretString>,
}

/// How often a read looks at the file for changes made by other processes.
/// Reads in between are served from memory: the hot path (a shared-key check
/// on every request) does not `stat` the file per call, and a rotation by the
/// CLI is seen within this interval. Writes through this handle update the
/// memory copy at once.
const RECHECK: Duration = Duration::from_millis(250);

/// How often a bounded write tries the writers' lock again.
const WRITERS_POLL: Duration = Duration::from_millis(5);

/// How long a write waits for another writer.
#[derive(Clone, Copy)]
enum Wait {
    /// The CLI: as long as it takes (a person is watching, and can interrupt).
    Forever,
    /// A component's call: until its deadline.
    Until(Instant),
}

/// After a read could not open the store, reads fail with the same reason
/// for this long before the store is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Opens (creating, 0600, never through a symlink) a file used only to be
/// locked. On Windows the file inherits the home directory's owner-only DACL
/// (`home::create_private_dir`), and a link is opened as itself.
fn open_lock_file(path: &Path) -> Result<std::fs::File, SecretStoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32);
    }
    #[cfg(windows)]
    std::os::windows::fs::OpenOptionsExt::custom_flags(&mut options, crate::platform::windows::FILE_FLAG_OPEN_REPARSE_POINT);
    options.open(path).map_err(|source| io("open", path, source))
}

/// A held named lock (see [`SecretStore::try_lock`]); released when dropped.
pub struct NamedLock {
    _file: std::fs::File,
}

/// A handle on the store file. Cheap to create; reads are cached in memory and
/// refreshed when the file changes on disk (see [`RECHECK`]).
pub struct SecretStore {
    path: PathBuf,
    lock_path: PathBuf,
    password: Option<SecretString>,
    cache: Mutex<Option<Loaded>>,
    /// How often reads look at the file: [`RECHECK`], but in tests.
    recheck: Duration,
    /// The last failure to open the store for a read, and when (see [`RETRY_AFTER`]).
    failure: Mutex<Option<(Instant, String)>>,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SecretStore {
    /// The store in `home`, with the password (if any) from the environment.
    pub fn in_home(home: &Path) -> Self {
        let password = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()).map(SecretString::from);
        Self::new(home, password)
    }

    pub fn new(home: &Path, password: Option<SecretString>) -> Self {
        SecretStore {
            path: home.join("secrets.json"),
            lock_path: home.join("secrets.lock"),
            password,
            cache: Mutex::new(None),
            recheck: RECHECK,
            failure: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The secret `name`, or `None` when the store has no such entry (or no file yet).
    pub fn get(&self, name: &str) -> Result<Option<SecretString>, SecretStoreError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let recent = matches!(&*cache, Some(loaded) if loaded.checked.elapsed() < self.recheck);
        if !recent {
            let stamp = self.stamp()?;
            match cache.as_mut() {
                Some(loaded) if loaded.stamp == stamp => loaded.checked = Instant::now(),
                _ if stamp.is_none() => {
                    *cache = None;
                    return Ok(None);
                }
                _ => {
                    // A store that could not be opened is not asked again for a
                    // while: every request that reads a secret would otherwise
                    // ask the keychain (or derive a key) again.
                    let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some((at, why)) = &*failure
                        && at.elapsed() < RETRY_AFTER
                    {
                        return Err(SecretStoreError::StillUnavailable { why: why.clone() });
                    }
                    match self.load(cache.take(), Writers::NotHeld) {
                        Ok(loaded) => {
                            *failure = None;
                            *cache = Some(loaded);
                        }
                        Err(error) => {
                            *failure = Some((Instant::now(), error.to_string()));
                            return Err(error);
                        }
                    }
                }
            }
        }
        let Some(loaded) = cache.as_ref() else {
            return Ok(None);
        };
        Ok(loaded.entries.get(name).map(|v| SecretString::from(v.expose_secret().to_owned())))
    }

    /// Opens the store now (deriving its key), so that the first component
    /// call that reads a secret does not pay for it. A store that does not exist yet is fine.
    pub fn warm(&self) -> Result<(), SecretStoreError> {
        self.get("").map(|_| ())
    }

    /// The names in the store, sorted.
    pub fn list(&self) -> Result<Vec<String>, SecretStoreError> {
        if self.stamp()?.is_none() {
            return Ok(Vec::new());
        }
        let loaded = self.load(None, Writers::NotHeld)?;
        Ok(loaded.entries.keys().cloned().collect())
    }

    /// Sets `name` to `value`.
    pub fn set(&self, name: &str, value: SecretString) -> Result<(), SecretStoreError> {
        self.set_with(name, value, Wait::Forever)
    }

    /// Sets `name` to `value`, waiting for another writer at most until `until`
    /// ([`SecretStoreError::Busy`] after). Blocking: a gateway calls it from a
    /// blocking thread.
    pub fn set_within(&self, name: &str, value: SecretString, until: Instant) -> Result<(), SecretStoreError> {
        self.set_with(name, value, Wait::Until(until))
    }

    fn set_with(&self, name: &str, value: SecretString, wait: Wait) -> Result<(), SecretStoreError> {
        check_name(name)?;
        self.update_with(wait, |entries| {
            entries.insert(name.to_owned(), value);
            true
        })
        .map(|_| ())
    }

    /// Removes `name`; `false` if there was no such entry.
    pub fn delete(&self, name: &str) -> Result<bool, SecretStoreError> {
        self.update(|entries| entries.remove(name).is_some())
    }

    /// [`Self::delete`], waiting for another writer at most until `until`.
    pub fn delete_within(&self, name: &str, until: Instant) -> Result<bool, SecretStoreError> {
        self.update_with(Wait::Until(until), |entries| entries.remove(name).is_some())
    }

    /// Takes the exclusive lock `name` if it is free (`None` when another
    /// holder has it). Named locks are files in `<home>/locks/`, locked with
    /// `flock`: every handle on this store, in this process or another, sees
    /// the same lock, and the kernel releases it when the holder drops it or
    /// dies. Once taken, the next read compares the store with the file, so
    /// what another holder wrote before releasing is seen.
    pub fn try_lock(&self, name: &str) -> Result<Option<NamedLock>, SecretStoreError> {
        use sha2::Digest;
        let home = self.path.parent().expect("store path has a parent");
        let dir = home.join("locks");
        crate::home::create_private_dir(&dir).map_err(|source| io("create", &dir, source))?;
        // Hashed: any name (`registry:a/b`, ...) is a safe file name.
        let path = dir.join(format!("{}.lock", hex::encode(&sha2::Sha256::digest(name.as_bytes())[..16])));
        let file = open_lock_file(&path)?;
        match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
            Ok(true) => {
                self.recheck();
                Ok(Some(NamedLock { _file: file }))
            }
            Ok(false) => Ok(None),
            Err(source) => Err(io("lock", &path, source)),
        }
    }

    /// Makes the next read compare the store with the file, whenever it last did.
    pub fn recheck(&self) {
        if let Some(loaded) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            let now = Instant::now();
            loaded.checked = now.checked_sub(self.recheck).unwrap_or(now);
        }
    }

    /// Runs `change` on the entries under the writers' lock and writes the result
    /// if `change` returns true. The file is re-read under the lock so concurrent
    /// writers never lose each other's changes.
    pub fn update(&self, change: impl FnOnce(&mut BTreeMap<String, SecretString>) -> bool) -> Result<bool, SecretStoreError> {
        self.update_with(Wait::Forever, change)
    }

    fn update_with(&self, wait: Wait, change: impl FnOnce(&mut BTreeMap<String, SecretString>) -> bool) -> Result<bool, SecretStoreError> {
        let lock = match wait {
            Wait::Forever => self.lock_writers()?,
            Wait::Until(until) => self.lock_writers_until(until)?,
        };
        let exists = self.stamp()?.is_some();
        let (mut loaded, changed) = if exists {
            let mut loaded = self.load(None, Writers::Held)?;
            let changed = change(&mut loaded.entries);
            (loaded, changed)
        } else {
            // A change that writes nothing (deleting from a store that does
            // not exist) creates no store and no keychain entry.
            let mut entries = BTreeMap::new();
            if !change(&mut entries) {
                return Ok(false);
            }
            let mut loaded = self.new_store()?;
            loaded.entries = entries;
            (loaded, true)
        };
        if changed {
            self.write(&loaded)?;
            if !exists && loaded.protection == Protection::Keychain {
                tracing::info!(
                    store = %self.path.display(),
                    "created the secret store, with its key in the OS keychain; keep a recovery copy of the key: portcullis secrets export-key FILE"
                );
            }
        }
        // Keep what we wrote (and its key): the next read must not pay for the
        // key derivation again, which can take tens of milliseconds.
        loaded.stamp = self.stamp()?;
        loaded.checked = Instant::now();
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(loaded);
        // Dropping `lock` releases it.
        drop(lock);
        Ok(changed)
    }

    /// Takes the writers' lock (creating the home directory if needed); released when dropped.
    fn lock_writers(&self) -> Result<std::fs::File, SecretStoreError> {
        let home = self.path.parent().expect("store path has a parent");
        crate::home::create_private_dir(home).map_err(|source| io("create", home, source))?;
        let lock = open_lock_file(&self.lock_path)?;
        fs4::fs_std::FileExt::lock_exclusive(&lock).map_err(|source| io("lock", &self.lock_path, source))?;
        Ok(lock)
    }

    /// Takes the writers' lock, waiting at most until `until`. Polled, so that
    /// the wait has an end (`flock` itself has no timeout).
    fn lock_writers_until(&self, until: Instant) -> Result<std::fs::File, SecretStoreError> {
        let home = self.path.parent().expect("store path has a parent");
        crate::home::create_private_dir(home).map_err(|source| io("create", home, source))?;
        loop {
            if let Some(lock) = self.try_lock_writers()? {
                return Ok(lock);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SecretStoreError::Busy { path: self.path.clone() });
            }
            std::thread::sleep(left.min(WRITERS_POLL));
        }
    }

    /// Takes the writers' lock if it is free (`None` while a writer holds it).
    fn try_lock_writers(&self) -> Result<Option<std::fs::File>, SecretStoreError> {
        let lock = open_lock_file(&self.lock_path)?;
        match fs4::fs_std::FileExt::try_lock_exclusive(&lock) {
            Ok(true) => Ok(Some(lock)),
            Ok(false) => Ok(None),
            Err(source) => Err(io("lock", &self.lock_path, source)),
        }
    }

    /// Re-encrypts the store under a new key kept as `to` says: a fresh random
    /// key in the OS keychain, or Argon2id over the password this handle was
    /// given (`PORTCULLIS_SECRETS_PASSWORD`), which also opens a
    /// password-protected store. Every entry is kept; `false` when the store
    /// already is protected that way. The new key is made (and, for the
    /// keychain, stored) before the file is replaced atomically, so an
    /// interruption at any point leaves a store that opens with one key or the
    /// other. An old keychain entry is deleted only after the file no longer needs it.
    pub fn change_protection(&self, to: ProtectionKind) -> Result<bool, SecretStoreError> {
        let _lock = self.lock_writers()?;
        if self.stamp()?.is_none() {
            return Err(SecretStoreError::NoStore { path: self.path.clone() });
        }
        let mut loaded = self.load(None, Writers::Held)?;
        let was_keychain = loaded.protection == Protection::Keychain;
        match to {
            ProtectionKind::Keychain if was_keychain => return Ok(false),
            ProtectionKind::Password if !was_keychain => return Ok(false),
            ProtectionKind::Keychain => {
                loaded.key = key::new_keychain_key(&self.path)?;
                loaded.protection = Protection::Keychain;
            }
            ProtectionKind::Password => {
                let password = self.password.as_ref().ok_or_else(|| SecretStoreError::PasswordNeeded { path: self.path.clone() })?;
                let params = key::KdfParams::new_random();
                loaded.key = key::derive(password.expose_secret(), &params, &self.path)?;
                loaded.protection = Protection::Password(params);
            }
        }
        self.write(&loaded)?;
        if was_keychain {
            keychain::delete(&self.path);
        }
        self.recheck();
        Ok(true)
    }

    /// The key of a keychain-protected store, as a recovery document to keep
    /// outside the keychain (see [`recovery`]). A password-protected store has
    /// no key to export: its password is what recovers it.
    pub fn export_key(&self) -> Result<Zeroizing<String>, SecretStoreError> {
        if self.stamp()?.is_none() {
            return Err(SecretStoreError::NoStore { path: self.path.clone() });
        }
        let loaded = self.load(None, Writers::NotHeld)?;
        if loaded.protection != Protection::Keychain {
            return Err(SecretStoreError::NotKeychain { path: self.path.clone() });
        }
        Ok(recovery::write(&self.path, &loaded.key))
    }

    /// Puts a key exported by [`Self::export_key`] back into the OS keychain,
    /// after checking that it opens this store (a wrong key never replaces a
    /// working one).
    pub fn import_key(&self, document: &str) -> Result<(), SecretStoreError> {
        let _lock = self.lock_writers()?;
        let key = recovery::read(document).map_err(|why| SecretStoreError::BadRecoveryFile { why })?;
        let (stamp, file) = self.read_file()?.ok_or_else(|| SecretStoreError::NoStore { path: self.path.clone() })?;
        if file.key != Protection::Keychain {
            return Err(SecretStoreError::NotKeychain { path: self.path.clone() });
        }
        self.decrypt(stamp, file, key.clone()).map_err(|e| match e {
            SecretStoreError::WrongPassword { .. } => SecretStoreError::BadRecoveryFile { why: "its key does not open this store".into() },
            other => other,
        })?;
        keychain::save(&self.path, &key)?;
        self.recheck();
        Ok(())
    }

    fn new_store(&self) -> Result<Loaded, SecretStoreError> {
        let password = self.password.as_ref().map(|p| p.expose_secret());
        let protection = key::protection_for_new_store(password);
        // A new store gets a new key, never one an earlier store at this path
        // left in the keychain: whoever kept that one (a recovery export, a
        // backup of the keyring) must not open the new store.
        let key = match &protection {
            Protection::Keychain => key::new_keychain_key(&self.path)?,
            Protection::Password(_) => key::obtain(&self.path, &protection, password, true)?.swap_remove(0),
        };
        Ok(Loaded { stamp: None, checked: Instant::now(), protection, key, entries: BTreeMap::new() })
    }

    #[cfg(unix)]
    fn stamp(&self) -> Result<Option<Stamp>, SecretStoreError> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(&self.path) {
            Ok(meta) => {
                Ok(Some(Stamp { inode: meta.ino(), len: meta.len(), mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()) }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(io("read", &self.path, source)),
        }
    }

    /// Windows: the file index stands for the inode (a replacing rename gives
    /// a new one), read through a handle opened for it (std opens with every
    /// share mode, so a writer's rename is not held up).
    #[cfg(windows)]
    fn stamp(&self) -> Result<Option<Stamp>, SecretStoreError> {
        use std::os::windows::fs::MetadataExt;
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io("read", &self.path, source)),
        };
        let read = || -> std::io::Result<Stamp> {
            let meta = file.metadata()?;
            // FILETIME counts 100 ns.
            Ok(Stamp { inode: crate::platform::windows::file_id(&file)?, len: meta.len(), mtime_ns: i128::from(meta.last_write_time()) * 100 })
        };
        read().map(Some).map_err(|source| io("read", &self.path, source))
    }

    /// Reads and decrypts the file. `previous` lets a reload reuse a derived key
    /// when the key-derivation parameters did not change (Argon2id is slow on purpose).
    fn load(&self, previous: Option<Loaded>, writers: Writers) -> Result<Loaded, SecretStoreError> {
        let (stamp, file) = self.read_file()?.ok_or_else(|| io("read", &self.path, std::io::ErrorKind::NotFound.into()))?;
        if let Some(prev) = previous
            && prev.protection == file.key
        {
            match self.decrypt(stamp, file.clone(), prev.key) {
                // The store was made again, or its key imported: ask for the key.
                Err(SecretStoreError::WrongPassword { .. }) => {}
                other => return other,
            }
        }
        let keys = key::obtain(&self.path, &file.key, self.password.as_ref().map(|p| p.expose_secret()), false)?;
        // Two keys: the keychain's copies disagree. The one that opens the
        // store is written to both; until then neither was overwritten.
        let disagree = keys.len() > 1;
        let mut refused = None;
        for key in keys {
            match self.decrypt(stamp, file.clone(), key.clone()) {
                Ok(loaded) => {
                    if disagree {
                        self.repair_keychain(stamp, &key, writers);
                    }
                    return Ok(loaded);
                }
                Err(wrong @ SecretStoreError::WrongPassword { .. }) => refused = Some(wrong),
                Err(other) => return Err(other),
            }
        }
        Err(refused.expect("`obtain` gives at least one key"))
    }

    /// Writes `key`, which opened the store as it was at `stamp`, to both
    /// keychain copies. Only under the writers' lock and only if the file is
    /// still that one: a writer (`secrets migrate`, a key import) may have
    /// replaced the store and its key since it was read, and an old key
    /// written back over the new one would lose the store. A reader only
    /// tries the lock: while another writer holds it, the repair waits for a
    /// later read (or the next process's first).
    fn repair_keychain(&self, stamp: Option<Stamp>, key: &Key, writers: Writers) {
        let store = self.path.display();
        // Held for the rest of this function when taken here.
        let _lock = match writers {
            Writers::Held => None,
            Writers::NotHeld => match self.try_lock_writers() {
                Ok(Some(lock)) => Some(lock),
                Ok(None) => {
                    tracing::info!(store = %store, "a writer holds the store; the keychain copies are corrected on a later read");
                    return;
                }
                Err(error) => {
                    tracing::warn!(store = %store, %error, "could not correct the keychain copy that does not open the store");
                    return;
                }
            },
        };
        if !matches!(self.stamp(), Ok(now) if now == stamp) {
            return;
        }
        match keychain::save(&self.path, key) {
            Ok(()) => tracing::warn!(store = %store, "kept the keychain copy of the secret-store key that opens the store, in both places"),
            Err(error) => tracing::warn!(store = %store, %error, "could not correct the keychain copy that does not open the store"),
        }
    }

    /// The file's stamp and parsed form, `None` when there is no file.
    fn read_file(&self) -> Result<Option<(Option<Stamp>, StoreFile)>, SecretStoreError> {
        let stamp = self.stamp()?;
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io("read", &self.path, source)),
        };
        let corrupt = |why: String| SecretStoreError::Corrupt { path: self.path.clone(), why };
        let file: StoreFile = serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        if file.format != FORMAT || file.version != VERSION {
            return Err(corrupt(format!("unsupported format {:?} version {}", file.format, file.version)));
        }
        Ok(Some((stamp, file)))
    }

    fn decrypt(&self, stamp: Option<Stamp>, file: StoreFile, key: Key) -> Result<Loaded, SecretStoreError> {
        let corrupt = |why: String| SecretStoreError::Corrupt { path: self.path.clone(), why };
        let nonce = B64.decode(&file.nonce).map_err(|_| corrupt("the nonce is not base64".into()))?;
        let ciphertext = B64.decode(&file.ciphertext).map_err(|_| corrupt("the ciphertext is not base64".into()))?;
        if nonce.len() != 12 {
            return Err(corrupt("the nonce is not 12 bytes".into()));
        }
        let cipher = Aes256Gcm::new_from_slice(key.as_ref()).expect("32-byte key");
        let aad = file.associated_data();
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: &aad })
                .map_err(|_| SecretStoreError::WrongPassword { path: self.path.clone() })?,
        );
        let entries: BTreeMap<String, String> = serde_json::from_slice(&plaintext).map_err(|_| corrupt("the decrypted entries are not valid".into()))?;
        let entries = entries.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect();
        Ok(Loaded { stamp, checked: Instant::now(), protection: file.key, key, entries })
    }

    fn write(&self, loaded: &Loaded) -> Result<(), SecretStoreError> {
        let plain: BTreeMap<&str, &str> = loaded.entries.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
        let plaintext = Zeroizing::new(serde_json::to_vec(&plain).expect("entries serialise"));
        let nonce: [u8; 12] = rand::random();
        let mut file =
            StoreFile { format: FORMAT.into(), version: VERSION, key: loaded.protection.clone(), nonce: B64.encode(nonce), ciphertext: String::new() };
        let aad = file.associated_data();
        let cipher = Aes256Gcm::new_from_slice(loaded.key.as_ref()).expect("32-byte key");
        let ciphertext =
            cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &aad }).expect("AES-GCM encryption of an in-memory buffer does not fail");
        file.ciphertext = B64.encode(ciphertext);
        let bytes = serde_json::to_vec_pretty(&file).expect("store file serialises");
        write_atomically(&self.path, &bytes)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SecretStoreError> {
    crate::home::write_private_atomically(path, bytes).map_err(|source| io("write", path, source))
}

fn check_name(name: &str) -> Result<(), SecretStoreError> {
    let ok = !name.is_empty() && name.len() <= 200 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b":._-/".contains(&b));
    if ok { Ok(()) } else { Err(SecretStoreError::InvalidName(name.to_owned())) }
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> SecretStoreError {
    SecretStoreError::Io { action, path: path.to_owned(), source }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
