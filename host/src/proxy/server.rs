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
//! - plain-text listeners speak HTTP/1.1 only: no cleartext HTTP/2 (h2c);
//! - a refused request that carried a body ends its connection once answered
//!   ([`ConnectionInfo::close_after_response`]): whoever sends bodies the
//!   gateway refuses pays a new connection for each, and cannot keep a slot
//!   (past a bounded lingering close, [`super::linger`], so the answer is not
//!   lost to a reset).

use super::linger::Lingering;
use crate::body::{BoxError, ProxyBody};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
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
#[derive(Debug)]
pub struct ConnectionInfo {
    pub remote: SocketAddr,
    /// `https` on TLS listeners.
    pub scheme: &'static str,
    pub tls_client_identity: Option<String>,
    /// Message bytes this connection may hold before the inbound chain has
    /// decided (one message: `ConnectionLimits::held_before_decision`).
    pub held_before_decision: Semaphore,
    /// Asked to end gracefully: no new request, in-flight ones finish.
    closing: Notify,
}

impl ConnectionInfo {
    /// Ends the connection once its requests in flight are answered (HTTP/1.1:
    /// no keep-alive; HTTP/2: GOAWAY).
    pub fn close_after_response(&self) {
        self.closing.notify_one();
    }
}

/// Per-listener connection bounds (policy `limits`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// Bytes of a message one connection may hold before the inbound chain
    /// decides: the workload's largest MCP message (0 elsewhere: nothing is read first).
    pub held_before_decision: usize,
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
    let max_connections = site.limits().max_connections;
    let slots = Arc::new(Semaphore::new(max_connections));
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
        let stopped = stopped.clone();
        tokio::spawn(async move {
            let _slot = slot;
            serve_connection(stream, remote, site, stopped).await;
        });
    }
    drop(listener);
    // Every connection holds a slot until it ends: all slots back means all drained.
    let drained = slots.acquire_many(max_connections as u32);
    if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}; closing");
    }
}

async fn serve_connection<S: Site>(stream: tokio::net::TcpStream, remote: SocketAddr, site: Arc<S>, stopped: watch::Receiver<bool>) {
    let tls = site.tls();
    let limits = site.limits();
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
    let conn = Arc::new(ConnectionInfo {
        remote,
        scheme,
        tls_client_identity: None,
        held_before_decision: Semaphore::new(limits.held_before_decision),
        closing: Notify::new(),
    });
    let service = {
        let (site, activity, conn) = (site.clone(), activity.clone(), conn.clone());
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
                let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(Lingering::new(stream))).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%remote, %error, "TLS handshake failed");
                        return Ok(());
                    }
                    Err(_) => return Ok(()),
                };
                until_closed(builder.serve_connection(TokioIo::new(stream), service), &conn, stopped).await
            }
            // Cleartext HTTP/2 (h2c) is not offered: HTTP/2 comes through TLS ALPN.
            None => until_closed(builder.http1_only().serve_connection(TokioIo::new(Lingering::new(stream)), service), &conn, stopped).await,
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
}

/// Serves `connection` to its end; once the listener stops or the pipeline
/// asks ([`ConnectionInfo::close_after_response`]), it finishes what is in
/// flight and closes.
async fn until_closed<I, S, B>(
    connection: auto::Connection<'_, I, S, TokioExecutor>,
    info: &ConnectionInfo,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), BoxError>
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>> + hyper::service::HttpService<Incoming, ResBody = B>,
    <S as hyper::service::Service<hyper::Request<Incoming>>>::Future: Send + 'static,
    <S as hyper::service::Service<hyper::Request<Incoming>>>::Error: Into<BoxError>,
    <S as hyper::service::HttpService<Incoming>>::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut connection = std::pin::pin!(connection);
    let mut ending = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => return result,
            _ = stopped.changed(), if !ending => {}
            () = info.closing.notified(), if !ending => {}
        }
        connection.as_mut().graceful_shutdown();
        ending = true;
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
