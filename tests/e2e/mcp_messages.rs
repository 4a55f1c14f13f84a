//! One reading of every MCP message (issue 22, items 2, 3, 4 and 14), against
//! the MCP server built with the official SDK (`tests/node/mcp-server.mjs`,
//! plain JSON responses, with sessions) behind the built-in Cedar authorizer on
//! an anonymous workload.

use crate::{client, json};
use portcullis_tests::gateway::{TestGateway, workload};
use portcullis_tests::node::McpServer;
use serde_json::{Value, json};

/// Ops-like rules: read-only tools, never a destructive one, one prompt, public files.
const POLICIES: &str = r#"
@id("tools")
permit(principal, action == Action::"call_tool", resource);

@id("no-destructive-tools")
forbid(principal, action == Action::"call_tool", resource)
when { resource has destructiveHint && resource.destructiveHint };

@id("greeting-only")
permit(principal, action == Action::"get_prompt", resource == Prompt::"greeting");

@id("public-files")
permit(principal, action == Action::"read_resource", resource)
when { resource.uri like "file:///public/*" };
"#;

/// A gateway in front of `server`, and the session the SDK server opened.
struct Session {
    _gw: TestGateway,
    url: String,
    id: String,
}

/// The gateway, with the Cedar authorizer, in front of `server`; its MCP URL.
async fn gateway(server: &McpServer) -> (TestGateway, String) {
    let authorize = format!("anonymous = true\n  [[workloads.authorize]]\n  component = \"builtin:cedar\"\n  config = {{ policies = '''{POLICIES}''' }}\n");
    let policy = workload("tools", &server.url(), &authorize).replace("public_url = \"http://127.0.0.1:8080\"", "public_url = \"http://127.0.0.1:8080/mcp\"");
    let gw = TestGateway::start(&format!("version = 1\n{policy}")).await.unwrap();
    let url = format!("{}/mcp", gw.url("tools").await);
    (gw, url)
}

impl Session {
    async fn open(server: &McpServer) -> Session {
        let (gw, url) = gateway(server).await;
        let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "e2e", "version": "0" } } });
        let r = raw(&url, None, &initialize.to_string()).await;
        assert_eq!(r.status(), 200);
        let id = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let session = Session { _gw: gw, url, id };
        assert_eq!(session.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await.status(), 202);
        session
    }

    /// POSTs `body` exactly as written (no JSON round trip).
    async fn post(&self, body: &str) -> reqwest::Response {
        raw(&self.url, Some(&self.id), body).await
    }
}

async fn raw(url: &str, session: Option<&str>, body: &str) -> reqwest::Response {
    let mut request = client()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_owned());
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.send().await.unwrap()
}

fn tool_names(body: &Value) -> Vec<&str> {
    body["result"]["tools"].as_array().map(|tools| tools.iter().filter_map(|t| t["name"].as_str()).collect()).unwrap_or_default()
}

/// Item 2: the SDK server reads ids as JavaScript numbers, so it answers
/// 9007199254740993 as 9007199254740992; the gateway matched ids byte for byte
/// and passed that answer unfiltered. Such ids are refused.
#[tokio::test]
async fn list_ids_beyond_i_json_are_refused_not_passed_unfiltered() {
    let server = McpServer::start(true).await;
    let session = Session::open(&server).await;
    let r = session.post(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#).await;
    assert_eq!(r.status(), 200);
    assert_eq!(tool_names(&json(r).await), ["echo", "add"], "a listed list is filtered");
    for id in ["9007199254740993", "-9007199254740993", "18446744073709551615"] {
        let r = session.post(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#)).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 400, "id {id}: {text}");
        assert!(text.contains("bad_mcp_message"), "{text}");
    }
    // The largest integer JavaScript holds exactly is still an id.
    let r = session.post(r#"{"jsonrpc":"2.0","id":9007199254740991,"method":"tools/list"}"#).await;
    assert_eq!(r.status(), 200);
    assert_eq!(tool_names(&json(r).await), ["echo", "add"]);
}

/// Item 2: a 2024-11-05 HTTP+SSE server (the SDK's `SSEServerTransport`)
/// answers every POST with 202 and sends the answer on its GET stream, which
/// was not filtered. Behind authorizers, the server's stream is cut off at its
/// `endpoint` event (and at any response), and a 202 to a list request, which
/// carries no list to filter, is unfilterable (502).
#[tokio::test]
async fn the_legacy_sse_transport_is_not_served_behind_authorizers() {
    let server = McpServer::start_legacy_sse().await;
    let (_gw, url) = gateway(&server).await;
    // Through the gateway: the stream ends before its endpoint event reaches the client.
    let mut stream = client().get(&url).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let mut seen = String::new();
    let read = async {
        while let Ok(Some(chunk)) = stream.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("endpoint") {
                break;
            }
        }
    };
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), read).await.is_ok();
    assert!(ended && !seen.contains("endpoint"), "the legacy transport's endpoint reached the client: {seen}");

    // A session opened at the server itself, its POSTs sent through the gateway.
    let mut direct = client().get(format!("{}/mcp", server.url())).header("accept", "text/event-stream").send().await.unwrap();
    let mut events = String::new();
    while !events.contains("\n\n") {
        let chunk = direct.chunk().await.unwrap().expect("the endpoint event");
        events.push_str(&String::from_utf8_lossy(&chunk));
    }
    let endpoint = events.lines().find_map(|line| line.strip_prefix("data: ")).expect("an endpoint event").trim().to_owned();
    let post_url = format!("{}{endpoint}", url.trim_end_matches("/mcp"));
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": { "name": "e2e", "version": "0" } } });
    assert_eq!(raw(&post_url, None, &initialize.to_string()).await.status(), 202, "not a list: passes as the server answered");
    let r = raw(&post_url, None, r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 502, "{text}");
    assert!(text.contains("list_unfilterable"), "{text}");
}

/// Item 3: a key that differs from one the gateway reads only by case is a
/// second reading for servers that match keys case-insensitively.
#[tokio::test]
async fn keys_equal_under_case_folding_are_refused() {
    let server = McpServer::start(true).await;
    let session = Session::open(&server).await;
    for body in [
        // Authorized as `echo`, run as `delete_file` by a case-insensitive server.
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","Name":"delete_file","arguments":{"message":"hi"}}}"#,
        // Arguments read twice: a condition on `message` and a server reading `Message`.
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi","Message":"other"}}}"#,
        // Exact duplicates: the gateway's parser keeps the last, others the first.
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","name":"delete_file","arguments":{"message":"hi"}}}"#,
        // A response to the gateway, a call to a server that reads `Method`.
        r#"{"jsonrpc":"2.0","id":5,"result":{},"Method":"tools/call","Params":{"name":"delete_file","arguments":{"path":"/x"}}}"#,
        // Long s folds to `s` (Go's EqualFold): `paramſ` is `params`.
        r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}},"paramſ":{"name":"delete_file"}}"#,
    ] {
        let r = session.post(body).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains("bad_mcp_message"), "{text}");
    }
    // A tool's own argument may be called `Name` (once the tools are listed: the policy reads annotations).
    assert_eq!(session.post(r#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#).await.status(), 200);
    let ok = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi","Name":"x"}}}"#;
    assert_eq!(session.post(ok).await.status(), 200);
}

/// Item 4: resource URIs get the HTTP path rule before any authorizer is
/// asked; `like "file:///public/*"` matched them raw.
#[tokio::test]
async fn resource_uris_that_could_resolve_elsewhere_are_refused() {
    let server = McpServer::start(true).await;
    let session = Session::open(&server).await;
    let read = |uri: &str| format!(r#"{{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{{"uri":"{uri}"}}}}"#);
    let r = session.post(&read("file:///public/readme.md")).await;
    assert_eq!(r.status(), 200);
    assert!(json(r).await["result"]["contents"][0]["text"].as_str().unwrap().contains("Public readme"));
    assert_eq!(session.post(&read("file:///secret/keys.txt")).await.status(), 403, "the policy holds");
    for uri in [
        "file:///public/../secret/keys.txt",
        "file:///public/%2e%2e/secret/keys.txt",
        "file:///public/.%2E/secret/keys.txt",
        "file:///public/./readme.md",
        "file:///public/..%2fsecret/keys.txt",
        "file:///public/%5c..%5csecret",
        r"file:///public/..\\secret\\keys.txt",
        "file:///public/%73ecret",
        "FILE:///public/readme.md",
        "file://localhost/public/readme.md",
        "file:////public/readme.md",
        "file:///public//readme.md",
    ] {
        let r = session.post(&read(uri)).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 400, "{uri}: {text}");
        assert!(text.contains("bad_mcp_message"), "{uri}: {text}");
    }
}

/// Item 14: `completion/complete` is decided as the `prompts/get` or
/// `resources/read` of its `ref`; before, it passed without asking.
#[tokio::test]
async fn completion_is_decided_as_its_reference() {
    let server = McpServer::start(true).await;
    let session = Session::open(&server).await;
    let complete = |reference: Value| {
        json!({ "jsonrpc": "2.0", "id": 3, "method": "completion/complete", "params": {
            "ref": reference, "argument": { "name": "id", "value": "INC" } } })
        .to_string()
    };
    let r = session.post(&complete(json!({ "type": "ref/prompt", "name": "incident_report" }))).await;
    let status = r.status();
    let body = json(r).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["id"], 3, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("incident_report"), "{body}");
    let r = session.post(&complete(json!({ "type": "ref/resource", "uri": "file:///secret/{name}" }))).await;
    assert_eq!(r.status(), 403);
    // What the caller may use, it may complete.
    assert_ne!(session.post(&complete(json!({ "type": "ref/prompt", "name": "greeting" }))).await.status(), 403);
    assert_ne!(session.post(&complete(json!({ "type": "ref/resource", "uri": "file:///public/{name}" }))).await.status(), 403);
    // A reference the gateway cannot read is refused, not passed.
    for reference in
        [json!({ "type": "ref/tool", "name": "echo" }), json!({ "type": "ref/prompt" }), json!({ "type": "ref/resource", "uri": "file:///public/../x" })]
    {
        assert_eq!(session.post(&complete(reference.clone())).await.status(), 400, "{reference}");
    }
}

/// Item 14: before anyone listed the tools, the gateway did not know that
/// `delete_file` is destructive, and a policy that forbids destructive tools
/// let it run. A call of a tool not yet listed is refused when a policy reads
/// annotations; once listed, it is decided with them.
#[tokio::test]
async fn a_tool_not_yet_listed_is_refused_where_policies_read_annotations() {
    let server = McpServer::start(true).await;
    let session = Session::open(&server).await;
    let call = |tool: &str, arguments: Value| {
        json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": { "name": tool, "arguments": arguments } }).to_string()
    };
    let r = session.post(&call("delete_file", json!({ "path": "/etc/passwd" }))).await;
    let status = r.status();
    let body = json(r).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("tools/list"), "the client is told what to do: {body}");
    assert_eq!(session.post(&call("echo", json!({ "message": "hi" }))).await.status(), 403, "not listed yet either");
    // Once listed: decided with the server's annotations.
    assert_eq!(session.post(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#).await.status(), 200);
    assert_eq!(session.post(&call("delete_file", json!({ "path": "/etc/passwd" }))).await.status(), 403);
    let r = session.post(&call("echo", json!({ "message": "hi" }))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["result"]["content"][0]["text"], "Echo: hi");
}
