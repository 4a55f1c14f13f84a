//! The per-request cost of one component call, pooled and per-request.
//!
//! `cargo bench -p portcullis-tests --bench component_call`; figures go in
//! docs/benchmarks.md. The component is the `behaviours` fixture in `allow`
//! mode (it reads its config, builds an identity and two header edits), and the
//! request view is a typical MCP POST with eight headers.

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::admin::metrics::Metrics;
use portcullis::policy::file::{GrantsFile, Isolation};
use portcullis::runtime::Runtime;
use portcullis::runtime::bindings::types::{Header, Peer, RequestView, Verdict};
use portcullis::runtime::capabilities::{Capabilities, PluginLabel, Services};
use portcullis::runtime::plugin::{Limits, Plugin, PluginSpec, Role};
use portcullis::secrets::SecretStore;
use std::sync::Arc;

fn request() -> RequestView {
    let h = |n: &str, v: &str| Header { name: n.into(), value: v.into() };
    RequestView {
        workload: "bench".into(),
        method: "POST".into(),
        scheme: "http".into(),
        authority: "127.0.0.1:8080".into(),
        path: "/mcp".into(),
        query: None,
        headers: vec![
            h("host", "127.0.0.1:8080"),
            h("content-type", "application/json"),
            h("accept", "application/json, text/event-stream"),
            h("mcp-session-id", "0f8e4c52-2c1b-4c55-9d2a-5b8f1f0c6a11"),
            h("mcp-protocol-version", "2025-11-25"),
            h("x-portcullis-key", "kW3x0Q4bq0m1pS0uS6oXgk7l0tJc9yQ2p3bTn1VnE8A"),
            h("user-agent", "node"),
            h("content-length", "153"),
        ],
        peer: Peer { remote_addr: "127.0.0.1:53122".into(), tls_client_identity: None },
    }
}

fn plugin(rt: &tokio::runtime::Runtime, runtime: &Runtime, isolation: Isolation) -> Arc<Plugin> {
    let path = portcullis_tests::fixture("behaviours");
    let wasm = std::fs::read(&path).unwrap();
    let component = runtime.component(&portcullis_tests::sha256_of(&path), &wasm).unwrap();
    let home = tempfile::tempdir().unwrap();
    let services = Services::new(Arc::new(SecretStore::new(home.path(), None)));
    let label = PluginLabel { workload: "bench".into(), component: "behaviours".into() };
    let caps = Arc::new(Capabilities::new(label.clone(), &GrantsFile::default(), &services, "inbound[0]"));
    let metrics = Metrics::new();
    let spec = PluginSpec {
        metrics: metrics.plugin("bench", "behaviours"),
        label,
        role: Role::Authenticator,
        component,
        config_json: r#"{"mode":"allow","tag":"bench"}"#.into(),
        public_url: "http://127.0.0.1:8080".into(),
        limits: Limits::default(),
        isolation,
        caps,
    };
    rt.block_on(Plugin::new(runtime, spec)).map_err(|e| e.to_string()).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let runtime = Runtime::new(Some(portcullis_tests::gateway::shared_cache_dir())).unwrap();
    eprintln!("pooling allocator: {}", runtime.pooling());
    let view = request();
    for (name, isolation) in [("pooled", Isolation::Pooled), ("per-request", Isolation::PerRequest)] {
        let plugin = plugin(&rt, &runtime, isolation);
        c.bench_function(&format!("authenticate/{name}"), |b| {
            b.to_async(&rt).iter(|| async {
                let verdict = plugin.authenticate(&view).await.unwrap();
                assert!(matches!(verdict, Verdict::Allow(_)));
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
