//! Forwarding to the upstream: connections kept for reuse ([`pool`]: HTTP/1.1
//! and HTTP/2, http and https through rustls), hop-by-hop headers removed both
//! ways, `X-Forwarded-*` set by the gateway, and the response body streamed
//! back as it arrives.

mod pool;

use super::chain::Allowed;
use super::error::GatewayError;
use super::headers::remove_hop_by_hop;
use super::server::ConnectionInfo;
use crate::body::ProxyBody;
use crate::error_chain::Chain;
use crate::telemetry::trace::{FixedAttributes, Span};
use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use opentelemetry::trace::SpanKind;
use pool::Pool;
use std::sync::Arc;
use std::time::Duration;

pub struct Upstream {
    pool: Arc<Pool>,
    /// The `Host` the upstream sees: its own name.
    host: HeaderValue,
    /// The upstream's `scheme://authority`, for logs.
    base: String,
    /// The upstream URL's path without a trailing `/` (empty for the root).
    base_path: String,
    /// How long the upstream may take to start its response.
    timeout: Duration,
}

impl Upstream {
    pub fn new(url: &url::Url, tls: rustls::ClientConfig, timeout: Duration) -> anyhow::Result<Self> {
        let scheme: Scheme = url.scheme().parse()?;
        let authority = url_authority(url);
        let host_name = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => anyhow::bail!("the upstream URL has no host"),
        };
        let port = url.port_or_known_default().ok_or_else(|| anyhow::anyhow!("the upstream URL has no port"))?;
        let pool = Arc::new(Pool::new(scheme.clone(), authority.parse()?, &host_name, port, tls)?);
        let host = HeaderValue::from_str(&authority)?;
        let base = format!("{scheme}://{authority}");
        Ok(Upstream { pool, host, base, base_path: url.path().trim_end_matches('/').to_owned(), timeout })
    }

    /// The upstream's scheme and authority, for logs.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Forwards `request` (see [`Upstream::forward`]); while exporting, in an
    /// `upstream` span to the response head, whose context goes upstream.
    pub async fn send(
        &self,
        mut request: Request<ProxyBody>,
        allowed: &Allowed,
        conn: &ConnectionInfo,
        authority: &str,
    ) -> Result<Response<ProxyBody>, GatewayError> {
        let exported = Span::child("upstream", SpanKind::Client, FixedAttributes::none());
        if let Some(exported) = &exported {
            crate::telemetry::context::to_upstream(exported.span_context(), request.headers_mut());
        }
        let response = self.forward(request, allowed, conn, authority).await;
        if let Some(mut exported) = exported {
            if let Ok(response) = &response {
                exported.set("status", i64::from(response.status().as_u16()));
            }
            exported.end();
        }
        response
    }

    /// Sends the admitted request upstream and returns the response with its body streaming.
    pub async fn forward(
        &self,
        mut request: Request<ProxyBody>,
        _allowed: &Allowed,
        conn: &ConnectionInfo,
        client_authority: &str,
    ) -> Result<Response<ProxyBody>, GatewayError> {
        let path = self.target(request.uri())?;
        // The pool picks HTTP/1.1 or HTTP/2 toward the upstream.
        *request.version_mut() = http::Version::HTTP_11;
        // (Hop-by-hop headers were removed by the pipeline before the chain ran.)
        // The upstream sees its own name; the client's is in X-Forwarded-Host.
        request.headers_mut().insert(header::HOST, self.host.clone());
        set_forwarded(request.headers_mut(), conn, client_authority);

        let mut response = match tokio::time::timeout(self.timeout, self.pool.send(request, path)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                if body_too_large(&*error) {
                    return Err(GatewayError::BodyTooLarge);
                }
                tracing::warn!(upstream = %self.base, error = %Chain(&*error), "upstream request failed");
                return Err(GatewayError::UpstreamUnavailable);
            }
            Err(_) => {
                tracing::warn!(upstream = %self.base, timeout = ?self.timeout, "upstream did not answer in time");
                return Err(GatewayError::UpstreamTimeout);
            }
        };
        remove_hop_by_hop(response.headers_mut());
        // Frames pass through as they arrive: an SSE event reaches the client
        // while the upstream is still sending.
        Ok(response)
    }
}

impl Upstream {
    /// The upstream path: the client's path (checked by `target::check`: no
    /// dot segments, no encoded slashes) below the base path. Only the path
    /// goes on: the scheme and authority are the policy's, so nothing in the
    /// client's request can change where it goes.
    fn target(&self, client: &Uri) -> Result<PathAndQuery, GatewayError> {
        let client = client.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        if self.base_path.is_empty() {
            return Ok(client);
        }
        let mut path = String::with_capacity(self.base_path.len() + client.as_str().len());
        path.push_str(&self.base_path);
        path.push_str(client.as_str());
        PathAndQuery::try_from(path).map_err(|_| GatewayError::BadTarget("the path is not a valid URI path"))
    }
}

fn url_authority(url: &url::Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// `X-Forwarded-For/Proto/Host` from the connection. The pipeline removed
/// every client-sent `X-Forwarded-*` and `Forwarded`: this gateway is the edge,
/// so client-supplied values are untrusted.
fn set_forwarded(headers: &mut HeaderMap, conn: &ConnectionInfo, client_authority: &str) {
    headers.insert("x-forwarded-for", HeaderValue::from_str(&conn.remote.ip().to_string()).expect("an IP is a valid header"));
    headers.insert("x-forwarded-proto", HeaderValue::from_static(conn.scheme));
    match HeaderValue::from_str(client_authority) {
        Ok(value) => headers.insert("x-forwarded-host", value),
        Err(_) => headers.remove("x-forwarded-host"),
    };
}

fn body_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}
