//! A single component set up outside a gateway, for benchmarks.

use portcullis::admin::metrics::Metrics;
use portcullis::policy::file::Isolation;
use portcullis::runtime::Runtime;
use portcullis::runtime::capabilities::{Capabilities, Grants, PluginLabel, Services};
use portcullis::runtime::plugin::{FaultKind, Limits, Plugin, PluginSpec, Role};
use portcullis::runtime::request::RequestData;
use portcullis::secrets::SecretStore;
use std::sync::Arc;
use wasmtime::component::Component;

/// An authenticator ready to call, with no grants and a throwaway secret store.
pub async fn authenticator(runtime: &Runtime, component: Component, name: &str, config_json: &str, public_url: &str, isolation: Isolation) -> Arc<Plugin> {
    let home = tempfile::tempdir().unwrap();
    let services = Services::new(Arc::new(SecretStore::new(home.path(), None)));
    let label = PluginLabel { workload: "bench".into(), component: name.into() };
    let caps = Arc::new(Capabilities::new(label.clone(), &Grants::default(), &services, "inbound[0]", Default::default()));
    let spec = PluginSpec {
        metrics: Metrics::new().plugin("bench", name, &FaultKind::labels()),
        label,
        role: Role::Authenticator,
        component,
        config_json: config_json.into(),
        public_url: public_url.into(),
        limits: Limits::default(),
        isolation,
        caps,
        instances: Arc::new(tokio::sync::Semaphore::new(64)),
        max_idle: 8,
    };
    Plugin::new(runtime, spec).await.map_err(|e| e.to_string()).unwrap()
}

/// A credential injector ready to call, with `grants` on `services`.
pub async fn injector(runtime: &Runtime, component: Component, name: &str, config_json: &str, grants: &Grants, services: &Services) -> Arc<Plugin> {
    let label = PluginLabel { workload: "bench".into(), component: name.into() };
    let caps = Arc::new(Capabilities::new(label.clone(), grants, services, "outbound[0]", Default::default()));
    let spec = PluginSpec {
        metrics: Metrics::new().plugin("bench", name, &FaultKind::labels()),
        label,
        role: Role::Injector,
        component,
        config_json: config_json.into(),
        public_url: "http://127.0.0.1:8080/mcp".into(),
        limits: Limits::default(),
        isolation: Isolation::Pooled,
        caps,
        instances: Arc::new(tokio::sync::Semaphore::new(64)),
        max_idle: 8,
    };
    Plugin::new(runtime, spec).await.map_err(|e| e.to_string()).unwrap()
}

/// A typical MCP `POST /mcp` with eight headers, plus `extra`.
pub fn mcp_request(extra: &[(&str, &str)]) -> Arc<RequestData> {
    let mut headers = http::HeaderMap::new();
    let pairs = [
        ("host", "127.0.0.1:8080"),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-session-id", "0f8e4c52-2c1b-4c55-9d2a-5b8f1f0c6a11"),
        ("mcp-protocol-version", "2025-11-25"),
        ("x-portcullis-key", "kW3x0Q4bq0m1pS0uS6oXgk7l0tJc9yQ2p3bTn1VnE8A"),
        ("user-agent", "node"),
        ("content-length", "153"),
    ];
    for (name, value) in pairs.iter().chain(extra) {
        headers.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), http::HeaderValue::from_str(value).unwrap());
    }
    Arc::new(RequestData {
        method: http::Method::POST,
        scheme: "http",
        authority: "127.0.0.1:8080".into(),
        uri: "/mcp".parse().unwrap(),
        headers,
        remote: "127.0.0.1:53122".parse().unwrap(),
        tls_client_identity: None,
        mcp_calls: Vec::new(),
        body: bytes::Bytes::new(),
        identity: None,
    })
}
