//! End-to-end tests: real servers on loopback (ephemeral ports), real clients.

mod authorization;
mod bad_input;
mod boundary;
mod bridge_hardening;
mod capabilities;
mod chain;
mod cli;
mod component_cache;
mod conformance;
mod deploy_manifests;
mod edges;
mod fair_lanes;
mod faults;
mod first_run;
mod keychain;
mod last_event_id;
mod limits;
mod logs;
mod mcp_messages;
mod oauth_conformance;
mod oauth_consent;
mod oauth_keys;
mod oauth_replicas;
mod oauth_server;
mod oauth_token_exchange;
mod oidc;
mod oidc_refetch;
mod plugin_kit;
mod plugin_redirect;
mod plugins;
mod prometheus;
mod proxy;
mod registry_logout;
mod registry_token;
mod reload;
mod server_routes;
mod shared_key;
mod shared_key_twice;
mod slow_body;
mod store_redis;
mod telemetry;
mod token_exchange;
mod upstream_token;

/// A client that never uses an environment proxy.
pub fn client() -> reqwest::Client {
    portcullis_tests::http_client().no_proxy().build().unwrap()
}

pub async fn json(response: reqwest::Response) -> serde_json::Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The values of `name` the upstream echo saw.
pub fn seen(echo: &serde_json::Value, name: &str) -> Vec<String> {
    echo["headers"][name].as_array().map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect()).unwrap_or_default()
}

/// The value of one series (`name{labels}`, exactly as written) in a Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}
