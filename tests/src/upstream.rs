//! A real HTTP server on loopback standing in for an MCP server:
//! - any path: 200 with a JSON echo of the request (method, path, headers, body length);
//! - `/sse`: a Server-Sent Events stream that sends one event, waits until the
//!   test calls [`TestUpstream::release_sse`], then sends a second and ends;
//! - `/slow`: answers after 5 seconds.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

pub struct TestUpstream {
    pub addr: SocketAddr,
    sse_release: Arc<Notify>,
    hits: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TestUpstream {
    pub async fn start() -> TestUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sse_release = Arc::new(Notify::new());
        let release = sse_release.clone();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                accepted.fetch_add(1, Ordering::SeqCst);
                let (release, counter) = (release.clone(), counter.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        handle(req, release.clone())
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        TestUpstream { addr, sse_release, hits, connections, task }
    }

    /// The same server behind TLS, offering `alpn` (e.g. `["h2", "http/1.1"]`),
    /// with a certificate for `localhost`; gives its CA certificate (PEM)
    /// too, for the workload's `upstream_ca`.
    pub async fn start_tls(alpn: &[&str]) -> (TestUpstream, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let mut config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert.cert.der().clone()], key).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sse_release = Arc::new(Notify::new());
        let hits = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (release, counter, accepted) = (sse_release.clone(), hits.clone(), connections.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                accepted.fetch_add(1, Ordering::SeqCst);
                let (acceptor, release, counter) = (acceptor.clone(), release.clone(), counter.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else { return };
                    let service = service_fn(move |req| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        handle(req, release.clone())
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        (TestUpstream { addr, sse_release, hits, connections, task }, cert.cert.pem())
    }

    /// How many requests reached this upstream.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// How many TCP connections this upstream accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Lets the `/sse` stream send its second event.
    pub fn release_sse(&self) {
        self.sse_release.notify_one();
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback address where nothing listens.
pub async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

async fn handle(req: Request<Incoming>, release: Arc<Notify>) -> Result<Response<Body>, Infallible> {
    match req.uri().path() {
        "/sse" => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
            tokio::spawn(async move {
                let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"event: message\ndata: first\n\n")))).await;
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), release.notified()).await;
                let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"event: message\ndata: second\n\n")))).await;
            });
            let stream = tokio_stream_from(rx);
            let body = StreamBody::new(stream).boxed();
            Ok(Response::builder().header("content-type", "text/event-stream").header("cache-control", "no-cache").body(body).unwrap())
        }
        "/slow" => {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            Ok(Response::new(Full::new(Bytes::from_static(b"late")).boxed()))
        }
        _ => {
            let method = req.method().to_string();
            let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
            let version = format!("{:?}", req.version());
            let mut headers = serde_json::Map::new();
            for (name, value) in req.headers() {
                let entry = headers.entry(name.as_str()).or_insert_with(|| serde_json::Value::Array(vec![]));
                entry.as_array_mut().unwrap().push(serde_json::Value::String(value.to_str().unwrap_or("").to_owned()));
            }
            let body = req.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
            let echo = serde_json::json!({ "method": method, "path": path, "version": version, "headers": headers, "body_bytes": body });
            Ok(Response::builder()
                .header("content-type", "application/json")
                .header("connection", "x-upstream-hop")
                .header("x-upstream-hop", "must-not-reach-client")
                .body(Full::new(Bytes::from(echo.to_string())).boxed())
                .unwrap())
        }
    }
}

/// A `Stream` over an mpsc receiver (without pulling in tokio-stream).
fn tokio_stream_from<T: Send + 'static>(rx: tokio::sync::mpsc::Receiver<T>) -> impl futures_core::Stream<Item = T> + Send {
    struct Rx<T>(tokio::sync::mpsc::Receiver<T>);
    impl<T> futures_core::Stream for Rx<T> {
        type Item = T;
        fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
    Rx(rx)
}
