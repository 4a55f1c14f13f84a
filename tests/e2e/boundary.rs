//! The gateway owns everything that crosses its boundary: identity headers,
//! consumed credentials, the request path, framing. Each test here is a hole
//! a security review found open (issue "Hardening", items 1-3, 13, 14, 18).

use crate::{client, json, seen};
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::upstream::TestUpstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `raw` bytes as one HTTP/1.1 request and returns the status and the body.
async fn raw(addr: std::net::SocketAddr, raw: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n{extra}\r\n").into_bytes()
}

#[tokio::test]
async fn client_sent_identity_and_proxy_headers_never_reach_the_upstream() {
    let upstream = TestUpstream::start().await;
    let body = format!("strip_request_headers = [\"x-tenant\"]\n{}", behaviour(r#"mode = "allow", tag = "a", claim_header = "x-forwarded-email""#));
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &body))).await.unwrap();
    let r = client()
        .get(gw.url("w").await)
        .header("x-forwarded-user", "admin")
        .header("x-forwarded-email", "forged@example.com")
        .header("x-forwarded-groups", "admins")
        .header("x-forwarded-prefix", "/admin")
        .header("x-real-ip", "10.0.0.1")
        .header("x-client-ip", "10.0.0.2")
        .header("true-client-ip", "10.0.0.3")
        .header("x-original-url", "/admin")
        .header("x-original-uri", "/admin")
        .header("x-rewrite-url", "/admin")
        .header("forwarded", "for=10.0.0.4")
        .header("x-tenant", "other-tenant")
        .header("x-fixture-allowed-by", "forged")
        .header("x-fixture-claim", "alice@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a claim header named x-forwarded-email is allowed (oauth2-proxy's convention)");
    let echo = json(r).await;
    for name in [
        "x-forwarded-user",
        "x-forwarded-groups",
        "x-forwarded-prefix",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "x-original-url",
        "x-original-uri",
        "x-rewrite-url",
        "forwarded",
        "x-tenant",
    ] {
        assert!(seen(&echo, name).is_empty(), "{name} reached the upstream: {echo}");
    }
    assert_eq!(seen(&echo, "x-forwarded-email"), ["alice@example.com"], "only the component's value");
    assert_eq!(seen(&echo, "x-fixture-allowed-by"), ["a"], "a produced header is the component's alone");
    assert_eq!(seen(&echo, "x-forwarded-for"), ["127.0.0.1"]);
}

#[tokio::test]
async fn another_components_allow_does_not_let_credentials_or_forged_claims_through() {
    let upstream = TestUpstream::start().await;
    // A third-party-style component first; the built-ins after it never run,
    // yet the gateway still enforces their manifests.
    let oidc = r#"  [[workloads.inbound]]
  component = "builtin:oidc-verifier"
  config = { issuer = "https://issuer.example", jwks = { keys = [] }, claims_to_headers = { email = "x-user-email" } }
"#;
    let shared_key = "  [[workloads.inbound]]\n  component = \"builtin:shared-key\"\n";
    let first = behaviour(r#"mode = "allow", tag = "api-key", only_if_header = "x-api-key", consumes = ["x-api-key"]"#);
    let policy = format!("version = 1\n{}", workload("w", &upstream.url(), &format!("{first}{oidc}{shared_key}")));
    let gw = TestGateway::start(&policy).await.unwrap();
    let r = client()
        .get(gw.url("w").await)
        .header("x-api-key", "third-party-key")
        .header("x-user-email", "ceo@example.com")
        .header("authorization", "Bearer not-checked-by-anyone")
        .header("x-portcullis-key", "the-shared-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo = json(r).await;
    assert_eq!(seen(&echo, "x-fixture-allowed-by"), ["api-key"]);
    assert!(seen(&echo, "x-user-email").is_empty(), "a forged claim header is stripped: {echo}");
    assert!(seen(&echo, "x-portcullis-key").is_empty(), "the shared key is never forwarded: {echo}");
    assert!(seen(&echo, "authorization").is_empty(), "the bearer token is consumed by the verifier: {echo}");
    assert!(seen(&echo, "x-api-key").is_empty(), "the allowing component's own credential is consumed: {echo}");
}

#[tokio::test]
async fn paths_cannot_escape_the_upstream_base_path() {
    let upstream = TestUpstream::start().await;
    let base = format!("{}/api/team-a", upstream.url());
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &base, &behaviour(r#"mode = "allow", tag = "a""#)))).await.unwrap();
    let addr = gw.addr("w").await;
    for path in [
        "/../../admin",
        "/%2e%2e/%2e%2e/admin",
        "/%2E%2e/admin",
        "/.%2e/admin",
        "/x/../../admin",
        "/./admin",
        "/a%2f..%2f..%2fadmin",
        "/a%5c..%5cadmin",
        "/a\\..\\admin",
    ] {
        let (status, body) = raw(addr, &get(path, "")).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("bad_target"), "{path}: {body}");
    }
    let (status, _) = raw(addr, b"OPTIONS * HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").await;
    assert_eq!(status, 400, "asterisk form");
    for method in ["TRACE", "CONNECT"] {
        let target = if method == "CONNECT" { "127.0.0.1:80" } else { "/" };
        let (status, _) = raw(addr, format!("{method} {target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").as_bytes()).await;
        assert_eq!(status, 405, "{method}");
    }
    assert_eq!(upstream.hits(), 0, "nothing refused reached the upstream");
    // What is accepted lands below the base path, exactly as the components saw it.
    let (status, body) = raw(addr, &get("/tools/a%20b?x=1", "")).await;
    assert_eq!(status, 200);
    let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["path"], "/api/team-a/tools/a%20b?x=1");
}

#[tokio::test]
async fn credential_headers_must_be_text_and_framing_is_normalised() {
    let upstream = TestUpstream::start().await;
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &behaviour(r#"mode = "allow", tag = "a""#)))).await.unwrap();
    let addr = gw.addr("w").await;
    let mut bad = get("/", "x-fixture-credential: ");
    bad.truncate(bad.len() - 2);
    bad.extend_from_slice(b"\xff\xfe\r\n\r\n");
    let (status, body) = raw(addr, &bad).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("credential"), "{body}");

    // hyper itself refuses `Content-Length: 5, 5`; two equal fields it accepts, and we make them one.
    let (status, _) = raw(addr, b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-length: 5, 5\r\n\r\nhello").await;
    assert_eq!(status, 400);
    let post = b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\nhello";
    let (status, body) = raw(addr, post).await;
    assert_eq!(status, 200, "{body:?}");
    let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen(&echo, "content-length"), ["5"], "one value toward the upstream");
    assert_eq!(echo["body_bytes"], 5);
}

#[tokio::test]
async fn manifests_and_edits_that_touch_gateway_headers_are_refused() {
    let upstream = TestUpstream::start().await;
    // At load, with the policy location: a consumed `host`, a produced `x-forwarded-for`.
    for entry in [
        "  [[workloads.inbound]]\n  component = \"builtin:shared-key\"\n  config = { header = \"host\" }\n".to_owned(),
        behaviour(r#"mode = "allow", tag = "a", claim_header = "x-forwarded-for""#),
        behaviour(r#"mode = "allow", tag = "a", claim_header = "keep-alive""#),
    ] {
        let err = format!("{:#}", TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &entry))).await.err().unwrap());
        assert!(err.contains("workloads[0].inbound[0]") && err.contains("only the gateway manages"), "{err}");
    }
    // A header produced by one authenticator cannot be another's credential:
    // it is stripped from the client's request before either runs.
    let clash = format!(
        "{}{}",
        behaviour(r#"mode = "allow", tag = "a", consumes = ["x-team-token"]"#),
        behaviour(r#"mode = "allow", tag = "b", claim_header = "x-team-token""#)
    );
    let err = format!("{:#}", TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &clash))).await.err().unwrap());
    assert!(err.contains("workloads[0].inbound") && err.contains("consumes as a credential"), "{err}");
    // At run time: an edit the manifest does not declare fails closed.
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &behaviour(r#"mode = "undeclared-edit""#)))).await.unwrap();
    let r = client().get(gw.url("w").await).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(json(r).await["reason"], "bad_verdict");
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn components_read_the_request_through_the_lazy_view() {
    let upstream = TestUpstream::start().await;
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &behaviour(r#"mode = "echo""#)))).await.unwrap();
    let r = client()
        .post(format!("{}/mcp/x?a=1", gw.url("w").await))
        .header("x-echo", "one")
        .header("X-Echo", "two")
        .header("x-forwarded-user", "forged")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 418);
    let seen_by_component = json(r).await;
    assert_eq!(seen_by_component["method"], "POST");
    assert_eq!(seen_by_component["scheme"], "http");
    assert_eq!(seen_by_component["authority"], gw.addr("w").await.to_string());
    assert_eq!(seen_by_component["path"], "/mcp/x");
    assert_eq!(seen_by_component["query"], "a=1");
    assert_eq!(seen_by_component["header"], serde_json::json!(["one", "two"]), "any case, in order");
    assert!(seen_by_component["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    let names: Vec<&str> = seen_by_component["headers"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(!names.contains(&"x-forwarded-user"), "components see what the upstream would: {names:?}");
}

#[tokio::test]
async fn the_admin_listener_checks_host_and_origin() {
    let upstream = TestUpstream::start().await;
    let policy = format!(
        "version = 1\n[admin]\nlisten = \"127.0.0.1:0\"\nallowed_hosts = [\"metrics.internal\"]\n{}",
        workload("w", &upstream.url(), "anonymous = true\n")
    );
    let gw = TestGateway::start(&policy).await.unwrap();
    let admin = gw.gateway.admin_addr().await.unwrap();
    let status = |host: &str, origin: Option<&str>| {
        let mut request = client().get(format!("http://{admin}/metrics")).header("host", host);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&admin.to_string(), None).await, 200);
    assert_eq!(status(&format!("localhost:{}", admin.port()), None).await, 200);
    assert_eq!(status("metrics.internal", None).await, 200);
    assert_eq!(status(&format!("evil.example:{}", admin.port()), None).await, 403, "DNS rebinding");
    assert_eq!(status(&admin.to_string(), Some("https://evil.example")).await, 403, "a foreign page");
    let r = client().get(format!("http://{admin}/metrics")).header("host", format!("evil.example:{}", admin.port())).send().await.unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("host_not_allowed") && !body.contains("portcullis_"), "the refusal, and no metrics: {body}");
}
