//! The memory backend: one map under one lock, so every operation is atomic.
//!
//! Expired entries are invisible at once and removed when touched, or all
//! together when the store is full. The store is bounded (entries and bytes):
//! when it is full of live entries a write is refused as `unavailable`, rather
//! than growing without end or dropping live one-time values.

use super::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the memory store may hold.
#[derive(Debug, Clone, Copy)]
pub struct MemoryLimits {
    pub entries: usize,
    /// Keys, values and [`ENTRY_OVERHEAD`] per entry.
    pub bytes: usize,
}

impl Default for MemoryLimits {
    /// 200,000 entries and 128 MiB: for one gateway's clients, codes,
    /// refresh-token families and sealed sessions, with room to spare.
    fn default() -> Self {
        MemoryLimits { entries: 200_000, bytes: 128 * 1024 * 1024 }
    }
}

/// What an entry costs besides its key and value (the map's slot, the
/// allocations' headers), so a flood of tiny entries is bounded too.
pub const ENTRY_OVERHEAD: usize = 64;

/// How often a full store may look for expired entries to drop: a sweep is
/// O(entries), and a flood of writes to a full store must not make each one pay it.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

pub struct MemoryStore {
    limits: MemoryLimits,
    inner: Mutex<Inner>,
    now: Clock,
}

struct Inner {
    map: HashMap<String, Entry>,
    bytes: usize,
    /// When a full store may sweep again.
    next_sweep: Instant,
}

struct Entry {
    value: Vec<u8>,
    expires: Instant,
}

fn cost(key: &str, value: &[u8]) -> usize {
    key.len() + value.len() + ENTRY_OVERHEAD
}

impl MemoryStore {
    pub fn new(limits: MemoryLimits) -> MemoryStore {
        Self::with_clock(limits, Arc::new(Instant::now))
    }

    /// A store that reads the time from `now` (tests move it forward).
    pub fn with_clock(limits: MemoryLimits, now: Clock) -> MemoryStore {
        let start = now();
        MemoryStore { limits, inner: Mutex::new(Inner { map: HashMap::new(), bytes: 0, next_sweep: start }), now }
    }

    fn lock(&self) -> (std::sync::MutexGuard<'_, Inner>, Instant) {
        // A panic elsewhere while holding the lock leaves the map consistent
        // (every change is one insert or remove), so the lock is taken anyway.
        (self.inner.lock().unwrap_or_else(|p| p.into_inner()), (self.now)())
    }

    /// How many entries it holds, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.lock().0.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (mut inner, now) = self.lock();
        Ok(inner.live(key, now).map(|e| e.value.clone()))
    }

    pub fn put(&self, key: &str, value: &[u8], ttl: u32) -> Result<(), StoreError> {
        let (mut inner, now) = self.lock();
        inner.insert(&self.limits, key, value.to_vec(), expiry(now, ttl), now)
    }

    pub fn put_new(&self, key: &str, value: &[u8], ttl: u32) -> Result<bool, StoreError> {
        let (mut inner, now) = self.lock();
        if inner.live(key, now).is_some() {
            return Ok(false);
        }
        inner.insert(&self.limits, key, value.to_vec(), expiry(now, ttl), now).map(|()| true)
    }

    pub fn swap(&self, key: &str, expected: &[u8], value: &[u8], ttl: u32) -> Result<bool, StoreError> {
        let (mut inner, now) = self.lock();
        if inner.live(key, now).is_none_or(|e| e.value != expected) {
            return Ok(false);
        }
        inner.insert(&self.limits, key, value.to_vec(), expiry(now, ttl), now).map(|()| true)
    }

    /// The live keys that start with `prefix` (operators' listings, never a component's).
    pub fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (inner, now) = self.lock();
        Ok(inner.map.iter().filter(|(key, entry)| key.starts_with(prefix) && entry.expires > now).map(|(key, _)| key.clone()).collect())
    }

    pub fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (mut inner, now) = self.lock();
        if inner.live(key, now).is_none() {
            return Ok(None);
        }
        Ok(inner.remove(key).map(|e| e.value))
    }

    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.lock().0.remove(key);
        Ok(())
    }

    /// Redis's `INCR` with an expiry set on the first count: the window is
    /// fixed from the first count, and later counts do not extend it.
    pub fn count(&self, key: &str, window: u32) -> Result<u64, StoreError> {
        let (mut inner, now) = self.lock();
        let (count, expires) = match inner.live(key, now) {
            None => (1, expiry(now, window)),
            Some(entry) => {
                let count = std::str::from_utf8(&entry.value).ok().and_then(|s| s.parse::<u64>().ok());
                let count = count.ok_or_else(|| StoreError::Unavailable("the key holds a value that is not a counter".into()))?;
                (count.saturating_add(1), entry.expires)
            }
        };
        // As Redis stores it: the decimal digits.
        inner.insert(&self.limits, key, count.to_string().into_bytes(), expires, now).map(|()| count)
    }
}

fn expiry(now: Instant, ttl: u32) -> Instant {
    now + Duration::from_secs(u64::from(ttl))
}

impl Inner {
    /// The entry under `key` if it has not expired; an expired one is dropped.
    fn live(&mut self, key: &str, now: Instant) -> Option<&Entry> {
        if self.map.get(key).is_some_and(|e| e.expires <= now) {
            self.remove(key);
        }
        self.map.get(key)
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        self.bytes -= cost(key, &entry.value);
        Some(entry)
    }

    /// Sets `key` (replacing what it held), within the limits: when the store
    /// would be over them, expired entries are dropped first, and if it still
    /// would be, the write is refused and the store is unchanged.
    fn insert(&mut self, limits: &MemoryLimits, key: &str, value: Vec<u8>, expires: Instant, now: Instant) -> Result<(), StoreError> {
        let added = cost(key, &value);
        if !self.fits(limits, key, added) && now >= self.next_sweep {
            self.next_sweep = now + SWEEP_EVERY;
            let before = self.map.len();
            self.map.retain(|_, e| e.expires > now);
            self.bytes = self.map.iter().map(|(k, e)| cost(k, &e.value)).sum();
            tracing::debug!(dropped = before - self.map.len(), "the memory store swept its expired entries");
        }
        if !self.fits(limits, key, added) {
            return Err(StoreError::Unavailable(format!(
                "the memory store is full ({} entries or {} MiB): a Redis store holds more",
                limits.entries,
                limits.bytes / (1024 * 1024)
            )));
        }
        self.remove(key);
        self.bytes += added;
        self.map.insert(key.to_owned(), Entry { value, expires });
        Ok(())
    }

    /// Whether an entry of `added` bytes under `key` (replacing what it holds) stays within the limits.
    fn fits(&self, limits: &MemoryLimits, key: &str, added: usize) -> bool {
        let replaced = self.map.get(key).map(|e| cost(key, &e.value));
        let entries = self.map.len() + usize::from(replaced.is_none());
        entries <= limits.entries && self.bytes - replaced.unwrap_or(0) + added <= limits.bytes
    }
}
