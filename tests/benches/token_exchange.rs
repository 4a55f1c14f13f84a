//! `builtin:token-exchange`'s cache hit: the injector's whole call when the
//! exchanged token for this subject is in the instance cache (the subject
//! token read from the request, hashed into the cache key, the cache read,
//! the header edit), component call included.
//!
//! `cargo bench -p portcullis-tests --bench token_exchange`; figures go in
//! docs/benchmarks.md. The first call exchanges the token at the real STS
//! (`tests/node/sts.mjs`, subject tokens of `oidc-provider.mjs`, both started
//! here); every measured call is then a cache hit, checked to carry the
//! exchanged token.

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::admin::metrics::Metrics;
use portcullis::policy::file::Isolation;
use portcullis::runtime::Runtime;
use portcullis::runtime::bindings::types::Identity;
use portcullis::runtime::builtins;
use portcullis::runtime::capabilities::{Capabilities, Grants, GrantsFile, PluginLabel, Services};
use portcullis::runtime::plugin::{FaultKind, Limits, Plugin, PluginSpec, Role};
use portcullis::runtime::verdict::Injection;
use portcullis::secrets::{SecretStore, SecretString};
use portcullis_tests::node::OpenIdProvider;
use portcullis_tests::plugin::mcp_request;
use portcullis_tests::token_exchange::{AUDIENCE, CLIENT_SECRET, CLIENT_SECRET_NAME, PUBLIC_URL, Sts};
use std::sync::Arc;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let runtime = Runtime::new(Some(portcullis_tests::gateway::shared_cache_dir())).unwrap();
    let op = rt.block_on(OpenIdProvider::start());
    let sts = rt.block_on(Sts::start(&op, &["eng-client"], None));
    let token = rt.block_on(op.token("eng-client", PUBLIC_URL, "mcp:read"));

    let home = tempfile::tempdir().unwrap();
    let store = SecretStore::new(home.path(), Some(SecretString::from("bench".to_owned())));
    store.set(CLIENT_SECRET_NAME, SecretString::from(CLIENT_SECRET.to_owned())).unwrap();
    let services = Services::new(Arc::new(store));
    let grants: GrantsFile = serde_json::from_value(serde_json::json!({"http": [sts.issuer], "http_private": true, "secrets": [CLIENT_SECRET_NAME]})).unwrap();
    let (grants, problems) = Grants::parse(&grants, false);
    let grants = grants.unwrap_or_else(|| panic!("{problems:?}"));
    let builtin = builtins::lookup("token-exchange").unwrap();
    let component = runtime.component(builtin.sha256(), builtin.wasm).unwrap();
    let label = PluginLabel { workload: "bench".into(), component: "builtin:token-exchange".into() };
    let caps = Arc::new(Capabilities::new(label.clone(), &grants, &services, "outbound[0]", Default::default()));
    let config = serde_json::json!({
        "token_endpoint": format!("{}/token", sts.issuer), "client_id": "gateway-basic", "client_secret": CLIENT_SECRET_NAME,
        "audience": AUDIENCE, "scope": "mcp:read",
    });
    let spec = PluginSpec {
        metrics: Metrics::new().plugin("bench", "builtin:token-exchange", &FaultKind::labels()),
        label,
        role: Role::Injector,
        component,
        config_json: config.to_string(),
        public_url: PUBLIC_URL.into(),
        limits: Limits::default(),
        isolation: Isolation::Pooled,
        caps,
        instances: Arc::new(tokio::sync::Semaphore::new(64)),
        max_idle: 8,
    };
    let plugin = rt.block_on(Plugin::new(&runtime, spec)).map_err(|e| e.to_string()).unwrap();

    let bearer = format!("Bearer {token}");
    let mut view = Arc::unwrap_or_clone(mcp_request(&[("authorization", &bearer)]));
    view.identity = Some(Identity { subject: "eng-client".into(), issuer: Some(op.issuer.clone()), claims_json: Some(r#"{"sub":"eng-client"}"#.into()) });
    let view = Arc::new(view);
    let exchanged = |injection: Injection| match injection {
        Injection::Forward(edits) => format!("{edits:?}"),
        Injection::Deny(denial) => panic!("refused: {denial:?}"),
    };
    // The exchange, once; then every call is a hit with the same token.
    let first = exchanged(rt.block_on(plugin.inject(&view)).unwrap());
    assert!(!first.contains(&token), "the exchanged token, not the client's");
    assert_eq!(exchanged(rt.block_on(plugin.inject(&view)).unwrap()), first);

    c.bench_function("inject/token-exchange/cache-hit", |b| {
        b.to_async(&rt).iter(|| async {
            match plugin.inject(&view).await.unwrap() {
                Injection::Forward(_) => {}
                Injection::Deny(denial) => panic!("refused: {denial:?}"),
            }
        })
    });
    drop(sts);
}

criterion_group!(benches, bench);
criterion_main!(benches);
