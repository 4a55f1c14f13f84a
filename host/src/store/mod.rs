//! The key-value store behind the `store` import: one per process, in memory
//! (the default) or in Redis/Valkey (`[store]` in the policy), shared by every
//! component granted `grants.store`, each in its own [`Namespace`].
//!
//! Every operation is atomic where it runs: under one lock in memory, as one
//! command or one Lua script on the Redis server. So a one-time value (an
//! authorization code, a rotated refresh token) is taken by exactly one caller
//! even across gateway replicas sharing a Redis.
//!
//! Errors say what failed, never a stored value or a credential.

mod memory;
mod redis;
mod settings;

pub use memory::{MemoryLimits, MemoryStore};
pub use redis::{RedisCredentials, RedisStore};
pub use settings::{Backend, SettingsProblem, StoreBackend, StoreFile, StoreSettings};

use crate::secrets::{ExposeSecret, SecretStore};
use prometheus_client::metrics::counter::Counter;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest key a component may use, in bytes (before the namespace is added).
pub const MAX_KEY_BYTES: usize = 1024;
/// The largest value a component may store, in bytes.
pub const MAX_VALUE_BYTES: usize = 256 * 1024;
/// The longest lifetime of a value or counter window: longer asks are cut to it.
pub const MAX_TTL_SECONDS: u32 = 90 * 24 * 3600;
/// How long one operation may take on a remote store before it is `unavailable`.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an operation did not happen (the WIT `store-error`, less `not-granted`,
/// which the capability answers itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend is unreachable, full or failed: the message says why, never with a value.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The key or the value is over [`MAX_KEY_BYTES`] or [`MAX_VALUE_BYTES`].
    #[error("the key or value is too large")]
    TooLarge,
}

/// A lifetime in seconds as the store uses it: at least 1, at most [`MAX_TTL_SECONDS`].
pub fn ttl(seconds: u32) -> u32 {
    seconds.clamp(1, MAX_TTL_SECONDS)
}

/// A store backend. Keys are full keys (namespace included); sizes and
/// lifetimes are already checked by the [`Namespace`].
pub enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
}

macro_rules! on_backend {
    ($self:ident . $op:ident ( $($arg:expr),* )) => {
        match $self {
            Store::Memory(store) => store.$op($($arg),*),
            Store::Redis(store) => store.$op($($arg),*).await,
        }
    };
}

impl Store {
    /// A memory store with the default limits.
    pub fn memory() -> Store {
        Store::Memory(MemoryStore::new(MemoryLimits::default()))
    }

    /// The backend's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        on_backend!(self.get(key))
    }

    pub async fn put(&self, key: &str, value: &[u8], ttl: u32) -> Result<(), StoreError> {
        on_backend!(self.put(key, value, ttl))
    }

    pub async fn put_new(&self, key: &str, value: &[u8], ttl: u32) -> Result<bool, StoreError> {
        on_backend!(self.put_new(key, value, ttl))
    }

    pub async fn swap(&self, key: &str, expected: &[u8], value: &[u8], ttl: u32) -> Result<bool, StoreError> {
        on_backend!(self.swap(key, expected, value, ttl))
    }

    pub async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        on_backend!(self.take(key))
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        on_backend!(self.delete(key))
    }

    pub async fn count(&self, key: &str, window: u32) -> Result<u64, StoreError> {
        on_backend!(self.count(key, window))
    }

    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        on_backend!(self.keys(prefix))
    }
}

/// One component's part of the store: `{prefix}:{workload}:{component}:`
/// before every key it uses, so two components (or one component in two
/// workloads) never see each other's keys. Checks sizes and clamps lifetimes.
#[derive(Clone)]
pub struct Namespace {
    store: Arc<Store>,
    /// The full-key prefix, ending in `:`.
    prefix: Arc<str>,
    /// Operations answered `unavailable`, shared by every namespace of a [`Stores`].
    unavailable: Counter,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace").field("backend", &self.store.kind()).field("prefix", &self.prefix).finish()
    }
}

impl Namespace {
    /// The namespace of `component` in `workload` under the policy's `prefix`.
    /// The workload and component names are escaped (`:` as `%3A`, `%` as
    /// `%25`), so a component named `builtin` cannot reach into
    /// `builtin:oauth-server`'s keys: `builtin:oauth-server` becomes
    /// `builtin%3Aoauth-server`.
    pub fn new(store: Arc<Store>, prefix: &str, workload: &str, component: &str) -> Namespace {
        let prefix = format!("{prefix}:{}:{}:", escape(workload), escape(component));
        Namespace { store, prefix: prefix.into(), unavailable: Counter::default() }
    }

    /// Counts an operation answered `unavailable` (the backend unreachable,
    /// failing, or too slow for the call's deadline).
    pub fn count_unavailable(&self) {
        self.unavailable.inc();
    }

    /// The full key of `key`, or `too-large`.
    fn key(&self, key: &str) -> Result<String, StoreError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(StoreError::TooLarge);
        }
        Ok(format!("{}{key}", self.prefix))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(&self.key(key)?).await
    }

    pub async fn put(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<(), StoreError> {
        let key = self.key(key)?;
        check_value(value)?;
        self.store.put(&key, value, ttl(ttl_seconds)).await
    }

    pub async fn put_new(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<bool, StoreError> {
        let key = self.key(key)?;
        check_value(value)?;
        self.store.put_new(&key, value, ttl(ttl_seconds)).await
    }

    pub async fn swap(&self, key: &str, expected: &[u8], value: &[u8], ttl_seconds: u32) -> Result<bool, StoreError> {
        let key = self.key(key)?;
        check_value(value)?;
        // Nothing larger can be stored, so nothing larger can match.
        if expected.len() > MAX_VALUE_BYTES {
            return Ok(false);
        }
        self.store.swap(&key, expected, value, ttl(ttl_seconds)).await
    }

    pub async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.take(&self.key(key)?).await
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.store.delete(&self.key(key)?).await
    }

    pub async fn count(&self, key: &str, window_seconds: u32) -> Result<u64, StoreError> {
        self.store.count(&self.key(key)?, ttl(window_seconds)).await
    }

    /// The keys of this namespace that start with `prefix`, without the
    /// namespace: for an operator's command (`portcullis sessions`); the
    /// `store` import offers no listing to components.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let keys = self.store.keys(&self.key(prefix)?).await?;
        Ok(keys.into_iter().filter_map(|key| key.strip_prefix(&*self.prefix).map(str::to_owned)).collect())
    }
}

fn check_value(value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES { Err(StoreError::TooLarge) } else { Ok(()) }
}

/// `:` and `%` percent-encoded, so a name is one unambiguous segment of a key.
fn escape(name: &str) -> String {
    name.replace('%', "%25").replace(':', "%3A")
}

/// The process's store, as the last policy loaded configures it.
///
/// A reload whose `[store]` backend is the same (and, for Redis, whose
/// credentials in the secret store are the same) keeps the store: the memory
/// store keeps its contents, the Redis connection stays open. A changed one
/// opens a new store; the previous snapshot keeps the old one until its last
/// request ends. During `portcullis check` the store is always a fresh memory
/// store: nothing is reached and nothing is left behind.
pub struct Stores {
    check: bool,
    current: Mutex<Option<Current>>,
    /// `portcullis_store_unavailable_total`: every namespace's operations answered `unavailable`.
    unavailable: Counter,
}

struct Current {
    backend: Backend,
    /// A digest of the Redis credentials read from the secret store (a
    /// changed password reconnects), never the credentials themselves.
    credentials: [u8; 32],
    prefix: String,
    store: Arc<Store>,
}

/// Why the store the policy names could not be opened, with the `[store]` key at fault.
#[derive(Debug)]
pub struct OpenError {
    pub field: &'static str,
    pub message: String,
}

impl Stores {
    /// `check`: `portcullis check`, which gets memory stores only.
    pub fn new(check: bool) -> Stores {
        Stores { check, current: Mutex::new(None), unavailable: Counter::default() }
    }

    /// The count of operations answered `unavailable`, for the metrics.
    pub fn unavailable(&self) -> &Counter {
        &self.unavailable
    }

    /// Opens the store `settings` name (or keeps the current one when it is
    /// the same), reading Redis credentials from `secrets`. Redis connects
    /// lazily: an unreachable server makes operations `unavailable`, not the
    /// policy invalid.
    pub fn open(&self, settings: &StoreSettings, secrets: &SecretStore) -> Result<Arc<Store>, OpenError> {
        let backend = if self.check { Backend::Memory } else { settings.backend.clone() };
        let credentials = match &backend {
            Backend::Memory => None,
            Backend::Redis { username_secret, password_secret, .. } => {
                let read = |field, name: &Option<String>| -> Result<Option<String>, OpenError> {
                    let Some(name) = name else { return Ok(None) };
                    match secrets.get(name) {
                        Ok(Some(value)) => Ok(Some(value.expose_secret().to_owned())),
                        Ok(None) => Err(OpenError { field, message: format!("the secret store has no secret named {name:?}") }),
                        Err(e) => Err(OpenError { field, message: format!("cannot read the secret {name:?}: {e}") }),
                    }
                };
                Some(RedisCredentials { username: read("username_secret", username_secret)?, password: read("password_secret", password_secret)? })
            }
        };
        let digest = credentials.as_ref().map(RedisCredentials::digest).unwrap_or_default();
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(same) = current.as_mut().filter(|c| c.backend == backend && c.credentials == digest) {
            same.prefix = settings.prefix.clone();
            return Ok(same.store.clone());
        }
        let store = match &backend {
            Backend::Memory => Store::memory(),
            Backend::Redis { url, .. } => {
                Store::Redis(RedisStore::connect(url, credentials.unwrap_or_default()).map_err(|message| OpenError { field: "url", message })?)
            }
        };
        if let Some(previous) = current.as_ref() {
            tracing::info!(from = previous.store.kind(), to = store.kind(), "the policy changed the store: a new one is opened");
        }
        let store = Arc::new(store);
        *current = Some(Current { backend, credentials: digest, prefix: settings.prefix.clone(), store: store.clone() });
        Ok(store)
    }

    /// The namespace of `component` in `workload` in the current store (a
    /// memory store when no policy opened one: `plugin test`, tests).
    pub fn namespace(&self, workload: &str, component: &str) -> Namespace {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let current = current.get_or_insert_with(|| Current {
            backend: Backend::Memory,
            credentials: [0; 32],
            prefix: settings::DEFAULT_PREFIX.into(),
            store: Arc::new(Store::memory()),
        });
        Namespace { unavailable: self.unavailable.clone(), ..Namespace::new(current.store.clone(), &current.prefix, workload, component) }
    }
}

#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod settings_tests;
