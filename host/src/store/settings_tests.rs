//! `[store]` and `grants.store` as the policy loader sees them.

use super::*;
use crate::policy::{Policy, load_str};

const WORKLOAD: &str = r#"
[[workloads]]
name = "demo"
listen = "127.0.0.1:8080"
upstream = "http://127.0.0.1:3001"
public_url = "http://127.0.0.1:8080"
  [[workloads.inbound]]
  component = "builtin:shared-key"
  grants = { secrets = ["workload:demo:shared-key*"], store = true }
"#;

fn load(store: &str) -> Result<Policy, Vec<(String, Option<usize>, String)>> {
    let source = format!("version = 1\n{store}\n{WORKLOAD}");
    load_str(std::path::Path::new("policy.toml"), source).map_err(|e| e.0.into_iter().map(|e| (e.key.to_string(), e.line, e.message)).collect())
}

fn errors(store: &str) -> Vec<(String, Option<usize>, String)> {
    load(store).map(|_| ()).unwrap_err()
}

#[test]
fn absent_is_memory_with_the_default_prefix() {
    let policy = load("").unwrap();
    assert_eq!(policy.store, StoreSettings { backend: Backend::Memory, prefix: "portcullis".into() });
    assert_eq!(policy.workloads[0].grants[0][0].store, crate::runtime::capabilities::StoreGrant::Own);
    let policy = load("[store]\nprefix = \"gw-1.staging\"").unwrap();
    assert_eq!(policy.store, StoreSettings { backend: Backend::Memory, prefix: "gw-1.staging".into() });
}

#[test]
fn redis_settings_are_parsed() {
    let policy =
        load("[store]\nbackend = \"redis\"\nurl = \"rediss://redis.internal:6380/2\"\nusername_secret = \"store:user\"\npassword_secret = \"store:password\"")
            .unwrap();
    let Backend::Redis { url, username_secret, password_secret } = &policy.store.backend else { panic!("{:?}", policy.store) };
    assert_eq!(url.as_str(), "rediss://redis.internal:6380/2");
    assert_eq!(username_secret.as_deref(), Some("store:user"));
    assert_eq!(password_secret.as_deref(), Some("store:password"));
    assert!(policy.warnings.is_empty(), "{:?}", policy.warnings);
    // Loopback in clear is fine; a network host in clear is a warning.
    assert!(load("[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6379\"").unwrap().warnings.is_empty());
    let policy = load("[store]\nbackend = \"redis\"\nurl = \"redis://redis.internal:6379/0\"").unwrap();
    assert_eq!(policy.warnings.len(), 1);
    assert_eq!(policy.warnings[0].key.to_string(), "store.url");
    assert!(policy.warnings[0].message.contains("in clear"));
}

#[test]
fn bad_settings_are_located() {
    let at = |store: &str| errors(store).into_iter().map(|(key, line, _)| (key, line)).collect::<Vec<_>>();
    assert_eq!(at("[store]\nbackend = \"redis\""), [("store.url".to_string(), Some(2))], "absent: the table's line");
    assert_eq!(at("[store]\nbackend = \"redis\"\nurl = \"http://127.0.0.1:6379\""), [("store.url".to_string(), Some(4))]);
    assert_eq!(at("[store]\nbackend = \"redis\"\nurl = \"redis://\""), [("store.url".to_string(), Some(4))]);
    assert_eq!(at("[store]\nbackend = \"redis\"\nurl = \"rediss://127.0.0.1/#insecure\""), [("store.url".to_string(), Some(4))]);
    assert_eq!(at("[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1/?protocol=resp3\""), [("store.url".to_string(), Some(4))]);
    assert_eq!(at("[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1/zero\""), [("store.url".to_string(), Some(4))]);
    assert_eq!(at("[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1\"\nusername_secret = \"u\""), [("store.password_secret".to_string(), Some(2))]);
    assert_eq!(at("[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1\"\npassword_secret = \" \""), [("store.password_secret".to_string(), Some(5))]);
    assert_eq!(at("[store]\nurl = \"redis://127.0.0.1\""), [("store.url".to_string(), Some(3))], "a URL with the memory backend is a mistake");
    assert_eq!(at("[store]\nprefix = \"a:b\""), [("store.prefix".to_string(), Some(3))]);
    assert_eq!(at("[store]\nprefix = \"\""), [("store.prefix".to_string(), Some(3))]);
    assert_eq!(at("[store]\nbackend = \"etcd\"").len(), 1);
    assert_eq!(at("[store]\nbakend = \"redis\"")[0].0, "store.bakend");
}

#[test]
fn credentials_in_the_url_are_refused_and_not_repeated() {
    for url in ["redis://:hunter2@127.0.0.1:6379", "redis://admin:hunter2@127.0.0.1:6379", "redis://admin@127.0.0.1:6379"] {
        let errors = errors(&format!("[store]\nbackend = \"redis\"\nurl = \"{url}\""));
        assert_eq!(errors.len(), 1, "{url}");
        let (key, _, message) = &errors[0];
        assert_eq!(key, "store.url");
        assert!(message.contains("credentials"), "{message}");
        assert!(!message.contains("hunter2") && !message.contains("admin"), "{message}");
    }
}

#[test]
fn stores_are_kept_while_the_settings_stay_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretStore::new(dir.path(), Some(crate::secrets::SecretString::from("pw".to_owned())));
    let stores = Stores::new(false);
    let memory = StoreSettings::default();
    let first = stores.open(&memory, &secrets).unwrap();
    let again = stores.open(&StoreSettings { prefix: "other".into(), ..memory.clone() }, &secrets).unwrap();
    assert!(Arc::ptr_eq(&first, &again), "a new prefix keeps the store");
    assert!(format!("{:?}", stores.namespace("w", "c")).contains("\"other:w:c:\""));
    // A Redis store needs its secrets; a missing one is located.
    let redis = |password_secret: Option<&str>| StoreSettings {
        backend: Backend::Redis {
            url: url::Url::parse("redis://127.0.0.1:1/0").unwrap(),
            username_secret: None,
            password_secret: password_secret.map(str::to_owned),
        },
        prefix: "portcullis".into(),
    };
    let missing = stores.open(&redis(Some("store:password")), &secrets).err().unwrap();
    assert_eq!(missing.field, "password_secret");
    assert!(Arc::ptr_eq(&first, &stores.open(&memory, &secrets).unwrap()), "a failed open changes nothing");
    block(async {
        secrets.set("store:password", crate::secrets::SecretString::from("one".to_owned())).unwrap();
        let one = stores.open(&redis(Some("store:password")), &secrets).unwrap();
        assert_eq!(one.kind(), "redis");
        assert!(Arc::ptr_eq(&one, &stores.open(&redis(Some("store:password")), &secrets).unwrap()));
        secrets.set("store:password", crate::secrets::SecretString::from("two".to_owned())).unwrap();
        let two = stores.open(&redis(Some("store:password")), &secrets).unwrap();
        assert!(!Arc::ptr_eq(&one, &two), "a changed password reconnects");
        let back = stores.open(&memory, &secrets).unwrap();
        assert!(!Arc::ptr_eq(&first, &back), "memory again is a new, empty store");
    });
    // `portcullis check` never opens Redis.
    let check = Stores::new(true);
    assert_eq!(check.open(&redis(Some("absent")), &secrets).unwrap().kind(), "memory");
}

fn block<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

#[test]
fn the_schema_describes_store() {
    let schema = crate::policy::json_schema();
    let definitions = schema.get("$defs").or_else(|| schema.get("definitions")).unwrap();
    let prefix = definitions["StoreFile"]["properties"]["prefix"]["description"].as_str().unwrap();
    assert!(prefix.contains(&format!("default `{}`", settings::DEFAULT_PREFIX)), "{prefix}");
    assert!(definitions["GrantsFile"]["properties"]["store"]["description"].as_str().is_some());
    assert_eq!(definitions["StoreBackend"]["enum"], serde_json::json!(["memory", "redis"]));
}
