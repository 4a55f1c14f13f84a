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
mod edges;
mod fair_lanes;
mod faults;
mod first_run;
mod keychain;
mod limits;
mod logs;
mod mcp_messages;
mod oidc;
mod plugin_kit;
mod plugins;
mod proxy;
mod registry_token;
mod reload;
mod shared_key;
mod slow_body;

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
