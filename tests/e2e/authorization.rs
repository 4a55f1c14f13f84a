//! MCP-aware authorization with real parts: the official MCP SDK client, an
//! MCP server built with the official SDK (SSE and plain JSON responses),
//! OIDC access tokens from `oidc-provider` with scopes and groups, and the
//! built-in Cedar and scopes authorizers.

use crate::{client, json};
use portcullis_tests::gateway::{TestGateway, workload};
use portcullis_tests::node::{McpServer, OpenIdProvider, mcp_client};
use serde_json::{Value, json};

const PUBLIC_URL: &str = "http://127.0.0.1:8080/mcp";

/// An MCP workload behind the OIDC verifier, with `authorize` entries.
fn mcp_workload(upstream: &str, issuer: &str, authorize: &str) -> String {
    let body = format!(
        "  [[workloads.inbound]]\n  component = \"builtin:oidc-verifier\"\n  config = {{ issuer = \"{issuer}\" }}\n  grants = {{ http = [\"{issuer}\"], http_private = true }}\n  limits = {{ deadline_ms = 3000 }}\n{authorize}"
    );
    workload("tools", upstream, &body).replace("public_url = \"http://127.0.0.1:8080\"", &format!("public_url = \"{PUBLIC_URL}\""))
}

/// A POST of one JSON-RPC message with `token`.
async fn post(url: &str, token: &str, message: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client()
        .post(url)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(message.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn call(id: u64, tool: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": tool, "arguments": { "message": "hi" } } })
}

#[tokio::test]
async fn messages_are_read_once_checked_and_bounded() {
    let server = McpServer::start(true).await;
    let op = OpenIdProvider::start().await;
    let authorize =
        "  [[workloads.authorize]]\n  component = \"test-authorizer\"\n  config = { mode = \"facts\" }\n  [workloads.limits]\n  max_mcp_message_bytes = 4096\n";
    let gw = TestGateway::start(&format!("version = 1\n{}", mcp_workload(&server.url(), &op.issuer, authorize))).await.unwrap();
    let url = format!("{}/mcp", gw.url("tools").await);
    let token = op.token("eng-client", PUBLIC_URL, "mcp:read").await;

    // The authorizer sees the call, the caller and the request's calls, as parsed once by the gateway.
    let r = post(&url, &token, &call(7, "echo"), &[]).await;
    assert_eq!(r.status(), 403);
    let body = json(r).await;
    assert_eq!(body["id"], 7, "{body}");
    assert_eq!(body["error"]["code"], -32003);
    let facts: Value = serde_json::from_str(body["error"]["message"].as_str().unwrap()).unwrap();
    assert_eq!(facts["call"]["method"], "tools/call");
    assert_eq!(facts["call"]["name"], "echo");
    assert_eq!(facts["call"]["arguments"], r#"{"message":"hi"}"#);
    assert_eq!(facts["subject"], "eng-client");
    assert_eq!(facts["request_calls"].as_array().unwrap().len(), 1);

    // Methods that need no decision pass without asking (the authorizer refuses everything it is asked).
    let ping = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" });
    assert_ne!(post(&url, &token, &ping, &[]).await.status(), 403);

    // A batch: each call is decided; one refusal refuses the message.
    let batch = json!([ping, call(8, "add")]);
    let r = post(&url, &token, &batch, &[]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(json(r).await["id"], 8);

    // Headers that disagree with the body, bodies that are not JSON-RPC, and oversize messages.
    for (headers, what) in [(vec![("mcp-method", "tools/list")], "Mcp-Method"), (vec![("mcp-method", "tools/call"), ("mcp-name", "deploy")], "Mcp-Name")] {
        let r = post(&url, &token, &call(9, "echo"), &headers).await;
        assert_eq!(r.status(), 400, "{what}");
        assert_eq!(json(r).await["error"], "bad_mcp_message");
    }
    for body in ["not json", "[]", r#"{"id":1,"method":"tools/list"}"#, r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#] {
        let r =
            client().post(&url).header("authorization", format!("Bearer {token}")).header("content-type", "application/json").body(body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    let big = call(10, &"x".repeat(5000));
    assert_eq!(post(&url, &token, &big, &[]).await.status(), 413);

    // Without a valid token the inbound chain refuses first: nothing is authorized.
    assert_eq!(post(&url, "not-a-token", &call(11, "echo"), &[]).await.status(), 401);
}

#[tokio::test]
async fn an_authorizer_that_traps_fails_closed() {
    let server = McpServer::start(true).await;
    let op = OpenIdProvider::start().await;
    let authorize = "  [[workloads.authorize]]\n  component = \"test-authorizer\"\n  config = { mode = \"trap\" }\n";
    let gw = TestGateway::start(&format!("version = 1\n{}", mcp_workload(&server.url(), &op.issuer, authorize))).await.unwrap();
    let url = format!("{}/mcp", gw.url("tools").await);
    let token = op.token("eng-client", PUBLIC_URL, "mcp:read").await;
    let r = post(&url, &token, &call(1, "echo"), &[]).await;
    assert_eq!(r.status(), 500);
    assert_eq!(json(r).await["error"], "component_failed");
    // The SDK client: the listing itself is refused (tools/list is decided too).
    let header = format!("Authorization: Bearer {token}");
    let report = mcp_client(&["http", &url, "--header", &header], &[]).await;
    assert_eq!(report["ok"], false, "{report}");
}
