//! `builtin:token-exchange`'s real parts: the security token service
//! (`sts.mjs`: oidc-provider with an RFC 8693 grant), which exchanges tokens
//! of `oidc-provider.mjs` for its own; and the policy that puts the injector
//! behind an OIDC verifier that forwards the client's token to it.

use crate::node::{OpenIdProvider, start};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Child;

/// The client secret's name in the gateway's secret store, and its value at the STS.
pub const CLIENT_SECRET_NAME: &str = "sts:client-secret";
pub const CLIENT_SECRET: &str = "sts-secret";
/// The audience the exchanged tokens are for.
pub const AUDIENCE: &str = "https://mcp.example/api";
/// The resource of the gateway's workload: the client's tokens are for it.
pub const PUBLIC_URL: &str = "http://127.0.0.1:8080/mcp";

/// `sts.mjs`.
pub struct Sts {
    pub issuer: String,
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    exchanges: Vec<String>,
}

impl Sts {
    /// An STS that accepts tokens of `op` for `subjects`; `client_key_pem`:
    /// the private key whose public half the `gateway-jwt` client holds.
    pub async fn start(op: &OpenIdProvider, subjects: &[&str], client_key_pem: Option<&std::path::Path>) -> Sts {
        let key = client_key_pem.map(|path| path.display().to_string());
        let more: Vec<&str> = key.iter().flat_map(|path| ["--client-key-pem", path.as_str()]).collect();
        Sts::start_for(&op.issuer, subjects, &more).await
    }

    /// An STS for the tokens of `subject_issuer`, with more of `sts.mjs`'s
    /// options (`--subject-introspection` for an IdP of opaque tokens).
    pub async fn start_for(subject_issuer: &str, subjects: &[&str], more: &[&str]) -> Sts {
        let mut args = vec!["0".to_owned(), "--subject-issuer".into(), subject_issuer.to_owned(), "--subjects".into(), subjects.join(",")];
        args.extend(more.iter().map(|a| a.to_string()));
        let (child, ready, lines) = start("sts.mjs", &args).await;
        let issuer = ready.trim_start_matches("READY").trim().to_owned();
        Sts { issuer, child, lines, exchanges: Vec::new() }
    }

    /// Sends a stdin command (`mode 500`, `ttl 5`, ...) and waits until it took effect.
    pub async fn command(&mut self, command: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{command}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        let ok = format!("OK {command}");
        loop {
            let line = tokio::time::timeout(Duration::from_secs(10), self.lines.recv()).await.expect("the STS acknowledges").expect("the STS runs");
            if line == ok {
                return;
            }
            self.keep(line);
        }
    }

    fn keep(&mut self, line: String) {
        if line.starts_with("EXCHANGE ") {
            self.exchanges.push(line);
        }
    }

    /// Every `EXCHANGE <status> aud=.. sub=.. client=..` line so far: one per exchange request.
    pub fn exchanges(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            self.keep(line);
        }
        self.exchanges.clone()
    }
}

/// A workload in front of `upstream`: `builtin:oidc-verifier` trusting `op`
/// (forwarding the client's token to the injector), then
/// `builtin:token-exchange` toward `sts` with `config` (TOML inline-table
/// fields besides the endpoint and the audience) and `grants` (besides `http`).
pub fn policy(op: &str, sts: &str, upstream: &str, config: &str, grants: &str) -> String {
    format!(
        r#"version = 1
[[workloads]]
name = "mcp"
listen = "127.0.0.1:0"
upstream = "{upstream}"
public_url = "{PUBLIC_URL}"
  [[workloads.inbound]]
  component = "builtin:oidc-verifier"
  config = {{ issuer = "{op}", forward_token = true }}
  grants = {{ http = ["{op}"], http_private = true }}
  limits = {{ deadline_ms = 5000 }}
  [[workloads.outbound]]
  component = "builtin:token-exchange"
  config = {{ token_endpoint = "{sts}/token", audience = "{AUDIENCE}", scope = "mcp:read", timeout_ms = 1500, {config} }}
  grants = {{ http = ["{sts}"], http_private = true, {grants} }}
  limits = {{ deadline_ms = 4000 }}
"#
    )
}
