//! The `store` import's Redis backend against a real `redis-server` on
//! loopback: every operation, namespaces, one-time `take` across connections,
//! credentials from the secret store, and outages (answers `unavailable`
//! within the bound, works again once Redis is back).

use portcullis::policy::load_str;
use portcullis::runtime::capabilities::Services;
use portcullis::secrets::{SecretStore, SecretString};
use portcullis::store::{Namespace, OPERATION_TIMEOUT, Store, StoreError, StoreSettings, Stores};
use portcullis_tests::redis::{RedisAuth, RedisServer};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVER: &str = "builtin:oauth-server";

/// A store on `server`, with a connection of its own, without credentials.
fn redis_store(server: &RedisServer) -> Arc<Store> {
    let home = tempfile::tempdir().unwrap();
    Stores::new(false).open(&settings(server, ""), &SecretStore::new(home.path(), None)).unwrap()
}

/// `[store]` for `server`, as the policy loader parses it (plus extra lines).
fn settings(server: &RedisServer, extra: &str) -> StoreSettings {
    settings_at(&server.url(), extra)
}

/// `[store]` for the Redis at `url`, as the policy loader parses it (plus extra lines).
fn settings_at(url: &str, extra: &str) -> StoreSettings {
    let source = format!(
        "version = 1\n[store]\nbackend = \"redis\"\nurl = \"{url}\"\n{extra}\n[[workloads]]\nname = \"mcp\"\nlisten = \"127.0.0.1:0\"\n\
         upstream = \"http://127.0.0.1:1\"\npublic_url = \"http://127.0.0.1:1/mcp\"\nanonymous = true\n"
    );
    load_str(std::path::Path::new("policy.toml"), source).unwrap().store
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Unavailable(why)) => why,
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn every_operation_is_done_on_redis() {
    let redis = RedisServer::start();
    let ns = Namespace::new(redis_store(&redis), "portcullis", "mcp", SERVER);
    let full = |key: &str| format!("portcullis:mcp:builtin%3Aoauth-server:{key}");

    assert_eq!(ns.get("client:a").await.unwrap(), None);
    ns.put("client:a", b"{\"redirect_uris\":[]}", 600).await.unwrap();
    assert_eq!(ns.get("client:a").await.unwrap().as_deref(), Some(&b"{\"redirect_uris\":[]}"[..]));
    // The key layout, and the expiry set on the server.
    assert_eq!(redis.cli(&["GET", &full("client:a")]), "{\"redirect_uris\":[]}");
    let ttl: u32 = redis.cli(&["TTL", &full("client:a")]).parse().unwrap();
    assert!((595..=600).contains(&ttl), "{ttl}");
    // Binary values survive.
    let binary: Vec<u8> = (0..=255).collect();
    ns.put("bin", &binary, 60).await.unwrap();
    assert_eq!(ns.get("bin").await.unwrap(), Some(binary));

    assert!(ns.put_new("code:1", b"grant", 60).await.unwrap());
    assert!(!ns.put_new("code:1", b"other", 60).await.unwrap());
    assert_eq!(ns.get("code:1").await.unwrap().as_deref(), Some(&b"grant"[..]));

    assert!(!ns.swap("rt:1", b"a", b"b", 60).await.unwrap(), "nothing to swap");
    assert_eq!(redis.cli(&["EXISTS", &full("rt:1")]), "0", "a failed swap stores nothing");
    ns.put("rt:1", b"a", 5).await.unwrap();
    assert!(!ns.swap("rt:1", b"A", b"b", 3600).await.unwrap());
    assert!(ns.swap("rt:1", b"a", b"b", 3600).await.unwrap());
    assert!(!ns.swap("rt:1", b"a", b"c", 3600).await.unwrap());
    assert_eq!(ns.get("rt:1").await.unwrap().as_deref(), Some(&b"b"[..]));
    let ttl: u32 = redis.cli(&["TTL", &full("rt:1")]).parse().unwrap();
    assert!(ttl > 3500, "the swap set the new ttl: {ttl}");

    assert_eq!(ns.take("code:1").await.unwrap().as_deref(), Some(&b"grant"[..]));
    assert_eq!(ns.take("code:1").await.unwrap(), None);
    assert_eq!(redis.cli(&["EXISTS", &full("code:1")]), "0");

    ns.delete("rt:1").await.unwrap();
    ns.delete("rt:1").await.unwrap();
    assert_eq!(ns.get("rt:1").await.unwrap(), None);

    assert_eq!(ns.count("rl:register:127.0.0.1", 60).await.unwrap(), 1);
    assert_eq!(ns.count("rl:register:127.0.0.1", 600).await.unwrap(), 2);
    let ttl: u32 = redis.cli(&["TTL", &full("rl:register:127.0.0.1")]).parse().unwrap();
    assert!((55..=60).contains(&ttl), "the window is set by the first count: {ttl}");
    // A counter that lost its expiry gets one back (EXPIRE NX).
    redis.cli(&["PERSIST", &full("rl:register:127.0.0.1")]);
    assert_eq!(ns.count("rl:register:127.0.0.1", 60).await.unwrap(), 3);
    assert_ne!(redis.cli(&["TTL", &full("rl:register:127.0.0.1")]), "-1");
    assert!(unavailable(ns.count("client:a", 60).await).contains("not an integer"));

    // Lifetimes: at least a second, at most 90 days; sizes: 1 KiB keys, 256 KiB values.
    ns.put("zero", b"z", 0).await.unwrap();
    assert_eq!(redis.cli(&["TTL", &full("zero")]), "1");
    ns.put("long", b"l", u32::MAX).await.unwrap();
    let ttl: u32 = redis.cli(&["TTL", &full("long")]).parse().unwrap();
    assert!(ttl <= 90 * 24 * 3600 && ttl > 90 * 24 * 3600 - 5, "{ttl}");
    assert_eq!(ns.put(&"k".repeat(1025), b"v", 60).await, Err(StoreError::TooLarge));
    assert_eq!(ns.put("big", &vec![0; 256 * 1024 + 1], 60).await, Err(StoreError::TooLarge));
    ns.put("big", &vec![1; 256 * 1024], 60).await.unwrap();
    assert_eq!(ns.get("big").await.unwrap().map(|v| v.len()), Some(256 * 1024));
}

#[tokio::test]
async fn expired_values_are_gone() {
    let redis = RedisServer::start();
    let ns = Namespace::new(redis_store(&redis), "portcullis", "mcp", SERVER);
    ns.put("pending:1", b"p", 1).await.unwrap();
    assert!(ns.get("pending:1").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ns.get("pending:1").await.unwrap(), None);
    assert_eq!(ns.take("pending:1").await.unwrap(), None);
}

#[tokio::test]
async fn components_and_workloads_do_not_see_each_others_keys() {
    let redis = RedisServer::start();
    let store = redis_store(&redis);
    let server = Namespace::new(store.clone(), "portcullis", "mcp", SERVER);
    let impostor = Namespace::new(store.clone(), "portcullis", "mcp", "builtin");
    let other_workload = Namespace::new(store.clone(), "portcullis", "other", SERVER);
    let other_prefix = Namespace::new(store.clone(), "staging", "mcp", SERVER);
    server.put("code:1", b"server's", 60).await.unwrap();
    for ns in [&impostor, &other_workload, &other_prefix] {
        assert_eq!(ns.get("code:1").await.unwrap(), None, "{ns:?}");
        assert_eq!(ns.get("oauth-server:code:1").await.unwrap(), None, "{ns:?}");
        assert_eq!(ns.take("code:1").await.unwrap(), None, "{ns:?}");
        assert!(!ns.swap("code:1", b"server's", b"mine", 60).await.unwrap(), "{ns:?}");
        ns.delete("code:1").await.unwrap();
        ns.put("code:1", b"theirs", 60).await.unwrap();
    }
    assert_eq!(server.take("code:1").await.unwrap().as_deref(), Some(&b"server's"[..]));
    assert_eq!(redis.cli(&["DBSIZE"]), "3", "one key per namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_value_is_taken_exactly_once_across_connections() {
    let redis = RedisServer::start();
    // Two stores: two connection managers, two connections, as two gateways have.
    let (one, two) = (redis_store(&redis), redis_store(&redis));
    let namespaces = [Namespace::new(one, "portcullis", "mcp", SERVER), Namespace::new(two, "portcullis", "mcp", SERVER)];
    assert_eq!(redis.cli(&["PING"]), "PONG");
    for round in 0..20 {
        let key = format!("code:{round}");
        namespaces[0].put(&key, b"the-grant", 60).await.unwrap();
        let start = Arc::new(tokio::sync::Barrier::new(50));
        let takers: Vec<_> = (0..50)
            .map(|n| {
                let (ns, key, start) = (namespaces[n % 2].clone(), key.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    ns.take(&key).await.unwrap()
                })
            })
            .collect();
        let mut got = Vec::new();
        for taker in takers {
            got.extend(taker.await.unwrap());
        }
        assert_eq!(got, vec![b"the-grant".to_vec()], "round {round}");
    }
    assert!(redis.cli(&["CLIENT", "LIST"]).lines().count() >= 2, "two connections");
}

#[tokio::test]
async fn credentials_come_from_the_secret_store() {
    let home = tempfile::tempdir().unwrap();
    let secrets = SecretStore::new(home.path(), Some(SecretString::from("pw".to_owned())));
    let set = |name: &str, value: &str| secrets.set(name, SecretString::from(value.to_owned())).unwrap();
    set("store:redis-username", "gateway");
    set("store:redis-password", "correct-horse-battery");

    // An ACL user.
    let redis = RedisServer::start_with(RedisAuth::User { username: "gateway".into(), password: "correct-horse-battery".into() });
    let extra = "username_secret = \"store:redis-username\"\npassword_secret = \"store:redis-password\"";
    let store = Stores::new(false).open(&settings(&redis, extra), &secrets).unwrap();
    let ns = Namespace::new(store, "portcullis", "mcp", SERVER);
    ns.put("k", b"v", 60).await.unwrap();
    assert_eq!(ns.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));

    // Without them, or with a wrong password: unavailable, and the error holds no password.
    let anonymous = Namespace::new(redis_store(&redis), "portcullis", "mcp", SERVER);
    let why = unavailable(anonymous.get("k").await);
    assert!(why.contains("127.0.0.1"), "{why}");
    set("store:redis-password", "wrong-horse");
    let store = Stores::new(false).open(&settings(&redis, extra), &secrets).unwrap();
    let why = unavailable(Namespace::new(store, "portcullis", "mcp", SERVER).get("k").await);
    assert!(!why.contains("wrong-horse") && !why.contains("correct-horse"), "{why}");
    assert!(why.to_lowercase().contains("wrongpass") || why.to_lowercase().contains("auth"), "{why}");

    // The default user with a password (`requirepass`): password_secret alone.
    let redis = RedisServer::start_with(RedisAuth::Password("wrong-horse".into()));
    let store = Stores::new(false).open(&settings(&redis, "password_secret = \"store:redis-password\""), &secrets).unwrap();
    let ns = Namespace::new(store, "portcullis", "mcp", SERVER);
    assert!(ns.put_new("k", b"v", 60).await.unwrap());
}

#[tokio::test]
async fn a_reload_keeps_the_connection_and_check_never_reaches_redis() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let secrets = Arc::new(SecretStore::new(home.path(), Some(SecretString::from("pw".to_owned()))));
    let services = Services::new(secrets.clone());
    let first = services.store.open(&settings(&redis, ""), &secrets).unwrap();
    let again = services.store.open(&settings(&redis, "prefix = \"gw\""), &secrets).unwrap();
    assert!(Arc::ptr_eq(&first, &again), "the same server: the same store");
    services.store.namespace("mcp", SERVER).put("k", b"v", 60).await.unwrap();
    assert_eq!(redis.cli(&["GET", "gw:mcp:builtin%3Aoauth-server:k"]), "v");

    let check = Services::for_check(secrets.clone());
    let store = check.store.open(&settings(&redis, ""), &secrets).unwrap();
    assert_eq!(store.kind(), "memory");
    check.store.namespace("mcp", SERVER).put("k2", b"v", 60).await.unwrap();
    assert_eq!(redis.cli(&["DBSIZE"]), "1", "`portcullis check` wrote nothing to Redis");
}

/// Every operation fails with `unavailable` within the bound.
async fn all_unavailable(ns: &Namespace) {
    let bound = OPERATION_TIMEOUT + Duration::from_millis(500);
    let started = Instant::now();
    unavailable(ns.get("k").await);
    unavailable(ns.put("k", b"v", 60).await);
    unavailable(ns.put_new("k", b"v", 60).await);
    unavailable(ns.swap("k", b"v", b"w", 60).await);
    unavailable(ns.take("k").await);
    unavailable(ns.delete("k").await);
    unavailable(ns.count("c", 60).await);
    let took = started.elapsed();
    assert!(took < bound * 7, "{took:?}");
    let started = Instant::now();
    unavailable(ns.get("k").await);
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());
}

/// Waits (up to 10 s) until `ns` answers again.
async fn back(ns: &Namespace) {
    let until = Instant::now() + Duration::from_secs(10);
    while ns.get("probe").await.is_err() {
        assert!(Instant::now() < until, "the store did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn redis_stopped_is_unavailable_in_time_and_back_is_fine() {
    let mut redis = RedisServer::start();
    let ns = Namespace::new(redis_store(&redis), "portcullis", "mcp", SERVER);
    ns.put("family:1", b"kept", 3600).await.unwrap();

    redis.stop();
    all_unavailable(&ns).await;
    redis.restart();
    back(&ns).await;
    assert_eq!(ns.get("family:1").await.unwrap().as_deref(), Some(&b"kept"[..]), "what was written before is still there");
    assert!(ns.put_new("after", b"v", 60).await.unwrap());

    // Killed: the data is gone, but the store works again once Redis is.
    redis.kill();
    all_unavailable(&ns).await;
    redis.restart();
    back(&ns).await;
    assert_eq!(ns.count("c", 60).await.unwrap(), 1);
}

#[tokio::test]
async fn a_hung_redis_is_unavailable_in_time() {
    let redis = RedisServer::start();
    let ns = Namespace::new(redis_store(&redis), "portcullis", "mcp", SERVER);
    ns.put("k", b"v", 60).await.unwrap();
    redis.pause();
    let started = Instant::now();
    let why = unavailable(ns.get("k").await);
    assert!(started.elapsed() < OPERATION_TIMEOUT + Duration::from_millis(500), "{:?}", started.elapsed());
    assert!(!why.contains('v') || !why.contains("\"v\""), "{why}");
    redis.resume();
    back(&ns).await;
    assert_eq!(ns.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn redis_down_at_start_is_unavailable_then_works() {
    let mut redis = RedisServer::start();
    redis.kill();
    let ns = Namespace::new(redis_store(&redis), "portcullis", "mcp", SERVER);
    all_unavailable(&ns).await;
    redis.restart();
    back(&ns).await;
    ns.put("k", b"v", 60).await.unwrap();
}

/// `[store]` on `redis` with the password in secret `store:redis-password`, and a workload whose component is granted the store.
fn gateway_policy(redis: &RedisServer, extra: &str) -> String {
    let store = format!("version = 1\n[store]\nbackend = \"redis\"\nurl = \"{}\"\npassword_secret = \"store:redis-password\"\n{extra}\n", redis.url());
    let entry = "  [[workloads.inbound]]\n  component = \"behaviours\"\n  config = { mode = \"allow\" }\n  grants = { store = true }\n";
    format!("{store}{}", portcullis_tests::gateway::workload("mcp", "http://127.0.0.1:1", entry))
}

/// The ids of the clients connected to `redis`, besides the `redis-cli` asking.
fn clients(redis: &RedisServer) -> Vec<String> {
    let list = redis.cli(&["CLIENT", "LIST"]);
    assert!(list.starts_with("id="), "{list}");
    list.lines().filter(|l| !l.contains("cmd=client")).map(|l| l.split_whitespace().next().unwrap().to_owned()).collect()
}

/// Waits (up to 5 s) until the clients of `redis` besides `redis-cli` are as `wanted`; returns them.
async fn until_clients(redis: &RedisServer, wanted: impl Fn(&[String]) -> bool) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let ids = clients(redis);
        if wanted(&ids) || Instant::now() > until {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_gateway_keeps_its_redis_connection_across_reloads_until_the_password_changes() {
    use portcullis_tests::gateway::{PASSWORD, TestGateway};
    let mut redis = RedisServer::start_with(RedisAuth::Password("first-password".into()));

    // The secret is missing: the policy does not load, and the error names the key.
    let error = TestGateway::start(&gateway_policy(&redis, "")).await.err().expect("refused without the secret");
    let error = format!("{error:#}");
    assert!(error.contains("store.password_secret") && error.contains("store:redis-password"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretStore::new(&dir.path().join("home"), Some(SecretString::from(PASSWORD.to_owned())));
    secrets.set("store:redis-password", SecretString::from("first-password".to_owned())).unwrap();
    let gateway = TestGateway::start_in(dir, &gateway_policy(&redis, "")).await.unwrap();
    let first = until_clients(&redis, |ids| ids.len() == 1).await;
    assert_eq!(first.len(), 1, "the store connects at load: {first:?}");

    // The same [store] (a new prefix is not a new store): the same connection.
    gateway.reload_with(&gateway_policy(&redis, "prefix = \"gw\"")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(clients(&redis), first);

    // A rotated password: a new connection, authenticated with it; the old one is closed.
    assert_eq!(redis.cli(&["CONFIG", "SET", "requirepass", "second-password"]), "OK");
    redis.set_auth(RedisAuth::Password("second-password".into()));
    secrets.set("store:redis-password", SecretString::from("second-password".to_owned())).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the gateway's copy of the secret store is rechecked each second
    gateway.reload_with(&gateway_policy(&redis, "prefix = \"gw\"")).await.unwrap();
    let second = until_clients(&redis, |ids| ids.len() == 1 && ids != first).await;
    assert_eq!(second.len(), 1, "the old connection is closed: {second:?}");
    assert_ne!(second, first, "a new connection");
}

#[test]
fn check_validates_the_store_without_reaching_redis() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let fixtures = portcullis_tests::fixture_components();
    std::fs::write(&policy, gateway_policy(&redis, "").replace("[[workloads]]", &format!("{fixtures}\n[[workloads]]"))).unwrap();
    let check = |policy: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis-under-test"))
            .args(["check", policy.to_str().unwrap()])
            .env("PORTCULLIS_HOME", dir.path().join("home"))
            .env("PORTCULLIS_SECRETS_PASSWORD", "pw")
            .output()
            .unwrap()
    };
    // Valid, though the password secret is not set here: `check` reads no store credentials.
    let out = check(&policy);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(clients(&redis), Vec::<String>::new(), "check did not connect");
    assert_eq!(redis.cli(&["DBSIZE"]), "0");
    // A bad [store] is reported with its line and key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, std::fs::read_to_string(&policy).unwrap().replace("redis://127.0.0.1", "redis://:hunter2@127.0.0.1")).unwrap();
    let out = check(&bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("bad.toml:4: `store.url`") && stderr.contains("credentials"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// The variable that hands [`rediss_with_a_trusted_certificate`] its server.
const REDISS_URL: &str = "PORTCULLIS_TEST_REDISS_URL";

#[tokio::test]
async fn rediss_verifies_the_servers_certificate() {
    let redis = RedisServer::start_tls();
    assert_eq!(redis.cli(&["PING"]), "PONG");
    // A certificate no trusted root signed: refused, fail closed.
    let ns = Namespace::new(redis_store(&redis), "portcullis", "mcp", SERVER);
    let why = unavailable(ns.get("k").await);
    assert!(why.to_lowercase().contains("certificate"), "{why}");
    assert_eq!(redis.cli(&["DBSIZE"]), "0");
    // Trusted through `SSL_CERT_FILE` (the system roots' loader reads it): in
    // a child process, as the variable is the whole process's.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "store_redis::rediss_with_a_trusted_certificate", "--ignored", "--nocapture"])
        .env("SSL_CERT_FILE", redis.ca_file())
        .env(REDISS_URL, redis.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("1 passed"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(redis.cli(&["GET", "portcullis:mcp:builtin%3Aoauth-server:over-tls"]), "yes");
}

#[tokio::test]
#[ignore = "run by rediss_verifies_the_servers_certificate, which sets SSL_CERT_FILE"]
async fn rediss_with_a_trusted_certificate() {
    let url = std::env::var(REDISS_URL).expect("the parent test sets it");
    let home = tempfile::tempdir().unwrap();
    let store = Stores::new(false).open(&settings_at(&url, ""), &SecretStore::new(home.path(), None)).unwrap();
    let ns = Namespace::new(store, "portcullis", "mcp", SERVER);
    ns.put("over-tls", b"yes", 60).await.unwrap();
    assert_eq!(ns.take("over-tls").await.unwrap().as_deref(), Some(&b"yes"[..]));
    ns.put("over-tls", b"yes", 60).await.unwrap();
}
