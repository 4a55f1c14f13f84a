//! The end-to-end test harness: fixture components, a real upstream HTTP server,
//! and a gateway started in-process on ephemeral loopback ports.

pub mod gateway;
pub mod key_server;
pub mod leaks;
pub mod login;
pub mod node;
pub mod oauth;
pub mod per_request;
pub mod plugin;
pub mod prometheus;
pub mod redis;
pub mod registry;
pub mod threads;
pub mod token_exchange;
pub mod upstream;
pub mod upstream_token;

use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// A fixture component built by this crate's build script.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("FIXTURES_DIR")).join(format!("{name}.wasm"))
}

/// The sha256 pin of a file.
pub fn sha256_of(path: &std::path::Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("reading a fixture")))
}

/// `[components]` entries for every fixture, to prepend to test policies.
pub fn fixture_components() -> String {
    let mut out = String::new();
    for (name, file) in [
        ("behaviours", "behaviours"),
        ("inject-header", "inject_header"),
        ("method-gate", "method_gate"),
        ("serve", "serve"),
        ("test-authorizer", "test_authorizer"),
    ] {
        let path = fixture(file);
        out.push_str(&format!("[components.{name}]\npath = {:?}\nsha256 = \"{}\"\n\n", path.display().to_string(), sha256_of(&path)));
    }
    out
}

/// The tests' HTTP client builder. reqwest is built without a crypto provider
/// of its own (the workspace `Cargo.toml` says why), so ring is installed as
/// the process's default first. Only the roots a test adds are trusted.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().tls_certs_only([])
}

/// Logs for failing tests (`cargo test -- --nocapture` shows them): the gateway
/// at trace level, everything else at warn, unless `RUST_LOG` says otherwise;
/// every line is checked for registered secrets ([`leaks`]).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,portcullis=trace".into()))
        .with_writer(leaks::Writer)
        .with_ansi(false)
        .try_init();
}
