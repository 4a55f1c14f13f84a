//! The real parts of a registry login: an OpenID Provider for people
//! (`registry-idp.mjs`: authorization code + PKCE, rotating refresh tokens,
//! introspection), a private registry that checks bearer tokens by
//! introspection (`registry-server.mjs`), and a real Chromium that logs in
//! (`browser-login.mjs`). See `tests/node/README.md`.

use crate::node::{node_dir, ready_port, start};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

/// The OpenID Provider a person logs in at.
pub struct RegistryIdp {
    pub issuer: String,
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// Every `TOKEN <grant> <status>` line seen so far.
    token_calls: Vec<String>,
}

impl RegistryIdp {
    /// Access tokens live `access_ttl` seconds.
    pub async fn start(access_ttl: u32) -> RegistryIdp {
        let args = ["0".to_owned(), "--access-ttl".into(), access_ttl.to_string()];
        let (child, ready, lines) = start("registry-idp.mjs", &args).await;
        let issuer = ready.trim_start_matches("READY").trim().to_owned();
        RegistryIdp { issuer, child, lines, token_calls: Vec::new() }
    }

    /// Token-endpoint calls so far with this grant type and status (e.g. `refresh_token`, 200).
    pub fn token_calls(&mut self, grant: &str, status: u16) -> usize {
        while let Ok(line) = self.lines.try_recv() {
            if line.starts_with("TOKEN ") {
                self.token_calls.push(line);
            }
        }
        let wanted = format!("TOKEN {grant} {status}");
        self.token_calls.iter().filter(|l| l.trim() == wanted).count()
    }

    /// The next `n` token requests get a 500 with an HTML body.
    pub async fn fail_token_requests(&mut self, n: u32) {
        self.command(&format!("fail-token {n}"), "FAILING").await;
    }

    /// The next `n` token requests get `status` (a WAF's 403, a CDN's 404) with an HTML body.
    pub async fn fail_token_requests_with(&mut self, n: u32, status: u16) {
        self.command(&format!("fail-token {n} {status}"), "FAILING").await;
    }

    /// The next token request waits, before the provider handles it, until [`Self::release_token_request`].
    pub async fn hold_next_token_request(&mut self) {
        self.command("hold-token", "HOLDING").await;
    }

    /// Waits until the held token request has arrived (it is then in flight, unanswered).
    pub async fn token_request_held(&mut self) {
        self.wait_for("HELD").await;
    }

    /// Lets the held token request go on.
    pub async fn release_token_request(&mut self) {
        self.command("release-token", "RELEASED").await;
    }

    /// Revokes every grant, refresh token and access token the provider holds.
    pub async fn revoke_all(&mut self) {
        self.command("revoke-all", "REVOKED").await;
    }

    async fn command(&mut self, command: &str, answer: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{command}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        self.wait_for(answer).await;
    }

    /// Reads the provider's lines until one starts with `prefix`.
    async fn wait_for(&mut self, prefix: &str) {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), self.lines.recv()).await.expect("the provider answers").expect("provider alive");
            if line.starts_with("TOKEN ") {
                self.token_calls.push(line);
            } else if line.starts_with(prefix) {
                return;
            }
        }
    }
}

/// A private MCP registry that answers only requests whose bearer token the
/// provider's introspection calls active.
pub struct RegistryServer {
    pub url: String,
    _child: Child,
}

impl RegistryServer {
    pub async fn start(issuer: &str) -> RegistryServer {
        let (child, ready, _) = start("registry-server.mjs", &["0".into(), issuer.to_owned()]).await;
        RegistryServer { url: format!("http://127.0.0.1:{}", ready_port(&ready)), _child: child }
    }
}

/// Opens `authorize_url` in a real headless Chromium, logs in as `user` and
/// follows the redirect to the callback; returns the script's JSON report.
/// A verification URL of the device flow (it carries `user_code=`) is
/// completed on the provider's device pages instead.
pub async fn browser_login(authorize_url: &str, user: &str) -> serde_json::Value {
    let device = authorize_url.contains("user_code=");
    let output = Command::new("node")
        .arg(node_dir().join("browser-login.mjs"))
        .args(device.then_some("--device"))
        .args([authorize_url, "--user", user])
        .current_dir(node_dir())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("browser-login printed no JSON report: stdout={stdout:?} stderr={:?}", String::from_utf8_lossy(&output.stderr)))
}
