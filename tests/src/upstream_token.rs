//! Per-user upstream tokens' real parts (`builtin:upstream-token`): an MCP
//! server that checks every Bearer token at the company IdP (RFC 7662
//! introspection, `mcp-server.mjs --introspect`) and answers `whoami` with
//! the token's user; the policy that puts the injector behind the
//! authorization server; and a tool call as an MCP client makes it.

use crate::node::{ready_port, start};
use crate::oauth::{ServerPolicy, TOKEN_KEY_SECRET, client};
use reqwest::StatusCode;
use tokio::process::Child;

/// `mcp-server.mjs --stateless --json --introspect <issuer> --headers-tool`.
pub struct IntrospectingMcpServer {
    pub port: u16,
    _child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl IntrospectingMcpServer {
    pub async fn start(issuer: &str) -> IntrospectingMcpServer {
        IntrospectingMcpServer::start_with(issuer, &[]).await
    }

    /// With more of `mcp-server.mjs`'s options (`--introspect-header x-tracker-token <issuer>`).
    pub async fn start_with(issuer: &str, more: &[&str]) -> IntrospectingMcpServer {
        let args: Vec<String> = ["0", "--stateless", "--json", "--headers-tool", "--introspect", issuer].iter().chain(more).map(|a| a.to_string()).collect();
        let (child, ready, lines) = start("mcp-server.mjs", &args).await;
        IntrospectingMcpServer { port: ready_port(&ready), _child: child, lines, seen: Vec::new() }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every `INTROSPECTED <active|inactive|failed> sub=<sub>` line so far: one per request.
    pub fn introspected(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            if line.starts_with("INTROSPECTED ") {
                self.seen.push(line);
            }
        }
        self.seen.clone()
    }
}

/// The shared store namespace of the server and the injector.
pub const NAMESPACE: &str = "sessions";

/// Puts `builtin:upstream-token` for the upstream `corp` on `policy`'s
/// workload, sharing the server's store namespace; tokens are renewed
/// `renew_before` seconds before they expire.
pub fn inject_user_tokens(policy: &mut ServerPolicy, renew_before: u64) {
    policy.store_grant = format!("\"{NAMESPACE}\"");
    policy.more = injector("corp", &policy.idp, &format!("renew_before_seconds = {renew_before}"));
}

/// A `builtin:upstream-token` entry for `provider` (whose token endpoint is
/// at `idp`), in the server's store namespace; `config`: more of its config.
pub fn injector(provider: &str, idp: &str, config: &str) -> String {
    format!(
        r#"  [[workloads.outbound]]
  component = "builtin:upstream-token"
  config = {{ provider = "{provider}", token_key_secret = "{TOKEN_KEY_SECRET}", {config} }}
  grants = {{ http = ["{idp}"], http_private = true, secrets = ["{TOKEN_KEY_SECRET}"], store = "{NAMESPACE}" }}
  limits = {{ deadline_ms = 8000 }}
"#
    )
}

/// What a `tools/call` through the gateway got.
#[derive(Debug)]
pub struct Called {
    pub status: StatusCode,
    /// The tool's first text content (200 only).
    pub text: Option<String>,
    pub www_authenticate: Option<String>,
}

/// Calls `tool` (no arguments) at `mcp_url` with `token`, as an MCP client's POST.
pub async fn call_tool(mcp_url: &str, token: &str, tool: &str) -> Called {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}});
    let response = client().post(mcp_url).bearer_auth(token).header("accept", "application/json, text/event-stream").json(&body).send().await.unwrap();
    let status = response.status();
    let www_authenticate = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    let text = answer["result"]["content"][0]["text"].as_str().map(str::to_owned);
    Called { status, text, www_authenticate }
}

/// `read()` once it gives `expected`, or what it gives after 5 s: a child
/// process prints its line about a request after it answered it, so the
/// line may arrive after the answer the test already has.
pub async fn settled<T: PartialEq>(expected: &T, mut read: impl FnMut() -> T) -> T {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let value = read();
        if value == *expected || tokio::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
