//! `[workloads.server]`: the routes a `serve` component declares are answered
//! by it, ahead of the inbound chain and never upstream; the gateway keeps
//! the methods (405), the body's bounds (413, 408), the response's framing,
//! and fails closed when the component does (500).

use crate::{client, json};
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::upstream::TestUpstream;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A workload whose chain admits nobody (the behaviours fixture abstains),
/// guarded by an OIDC verifier too (for the RFC 9728 document), with the
/// `serve` fixture as its server.
fn policy(upstream: &TestUpstream, server_config: &str) -> String {
    let verifier = "  [[workloads.inbound]]\n  component = \"builtin:oidc-verifier\"\n  config = { issuer = \"https://idp.example.com\", jwks_uri = \"https://idp.example.com/jwks\" }\n";
    let body = format!(
        "limits = {{ body_timeout_ms = 500, min_body_rate_kib = 1024 }}\n{}{verifier}  [workloads.server]\n  component = \"serve\"\n  config = {{ {server_config} }}\n",
        behaviour(r#"mode = "abstain""#)
    );
    format!("version = 1\n{}", workload("as", &upstream.url(), &body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_routes_are_answered_by_it_ahead_of_the_chain_and_never_upstream() {
    let upstream = TestUpstream::start().await;
    let gw = TestGateway::start(&policy(&upstream, "")).await.unwrap();
    let url = gw.url("as").await;
    let c = client();

    // A route: the component's answer, not cached unless it says so, with the gateway's request id.
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let r = c.request(method.clone(), format!("{url}/hello")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{method}");
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(r.headers().contains_key("x-request-id"));
        assert_eq!(r.text().await.unwrap(), if method == reqwest::Method::GET { "hello" } else { "" });
    }
    // Another method: 405 with the route's methods, before the component runs.
    for (method, path, allow) in
        [(reqwest::Method::POST, "/hello", "GET, HEAD"), (reqwest::Method::GET, "/echo", "POST"), (reqwest::Method::DELETE, "/echo", "POST")]
    {
        let r = c.request(method.clone(), format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
    }

    // The body reaches the component whole; the client's proxy headers do not;
    // the framing headers the component set are the gateway's own.
    let form = "grant_type=authorization_code&code=abc";
    let r = c
        .post(format!("{url}/echo?x=1"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-status", "201")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("connection").is_none_or(|v| v != "close"), "{:?}", r.headers());
    assert!(r.headers().get("transfer-encoding").is_none(), "{:?}", r.headers());
    let length: usize = r.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let echo = json(r).await;
    assert!(length > 1, "the gateway's own content-length, not the component's");
    assert_eq!(echo["body"], form);
    assert_eq!((echo["method"].as_str(), echo["path"].as_str(), echo["query"].as_str()), (Some("POST"), Some("/echo"), Some("x=1")));
    assert_eq!(echo["headers"]["content-type"], "application/x-www-form-urlencoded");
    assert!(echo["headers"].get("x-forwarded-for").is_none(), "{echo}");

    // 64 KiB is read; one byte more is refused with 413, declared or streamed, before the component runs.
    let full = "a".repeat(64 * 1024);
    let r = c.post(format!("{url}/echo")).body(full.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["body"].as_str().map(str::len), Some(64 * 1024));
    let over = format!("{full}a");
    let r = c.post(format!("{url}/echo")).body(over.clone()).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let mut chunked = b"POST /echo HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for chunk in over.as_bytes().chunks(4096) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(gw.addr("as").await, &chunked).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "a body without a length is cut off at the bound: {answer}");

    // A trap, or a status that is no answer, fails closed (500); the next call is served.
    for (path, reason) in [("/trap", "trap"), ("/bad-status", "bad_verdict")] {
        let r = c.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 500, "{path}");
        let body = json(r).await;
        assert_eq!((body["error"].as_str(), body["component"].as_str(), body["reason"].as_str()), (Some("component_failed"), Some("serve"), Some(reason)));
        assert_eq!(c.get(format!("{url}/hello")).send().await.unwrap().status(), 200);
    }

    // Off the routes, the chain decides as ever (here: nobody is admitted).
    for path in ["/hello/", "/echo/x", "/other"] {
        assert_eq!(c.get(format!("{url}{path}")).send().await.unwrap().status(), 401, "{path}");
    }
    assert_eq!(upstream.hits(), 0, "nothing reached the upstream");

    // The protected-resource document names the server first.
    let metadata = json(c.get(format!("{url}/.well-known/oauth-protected-resource")).send().await.unwrap()).await;
    assert_eq!(metadata["authorization_servers"], serde_json::json!(["http://127.0.0.1:8080", "https://idp.example.com"]));

    let metrics = gw.metrics().await;
    for (outcome, n) in [("served", 6.0), ("method_not_allowed", 3.0), ("body_too_large", 2.0), ("component_failed", 2.0)] {
        let series = format!("portcullis_requests_total{{workload=\"as\",outcome=\"{outcome}\"}}");
        assert_eq!(crate::metric(&metrics, &series), Some(n), "{series} in\n{metrics}");
    }
}

/// Sends `request` on a new connection and gives the start of the answer.
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer)).await.unwrap().unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

/// A body that stops arriving is answered 408 at the workload's body pace;
/// the component never sees it.
#[tokio::test]
async fn a_slow_body_on_a_route_times_out() {
    let upstream = TestUpstream::start().await;
    let gw = TestGateway::start(&policy(&upstream, "")).await.unwrap();
    let started = std::time::Instant::now();
    let answer = raw(gw.addr("as").await, b"POST /echo HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-length: 100\r\n\r\nhalf").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(450), "at the pace, not before: {:?}", started.elapsed());
}

/// What a server declares is checked at load, against its policy entry.
#[tokio::test]
async fn a_component_without_serve_or_with_bad_routes_is_refused_at_load() {
    let upstream = TestUpstream::start().await;
    let not_a_server = policy(&upstream, "").replace("component = \"serve\"\n  config = {  }", "component = \"behaviours\"\n  config = { mode = \"abstain\" }");
    let error = format!("{:#}", TestGateway::start(&not_a_server).await.err().expect("refused"));
    assert!(error.contains("workloads[0].server") && error.contains("does not export `portcullis:auth/serve@0.2.0`"), "{error}");
    for (extra, why) in [
        ("/.well-known/oauth-protected-resource", "the gateway's own"),
        ("/hello", "declared twice"),
        ("/x?y=1", "not a plain absolute path"),
        ("/", "the resource's own path"),
    ] {
        let error = format!("{:#}", TestGateway::start(&policy(&upstream, &format!("extra_route = {extra:?}"))).await.err().expect("refused"));
        assert!(error.contains("workloads[0].server") && error.contains(why), "{extra}: {error}");
    }
    // A verifier that trusts the server needs keys the server was granted.
    let embedded = policy(&upstream, "")
        .replace("config = { issuer = \"https://idp.example.com\", jwks_uri = \"https://idp.example.com/jwks\" }", "config = { embedded_server = true }");
    let error = format!("{:#}", TestGateway::start(&embedded).await.err().expect("refused"));
    assert!(error.contains("workloads[0].inbound[1].config.embedded_server") && error.contains("signing_keys"), "{error}");
}

/// Runs the `portcullis` binary with `home` and the tests' password.
fn portcullis(home: &std::path::Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(crate::cli::portcullis())
        .args(args)
        .env("PORTCULLIS_HOME", home)
        .env("PORTCULLIS_SECRETS_PASSWORD", "pw")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// `portcullis init --mode authorization-server` writes a policy that
/// passes `check` with the keys it created in the secret store, and
/// `examples/authorization-server.toml` passes it given its secrets.
/// (Needs `builtin:oauth-server` and the `store`/`signing_keys` grants.)
#[test]
fn the_authorization_server_starter_and_example_check() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let output = dir.path().join("portcullis.toml");
    let init = ["init", "--mode", "authorization-server", "--upstream-issuer", "https://idp.example.com", "--output", output.to_str().unwrap()];
    let out = portcullis(&home, &init, None);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let listed = text(&portcullis(&home, &["secrets", "list"], None).stdout);
    assert!(listed.contains("signing:oauth-server") && listed.contains("oauth:token-key"), "{listed}");
    // A second init keeps the keys (tokens they signed stay valid).
    let again = portcullis(
        &home,
        &["init", "--mode", "authorization-server", "--upstream-issuer", "https://idp.example.com", "--force", "--output", output.to_str().unwrap()],
        None,
    );
    assert!(!text(&again.stdout).contains("created"), "{}", text(&again.stdout));

    portcullis(&home, &["secrets", "set", "oauth:corp-client-secret"], Some("s3cret"));
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/authorization-server.toml");
    let out = portcullis(&home, &["check", example.to_str().unwrap()], None);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
}

/// `plugin inspect` names the world of a `serve` component.
#[test]
fn inspect_names_the_authorization_server_world() {
    let home = tempfile::tempdir().unwrap();
    let fixture = portcullis_tests::fixture("serve");
    let out = portcullis(home.path(), &["plugin", "inspect", "--json", fixture.to_str().unwrap()], None);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["world"], "authorization-server");
    assert!(info["exports"].as_array().unwrap().iter().any(|e| e == "portcullis:auth/serve@0.2.0"), "{info}");
}

/// The server's routes are public: callers without credentials can keep its
/// instances busy (a slow CIMD host, an identity provider that hangs). They
/// hold the server's own instances, never the bound the inbound chain needs,
/// so admitted callers keep being served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_public_routes_do_not_hold_the_chains_instances() {
    let upstream = TestUpstream::start().await;
    let body = format!(
        // A fresh instance per admitted request: each needs a place in the bound.
        "limits = {{ max_instances = 2 }}\n{}  isolation = \"per-request\"\n  [workloads.server]\n  component = \"serve\"\n  limits = {{ deadline_ms = 3000 }}\n",
        behaviour(r#"mode = "allow""#)
    );
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("as", &upstream.url(), &body))).await.unwrap();
    let url = gw.url("as").await;
    let c = client();
    assert_eq!(c.get(format!("{url}/admitted")).send().await.unwrap().status(), 200, "admitted before the flood");
    // More spinning route calls than the workload's instance bound.
    let spins: Vec<_> = (0..4).map(|_| tokio::spawn(client().get(format!("{url}/spin")).send())).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..3 {
        let r = c.get(format!("{url}/admitted")).send().await.unwrap();
        assert_eq!(r.status(), 200, "an admitted caller while the routes spin: {:?}", r.text().await);
    }
    for spin in spins {
        let status = spin.await.unwrap().unwrap().status();
        assert!(status.is_server_error(), "a spinning route fails closed: {status}");
    }
}
