//! Malformed HTTP/1 and HTTP/2 get an error answer or a closed connection,
//! never a panic, and the gateway keeps serving (issue "Reliability", item 4).
//! The requests are written byte by byte on raw sockets, because a real
//! client library refuses to send them.

use crate::client;
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::upstream::TestUpstream;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Everything the server sends until it closes (or 5 s pass).
async fn read_all(stream: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

async fn raw_http1(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read everything we send.
    let _ = stream.write_all(request).await;
    String::from_utf8_lossy(&read_all(&mut stream).await).into_owned()
}

#[tokio::test]
async fn malformed_http1_gets_an_error_and_the_gateway_keeps_serving() {
    let upstream = TestUpstream::start().await;
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &behaviour(r#"mode = "allow", tag = "a""#)))).await.unwrap();
    let addr = gw.addr("w").await;
    let huge = format!("GET / HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nx-big: {}\r\n\r\n", "a".repeat(1 << 20));
    let cases: [(&str, &[u8], &str); 6] = [
        ("a request line that is not HTTP", b"GARBAGE\r\n\r\n", "HTTP/1.1 400"),
        ("a NUL in a header value", b"GET / HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nx-a: a\x00b\r\n\r\n", "HTTP/1.1 400"),
        ("a header line without a colon", b"GET / HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nno colon here\r\n\r\n", "HTTP/1.1 400"),
        ("two Content-Length values", b"POST / HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab", "HTTP/1.1 400"),
        // The head is valid, so the body is streamed until it breaks: the upstream never gets a whole request.
        ("a chunk size that is not hex", b"POST / HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", "HTTP/1.1 502"),
        ("a header section of 1 MiB", huge.as_bytes(), "HTTP/1.1 431"),
    ];
    for (what, request, expected) in cases {
        let answer = raw_http1(addr, request).await;
        assert!(answer.starts_with(expected), "{what}: {answer:?}");
        assert!(!answer.contains(" 200 "), "{what} reached the upstream: {answer:?}");
    }
    // Bytes that are not UTF-8 in a header value are legal HTTP (obs-text): a
    // clear answer, and the component sees them replaced, not a failure.
    let answer = raw_http1(addr, b"GET / HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nx-latin: caf\xe9\r\nconnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert_eq!(client().get(gw.url("w").await).header("host", "127.0.0.1:8080").send().await.unwrap().status(), 200, "still serving");
}

/// An HTTP/2 frame: 9-byte header, then the payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const HEADERS: u8 = 0x1;
const GOAWAY: u8 = 0x7;

/// The error code of the first GOAWAY in `bytes` (server frames after its preface).
fn goaway_code(mut bytes: &[u8]) -> Option<u32> {
    while bytes.len() >= 9 {
        let len = ((bytes[0] as usize) << 16) | ((bytes[1] as usize) << 8) | bytes[2] as usize;
        let kind = bytes[3];
        let payload = bytes.get(9..9 + len)?;
        if kind == GOAWAY && payload.len() >= 8 {
            return Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
        }
        bytes = &bytes[9 + len..];
    }
    None
}

#[tokio::test]
async fn malformed_http2_gets_goaway_and_the_gateway_keeps_serving() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let body = format!("tls = {{ cert = \"cert.pem\", key = \"key.pem\" }}\n{}", behaviour(r#"mode = "allow", tag = "a""#));
    let gw = TestGateway::start_in(dir, &format!("version = 1\n{}", workload("w", &upstream.url(), &body))).await.unwrap();
    let addr = gw.addr("w").await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let mut tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let h2 = async |frames: &[Vec<u8>]| -> Vec<u8> {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut stream = connector.connect("localhost".try_into().unwrap(), tcp).await.unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        send(&mut stream, PREFACE).await;
        send(&mut stream, &frame(SETTINGS, 0, 0, &[])).await;
        for f in frames {
            send(&mut stream, f).await;
        }
        read_all(&mut stream).await
    };
    // END_STREAM | END_HEADERS, and a header block that is not HPACK (index 0 is invalid).
    let bad_hpack = frame(HEADERS, 0x5, 1, &[0x80, 0xff, 0xff, 0xff]);
    let answer = h2(&[bad_hpack]).await;
    // The h2 crate reports an undecodable header block as PROTOCOL_ERROR.
    assert_eq!(goaway_code(&answer), Some(0x1), "PROTOCOL_ERROR for a broken header block: {answer:?}");
    // A frame longer than the 16 KiB the server allows.
    let oversize = frame(0x0, 0x1, 1, &vec![0u8; 20_000]);
    let answer = h2(&[oversize]).await;
    assert_eq!(goaway_code(&answer), Some(0x6), "FRAME_SIZE_ERROR for an oversize frame: {answer:?}");
    // HEADERS on stream 0, which carries only connection frames.
    let on_zero = frame(HEADERS, 0x5, 0, &[0x82]);
    let answer = h2(&[on_zero]).await;
    assert_eq!(goaway_code(&answer), Some(0x1), "PROTOCOL_ERROR for headers on stream 0: {answer:?}");

    let ca = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    let good = portcullis_tests::http_client().no_proxy().add_root_certificate(ca).resolve("localhost", addr).build().unwrap();
    let r = good.get(format!("https://localhost:{}/", addr.port())).send().await.unwrap();
    assert_eq!((r.status(), r.version()), (reqwest::StatusCode::OK, reqwest::Version::HTTP_2), "still serving HTTP/2");
}

async fn send(stream: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) {
    // The server may close first (that is what is being tested).
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
}
