//! The upstream's connections, kept for reuse: HTTP/1.1 connections, one
//! request at a time each, and one shared HTTP/2 connection when a TLS
//! upstream offers `h2` by ALPN.
//!
//! Why not hyper-util's pooled client: per request it boxes a checkout
//! future, rebuilds the URI twice (absolute form in, origin form out) and
//! spawns a task that waits for the connection to be free again. Here a
//! connection goes back to the pool from the response body itself, when the
//! body ends (see [`Pooled`]): the common case costs no task and no timer.
//!
//! A connection idle longer than [`IDLE_TIMEOUT`] is not reused (and is
//! closed): under the 5 s after which Node's `http.Server` and uvicorn, which
//! serve most MCP servers, close an idle one. Reused at the moment the
//! server closes it, a request fails; a request the connection never took
//! (it was closed first) is sent again once on a new connection.

use crate::body::{BoxError, ProxyBody};
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How long an idle connection is kept for reuse (see the module docs).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// How long opening a connection (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle HTTP/1.1 connections kept per upstream; past it, a freed one is closed.
const MAX_IDLE: usize = 256;

/// Where the connections go, and how (TLS or not).
pub struct Pool {
    scheme: Scheme,
    authority: Authority,
    /// The host to connect to (an IPv6 address without its brackets).
    host: String,
    port: u16,
    tls: Option<(tokio_rustls::TlsConnector, rustls::pki_types::ServerName<'static>)>,
    /// Free HTTP/1.1 connections, the most recently freed at the back.
    idle: Mutex<VecDeque<Idle>>,
    /// The HTTP/2 connection, once the upstream chose `h2`.
    h2: Mutex<Option<http2::SendRequest<ProxyBody>>>,
}

struct Idle {
    sender: http1::SendRequest<ProxyBody>,
    since: Instant,
}

/// A sending failure (the caller looks in it for a request body over its cap).
pub type SendError = BoxError;

impl Pool {
    /// A pool for `scheme://authority`, whose connections go to `host:port`
    /// (an IPv6 address without brackets); `tls` is used for `https`. The
    /// authority is the upstream URL's, as the `Host` header has it (HTTP/2's
    /// `:authority`): without a default port, which some servers would not match.
    pub fn new(scheme: Scheme, authority: Authority, host: &str, port: u16, tls: rustls::ClientConfig) -> anyhow::Result<Self> {
        let tls = if scheme == Scheme::HTTPS {
            let mut config = tls;
            // The upstream picks: HTTP/2 if it offers it, else HTTP/1.1.
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Pool { scheme, authority, host: host.to_owned(), port, tls, idle: Mutex::new(VecDeque::new()), h2: Mutex::new(None) })
    }

    /// Sends `request` to `path` on a free connection, or a new one. The
    /// response body hands its connection back when it ends.
    pub async fn send(self: &Arc<Self>, mut request: Request<ProxyBody>, path: PathAndQuery) -> Result<Response<ProxyBody>, SendError> {
        if let Some(mut h2) = self.shared_h2() {
            *request.uri_mut() = self.absolute(path)?;
            return Ok(h2.send_request(request).await?.map(boxed));
        }
        *request.uri_mut() = Uri::from(path);
        if let Some(mut sender) = self.take_idle() {
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.pooled(response, sender)),
                // Closed before it took the request (the server's idle close):
                // the request was not sent, so it goes again on a new connection.
                Err(mut error) => match error.take_message() {
                    Some(again) => request = again,
                    None => return Err(error.into_error().into()),
                },
            }
        }
        // Boxed: a TLS handshake's future is large, and rarely needed.
        match Box::pin(self.connect()).await? {
            Connection::Http1(mut sender) => {
                let response = sender.send_request(request).await?;
                Ok(self.pooled(response, sender))
            }
            Connection::Http2(mut sender) => {
                let path = request.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
                *request.uri_mut() = self.absolute(path)?;
                Ok(sender.send_request(request).await?.map(boxed))
            }
        }
    }

    /// The absolute form HTTP/2 takes (its `:scheme` and `:authority`).
    fn absolute(&self, path: PathAndQuery) -> Result<Uri, http::Error> {
        Uri::builder().scheme(self.scheme.clone()).authority(self.authority.clone()).path_and_query(path).build()
    }

    fn shared_h2(&self) -> Option<http2::SendRequest<ProxyBody>> {
        let mut h2 = self.h2.lock().expect("the pool's lock is never poisoned");
        match h2.as_ref() {
            Some(sender) if !sender.is_closed() => Some(sender.clone()),
            Some(_) => {
                *h2 = None;
                None
            }
            None => None,
        }
    }

    /// The most recently freed connection that is still open and not idle
    /// too long; the others found on the way are closed.
    fn take_idle(&self) -> Option<http1::SendRequest<ProxyBody>> {
        let mut idle = self.idle.lock().expect("the pool's lock is never poisoned");
        let now = Instant::now();
        // The oldest are at the front: those past the timeout go first.
        while idle.front().is_some_and(|entry| now.duration_since(entry.since) >= IDLE_TIMEOUT) {
            idle.pop_front();
        }
        while let Some(entry) = idle.pop_back() {
            if entry.sender.is_ready() {
                return Some(entry.sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: http1::SendRequest<ProxyBody>) {
        let mut idle = self.idle.lock().expect("the pool's lock is never poisoned");
        if idle.len() < MAX_IDLE {
            idle.push_back(Idle { sender, since: Instant::now() });
        }
    }

    /// The response, its body handing `sender` back to the pool when it ends.
    fn pooled(self: &Arc<Self>, response: Response<Incoming>, sender: http1::SendRequest<ProxyBody>) -> Response<ProxyBody> {
        response.map(|body| http_body_util::BodyExt::boxed(Pooled { body, sender: Some(sender), pool: self.clone() }))
    }

    async fn connect(&self) -> Result<Connection, SendError> {
        let opened = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
            tcp.set_nodelay(true)?;
            match &self.tls {
                None => Ok::<_, std::io::Error>(Stream::Plain(tcp)),
                Some((connector, name)) => Ok(Stream::Tls(Box::new(connector.connect(name.clone(), tcp).await?))),
            }
        })
        .await
        .map_err(|_| -> SendError { format!("connecting took over {CONNECT_TIMEOUT:?}").into() })??;
        match opened {
            Stream::Tls(tls) if tls.get_ref().1.alpn_protocol() == Some(b"h2") => {
                let (sender, connection) = http2::Builder::new(TokioExecutor::new()).timer(TokioTimer::new()).handshake(TokioIo::new(tls)).await?;
                tokio::spawn(drive(connection));
                *self.h2.lock().expect("the pool's lock is never poisoned") = Some(sender.clone());
                Ok(Connection::Http2(sender))
            }
            Stream::Tls(tls) => http1_handshake(TokioIo::new(*tls)).await,
            Stream::Plain(tcp) => http1_handshake(TokioIo::new(tcp)).await,
        }
    }
}

enum Stream {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

enum Connection {
    Http1(http1::SendRequest<ProxyBody>),
    Http2(http2::SendRequest<ProxyBody>),
}

async fn http1_handshake<I>(io: I) -> Result<Connection, SendError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io).await?;
    tokio::spawn(drive(connection));
    Ok(Connection::Http1(sender))
}

/// Runs a connection until it closes (the server's close, an error, or every sender gone).
async fn drive<F: std::future::Future<Output = hyper::Result<()>>>(connection: F) {
    if let Err(error) = connection.await {
        tracing::debug!(%error, "upstream connection ended with an error");
    }
}

fn boxed(body: Incoming) -> ProxyBody {
    http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(body, |e| -> BoxError { Box::new(e) }))
}

/// A response body on an HTTP/1.1 connection: once it has ended, the
/// connection is free for the next request and goes back to the pool. A
/// body dropped before its end takes its connection with it (whatever the
/// server still sends would be read as the next response).
struct Pooled {
    body: Incoming,
    sender: Option<http1::SendRequest<ProxyBody>>,
    pool: Arc<Pool>,
}

impl Pooled {
    fn give_back(&mut self) {
        let Some(mut sender) = self.sender.take() else { return };
        if sender.is_ready() {
            self.pool.put_idle(sender);
        } else if !sender.is_closed() {
            // The connection has not yet seen the end of the message: free
            // it when it has (rare: it usually reads the whole answer first).
            let pool = self.pool.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if sender.ready().await.is_ok() {
                        pool.put_idle(sender);
                    }
                });
            }
        }
    }
}

impl Body for Pooled {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        match frame {
            Poll::Ready(None) => self.give_back(),
            Poll::Ready(Some(Err(_))) => self.sender = None,
            _ => {}
        }
        frame.map_err(|e| -> BoxError { Box::new(e) })
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // An answer whose end was never polled (no body: 204, HEAD, a
        // `Content-Length: 0`) is complete all the same.
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}
