//! Listeners: accept connections (plain or TLS), serve HTTP/1.1 and HTTP/2,
//! and drain in-flight requests when told to stop.

use super::body::ProxyBody;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a stopping listener waits for in-flight requests (SSE streams included).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is connected, recorded once per connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub remote: SocketAddr,
    /// `https` on TLS listeners.
    pub scheme: &'static str,
    pub tls_client_identity: Option<String>,
}

/// What a listener serves. Looked up per connection, so a policy reload
/// applies to new connections (and new requests) without rebinding.
pub trait Site: Send + Sync + 'static {
    /// TLS for new connections; `None` for plain HTTP.
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>>;
    fn header_timeout(&self) -> Duration;
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
    loop {
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
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(site.header_timeout());
            builder.http2().timer(TokioTimer::new());
            let scheme = if tls.is_some() { "https" } else { "http" };
            let conn = Arc::new(ConnectionInfo { remote, scheme, tls_client_identity: None });
            let service = {
                let site = site.clone();
                service_fn(move |request| {
                    let site = site.clone();
                    let conn = conn.clone();
                    async move { Ok::<_, Infallible>(site.handle(request, conn).await) }
                })
            };
            let result = match tls {
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%remote, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    watcher.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned()).await
                }
                None => watcher.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned()).await,
            };
            if let Err(error) = result {
                tracing::debug!(%remote, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}; closing"),
    }
}
