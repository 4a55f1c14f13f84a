//! `portcullis bridge` sends the key to the URL it was given and nowhere else,
//! and holds no unbounded message (issue "Hardening", items 7 and 21).

use crate::cli::portcullis;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis::secrets::{SecretStore, SecretString};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::AsyncWriteExt;

const PASSWORD: &str = "bridge-test";
const KEY: &str = "bridge-test-key-0123456789abcdefghijklmnopqrstu";
const INITIALIZE: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

/// A server on loopback answering every request with `respond`; counts hits and
/// how many carried the key.
struct Server {
    url: String,
    hits: Arc<AtomicUsize>,
    keyed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(respond: impl Fn() -> http::Response<Full<Bytes>> + Send + Sync + 'static) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (hits, keyed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (h, k, respond) = (hits.clone(), keyed.clone(), Arc::new(respond));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (h, k, respond) = (h.clone(), k.clone(), respond.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        h.fetch_add(1, Ordering::SeqCst);
                        if req.headers().contains_key("x-portcullis-key") {
                            k.fetch_add(1, Ordering::SeqCst);
                        }
                        let response = respond();
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Server { url, hits, keyed, task }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the bridge against `url` with `input` on stdin; returns (exit success, stdout, stderr).
async fn bridge(url: &str, input: &[u8]) -> (bool, String, String) {
    let home = tempfile::tempdir().unwrap();
    let store = SecretStore::new(home.path(), Some(SecretString::from(PASSWORD.to_owned())));
    portcullis_tests::leaks::register(KEY);
    store.set("workload:w:shared-key", SecretString::from(KEY.to_owned())).unwrap();
    let mut child = tokio::process::Command::new(portcullis())
        .args(["bridge", "w", "--url", url])
        .env("PORTCULLIS_HOME", home.path())
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output()).await.expect("the bridge finished").unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn the_bridge_never_follows_a_redirect_with_the_key() {
    let elsewhere = Server::start(|| http::Response::new(Full::new(Bytes::from_static(b"{}")))).await;
    let target = format!("{}/stolen", elsewhere.url);
    let redirecting =
        Server::start(move || http::Response::builder().status(307).header("location", target.as_str()).body(Full::new(Bytes::new())).unwrap()).await;
    let (ok, _, stderr) = bridge(&format!("{}/mcp", redirecting.url), format!("{INITIALIZE}\n").as_bytes()).await;
    assert!(!ok, "a redirect ends the bridge");
    assert!(stderr.contains("redirect"), "{stderr}");
    assert_eq!(redirecting.keyed.load(Ordering::SeqCst), 1, "the named URL got the key");
    assert_eq!(elsewhere.hits.load(Ordering::SeqCst), 0, "the redirect target got nothing");
    assert!(!stderr.contains(KEY));
}

#[tokio::test]
async fn oversize_messages_are_refused_not_buffered() {
    let big = Bytes::from(format!("{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"pad\":\"{}\"}}}}", "x".repeat(17 * 1024 * 1024)));
    let sse = Bytes::from(format!("data: {}\n\n", "y".repeat(17 * 1024 * 1024)));
    for (kind, body) in [("application/json", big), ("text/event-stream", sse)] {
        let server = Server::start(move || http::Response::builder().header("content-type", kind).body(Full::new(body.clone())).unwrap()).await;
        let (ok, stdout, stderr) = bridge(&format!("{}/mcp", server.url), format!("{INITIALIZE}\n").as_bytes()).await;
        assert!(ok, "{kind}: the bridge keeps working and ends normally at end of input: {stderr}");
        assert!(stderr.contains("over 16777216 bytes was dropped"), "{kind}: {stderr}");
        let reply: serde_json::Value = serde_json::from_str(stdout.lines().next().expect("a reply line")).unwrap();
        assert_eq!(reply["id"], 1, "{kind}: the client's request gets an error, not silence");
        assert!(reply["error"]["message"].as_str().unwrap().contains("limit"), "{kind}: {reply}");
    }
    // An input line over the limit is dropped; the next one still goes out.
    let server = Server::start(|| {
        http::Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}")))
            .unwrap()
    })
    .await;
    let mut input = vec![b'z'; 17 * 1024 * 1024];
    input.extend_from_slice(format!("\n{INITIALIZE}\n").as_bytes());
    let (ok, stdout, stderr) = bridge(&format!("{}/mcp", server.url), &input).await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("input message over"), "{stderr}");
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "only the valid line was sent");
    assert!(stdout.contains("\"result\""), "{stdout}");
}
