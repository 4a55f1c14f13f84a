//! A single component set up outside a gateway, for benchmarks.

use portcullis::admin::metrics::Metrics;
use portcullis::policy::file::{GrantsFile, Isolation};
use portcullis::runtime::Runtime;
use portcullis::runtime::bindings::types::{Header, Peer, RequestView};
use portcullis::runtime::capabilities::{Capabilities, PluginLabel, Services};
use portcullis::runtime::plugin::{Limits, Plugin, PluginSpec, Role};
use portcullis::secrets::SecretStore;
use std::sync::Arc;
use wasmtime::component::Component;

/// An authenticator ready to call, with no grants and a throwaway secret store.
pub async fn authenticator(runtime: &Runtime, component: Component, name: &str, config_json: &str, public_url: &str, isolation: Isolation) -> Arc<Plugin> {
    let home = tempfile::tempdir().unwrap();
    let services = Services::new(Arc::new(SecretStore::new(home.path(), None)));
    let label = PluginLabel { workload: "bench".into(), component: name.into() };
    let caps = Arc::new(Capabilities::new(label.clone(), &GrantsFile::default(), &services, "inbound[0]", Default::default()));
    let spec = PluginSpec {
        metrics: Metrics::new().plugin("bench", name),
        label,
        role: Role::Authenticator,
        component,
        config_json: config_json.into(),
        public_url: public_url.into(),
        limits: Limits::default(),
        isolation,
        caps,
    };
    Plugin::new(runtime, spec).await.map_err(|e| e.to_string()).unwrap()
}

/// A typical MCP `POST /mcp` with eight headers, plus `extra`.
pub fn mcp_request(extra: &[(&str, &str)]) -> RequestView {
    let h = |n: &str, v: &str| Header { name: n.into(), value: v.into() };
    let mut headers = vec![
        h("host", "127.0.0.1:8080"),
        h("content-type", "application/json"),
        h("accept", "application/json, text/event-stream"),
        h("mcp-session-id", "0f8e4c52-2c1b-4c55-9d2a-5b8f1f0c6a11"),
        h("mcp-protocol-version", "2025-11-25"),
        h("x-portcullis-key", "kW3x0Q4bq0m1pS0uS6oXgk7l0tJc9yQ2p3bTn1VnE8A"),
        h("user-agent", "node"),
        h("content-length", "153"),
    ];
    headers.extend(extra.iter().map(|(n, v)| h(n, v)));
    RequestView {
        workload: "bench".into(),
        method: "POST".into(),
        scheme: "http".into(),
        authority: "127.0.0.1:8080".into(),
        path: "/mcp".into(),
        query: None,
        headers,
        peer: Peer { remote_addr: "127.0.0.1:53122".into(), tls_client_identity: None },
    }
}
