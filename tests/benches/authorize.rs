//! What the authorize stage adds to a `tools/call`: reading the JSON-RPC
//! message once, then one decision by `builtin:cedar` (the policies of
//! `examples/tools.cedar`, a caller with claims and groups) and by
//! `builtin:scopes`. Target: at most 20 µs per call, policies evaluated.
//!
//! `cargo bench -p portcullis-tests --bench authorize`; figures go in
//! docs/benchmarks.md.

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::admin::metrics::Metrics;
use portcullis::policy::file::Isolation;
use portcullis::runtime::Runtime;
use portcullis::runtime::bindings::types::Identity;
use portcullis::runtime::capabilities::{Capabilities, PluginLabel, Services};
use portcullis::runtime::plugin::{FaultKind, Limits, Plugin, PluginSpec, Role};
use portcullis::runtime::request::RequestData;
use portcullis::runtime::verdict::Decision;
use portcullis::secrets::SecretStore;
use std::path::Path;
use std::sync::Arc;

const MESSAGE: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"delete_file","arguments":{"path":"/tmp/scratch.txt"}}}"#;

async fn authorizer(runtime: &Runtime, services: &Services, name: &str, config: serde_json::Value) -> Arc<Plugin> {
    let builtin = portcullis::runtime::builtins::lookup(name).unwrap();
    let component = runtime.component(builtin.sha256(), builtin.wasm).unwrap();
    let label = PluginLabel { workload: "tools".into(), component: format!("builtin:{name}").into() };
    let caps = Arc::new(Capabilities::new(label.clone(), &Default::default(), services, "authorize[0]", Default::default()));
    let spec = PluginSpec {
        metrics: Metrics::new().plugin("tools", name, &FaultKind::labels()),
        label,
        role: Role::Authorizer,
        component,
        config_json: config.to_string(),
        public_url: "http://127.0.0.1:8080/mcp".into(),
        limits: Limits::default(),
        isolation: Isolation::Pooled,
        caps,
        instances: Arc::new(tokio::sync::Semaphore::new(64)),
        max_idle: 8,
    };
    Plugin::new(runtime, spec).await.map_err(|e| e.to_string()).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let home = tempfile::tempdir().unwrap();
    let services = Services::new(Arc::new(SecretStore::new(home.path(), None)));
    let runtime = Runtime::new(Some(portcullis_tests::gateway::shared_cache_dir())).unwrap();
    let policies = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tools.cedar")).unwrap();
    let cedar = rt.block_on(authorizer(&runtime, &services, "cedar", serde_json::json!({ "policies": policies })));
    let scopes = rt.block_on(authorizer(&runtime, &services, "scopes", serde_json::json!({ "rules": [{ "tool": "deploy", "scopes": ["tools:deploy"] }] })));
    let identity = Identity {
        subject: "eng-client".into(),
        issuer: Some("https://idp.example.com".into()),
        claims_json: Some(
            r#"{"sub":"eng-client","iss":"https://idp.example.com","aud":"http://127.0.0.1:8080/mcp","scope":"mcp:read","groups":["engineering"],"email":"eng@example.com","exp":4102444800,"iat":1700000000}"#.into(),
        ),
    };
    let calls = portcullis::mcp::message::parse(MESSAGE).unwrap();
    let mut view = (*portcullis_tests::plugin::mcp_request(&[])).clone();
    view.mcp_calls = calls.clone();
    let view: Arc<RequestData> = Arc::new(view);

    c.bench_function("authorize/parse-message", |b| b.iter(|| portcullis::mcp::message::parse(std::hint::black_box(MESSAGE)).unwrap()));
    for (name, plugin) in [("cedar", &cedar), ("scopes", &scopes)] {
        c.bench_function(&format!("authorize/{name}"), |b| {
            b.to_async(&rt).iter(|| async {
                let decision = plugin.authorize(&view, Some(&identity), &calls[0]).await.unwrap();
                assert!(matches!(decision, Decision::Allow { .. }), "{decision:?}");
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
