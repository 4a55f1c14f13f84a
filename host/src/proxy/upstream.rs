//! Forwarding to the upstream: a pooled client (HTTP/1.1 and HTTP/2, http and
//! https through rustls), hop-by-hop headers removed both ways, `X-Forwarded-*`
//! set by the gateway, and the response body streamed back as it arrives.

use super::chain::Allowed;
use super::error::GatewayError;
use super::headers::remove_hop_by_hop;
use super::server::ConnectionInfo;
use crate::body::{BoxError, ProxyBody};
use crate::error_chain::Chain;
use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;
use tracing::Instrument;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

pub struct Upstream {
    client: Client<Connector, ProxyBody>,
    scheme: Scheme,
    authority: Authority,
    /// The `Host` the upstream sees: its own name.
    host: HeaderValue,
    /// The upstream's `scheme://authority`, for logs.
    base: String,
    /// The upstream URL's path without a trailing `/` (empty for the root).
    base_path: String,
    /// How long the upstream may take to start its response.
    timeout: Duration,
}

/// How long an idle upstream connection is kept for reuse: under the 5 s
/// after which Node's `http.Server` (`keepAliveTimeout`) and uvicorn
/// (`timeout_keep_alive`), which serve most MCP servers, close an idle one.
/// Reused at the moment the server closes it, a request fails with 502
/// (seen once in ten e2e runs against the Node registry server at 90 s).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

impl Upstream {
    pub fn new(url: &url::Url, tls: rustls::ClientConfig, timeout: Duration) -> anyhow::Result<Self> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().enable_http2().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE_TIMEOUT).build(connector);
        let scheme: Scheme = url.scheme().parse()?;
        let authority: Authority = url_authority(url).parse()?;
        let host = HeaderValue::from_str(authority.as_str())?;
        let base = format!("{scheme}://{authority}");
        Ok(Upstream { client, scheme, authority, host, base, base_path: url.path().trim_end_matches('/').to_owned(), timeout })
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
        let span = crate::telemetry::span!("upstream", otel.kind = "client", status = tracing::field::Empty);
        if crate::telemetry::enabled() {
            crate::telemetry::context::to_upstream(&span, request.headers_mut());
        }
        let response = self.forward(request, allowed, conn, authority).instrument(span.clone()).await;
        if let Ok(response) = &response {
            span.record("status", i64::from(response.status().as_u16()));
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
        *request.uri_mut() = self.target(request.uri())?;
        // Let the client pick HTTP/1.1 or HTTP/2 toward the upstream.
        *request.version_mut() = http::Version::HTTP_11;
        // (Hop-by-hop headers were removed by the pipeline before the chain ran.)
        // The upstream sees its own name; the client's is in X-Forwarded-Host.
        request.headers_mut().insert(header::HOST, self.host.clone());
        set_forwarded(request.headers_mut(), conn, client_authority);

        let response = match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                if body_too_large(&error) {
                    return Err(GatewayError::BodyTooLarge);
                }
                tracing::warn!(upstream = %self.base, error = %Chain(&error), "upstream request failed");
                return Err(GatewayError::UpstreamUnavailable);
            }
            Err(_) => {
                tracing::warn!(upstream = %self.base, timeout = ?self.timeout, "upstream did not answer in time");
                return Err(GatewayError::UpstreamTimeout);
            }
        };
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        // Frames pass through as they arrive: an SSE event reaches the client
        // while the upstream is still sending.
        Ok(Response::from_parts(parts, body.map_err(|e| -> BoxError { Box::new(e) }).boxed()))
    }
}

impl Upstream {
    /// The upstream URI: its scheme and authority from the policy, the client's
    /// path (checked by `target::check`: no dot segments, no encoded slashes)
    /// below the base path. Built from parts, so nothing in the client's path
    /// can change where the request goes.
    fn target(&self, client: &Uri) -> Result<Uri, GatewayError> {
        let client = client.path_and_query().map(PathAndQuery::as_str).unwrap_or("/");
        let mut path = String::with_capacity(self.base_path.len() + client.len());
        path.push_str(&self.base_path);
        path.push_str(client);
        let path = PathAndQuery::try_from(path).map_err(|_| GatewayError::BadTarget("the path is not a valid URI path"))?;
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(path);
        Uri::from_parts(parts).map_err(|_| GatewayError::BadTarget("the path is not a valid URI path"))
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

fn body_too_large(error: &hyper_util::client::legacy::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}
