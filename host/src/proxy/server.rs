//! Listeners: accept connections (plain or TLS), serve HTTP/1.1 (and HTTP/2
//! through TLS ALPN), bound what one client can hold, and drain in-flight
//! requests when told to stop.
//!
//! Bounds, so that no client holds resources for free:
//! - at most `max_connections` open connections per listener: past it the
//!   listener stops accepting and new connections wait in the kernel's backlog;
//! - a connection must send a complete request head within `header_timeout`
//!   of opening, and is closed after `idle_timeout` without a request in flight
//!   (HTTP/1.1 keep-alive and HTTP/2 alike: HTTP/2 pings do not count);
//! - HTTP/2: at most 128 concurrent streams and 64 KiB of headers per request,
//!   and keep-alive pings that close a connection whose peer stopped answering;
//! - plain-text listeners speak HTTP/1.1 only: no cleartext HTTP/2 (h2c).

use super::body::{BoxError, ProxyBody};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a stopping listener waits for in-flight requests (SSE streams included).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const H2_MAX_STREAMS: u32 = 128;
const H2_MAX_HEADER_BYTES: u32 = 64 * 1024;
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is connected, recorded once per connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub remote: SocketAddr,
    /// `https` on TLS listeners.
    pub scheme: &'static str,
    pub tls_client_identity: Option<String>,
}

/// Per-listener connection bounds (policy `limits`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// What a listener serves. Looked up per connection, so a policy reload
/// applies to new connections (and new requests) without rebinding.
pub trait Site: Send + Sync + 'static {
    /// TLS for new connections; `None` for plain HTTP.
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>>;
    /// Bounds for new connections (`max_connections` is read when the listener starts).
    fn limits(&self) -> ConnectionLimits;
    fn handle(&self, request: hyper::Request<Incoming>, conn: Arc<ConnectionInfo>) -> impl Future<Output = hyper::Response<ProxyBody>> + Send;
}

/// A running listener; dropping the handle does not stop it, [`ListenerHandle::stop`] does.
pub struct ListenerHandle {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ListenerHandle {
    /// Stops accepting, then waits (up to [`DRAIN_TIMEOUT`]) for in-flight requests.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

pub fn spawn<S: Site>(listener: TcpListener, site: Arc<S>) -> std::io::Result<ListenerHandle> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, site, stopped));
    Ok(ListenerHandle { addr, stop, task })
}

async fn accept_loop<S: Site>(listener: TcpListener, site: Arc<S>, mut stopped: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(site.limits().max_connections));
    loop {
        // Past the cap, stop accepting: connections queue in the kernel, not here.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = stopped.changed() => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Usually out of file descriptors: back off rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let site = site.clone();
        let tls = site.tls();
        let limits = site.limits();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let activity = Arc::new(Activity::new());
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(H2_MAX_STREAMS)
                .max_header_list_size(H2_MAX_HEADER_BYTES)
                .keep_alive_interval(H2_PING_INTERVAL)
                .keep_alive_timeout(H2_PING_TIMEOUT);
            let scheme = if tls.is_some() { "https" } else { "http" };
            let conn = Arc::new(ConnectionInfo { remote, scheme, tls_client_identity: None });
            let service = {
                let (site, activity) = (site.clone(), activity.clone());
                service_fn(move |request| {
                    let (site, conn, activity) = (site.clone(), conn.clone(), activity.clone());
                    async move {
                        let in_flight = InFlight::start(activity);
                        let response = site.handle(request, conn).await;
                        // The request stays in flight until its response body ends (SSE included).
                        Ok::<_, Infallible>(response.map(|body| Tracked { body, _in_flight: in_flight }.boxed()))
                    }
                })
            };
            let served = async {
                match tls {
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!(%remote, %error, "TLS handshake failed");
                                return Ok(());
                            }
                            Err(_) => return Ok(()),
                        };
                        watcher.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned()).await
                    }
                    // Cleartext HTTP/2 (h2c) is not offered: HTTP/2 comes through TLS ALPN.
                    None => watcher.watch(builder.http1_only().serve_connection(TokioIo::new(stream), service).into_owned()).await,
                }
            };
            tokio::select! {
                result = served => {
                    if let Err(error) = result {
                        tracing::debug!(%remote, %error, "connection ended with an error");
                    }
                }
                () = activity.idle(limits) => tracing::debug!(%remote, "closing an idle connection"),
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}; closing"),
    }
}

/// What a connection is doing, for the idle timer: requests in flight, and
/// when the last one started or ended.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` of the last start or end of a request; `u64::MAX` before the first.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity { opened: Instant::now(), in_flight: AtomicUsize::new(0), last_ms: AtomicU64::new(u64::MAX) }
    }

    fn touch(&self) {
        self.last_ms.store(self.opened.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Resolves when the connection has been idle too long: no request within
    /// `header_timeout` of opening, or none in flight for `idle_timeout`.
    async fn idle(&self, limits: ConnectionLimits) {
        loop {
            let deadline = match self.last_ms.load(Ordering::Relaxed) {
                u64::MAX => self.opened + limits.header_timeout,
                last => self.opened + Duration::from_millis(last) + limits.idle_timeout,
            };
            if self.in_flight.load(Ordering::Relaxed) == 0 && Instant::now() >= deadline {
                return;
            }
            // Busy connections are checked again one timeout later.
            let next = if Instant::now() >= deadline { Instant::now() + limits.idle_timeout } else { deadline };
            tokio::time::sleep_until(next).await;
        }
    }
}

/// One request in flight on a connection; ends when dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request in flight until it is done or dropped.
struct Tracked {
    body: ProxyBody,
    _in_flight: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
