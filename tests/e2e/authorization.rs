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
    let audit = "[audit]\nfile = \"audit.jsonl\"\narguments = [\"message\"]\n";
    let gw = TestGateway::start(&format!("version = 1\n{audit}{}", mcp_workload(&server.url(), &op.issuer, authorize))).await.unwrap();
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
    // The audit file: one line per decision, with the argument the policy lets it keep.
    let audit_path = gw.policy_path.parent().unwrap().join("audit.jsonl");
    let record = wait_for_audit_line(&audit_path).await;
    assert_eq!(
        (record["decision"].as_str(), record["name"].as_str(), record["subject"].as_str()),
        (Some("deny"), Some("echo"), Some("eng-client")),
        "{record}"
    );
    assert_eq!(record["arguments"], json!({ "message": "hi" }), "{record}");
    assert_eq!(record["rule"], "facts");
    assert!(record["request_id"].as_str().is_some_and(|id| id.len() == 32), "{record}");

    // Methods that need no decision pass without asking (the authorizer refuses
    // everything it is asked): the server opens a session and answers a ping in it.
    let initialize = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "e2e", "version": "0" } } });
    let r = post(&url, &token, &initialize, &[]).await;
    assert_eq!(r.status(), 200);
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let ping = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" });
    let r = post(&url, &token, &ping, &[("mcp-session-id", &session)]).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains(r#""result":{}"#), "the server's own answer to the ping");

    // A batch: each call is decided; one refusal refuses the message.
    let batch = json!([ping, call(8, "add")]);
    let r = post(&url, &token, &batch, &[]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(json(r).await["id"], 8);

    // A list in a batch could not be told from the batch's other answers, and an id of
    // `1.0` from the `1` a server answers with: both are refused rather than filtered wrong.
    let list = json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/list" });
    assert_eq!(post(&url, &token, &json!([list, ping]), &[]).await.status(), 400);
    assert_eq!(post(&url, &token, &json!({ "jsonrpc": "2.0", "id": 1.0, "method": "tools/list" }), &[]).await.status(), 400);

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
    // Only a POST may carry a message: one in a GET or DELETE body would reach the server unread.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE, reqwest::Method::PUT] {
        let r = client()
            .request(method.clone(), &url)
            .header("authorization", format!("Bearer {token}"))
            .body(call(12, "deploy").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{method}");
    }

    // Without a valid token the inbound chain refuses first: nothing is
    // authorized, and a bad message is not even reported (401, not 400 or 413).
    assert_eq!(post(&url, "not-a-token", &call(11, "echo"), &[]).await.status(), 401);
    assert_eq!(post(&url, "not-a-token", &json!({ "method": 7 }), &[]).await.status(), 401);
    assert_eq!(post(&url, "not-a-token", &big, &[]).await.status(), 401);
}

/// The first line of the audit file, once the writer has synced it.
async fn wait_for_audit_line(path: &std::path::Path) -> Value {
    for _ in 0..50 {
        if let Some(line) = std::fs::read_to_string(path).ok().and_then(|text| text.lines().next().map(str::to_owned)) {
            return serde_json::from_str(&line).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no audit line in {}", path.display());
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
    assert_eq!((report["ok"].as_bool(), report["status"].as_u64()), (Some(false), Some(500)), "{report}");
    assert!(report["error"].as_str().is_some_and(|e| e.contains("component_failed") && e.contains("trap")), "{report}");
}

/// Cedar per tool (groups, annotations, resource URIs) and scope rules with
/// step-up, through the official SDK client, with SSE and with JSON responses.
#[tokio::test]
async fn cedar_and_scopes_decide_calls_filter_lists_and_ask_for_scopes() {
    let policies = r#"
@id("everyone-reads")
permit(principal, action == Action::"call_tool", resource)
when { resource has readOnlyHint && resource.readOnlyHint };

@id("engineering-all-tools")
permit(principal in Group::"engineering", action == Action::"call_tool", resource);

@id("prompts")
permit(principal, action == Action::"get_prompt", resource);

@id("public-files")
permit(principal, action == Action::"read_resource", resource)
when { resource.uri like "file:///public/*" };
"#;
    let op = OpenIdProvider::start().await;
    for json_responses in [false, true] {
        let server = McpServer::start(json_responses).await;
        let authorize = format!(
            "  [[workloads.authorize]]\n  component = \"builtin:scopes\"\n  config = {{ rules = [{{ tool = \"deploy\", scopes = [\"tools:deploy\"] }}] }}\n\
             \n  [[workloads.authorize]]\n  component = \"builtin:cedar\"\n  config = {{ policies = '''{policies}''' }}\n"
        );
        let gw = TestGateway::start(&format!("version = 1\n{}", mcp_workload(&server.url(), &op.issuer, &authorize))).await.unwrap();
        let url = format!("{}/mcp", gw.url("tools").await);
        let mode = if json_responses { "json" } else { "sse" };
        let run = async |client: &str, scope: &str, call: &[&str]| {
            let token = op.token(client, PUBLIC_URL, scope).await;
            let header = format!("Authorization: Bearer {token}");
            let mut args = vec!["http", url.as_str(), "--header", header.as_str(), "--list-all"];
            args.extend_from_slice(call);
            let report = mcp_client(&args, &[]).await;
            assert_eq!(report["ok"], true, "{mode} {client}: {report}");
            report
        };

        // Engineering may call every tool, but `deploy` needs a scope it lacks: hidden, and a call asks for it.
        let report = run("eng-client", "mcp:read", &["--call", "deploy", "--args", r#"{"env":"prod"}"#]).await;
        assert_eq!(report["tools"], json!(["echo", "add", "delete_file"]), "{mode}: {report}");
        assert_eq!(report["call"]["ok"], false, "{mode}: {report}");
        assert_eq!(report["call"]["status"], 403, "{mode}: {report}");
        let challenge = report["call"]["wwwAuthenticate"].as_str().unwrap_or_default();
        assert!(challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(r#"scope="tools:deploy""#), "{mode}: {report}");
        assert!(challenge.contains("resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\""), "{challenge}");
        // With the scope: listed, and the call goes through.
        let report = run("eng-client", "mcp:read tools:deploy", &["--call", "deploy", "--args", r#"{"env":"prod"}"#]).await;
        assert_eq!(report["tools"], json!(["echo", "add", "delete_file", "deploy"]), "{mode}: {report}");
        assert_eq!(report["call"]["ok"], true, "{mode}: {report}");

        // Ops may only use read-only tools: the others are hidden, and a call is refused with the client showing why.
        let report = run("ops-client", "mcp:read tools:deploy", &["--call", "delete_file", "--args", r#"{"path":"/etc/passwd"}"#]).await;
        assert_eq!(report["tools"], json!(["echo", "add"]), "{mode}: {report}");
        assert_eq!(report["call"]["ok"], false, "{mode}: {report}");
        assert_eq!(report["call"]["status"], 403, "{mode}: {report}");
        assert!(report["call"]["error"].as_str().unwrap_or_default().contains("delete_file"), "the SDK shows the reason: {report}");
        // Prompts all listed; resources and templates only under file:///public/.
        assert_eq!(report["prompts"], json!(["greeting", "incident_report"]), "{mode}: {report}");
        assert_eq!(report["resources"], json!(["file:///public/readme.md"]), "{mode}: {report}");
        assert_eq!(report["resourceTemplates"], json!(["file:///public/{name}"]), "{mode}: {report}");
        let report = run("ops-client", "mcp:read", &["--call", "add", "--args", r#"{"a":2,"b":3}"#]).await;
        assert_eq!(report["call"]["ok"], true, "{mode}: {report}");
    }
}

#[tokio::test]
async fn cedar_policies_are_checked_at_load() {
    let op = OpenIdProvider::start().await;
    let bad = "  [[workloads.authorize]]\n  component = \"builtin:cedar\"\n  config = { policies = 'permit(principal, action == Action::\"call_tool\" resource);' }\n";
    let error = TestGateway::start(&format!("version = 1\n{}", mcp_workload("http://127.0.0.1:9", &op.issuer, bad))).await.err().expect("refused");
    let text = format!("{error:#}");
    assert!(text.contains("workloads[0].authorize[0]") && text.contains("policies"), "{text}");
    // Authorizers need an MCP workload.
    let not_mcp = mcp_workload("http://127.0.0.1:9", &op.issuer, "  [[workloads.authorize]]\n  component = \"builtin:scopes\"\n")
        .replace(PUBLIC_URL, "http://127.0.0.1:8080");
    let error = TestGateway::start(&format!("version = 1\n{not_mcp}")).await.err().expect("refused");
    assert!(format!("{error:#}").contains("mcp = true"), "{error:#}");
}
