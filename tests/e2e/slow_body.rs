//! No caller without credentials can hold an MCP workload with a slow body
//! (issue 22, item 1). The gateway binary runs a shared-key MCP workload; more
//! attackers than its default connection cap (1024) send the head of an MCP
//! POST without a key, a first part of the body, and then trickle. The chain
//! decides on the headers, so each is refused at once without its body being
//! read, and its connection ends; a keyed caller is answered at once, and the
//! gateway's memory stays put.

use crate::shared_key::RunningGateway;
use bytes::Bytes;
use http_body_util::BodyExt;
use portcullis_tests::upstream::TestUpstream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// More than the default `limits.max_connections`.
const ATTACKERS: usize = 1_100;
/// How long an attacker waits for its answer: far longer than a refusal takes,
/// far shorter than the trickle would last.
const ATTACKER_PATIENCE: Duration = Duration::from_secs(20);
/// A flood logs nothing but warnings: a trace of 1,100 handshakes would
/// measure the log, not the gateway.
const LOGS: &str = "warn";
/// How long the keyed caller waits: were the attackers able to hold the
/// workload, it would be their whole patience.
const KEYED_PATIENCE: Duration = Duration::from_secs(10);
const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

/// A shared-key MCP workload (`tls`: HTTPS with HTTP/2) in front of `upstream`.
fn policy(upstream: String, tls: bool) -> impl Fn(u16, &Path) -> String {
    move |port, dir| {
        let (scheme, tls_line) = match tls {
            true => {
                let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
                std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
                std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
                ("https", "tls = { cert = \"cert.pem\", key = \"key.pem\" }\n")
            }
            false => ("http", ""),
        };
        format!(
            r#"version = 1
[[workloads]]
name = "mcp"
listen = "127.0.0.1:{port}"
upstream = "{upstream}"
public_url = "{scheme}://localhost:{port}/mcp"
{tls_line}
  [[workloads.inbound]]
  component = "builtin:shared-key"
  config = {{ key = "auto" }}
  grants = {{ secrets = ["workload:mcp:shared-key*"] }}
"#
        )
    }
}

/// How many attackers were answered `401`, and how many connections the gateway ended.
struct Outcome {
    refused: usize,
    closed: usize,
}

#[tokio::test]
async fn trickled_http1_bodies_without_credentials_do_not_hold_the_workload() {
    let upstream = TestUpstream::start().await;
    let gw = RunningGateway::with_policy(LOGS, policy(upstream.url(), false)).await;
    let key = gw.key_of("mcp");
    let port = gw.port();
    let rss_before = gw.rss_kib();
    let started = Arc::new(tokio::sync::Semaphore::new(0));
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| {
            let started = started.clone();
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                let head = format!(
                    "POST /mcp HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000000\r\n\r\n{{\"jsonrpc\":"
                );
                stream.write_all(head.as_bytes()).await.unwrap();
                started.add_permits(1);
                trickle_until_answered(stream).await
            })
        })
        .collect();
    // Every attacker has sent its head (past the cap, into the kernel's queue).
    let _all = started.acquire_many(ATTACKERS as u32).await.unwrap();

    let keyed = portcullis_tests::http_client().no_proxy().resolve("localhost", ([127, 0, 0, 1], port).into()).build().unwrap();
    let version = served_within_patience(&keyed, &format!("http://localhost:{port}/mcp"), &key).await;
    assert_eq!(version, reqwest::Version::HTTP_11);

    let mut outcome = Outcome { refused: 0, closed: 0 };
    for attacker in attackers {
        let (status, closed) = attacker.await.unwrap();
        // 503: the burst waited too long for a component instance (`limits.max_instances`).
        assert!(matches!(status.as_deref(), None | Some("401" | "503")), "{status:?}");
        outcome.refused += usize::from(status.as_deref() == Some("401"));
        outcome.closed += usize::from(closed);
    }
    // The gateway closes a connection whose body it never read; the client may
    // then see a reset before it reads the answer, but never a wait.
    assert_eq!(outcome.closed, ATTACKERS, "every attacker's connection is ended by the gateway, without its body");
    assert!(outcome.refused > ATTACKERS / 2, "and refused with 401 on its headers: {} of {ATTACKERS}", outcome.refused);
    let growth = gw.rss_kib().saturating_sub(rss_before);
    eprintln!("slow_body: HTTP/1.1 flood: resident memory grew by {growth} KiB");
    assert!(growth < 64 * 1024, "resident memory grew by {growth} KiB");
}

/// The keyed caller's `tools/list` is served (200) within [`KEYED_PATIENCE`],
/// while the attackers are at work; gives the HTTP version it was served in.
/// A `503` (the burst found no free component instance in time) is retried:
/// that is load, not a hold.
async fn served_within_patience(client: &reqwest::Client, url: &str, key: &str) -> reqwest::Version {
    let deadline = tokio::time::Instant::now() + KEYED_PATIENCE;
    loop {
        let sent = client
            .post(url)
            .header("x-portcullis-key", key)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(TOOLS_LIST)
            .timeout(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .send()
            .await
            .expect("the keyed caller is answered while the attackers are at work");
        match sent.status().as_u16() {
            200 => return sent.version(),
            503 if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("the keyed caller got {other}: {}", sent.text().await.unwrap_or_default()),
        }
    }
}

/// Sends a byte of body every 500 ms until the gateway answers; gives the
/// answer's status, and whether the gateway then closed the connection.
async fn trickle_until_answered(mut stream: tokio::net::TcpStream) -> (Option<String>, bool) {
    let deadline = tokio::time::Instant::now() + ATTACKER_PATIENCE;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                // Writing after the answer may fail: the gateway is done with us.
                let _ = stream.write_all(b" ").await;
            }
            () = tokio::time::sleep_until(deadline) => return (status_of(&answer), false),
        }
    }
    (status_of(&answer), true)
}

fn status_of(answer: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(answer);
    text.strip_prefix("HTTP/1.1 ").map(|rest| rest.chars().take(3).collect())
}

#[tokio::test]
async fn stalled_http2_bodies_without_credentials_do_not_hold_the_workload() {
    let upstream = TestUpstream::start().await;
    let gw = RunningGateway::with_policy(LOGS, policy(upstream.url(), true)).await;
    let key = gw.key_of("mcp");
    let port = gw.port();
    let pem = std::fs::read(gw_cert(&gw)).unwrap();
    let tls = Arc::new(client_tls(&pem));
    let rss_before = gw.rss_kib();
    // Each attacker opens streams whose bodies stop short: 128 KiB of a declared 1 MB.
    let chunk = Bytes::from(vec![b' '; 128 * 1024]);
    let started = Arc::new(tokio::sync::Semaphore::new(0));
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| {
            let (tls, chunk, started) = (tls.clone(), chunk.clone(), started.clone());
            tokio::spawn(async move { stall_http2_streams(port, tls, chunk, started).await })
        })
        .collect();
    let _all = started.acquire_many(ATTACKERS as u32).await.unwrap();

    let ca = reqwest::Certificate::from_pem(&pem).unwrap();
    let keyed = portcullis_tests::http_client().no_proxy().add_root_certificate(ca).resolve("localhost", ([127, 0, 0, 1], port).into()).build().unwrap();
    let version = served_within_patience(&keyed, &format!("https://localhost:{port}/mcp"), &key).await;
    assert_eq!(version, reqwest::Version::HTTP_2);

    let (mut outcome, mut connected) = (Outcome { refused: 0, closed: 0 }, 0);
    for attacker in attackers {
        // No TLS session: the gateway ended the handshake (its 10 s bound) on
        // a machine too loaded to finish 1,100 of them in time; nothing held.
        let Some((refused, closed)) = attacker.await.unwrap() else { continue };
        connected += 1;
        outcome.refused += usize::from(refused > 0);
        outcome.closed += usize::from(closed);
    }
    assert!(connected > ATTACKERS / 2, "most attackers get a connection: {connected} of {ATTACKERS}");
    // The first refusal ends the connection (GOAWAY): a stream the client had
    // not sent yet is never served, but none waits.
    assert_eq!(outcome.refused, connected, "every attacker is refused on its headers, without its body");
    assert_eq!(outcome.closed, connected, "and its connection ends");
    let growth = gw.rss_kib().saturating_sub(rss_before);
    eprintln!("slow_body: HTTP/2 flood: resident memory grew by {growth} KiB");
    assert!(growth < 128 * 1024, "resident memory grew by {growth} KiB");
}

/// Streams per attacking HTTP/2 connection.
const STREAMS: usize = 2;

fn gw_cert(gw: &RunningGateway) -> std::path::PathBuf {
    gw.policy().with_file_name("cert.pem")
}

fn client_tls(ca_pem: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls_pki_der(ca_pem);
    roots.add(der).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    config
}

fn rustls_pki_der(pem: &[u8]) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem).unwrap()
}

/// One attacking connection: `STREAMS` POSTs without a key, each sending
/// `chunk` of a longer body and then nothing. Gives how many were refused
/// (401, or 503 when the flood holds every instance; each stream is answered
/// within the patience, or this panics) and whether the gateway ended the
/// connection; `None` when the TLS handshake did not complete.
async fn stall_http2_streams(port: u16, tls: Arc<rustls::ClientConfig>, chunk: Bytes, started: Arc<tokio::sync::Semaphore>) -> Option<(usize, bool)> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let handshake = async {
        let stream = connector.connect(name, tcp).await.ok()?;
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(stream)).await.ok()
    };
    // Past the cap the handshake waits in the kernel's queue until a slot frees.
    let Ok(Some((mut sender, connection))) = tokio::time::timeout(ATTACKER_PATIENCE, handshake).await else {
        started.add_permits(1);
        return None;
    };
    let mut driver = tokio::spawn(connection);
    let mut bodies = Vec::new();
    let mut answers = Vec::new();
    for _ in 0..STREAMS {
        let (mut body_tx, body) = http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(4);
        let request = http::Request::post(format!("https://localhost:{port}/mcp"))
            .header("content-type", "application/json")
            .header("content-length", "1000000")
            .body(body)
            .unwrap();
        let _ = body_tx.send_data(chunk.clone()).await;
        bodies.push(body_tx);
        if sender.ready().await.is_err() {
            break;
        }
        answers.push(sender.send_request(request));
    }
    started.add_permits(1);
    let answered = async {
        let mut refused = 0;
        for answer in answers {
            // An error: the stream was refused by the connection's GOAWAY.
            if let Ok(response) = answer.await {
                // 401, or 503 when the flood holds every instance of the
                // key check (the pool sheds load): refused either way, unread.
                refused += usize::from(matches!(response.status().as_u16(), 401 | 503));
                let _ = response.into_body().collect().await;
            }
        }
        refused
    };
    let refused = tokio::time::timeout(ATTACKER_PATIENCE, answered).await.expect("no stream waits for its answer");
    // The bodies are still open: only the gateway can end the connection.
    let closed = tokio::time::timeout(ATTACKER_PATIENCE, &mut driver).await.is_ok();
    drop(bodies);
    driver.abort();
    Some((refused, closed))
}

/// A workload whose authenticator decides on the MCP calls (the method-gate
/// fixture imports `request.mcp-calls`) reads the message first, within its
/// pace and its budget for bytes held before a decision.
#[tokio::test]
async fn an_authenticator_that_reads_calls_reads_first_within_its_budgets() {
    use portcullis_tests::gateway::{TestGateway, workload};
    let upstream = TestUpstream::start().await;
    let body = r#"mcp = true
limits = { max_mcp_message_bytes = 65536, max_pending_body_kib = 64, body_timeout_ms = 2000, min_body_rate_kib = 1024 }
  [[workloads.inbound]]
  component = "method-gate"
  config = { methods = ["initialize", "tools/list"] }
"#;
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("gate", &upstream.url(), body))).await.unwrap();
    let addr = gw.addr("gate").await;
    let post = |message: &'static str| {
        let url = format!("http://{addr}/mcp");
        async move { crate::client().post(url).header("content-type", "application/json").body(message).send().await.unwrap().status() }
    };
    // The gate saw the calls: discovery is open, a tool call is not.
    assert_eq!(post(TOOLS_LIST).await, 200);
    assert_eq!(post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}}"#).await, 401);

    // Two callers each send 40 KiB of a declared 60 KiB and stall: the second
    // finds the workload's 64 KiB spent (503 at once); the first is cut off
    // at its pace's deadline (2 s, plus 40 ms for the 40 KiB at 1 MiB/s).
    let stall = |addr: std::net::SocketAddr| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 61440\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&vec![b' '; 40 * 1024]).await.unwrap();
        let started = tokio::time::Instant::now();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await;
        (status_of(&answer), started.elapsed())
    };
    let first = tokio::spawn(stall(addr));
    let second = tokio::spawn(stall(addr));
    let (a, b) = (first.await.unwrap(), second.await.unwrap());
    let mut statuses = [a.0.clone(), b.0.clone()];
    statuses.sort();
    assert_eq!(statuses, [Some("408".to_owned()), Some("503".to_owned())], "{a:?} {b:?}");
    let (busy, late) = if a.0.as_deref() == Some("503") { (a, b) } else { (b, a) };
    assert!(busy.1 < Duration::from_secs(2), "the spent budget is said at once: {busy:?}");
    assert!(late.1 >= Duration::from_secs(2), "the stalled body is given its time: {late:?}");
    // The budget came back with the decision: discovery is served again.
    assert_eq!(post(TOOLS_LIST).await, 200);
}

/// A caller refused while its body is still on the way gets the refusal, not
/// a connection reset: the gateway ends the connection with a lingering close
/// (`proxy/linger.rs`), reading and dropping the rest for a bounded time
/// instead of closing on unread bytes.
#[tokio::test]
async fn a_caller_refused_mid_body_reads_its_refusal() {
    let upstream = TestUpstream::start().await;
    let gw = RunningGateway::with_policy(LOGS, policy(upstream.url(), false)).await;
    let client = portcullis_tests::http_client().no_proxy().build().unwrap();
    let url = format!("http://localhost:{}/mcp", gw.port());
    for attempt in 0..20 {
        let body = vec![b' '; 2 * 1024 * 1024];
        let answer = client.post(&url).header("content-type", "application/json").body(body).send().await;
        let status = answer.unwrap_or_else(|error| panic!("attempt {attempt}: no answer, {error:?}")).status();
        assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
}
