use super::*;
use crate::runtime::capabilities::{Capabilities, Grants, GrantsFile, PluginLabel, Services, StoreGrantFile, cache};
use crate::secrets::SecretStore;
use std::sync::Arc;

fn state(services: &Services, workload: &str, component: &str, store: impl Into<Grant>) -> HostState {
    let store = match store.into() {
        Grant::Own(own) => StoreGrantFile::Own(own),
        Grant::Shared(name) => StoreGrantFile::Shared(name.into()),
    };
    let (grants, problems) = Grants::parse(&GrantsFile { store, ..Default::default() }, false);
    assert!(problems.is_empty());
    let label = PluginLabel { workload: workload.into(), component: component.into() };
    let caps = Capabilities::new(label, &grants.unwrap(), services, "inbound[0]", cache::Quota::default());
    HostState::new(Arc::new(caps), 1 << 20)
}

/// `true`/`false`, or a shared namespace's name, as a policy writes `grants.store`.
enum Grant {
    Own(bool),
    Shared(&'static str),
}

impl From<bool> for Grant {
    fn from(own: bool) -> Grant {
        Grant::Own(own)
    }
}

impl From<&'static str> for Grant {
    fn from(name: &'static str) -> Grant {
        Grant::Shared(name)
    }
}

fn services() -> (tempfile::TempDir, Services) {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::new(Arc::new(SecretStore::new(dir.path(), None)));
    (dir, services)
}

#[tokio::test]
async fn not_granted_is_refused() {
    let (_dir, services) = services();
    let mut s = state(&services, "mcp", "api-key-db", false);
    assert!(matches!(Host::get(&mut s, "k".into()).await, Err(StoreError::NotGranted)));
    assert!(matches!(Host::put(&mut s, "k".into(), b"v".to_vec(), 60).await, Err(StoreError::NotGranted)));
    assert!(matches!(Host::put_new(&mut s, "k".into(), b"v".to_vec(), 60).await, Err(StoreError::NotGranted)));
    assert!(matches!(Host::swap(&mut s, "k".into(), b"v".to_vec(), b"w".to_vec(), 60).await, Err(StoreError::NotGranted)));
    assert!(matches!(Host::take(&mut s, "k".into()).await, Err(StoreError::NotGranted)));
    assert!(matches!(Host::delete(&mut s, "k".into()).await, Err(StoreError::NotGranted)));
    assert!(matches!(Host::count(&mut s, "k".into(), 60).await, Err(StoreError::NotGranted)));
}

#[tokio::test]
async fn granted_components_each_have_their_own_namespace() {
    let (_dir, services) = services();
    let mut server = state(&services, "mcp", "builtin:oauth-server", true);
    let mut other = state(&services, "mcp", "builtin", true);
    let mut again = state(&services, "mcp", "builtin:oauth-server", true);
    assert!(Host::put_new(&mut server, "code:1".into(), b"grant".to_vec(), 60).await.unwrap());
    assert_eq!(Host::get(&mut other, "code:1".into()).await.unwrap(), None);
    assert_eq!(Host::get(&mut other, "oauth-server:code:1".into()).await.unwrap(), None);
    assert_eq!(Host::take(&mut other, "code:1".into()).await.unwrap(), None);
    // Another instance of the same entry shares the namespace.
    assert_eq!(Host::take(&mut again, "code:1".into()).await.unwrap(), Some(b"grant".to_vec()));
    assert_eq!(Host::take(&mut server, "code:1".into()).await.unwrap(), None);
    assert_eq!(Host::count(&mut server, "rl".into(), 60).await.unwrap(), 1);
    assert_eq!(Host::count(&mut again, "rl".into(), 60).await.unwrap(), 2);
    assert!(matches!(Host::put(&mut server, "k".repeat(2000), b"v".to_vec(), 60).await, Err(StoreError::TooLarge)));
}

#[tokio::test]
async fn a_call_past_its_deadline_gets_unavailable() {
    let (_dir, services) = services();
    let mut s = state(&services, "mcp", "builtin:oauth-server", true);
    s.deadline = Some(std::time::Instant::now());
    assert!(matches!(Host::put(&mut s, "k".into(), b"v".to_vec(), 60).await, Err(StoreError::Unavailable(why)) if why.contains("deadline")));
    assert_eq!(services.store.unavailable().get(), 1, "counted for the metrics");
    s.deadline = Some(std::time::Instant::now() + std::time::Duration::from_secs(1));
    Host::put(&mut s, "k".into(), b"v".to_vec(), 60).await.unwrap();
    assert_eq!(services.store.unavailable().get(), 1, "a served operation is not counted");
}

/// `store = "sessions"`: the entries of one workload that name the same
/// namespace share it (the authorization server and the upstream-token
/// injector); nobody else reaches it, another workload's namesake included.
#[tokio::test]
async fn entries_that_name_a_namespace_share_it_and_only_they() {
    let (_dir, services) = services();
    let mut server = state(&services, "mcp", "builtin:oauth-server", "sessions");
    let mut injector = state(&services, "mcp", "builtin:upstream-token", "sessions");
    let mut own = state(&services, "mcp", "builtin:oauth-server", true);
    let mut elsewhere = state(&services, "other", "builtin:upstream-token", "sessions");
    let mut named_like_the_component = state(&services, "mcp", "x", "builtin");
    assert!(Host::put_new(&mut server, "session:1:corp".into(), b"sealed".to_vec(), 60).await.unwrap());
    assert_eq!(Host::get(&mut injector, "session:1:corp".into()).await.unwrap().as_deref(), Some(&b"sealed"[..]));
    for other in [&mut own, &mut elsewhere, &mut named_like_the_component] {
        assert_eq!(Host::get(other, "session:1:corp".into()).await.unwrap(), None);
    }
}

#[test]
fn a_namespace_name_is_checked() {
    for bad in ["", "a:b", "with space", &"x".repeat(65)] {
        let (grants, problems) = Grants::parse(&GrantsFile { store: StoreGrantFile::Shared(bad.into()), ..Default::default() }, false);
        assert!(grants.is_none(), "{bad:?}");
        assert_eq!(problems[0].field, "store", "{bad:?}");
    }
}
