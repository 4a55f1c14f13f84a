//! The `cache` import: a key-value cache with expiry, one namespace per chain entry.
//!
//! Each namespace (one component in one chain position of one workload) has its
//! own [`Quota`] of bytes and entries, set by the policy's `limits.cache_mib` and
//! `limits.cache_entries`. A write that would go over the quota first drops the
//! namespace's expired entries, then its least recently used ones — never
//! another namespace's, so one component cannot exhaust the host's memory or
//! push out everyone else's entries. Every operation is O(log n) in the
//! namespace's entries: no call scans the cache.
//!
//! Namespaces outlive policy reloads (their entries stay warm);
//! [`SharedCache::retain_namespaces`] drops those of entries that are gone.

use super::HostState;
use crate::runtime::bindings::host::portcullis::auth::cache::Host;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest value kept; bigger ones are not stored (and logged). A value must
/// also fit in its namespace's byte quota.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Longest key kept: keys name things (`jwks:<issuer>`), they are not data.
pub const MAX_KEY_BYTES: usize = 1024;
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// `limits.cache_mib` when the policy does not set it, and its range.
pub const DEFAULT_CACHE_MIB: u32 = 8;
pub const MAX_CACHE_MIB: u32 = 1024;
/// `limits.cache_entries` when the policy does not set it, and its range.
pub const DEFAULT_CACHE_ENTRIES: u32 = 10_000;
pub const MAX_CACHE_ENTRIES: u32 = 1_000_000;

/// What one namespace may hold. Bytes count keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub bytes: usize,
    pub entries: usize,
}

impl Quota {
    pub fn new(mib: u32, entries: u32) -> Self {
        Quota { bytes: mib as usize * 1024 * 1024, entries: entries as usize }
    }
}

impl Default for Quota {
    fn default() -> Self {
        Quota::new(DEFAULT_CACHE_MIB, DEFAULT_CACHE_ENTRIES)
    }
}

/// Why a value was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotStored {
    #[error("the key is longer than {MAX_KEY_BYTES} bytes")]
    KeyTooLong,
    #[error("the value is larger than {MAX_VALUE_BYTES} bytes or than this component's cache quota")]
    TooLarge,
}

/// Every namespace's entries. The map is locked only to find or drop a
/// namespace; each namespace has its own lock, so components do not contend.
#[derive(Default)]
pub struct SharedCache {
    spaces: Mutex<HashMap<Arc<str>, Arc<Mutex<Space>>>>,
}

impl SharedCache {
    /// The namespace `name`, created empty the first time.
    fn space(&self, name: &str) -> Arc<Mutex<Space>> {
        let mut spaces = self.spaces.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(space) = spaces.get(name) {
            return space.clone();
        }
        let space = Arc::new(Mutex::new(Space::default()));
        spaces.insert(name.into(), space.clone());
        space
    }

    /// Drops every namespace for which `keep` is false, with its entries. A
    /// component instance still holding a dropped namespace keeps using it
    /// (within its quota) until the instance goes; new instances start empty.
    pub fn retain_namespaces(&self, mut keep: impl FnMut(&str) -> bool) {
        self.spaces.lock().unwrap_or_else(|p| p.into_inner()).retain(|name, _| keep(name));
    }

    /// The names of the namespaces in the cache, in no order.
    pub fn namespaces(&self) -> Vec<String> {
        self.spaces.lock().unwrap_or_else(|p| p.into_inner()).keys().map(|n| n.to_string()).collect()
    }

    /// Each namespace's use so far and its entries and bytes, in no order
    /// (for the metrics). Each namespace is locked on its own, briefly.
    fn usage(&self) -> Vec<(Arc<str>, Usage, usize, usize)> {
        let spaces: Vec<_> = self.spaces.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(n, s)| (n.clone(), s.clone())).collect();
        spaces
            .into_iter()
            .map(|(name, space)| {
                let space = space.lock().unwrap_or_else(|p| p.into_inner());
                (name, space.usage, space.entries.len(), space.bytes)
            })
            .collect()
    }
}

/// One namespace's use: what it holds, and how its reads and writes went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Usage {
    /// Reads that found a live value.
    hits: u64,
    /// Reads that found nothing, or an expired value.
    misses: u64,
    /// Live entries dropped to make room for a write (the quota is full).
    evictions: u64,
}

/// One namespace: the entries, and two orders over them (by expiry, and by
/// last use) so that eviction finds its victim without a scan.
#[derive(Default)]
struct Space {
    entries: HashMap<Arc<str>, Entry>,
    /// (expiry, key) of every entry: the first ones are the next to expire.
    by_expiry: BTreeSet<(Instant, Arc<str>)>,
    /// Last-use stamp → key: the first one is the least recently used.
    by_use: BTreeMap<u64, Arc<str>>,
    next_stamp: u64,
    /// Keys and values of every entry.
    bytes: usize,
    usage: Usage,
}

struct Entry {
    value: Arc<[u8]>,
    expires: Instant,
    stamp: u64,
}

impl Space {
    fn stamp(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }

    fn get(&mut self, key: &str, now: Instant) -> Option<Arc<[u8]>> {
        let Some(entry) = self.entries.get(key) else {
            self.usage.misses += 1;
            return None;
        };
        if entry.expires <= now {
            self.remove(key);
            self.usage.misses += 1;
            return None;
        }
        self.usage.hits += 1;
        let (old, value) = (entry.stamp, entry.value.clone());
        let stamp = self.stamp();
        let key = self.by_use.remove(&old).expect("every entry has a use stamp");
        self.by_use.insert(stamp, key.clone());
        self.entries.get_mut(&*key).expect("looked up above").stamp = stamp;
        Some(value)
    }

    fn set(&mut self, key: &str, value: Vec<u8>, ttl: Duration, quota: Quota, now: Instant) -> Result<(), NotStored> {
        if key.len() > MAX_KEY_BYTES {
            return Err(NotStored::KeyTooLong);
        }
        // The old value goes even if the new one is not kept (too large, `ttl`
        // 0): the component no longer wants it.
        self.remove(key);
        let size = key.len() + value.len();
        if value.len() > MAX_VALUE_BYTES || size > quota.bytes {
            return Err(NotStored::TooLarge);
        }
        let ttl = ttl.min(MAX_TTL);
        if ttl.is_zero() || quota.entries == 0 {
            return Ok(());
        }
        self.drop_expired(now);
        while self.entries.len() >= quota.entries || self.bytes + size > quota.bytes {
            let Some((_, lru)) = self.by_use.pop_first() else { break };
            self.remove(&lru);
            self.usage.evictions += 1;
        }
        let key: Arc<str> = key.into();
        let stamp = self.stamp();
        let expires = now + ttl;
        self.by_expiry.insert((expires, key.clone()));
        self.by_use.insert(stamp, key.clone());
        self.entries.insert(key, Entry { value: value.into(), expires, stamp });
        self.bytes += size;
        Ok(())
    }

    /// Removes the entries that expired by `now`.
    fn drop_expired(&mut self, now: Instant) {
        while let Some((expires, key)) = self.by_expiry.first().cloned() {
            if expires > now {
                break;
            }
            self.remove(&key);
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some((key, entry)) = self.entries.remove_entry(key) {
            self.by_expiry.remove(&(entry.expires, key.clone()));
            self.by_use.remove(&entry.stamp);
            self.bytes -= key.len() + entry.value.len();
        }
    }
}

/// One chain entry's view of the cache: its namespace and its quota.
pub struct CacheSpace {
    namespace: String,
    space: Arc<Mutex<Space>>,
    quota: Quota,
}

impl CacheSpace {
    pub fn new(namespace: &str, quota: Quota, cache: &SharedCache) -> Self {
        CacheSpace { namespace: namespace.to_owned(), space: cache.space(namespace), quota }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Space> {
        self.space.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        self.lock().get(key, Instant::now())
    }

    fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), NotStored> {
        self.lock().set(key, value, ttl, self.quota, Instant::now())
    }

    fn delete(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// Every namespace's use on each metrics scrape, labelled by its chain entry
/// (the parts of `workload/position/component`, names from the policy):
/// `cache_hits_total`, `cache_misses_total`, `cache_evictions_total`,
/// `cache_entries`, `cache_bytes`. Components keep JWKS, discovery documents
/// and verified tokens here: this is the gateway's token cache.
pub struct CacheMetrics(pub Arc<SharedCache>);

impl std::fmt::Debug for CacheMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheMetrics")
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct CacheLabels {
    workload: String,
    position: String,
    component: String,
}

impl prometheus_client::collector::Collector for CacheMetrics {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::MetricType::{Counter, Gauge};
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        // Each namespace's labels and values, in the order of `METRICS`.
        let mut spaces: Vec<(CacheLabels, [u64; 5])> = Vec::new();
        for (name, usage, entries, bytes) in self.0.usage() {
            let mut parts = name.splitn(3, '/');
            let labels = match (parts.next(), parts.next(), parts.next()) {
                (Some(w), Some(p), Some(c)) => CacheLabels { workload: w.to_owned(), position: p.to_owned(), component: c.to_owned() },
                _ => CacheLabels { workload: name.to_string(), position: String::new(), component: String::new() },
            };
            spaces.push((labels, [usage.hits, usage.misses, usage.evictions, entries as u64, bytes as u64]));
        }
        const METRICS: [(&str, &str, prometheus_client::metrics::MetricType); 5] = [
            ("cache_hits", "Reads of the components' cache that found a live value", Counter),
            ("cache_misses", "Reads of the components' cache that found nothing or an expired value", Counter),
            ("cache_evictions", "Live cache entries dropped to make room (the namespace's quota is full)", Counter),
            ("cache_entries", "Entries in the components' cache", Gauge),
            ("cache_bytes", "Bytes of keys and values in the components' cache", Gauge),
        ];
        for (i, (name, help, kind)) in METRICS.into_iter().enumerate() {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for (labels, values) in &spaces {
                let metric = family.encode_family(labels)?;
                match kind {
                    Counter => ConstCounter::new(values[i]).encode(metric)?,
                    _ => ConstGauge::new(values[i] as i64).encode(metric)?,
                }
            }
        }
        Ok(())
    }
}

use super::trial::HostCall;

impl Host for HostState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        let value = self.caps.cache.get(&key).map(|v| v.to_vec());
        if let Some(trial) = &self.caps.trial {
            trial.record(HostCall::CacheGet { key, hit: value.is_some() });
        }
        value
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_seconds: u32) -> bool {
        let caps = &self.caps;
        let bytes = value.len();
        let stored = match caps.cache.set(&key, value, Duration::from_secs(ttl_seconds.into())) {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(bytes, key_bytes = key.len(),
                    reason = %why, "cache value not stored");
                false
            }
        };
        if let Some(trial) = &caps.trial {
            trial.record(HostCall::CacheSet { key, bytes, ttl_seconds, stored });
        }
        stored
    }

    fn delete(&mut self, key: String) {
        self.caps.cache.delete(&key);
        if let Some(trial) = &self.caps.trial {
            trial.record(HostCall::CacheDelete { key });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn space(cache: &SharedCache, name: &str, bytes: usize, entries: usize) -> CacheSpace {
        CacheSpace::new(name, Quota { bytes, entries }, cache)
    }

    fn usage(space: &CacheSpace) -> (usize, usize) {
        let s = space.lock();
        (s.entries.len(), s.bytes)
    }

    #[test]
    fn namespaces_and_expiry() {
        let cache = SharedCache::default();
        let a = CacheSpace::new("a", Quota::default(), &cache);
        let b = CacheSpace::new("b", Quota::default(), &cache);
        a.set("k", b"1".to_vec(), MINUTE).unwrap();
        assert_eq!(a.get("k").as_deref(), Some(&b"1"[..]));
        assert!(b.get("k").is_none());
        a.set("gone", b"x".to_vec(), Duration::ZERO).unwrap();
        assert!(a.get("gone").is_none());
        a.delete("k");
        assert!(a.get("k").is_none());
        assert_eq!(usage(&a), (0, 0));
    }

    #[test]
    fn a_namespace_over_its_entry_quota_evicts_its_own_lru_entries() {
        let cache = SharedCache::default();
        let other = space(&cache, "other", 1 << 20, 3);
        for k in ["x", "y", "z"] {
            other.set(k, b"kept".to_vec(), MINUTE).unwrap();
        }
        let noisy = space(&cache, "noisy", 1 << 20, 3);
        for k in ["a", "b", "c"] {
            noisy.set(k, b"v".to_vec(), MINUTE).unwrap();
        }
        assert!(noisy.get("a").is_some(), "`a` is now the most recently used");
        for n in 0..100 {
            noisy.set(&format!("flood{n}"), b"v".to_vec(), MINUTE).unwrap();
            assert!(usage(&noisy).0 <= 3);
        }
        assert!(noisy.get("flood99").is_some() && noisy.get("flood98").is_some() && noisy.get("flood97").is_some());
        assert!(noisy.get("a").is_none() && noisy.get("b").is_none());
        for k in ["x", "y", "z"] {
            assert_eq!(other.get(k).as_deref(), Some(&b"kept"[..]), "another namespace's `{k}` survives");
        }
    }

    #[test]
    fn a_namespace_over_its_byte_quota_evicts_least_recently_used_first() {
        let cache = SharedCache::default();
        let other = space(&cache, "other", 1000, 100);
        other.set("x", vec![1; 900], MINUTE).unwrap();
        let s = space(&cache, "s", 1000, 100);
        s.set("a", vec![0; 299], MINUTE).unwrap();
        s.set("b", vec![0; 299], MINUTE).unwrap();
        s.set("c", vec![0; 299], MINUTE).unwrap();
        assert_eq!(usage(&s), (3, 900));
        s.get("a");
        s.set("d", vec![0; 299], MINUTE).unwrap();
        assert!(s.get("b").is_none(), "`b` was the least recently used");
        assert!(s.get("a").is_some() && s.get("c").is_some() && s.get("d").is_some());
        s.set("big", vec![0; 997], MINUTE).unwrap();
        assert_eq!(usage(&s), (1, 1000), "a value that fills the quota pushes everything else out");
        assert_eq!(s.set("huge", vec![0; 997], MINUTE), Err(NotStored::TooLarge), "over the quota on its own");
        assert!(s.get("big").is_some(), "a refused value evicts nothing");
        assert_eq!(other.get("x").map(|v| v.len()), Some(900));
    }

    #[test]
    fn expired_entries_go_before_live_ones() {
        let cache = SharedCache::default();
        let s = space(&cache, "s", 1 << 20, 3);
        let now = Instant::now();
        let mut space = s.lock();
        space.set("oldest", b"v".to_vec(), MINUTE, s.quota, now).unwrap();
        space.set("short", b"v".to_vec(), Duration::from_secs(1), s.quota, now).unwrap();
        space.set("recent", b"v".to_vec(), MINUTE, s.quota, now).unwrap();
        // `oldest` is the least recently used; `short` has expired by then.
        let later = now + Duration::from_secs(2);
        space.set("new", b"v".to_vec(), MINUTE, s.quota, later).unwrap();
        assert!(space.get("oldest", later).is_some(), "the expired entry went instead");
        assert!(space.get("short", later).is_none());
        assert!(space.get("recent", later).is_some() && space.get("new", later).is_some());
        // An expired entry is not returned, and reading it frees it.
        let much_later = now + 2 * MINUTE;
        assert!(space.get("new", much_later).is_none());
        assert!(!space.entries.contains_key("new"));
        assert_eq!(space.bytes, ["oldest", "recent"].iter().map(|k| k.len() + 1).sum::<usize>());
    }

    #[test]
    fn keys_values_and_overwrites_are_bounded() {
        let cache = SharedCache::default();
        let s = CacheSpace::new("s", Quota::new(8, 10), &cache);
        assert_eq!(s.set(&"k".repeat(MAX_KEY_BYTES + 1), b"v".to_vec(), MINUTE), Err(NotStored::KeyTooLong));
        assert_eq!(s.set("k", vec![0; MAX_VALUE_BYTES + 1], MINUTE), Err(NotStored::TooLarge));
        s.set("k", vec![0; 100], MINUTE).unwrap();
        s.set("k", vec![0; 10], MINUTE).unwrap();
        assert_eq!(usage(&s), (1, 11), "an overwrite replaces the old size");
        s.set("k", vec![0; 10], Duration::ZERO).unwrap();
        assert_eq!(usage(&s), (0, 0), "a zero TTL removes the old value");
        s.set("k", vec![0; 10], MINUTE).unwrap();
        assert_eq!(s.set("k", vec![0; MAX_VALUE_BYTES + 1], MINUTE), Err(NotStored::TooLarge));
        assert_eq!(usage(&s), (0, 0), "so does a value too large to keep");
    }

    #[test]
    fn hits_misses_and_evictions_are_counted_per_namespace_and_scraped() {
        let cache = Arc::new(SharedCache::default());
        let s = space(&cache, "w/inbound[0]/builtin:oidc-verifier", 1 << 20, 2);
        let _quiet = space(&cache, "w/outbound[0]/inject", 1 << 20, 2);
        s.set("a", b"1".to_vec(), MINUTE).unwrap();
        s.set("b", b"2".to_vec(), MINUTE).unwrap();
        assert!(s.get("a").is_some() && s.get("a").is_some());
        assert!(s.get("nothing").is_none());
        s.set("c", b"3".to_vec(), MINUTE).unwrap(); // evicts `b`, the least recently used
        assert!(s.get("b").is_none());
        s.set("short", b"4".to_vec(), Duration::from_nanos(1)).unwrap(); // evicts `a`
        std::thread::sleep(Duration::from_millis(1));
        assert!(s.get("short").is_none(), "expired: a miss, not an eviction");

        let mut registry = prometheus_client::registry::Registry::with_prefix("portcullis");
        registry.register_collector(Box::new(CacheMetrics(cache.clone())));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let labels = r#"{workload="w",position="inbound[0]",component="builtin:oidc-verifier"}"#;
        for (name, value) in [("hits_total", 2), ("misses_total", 3), ("evictions_total", 2), ("entries", 1), ("bytes", 2)] {
            assert!(text.contains(&format!("portcullis_cache_{name}{labels} {value}\n")), "cache_{name} {value} in\n{text}");
        }
        let quiet = r#"{workload="w",position="outbound[0]",component="inject"}"#;
        assert!(text.contains(&format!("portcullis_cache_hits_total{quiet} 0\n")), "{text}");
    }

    #[test]
    fn namespaces_survive_reuse_and_can_be_dropped() {
        let cache = SharedCache::default();
        CacheSpace::new("w/inbound[0]/a", Quota::default(), &cache).set("k", b"1".to_vec(), MINUTE).unwrap();
        CacheSpace::new("w/inbound[1]/b", Quota::default(), &cache).set("k", b"2".to_vec(), MINUTE).unwrap();
        // A reload builds new capabilities on the same namespace: the entry is still there.
        assert!(CacheSpace::new("w/inbound[0]/a", Quota::default(), &cache).get("k").is_some());
        cache.retain_namespaces(|ns| ns == "w/inbound[0]/a");
        assert_eq!(cache.namespaces(), ["w/inbound[0]/a"]);
        assert!(CacheSpace::new("w/inbound[1]/b", Quota::default(), &cache).get("k").is_none());
        assert!(CacheSpace::new("w/inbound[0]/a", Quota::default(), &cache).get("k").is_some());
    }
}
