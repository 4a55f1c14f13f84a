//! The proxy itself: streaming, upstream failures, Host/Origin, headers, limits, TLS.

use crate::{client, json, seen};
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::upstream::{TestUpstream, closed_port};
use std::time::Duration;

fn allow() -> String {
    behaviour(r#"mode = "allow", tag = "a""#)
}

#[tokio::test]
async fn sse_events_arrive_while_the_upstream_is_still_sending() {
    let upstream = TestUpstream::start().await;
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &allow()))).await.unwrap();
    let mut r = client().get(format!("{}/sse", gw.url("w").await)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    // The upstream holds its second event until released: if the gateway
    // buffered, this read would time out.
    let first = tokio::time::timeout(Duration::from_secs(5), r.chunk()).await.expect("first event streamed").unwrap().unwrap();
    assert_eq!(&first[..], b"event: message\ndata: first\n\n");
    upstream.release_sse();
    let second = tokio::time::timeout(Duration::from_secs(5), r.chunk()).await.unwrap().unwrap().unwrap();
    assert_eq!(&second[..], b"event: message\ndata: second\n\n");
    assert!(r.chunk().await.unwrap().is_none());
}

#[tokio::test]
async fn upstream_down_is_502_and_too_slow_is_504() {
    let upstream = TestUpstream::start().await;
    let down = format!("http://{}", closed_port().await);
    let policy = format!(
        "version = 1\n{}{}",
        workload("down", &down, &allow()),
        workload("slow", &upstream.url(), &format!("limits = {{ upstream_timeout_ms = 300 }}\n{}", allow())),
    );
    let gw = TestGateway::start(&policy).await.unwrap();
    let r = client().get(gw.url("down").await).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(json(r).await["error"], "upstream_unavailable");
    let r = client().get(format!("{}/slow", gw.url("slow").await)).send().await.unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(json(r).await["error"], "upstream_timeout");
}

#[tokio::test]
async fn host_and_origin_are_checked() {
    let upstream = TestUpstream::start().await;
    let body = format!("allowed_origins = [\"https://app.example.org\"]\nallowed_hosts = [\"mcp.internal\"]\n{}", allow());
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &body))).await.unwrap();
    let url = gw.url("w").await;
    let port = gw.addr("w").await.port();
    let c = client();
    let status = |host: Option<String>, origin: Option<&str>| {
        let mut req = c.get(&url);
        if let Some(h) = host {
            req = req.header("host", h);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(None, None).await, 200, "no Origin: a non-browser client");
    assert_eq!(status(Some(format!("localhost:{port}")), Some("http://localhost:5173")).await, 200);
    assert_eq!(status(Some("mcp.internal".into()), Some("https://app.example.org")).await, 200);
    assert_eq!(status(None, Some("https://evil.example")).await, 403, "a foreign Origin");
    assert_eq!(status(None, Some("null")).await, 403);
    assert_eq!(status(Some(format!("evil.example:{port}")), None).await, 403, "DNS rebinding: a foreign Host");
    let r = c.get(&url).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(json(r).await["error"], "origin_not_allowed");
    // The DNS-rebinding refusal says what it is (not some other 403 on the way).
    let r = c.get(&url).header("host", format!("evil.example:{port}")).send().await.unwrap();
    assert_eq!(json(r).await["error"], "host_not_allowed");
}

#[tokio::test]
async fn hop_by_hop_headers_go_and_forwarded_headers_are_ours() {
    let upstream = TestUpstream::start().await;
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &allow()))).await.unwrap();
    let r = client()
        .get(gw.url("w").await)
        .header("connection", "x-private-hop")
        .header("x-private-hop", "1")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-upstream-hop").is_none(), "response hop-by-hop headers are removed");
    let echo = json(r).await;
    assert!(seen(&echo, "x-private-hop").is_empty());
    assert!(seen(&echo, "proxy-authorization").is_empty());
    assert_eq!(seen(&echo, "x-forwarded-for"), ["127.0.0.1"], "a client cannot spoof its address");
    assert_eq!(seen(&echo, "x-forwarded-proto"), ["http"]);
    assert_eq!(seen(&echo, "host"), [upstream.addr.to_string()]);
    assert_eq!(seen(&echo, "x-forwarded-host"), [gw.addr("w").await.to_string()]);
}

#[tokio::test]
async fn oversize_bodies_are_refused() {
    let upstream = TestUpstream::start().await;
    let body = format!("limits = {{ max_request_body_kib = 1 }}\n{}", allow());
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &body))).await.unwrap();
    let c = client();
    let r = c.post(gw.url("w").await).body(vec![b'x'; 1000]).send().await.unwrap();
    assert_eq!(json(r).await["body_bytes"], 1000);
    let r = c.post(gw.url("w").await).body(vec![b'x'; 4096]).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(json(r).await["error"], "body_too_large");
    assert_eq!(upstream.hits(), 1, "only the small body reached the upstream");
    // Without a declared length (chunked), the cap applies while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..8).map(|_| Ok(vec![b'y'; 1024])).collect();
    let stream = reqwest::Body::wrap_stream(futures_util_stream(chunks));
    let r = c.post(gw.url("w").await).body(stream).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(json(r).await["error"], "body_too_large");
}

fn futures_util_stream(items: Vec<Result<Vec<u8>, std::io::Error>>) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    struct Iter(std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>);
    impl futures_core::Stream for Iter {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(items.into_iter())
}

#[tokio::test]
async fn a_tls_upstream_is_reached_over_the_http_version_it_offers_on_one_reused_connection() {
    for (offered, version) in [(&["h2", "http/1.1"][..], "HTTP/2.0"), (&["http/1.1"][..], "HTTP/1.1")] {
        let (upstream, ca) = TestUpstream::start_tls(offered).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca).unwrap();
        let url = format!("https://localhost:{}/base", upstream.addr.port());
        let policy = format!("version = 1\n{}", workload("w", &url, &format!("upstream_ca = \"ca.pem\"\n{}", allow())));
        let gw = TestGateway::start_in(dir, &policy).await.unwrap();
        for n in 0..5 {
            let r = client().get(format!("{}/mcp?n={n}", gw.url("w").await)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{version}");
            let echo = json(r).await;
            assert_eq!(echo["version"], version, "the upstream's choice by ALPN");
            assert_eq!(echo["path"], format!("/base/mcp?n={n}"));
            assert_eq!(seen(&echo, "x-forwarded-proto"), ["http"]);
            if version == "HTTP/1.1" {
                assert_eq!(seen(&echo, "host"), [format!("localhost:{}", upstream.addr.port())]);
            }
        }
        assert_eq!(upstream.hits(), 5);
        assert_eq!(upstream.connections(), 1, "{version}: every request went on the first connection");
    }
}

#[tokio::test]
async fn a_tls_upstream_whose_certificate_is_not_trusted_is_never_sent_the_request() {
    let (upstream, _ca) = TestUpstream::start_tls(&["http/1.1"]).await;
    let url = format!("https://localhost:{}", upstream.addr.port());
    // No `upstream_ca`: the system's and the bundled roots do not know the test's CA.
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &url, &allow()))).await.unwrap();
    let r = client().get(format!("{}/mcp", gw.url("w").await)).header("authorization", "Bearer secret").send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn tls_listener_speaks_http2_and_http1() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let body = format!("tls = {{ cert = \"cert.pem\", key = \"key.pem\" }}\n{}", allow());
    let gw = TestGateway::start_in(dir, &format!("version = 1\n{}", workload("w", &upstream.url(), &body))).await.unwrap();
    let ca = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    let url = format!("https://localhost:{}/", gw.addr("w").await.port());
    for (http2, version) in [(true, reqwest::Version::HTTP_2), (false, reqwest::Version::HTTP_11)] {
        let mut builder = portcullis_tests::http_client().no_proxy().add_root_certificate(ca.clone()).resolve("localhost", gw.addr("w").await);
        if !http2 {
            builder = builder.http1_only();
        }
        let r = builder.build().unwrap().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.version(), version);
        let echo = json(r).await;
        assert_eq!(seen(&echo, "x-forwarded-proto"), ["https"]);
    }
}

#[tokio::test]
async fn every_request_carries_a_request_id_upstream_and_back() {
    let upstream = TestUpstream::start().await;
    let trusting = format!("trust_request_id = true\n{}", allow());
    let policy = format!("version = 1\n{}{}", workload("w", &upstream.url(), &allow()), workload("behind-proxy", &upstream.url(), &trusting));
    let gw = TestGateway::start(&policy).await.unwrap();
    let c = client();
    // Minted: the same id upstream and back, and a new one per request.
    let r = c.get(gw.url("w").await).header("x-request-id", "client-chosen").send().await.unwrap();
    let back = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(back.len(), 32, "{back}");
    assert_eq!(seen(&json(r).await, "x-request-id"), [back.as_str()], "a client's id is replaced by default");
    let again = c.get(gw.url("w").await).send().await.unwrap().headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(again, back);
    // Refusals carry it too.
    let r = c.get(gw.url("w").await).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-request-id"].len(), 32);
    // Trusted: a printable client id is kept.
    let r = c.get(gw.url("behind-proxy").await).header("x-request-id", "lb-7f3a").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "lb-7f3a");
    assert_eq!(seen(&json(r).await, "x-request-id"), ["lb-7f3a"]);
}
