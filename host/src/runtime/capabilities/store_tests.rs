use super::*;
use crate::runtime::capabilities::{Capabilities, Grants, GrantsFile, PluginLabel, Services, cache};
use crate::secrets::SecretStore;
use std::sync::Arc;

fn state(services: &Services, workload: &str, component: &str, store: bool) -> HostState {
    let (grants, problems) = Grants::parse(&GrantsFile { store, ..Default::default() }, false);
    assert!(problems.is_empty());
    let label = PluginLabel { workload: workload.into(), component: component.into() };
    let caps = Capabilities::new(label, &grants.unwrap(), services, "inbound[0]", cache::Quota::default());
    HostState::new(Arc::new(caps), 1 << 20)
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
