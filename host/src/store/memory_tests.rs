use super::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A clock the test moves forward by hand.
#[derive(Clone)]
struct Clock(Arc<AtomicU64>, Instant);

impl Clock {
    fn new() -> Clock {
        Clock(Arc::new(AtomicU64::new(0)), Instant::now())
    }

    fn advance(&self, seconds: f64) {
        self.0.fetch_add((seconds * 1000.0) as u64, Ordering::SeqCst);
    }

    fn store(&self, limits: MemoryLimits) -> MemoryStore {
        let clock = self.clone();
        MemoryStore::with_clock(limits, Arc::new(move || clock.1 + Duration::from_millis(clock.0.load(Ordering::SeqCst))))
    }
}

fn namespace(store: MemoryStore, workload: &str, component: &str) -> Namespace {
    Namespace::new(Arc::new(Store::Memory(store)), "portcullis", workload, component)
}

fn block<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

#[test]
fn values_expire_after_their_ttl() {
    let clock = Clock::new();
    let store = clock.store(MemoryLimits::default());
    store.put("a", b"one", 10).unwrap();
    clock.advance(9.9);
    assert_eq!(store.get("a").unwrap().as_deref(), Some(&b"one"[..]));
    clock.advance(0.1);
    assert_eq!(store.get("a").unwrap(), None, "gone at its expiry");
    assert!(store.is_empty(), "an expired entry is dropped when touched");
    // An expired key is absent for every operation.
    store.put("b", b"two", 1).unwrap();
    clock.advance(1.0);
    assert!(store.put_new("b", b"new", 5).unwrap(), "put-new over an expired value");
    store.put("c", b"three", 1).unwrap();
    clock.advance(1.0);
    assert_eq!(store.take("c").unwrap(), None);
    assert!(!store.swap("c", b"three", b"x", 5).unwrap(), "an expired value does not match");
}

#[test]
fn put_new_only_when_absent_and_put_replaces() {
    let store = MemoryStore::new(MemoryLimits::default());
    assert!(store.put_new("k", b"first", 60).unwrap());
    assert!(!store.put_new("k", b"second", 60).unwrap());
    assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"first"[..]));
    store.put("k", b"third", 60).unwrap();
    assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"third"[..]));
    store.delete("k").unwrap();
    store.delete("k").unwrap();
    assert_eq!(store.get("k").unwrap(), None);
}

#[test]
fn swap_replaces_only_the_expected_value_and_sets_the_new_ttl() {
    let clock = Clock::new();
    let store = clock.store(MemoryLimits::default());
    assert!(!store.swap("rt", b"a", b"b", 60).unwrap(), "nothing to swap");
    assert_eq!(store.get("rt").unwrap(), None, "a failed swap stores nothing");
    store.put("rt", b"a", 5).unwrap();
    assert!(!store.swap("rt", b"A", b"b", 60).unwrap());
    assert!(!store.swap("rt", b"a-", b"b", 60).unwrap());
    assert!(store.swap("rt", b"a", b"b", 60).unwrap());
    assert!(!store.swap("rt", b"a", b"c", 60).unwrap(), "the old value no longer matches");
    clock.advance(30.0);
    assert_eq!(store.get("rt").unwrap().as_deref(), Some(&b"b"[..]), "the swap's ttl replaced the first one");
    clock.advance(30.0);
    assert_eq!(store.get("rt").unwrap(), None);
}

#[test]
fn take_gives_a_value_to_exactly_one_of_many_callers() {
    for round in 0..20 {
        let store = Arc::new(MemoryStore::new(MemoryLimits::default()));
        store.put("code", b"secret-code", 60).unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let takers: Vec<_> = (0..16)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.take("code").unwrap()
                })
            })
            .collect();
        let got: Vec<_> = takers.into_iter().filter_map(|t| t.join().unwrap()).collect();
        assert_eq!(got, vec![b"secret-code".to_vec()], "round {round}");
    }
}

#[test]
fn count_counts_within_a_window_fixed_by_the_first_count() {
    let clock = Clock::new();
    let store = clock.store(MemoryLimits::default());
    assert_eq!(store.count("rl", 60).unwrap(), 1);
    clock.advance(30.0);
    assert_eq!(store.count("rl", 60).unwrap(), 2);
    clock.advance(29.0);
    assert_eq!(store.count("rl", 60).unwrap(), 3, "later counts do not extend the window");
    clock.advance(1.0);
    assert_eq!(store.count("rl", 60).unwrap(), 1, "a new window");
    store.put("text", b"not a number", 60).unwrap();
    assert!(matches!(store.count("text", 60), Err(StoreError::Unavailable(_))));
    assert_eq!(store.get("text").unwrap().as_deref(), Some(&b"not a number"[..]), "a refused count changes nothing");
}

#[test]
fn a_full_store_drops_expired_entries_then_refuses() {
    let clock = Clock::new();
    let store = clock.store(MemoryLimits { entries: 3, bytes: 1 << 20 });
    store.put("a", b"1", 10).unwrap();
    store.put("b", b"2", 100).unwrap();
    store.put("c", b"3", 100).unwrap();
    store.put("c", b"3'", 100).unwrap();
    let full = store.put("d", b"4", 100).unwrap_err();
    assert!(matches!(&full, StoreError::Unavailable(why) if why.contains("full")), "{full:?}");
    assert_eq!(store.get("d").unwrap(), None);
    clock.advance(10.0);
    store.put("d", b"4", 100).unwrap();
    assert_eq!(store.len(), 3, "the expired `a` made room");
    assert!(matches!(store.put_new("e", b"5", 100), Err(StoreError::Unavailable(_))));
    assert!(matches!(store.count("e", 100), Err(StoreError::Unavailable(_))));
    // Freed room is usable at once.
    store.take("b").unwrap();
    store.put("e", b"5", 100).unwrap();
}

#[test]
fn the_store_is_bounded_in_bytes() {
    let store = MemoryStore::new(MemoryLimits { entries: 1000, bytes: 10 * 1024 });
    for n in 0..9 {
        store.put(&format!("k{n}"), &[0; 1024], 60).unwrap();
    }
    assert!(matches!(store.put("big", &[0; 2048], 60), Err(StoreError::Unavailable(_))));
    // Replacing a value by a smaller one frees room.
    store.put("k0", b"", 60).unwrap();
    store.put("big", &[0; 1024], 60).unwrap();
    store.delete("big").unwrap();
    store.put("other", &[0; 1024], 60).unwrap();
}

#[test]
fn the_namespace_refuses_large_keys_and_values_and_clamps_ttls() {
    let clock = Clock::new();
    let ns = namespace(clock.store(MemoryLimits::default()), "mcp", "builtin:oauth-server");
    block(async {
        assert_eq!(ns.put(&"k".repeat(MAX_KEY_BYTES + 1), b"v", 10).await, Err(StoreError::TooLarge));
        assert_eq!(ns.get(&"k".repeat(MAX_KEY_BYTES + 1)).await, Err(StoreError::TooLarge));
        assert_eq!(ns.take(&"k".repeat(MAX_KEY_BYTES + 1)).await, Err(StoreError::TooLarge));
        ns.put(&"k".repeat(MAX_KEY_BYTES), b"v", 10).await.unwrap();
        assert_eq!(ns.put("v", &vec![0; MAX_VALUE_BYTES + 1], 10).await, Err(StoreError::TooLarge));
        assert_eq!(ns.put_new("v", &vec![0; MAX_VALUE_BYTES + 1], 10).await, Err(StoreError::TooLarge));
        assert_eq!(ns.swap("v", b"", &vec![0; MAX_VALUE_BYTES + 1], 10).await, Err(StoreError::TooLarge));
        ns.put("v", &vec![7; MAX_VALUE_BYTES], 10).await.unwrap();
        assert_eq!(ns.get("v").await.unwrap().map(|v| v.len()), Some(MAX_VALUE_BYTES));
        // A ttl of 0 lives a second, not forever; a huge one is cut to 90 days.
        ns.put("zero", b"z", 0).await.unwrap();
        ns.put("long", b"l", u32::MAX).await.unwrap();
        assert_eq!(ns.count("c", 0).await.unwrap(), 1);
    });
    clock.advance(0.9);
    block(async { assert!(ns.get("zero").await.unwrap().is_some()) });
    clock.advance(0.1);
    block(async {
        assert!(ns.get("zero").await.unwrap().is_none());
        assert_eq!(ns.count("c", 0).await.unwrap(), 1, "the window was one second");
    });
    clock.advance(f64::from(MAX_TTL_SECONDS) - 1.5);
    block(async { assert!(ns.get("long").await.unwrap().is_some()) });
    clock.advance(1.0);
    block(async { assert!(ns.get("long").await.unwrap().is_none(), "cut to 90 days") });
}

#[test]
fn namespaces_keep_components_and_workloads_apart() {
    let store = Arc::new(Store::memory());
    let server = Namespace::new(store.clone(), "portcullis", "mcp", "builtin:oauth-server");
    // A component named `builtin` whose keys start with `oauth-server:` must not reach the server's keys.
    let impostor = Namespace::new(store.clone(), "portcullis", "mcp", "builtin");
    let other_workload = Namespace::new(store.clone(), "portcullis", "other", "builtin:oauth-server");
    let other_prefix = Namespace::new(store.clone(), "staging", "mcp", "builtin:oauth-server");
    block(async {
        server.put("code:1", b"server's", 60).await.unwrap();
        assert_eq!(server.get("code:1").await.unwrap().as_deref(), Some(&b"server's"[..]));
        for ns in [&impostor, &other_workload, &other_prefix] {
            assert_eq!(ns.get("code:1").await.unwrap(), None, "{ns:?}");
            assert_eq!(ns.get("oauth-server:code:1").await.unwrap(), None, "{ns:?}");
            assert_eq!(ns.take("code:1").await.unwrap(), None, "{ns:?}");
            ns.delete("code:1").await.unwrap();
        }
        assert_eq!(server.take("code:1").await.unwrap().as_deref(), Some(&b"server's"[..]));
    });
    let Store::Memory(memory) = &*store else { unreachable!() };
    assert!(memory.is_empty());
}

#[test]
fn escaped_namespace_keys() {
    let store = Arc::new(Store::memory());
    let ns = Namespace::new(store, "portcullis", "mcp", "builtin:oauth-server");
    assert_eq!(ns.key("client:abc").unwrap(), "portcullis:mcp:builtin%3Aoauth-server:client:abc");
    assert_eq!(escape("a%3Ab"), "a%253Ab");
}
