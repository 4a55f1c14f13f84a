//! The `cache` import: a key-value cache with expiry, one namespace per component use.

use super::HostState;
use crate::runtime::bindings::host::portcullis::auth::cache::Host;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest value kept; bigger ones are not stored (and logged).
const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Entries across all namespaces; when full, expired entries are swept and then new keys are refused.
const MAX_ENTRIES: usize = 100_000;
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// (namespace, key) → (value, expiry).
type Entries = HashMap<(Arc<str>, String), (Arc<[u8]>, Instant)>;

#[derive(Default)]
pub struct SharedCache {
    entries: Mutex<Entries>,
}

impl SharedCache {
    fn get(&self, namespace: &Arc<str>, key: &str) -> Option<Arc<[u8]>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // A tuple key cannot be borrowed from (&str, &str); the String allocation is small.
        let (value, expires) = entries.get(&(namespace.clone(), key.to_owned()))?;
        (Instant::now() < *expires).then(|| value.clone())
    }

    fn set(&self, namespace: &Arc<str>, key: String, value: Vec<u8>, ttl: Duration) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        let id = (namespace.clone(), key);
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&id) {
            return false;
        }
        entries.insert(id, (value.into(), now + ttl.min(MAX_TTL)));
        true
    }

    fn delete(&self, namespace: &Arc<str>, key: String) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(&(namespace.clone(), key));
    }
}

/// One component use's view of the cache.
pub struct CacheSpace {
    namespace: Arc<str>,
    cache: Arc<SharedCache>,
}

impl CacheSpace {
    pub fn new(namespace: String, cache: Arc<SharedCache>) -> Self {
        CacheSpace { namespace: namespace.into(), cache }
    }
}

impl Host for HostState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        let space = &self.caps.cache;
        space.cache.get(&space.namespace, &key).map(|v| v.to_vec())
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_seconds: u32) -> bool {
        let caps = &self.caps;
        if value.len() > MAX_VALUE_BYTES {
            tracing::warn!(workload = %caps.label.workload, component = %caps.label.component, bytes = value.len(),
                "cache value over 1 MiB not stored");
            return false;
        }
        let stored = caps.cache.cache.set(&caps.cache.namespace, key, value, Duration::from_secs(ttl_seconds.into()));
        if !stored {
            tracing::warn!(workload = %caps.label.workload, component = %caps.label.component, "cache full; value not stored");
        }
        stored
    }

    fn delete(&mut self, key: String) {
        let space = &self.caps.cache;
        space.cache.delete(&space.namespace, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_expiry() {
        let cache = SharedCache::default();
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        cache.set(&a, "k".into(), b"1".to_vec(), Duration::from_secs(60));
        assert_eq!(cache.get(&a, "k").as_deref(), Some(&b"1"[..]));
        assert!(cache.get(&b, "k").is_none());
        cache.set(&a, "gone".into(), b"x".to_vec(), Duration::ZERO);
        assert!(cache.get(&a, "gone").is_none());
        cache.delete(&a, "k".into());
        assert!(cache.get(&a, "k").is_none());
    }
}
