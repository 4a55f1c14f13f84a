//! The `http-client` import: outbound requests to granted origins only.
//!
//! Two checks guard every request: the URL's origin must be granted, and every
//! address its host resolves to must be public unless the grant says
//! `http_private = true` (so a component cannot probe loopback or the LAN). The
//! address check runs again inside the client's resolver, at connection time,
//! so a DNS answer that changes between the check and the connection (DNS
//! rebinding) is refused too. Redirects are not followed: a component that
//! wants to follow one sends a new request, which is checked again.
//!
//! Two ways around the origin check are closed as well. Proxy environment
//! variables (`HTTPS_PROXY`, `ALL_PROXY`, ...) are ignored: through a proxy only
//! the proxy's address would be checked and the target resolved elsewhere. And a
//! component may not set headers that route or frame the request (`Host`,
//! `Content-Length`, `Forwarded`, `Proxy-*`, ...; see [`routing_header`]): a
//! `Host` header would reach any virtual host on a granted address.

use super::{GrantProblem, HostState, Mode};
use crate::origin::Origin;
use crate::runtime::bindings::host::portcullis::auth::http_client::{Host, HttpError, IncomingResponse, OutgoingRequest};
use crate::runtime::bindings::types::Header;
use crate::runtime::deadline::within;
use crate::task::AbortOnDrop;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
const MAX_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// `grants.http` parsed: the origins a component may send to, and whether
/// they may resolve to private addresses.
#[derive(Debug, Default, Clone)]
pub struct HttpGrant {
    origins: Vec<Origin>,
    private: bool,
    /// `https://*`: any https origin, on public addresses only whatever
    /// `http_private` says (fetching a client's metadata document from the
    /// URL the client names, for example).
    any_public_https: bool,
}

/// The grant of every https origin on a public address.
pub const ANY_PUBLIC_HTTPS: &str = "https://*";

impl HttpGrant {
    /// Parses each origin of `grants.http`, once. A plain `http://` origin that
    /// is not loopback would carry the component's requests (and whatever
    /// credential they hold) in clear, whatever the component's own checks
    /// say: refused, unless the workload consents with `allow_cleartext`
    /// (then a warning). `None` when an origin is refused.
    pub fn parse(origins: &[String], private: bool, allow_cleartext: bool, problems: &mut Vec<GrantProblem>) -> Option<HttpGrant> {
        let mut parsed = Vec::with_capacity(origins.len());
        let mut ok = true;
        let mut any_public_https = false;
        for (index, text) in origins.iter().enumerate() {
            if text == ANY_PUBLIC_HTTPS {
                any_public_https = true;
                continue;
            }
            let problem = |message: String, hint: String, warning| GrantProblem { field: "http", index, message, hint: Some(hint), warning };
            let Some(origin) = Origin::parse(text) else {
                problems.push(problem(format!("{text:?} is not an origin"), "write scheme://host[:port], e.g. `https://idp.example.com`".into(), false));
                ok = false;
                continue;
            };
            if in_clear(&origin) {
                let host = origin.host();
                if allow_cleartext {
                    problems.push(problem(
                        format!("the component may send requests in clear to {host} (`http://`, not loopback)"),
                        "`allow_cleartext = true` on the workload allows it".into(),
                        true,
                    ));
                } else {
                    problems.push(problem(
                        format!("{text:?} would carry the component's requests in clear: the origin is `http://` and not loopback"),
                        format!("grant the https:// origin, or set `allow_cleartext = true` on the workload if the network to {host} is trusted"),
                        false,
                    ));
                    ok = false;
                }
            }
            parsed.push(origin);
        }
        ok.then_some(HttpGrant { origins: parsed, private, any_public_https })
    }
}

/// Plain `http` to a host that is not loopback (127.0.0.0/8, `::1`, `localhost`).
fn in_clear(origin: &Origin) -> bool {
    origin.scheme() == "http" && !portcullis_contract::net::is_loopback_authority(origin.host())
}

pub struct HttpGrants {
    grant: HttpGrant,
    client: Arc<OutboundHttp>,
    mode: Mode,
}

impl HttpGrants {
    pub fn new(grant: HttpGrant, client: Arc<OutboundHttp>, mode: Mode) -> Self {
        HttpGrants { grant, client, mode }
    }
}

/// What `send` answers during `portcullis check`, which must reach nothing.
pub const NOT_DURING_CHECK: &str = "not available during portcullis check";

/// An outgoing request whose URL, method and headers are usable and safe to
/// send; only the grant and address checks are left.
#[derive(Debug)]
pub struct CheckedRequest {
    url: url::Url,
    origin: Origin,
    method: reqwest::Method,
    headers: HeaderMap,
    body: Vec<u8>,
    timeout: Duration,
}

/// Parses a component's request, refusing (with `invalid-request` naming the
/// problem) a bad URL, method, header name or value, and any routing header.
pub fn check_request(request: OutgoingRequest) -> Result<CheckedRequest, HttpError> {
    let invalid = |message: String| HttpError::InvalidRequest(message);
    let url = url::Url::parse(&request.url).map_err(|e| invalid(format!("bad URL: {e}")))?;
    let origin = Origin::of(&url).ok_or_else(|| invalid("only http:// and https:// URLs with a host are supported".into()))?;
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| invalid(format!("bad method {:?}", shorten(&request.method))))?;
    // CONNECT asks the server to open a tunnel to somewhere else.
    if method == reqwest::Method::CONNECT {
        return Err(invalid("the method CONNECT is not allowed".into()));
    }
    let mut headers = HeaderMap::new();
    for Header { name, value } in request.headers {
        if name.starts_with(':') {
            return Err(invalid(format!("the pseudo-header `{}` is not allowed", shorten(&name))));
        }
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(format!("invalid header name {:?}", shorten(&name))))?;
        if routing_header(&name) {
            return Err(invalid(format!("the header `{name}` is set by the gateway, not by components")));
        }
        // The value is not echoed: it may be a credential.
        let value = HeaderValue::from_str(&value).map_err(|_| invalid(format!("invalid value for header `{name}`")))?;
        headers.append(name, value);
    }
    let timeout = request.timeout_ms.map(|ms| Duration::from_millis(ms.into())).unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT);
    Ok(CheckedRequest { url, origin, method, headers, body: request.body, timeout })
}

/// Headers that decide where a request goes or how it is framed: the client
/// sets them from the checked URL and body, never the component. (Names are
/// lower-case once parsed.)
pub fn routing_header(name: &HeaderName) -> bool {
    const EXACT: [&str; 9] = ["host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive", "forwarded"];
    let name = name.as_str();
    EXACT.contains(&name) || name.starts_with("proxy-") || name.starts_with("x-forwarded-")
}

/// At most 64 characters of a component-supplied string, for an error message.
fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The process-wide HTTP clients: one whose resolver refuses non-public
/// addresses, one for grants with `http_private = true`.
pub struct OutboundHttp {
    public_only: reqwest::Client,
    any_address: reqwest::Client,
    /// The gateway's runtime, where every connection is made and driven: a
    /// connection opened from the slow lane's low-priority threads would be
    /// driven there, and so would the healthy calls that later reuse it.
    home: Option<tokio::runtime::Handle>,
}

impl Default for OutboundHttp {
    fn default() -> Self {
        Self::new()
    }
}

impl OutboundHttp {
    pub fn new() -> Self {
        let build = |public_only: bool| {
            let builder = crate::http_client::builder()
                // Never through a proxy from the environment: the address check
                // would see the proxy, and the proxy would resolve the target.
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(MAX_TIMEOUT)
                .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
            let builder = if public_only { builder.dns_resolver(Arc::new(PublicOnlyResolver)) } else { builder };
            builder.build().expect("the HTTP client configuration is valid")
        };
        OutboundHttp { public_only: build(true), any_address: build(false), home: tokio::runtime::Handle::try_current().ok() }
    }

    async fn send(&self, grants: &HttpGrants, request: OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        let request = check_request(request)?;
        let listed = grants.grant.origins.contains(&request.origin);
        let by_wildcard = grants.grant.any_public_https && request.origin.scheme() == "https";
        if !listed && !by_wildcard {
            return Err(HttpError::NotGranted(request.origin.to_string()));
        }
        // An origin reached through `https://*` alone is never a private address.
        let private = listed && grants.grant.private;
        // After the grant check, so `check` reports an ungranted origin as a
        // serving gateway would; before the DNS lookup, which already reaches out.
        if grants.mode == Mode::Check {
            return Err(HttpError::InvalidRequest(NOT_DURING_CHECK.into()));
        }
        if !private {
            check_public(&request.url).await?;
        }
        let client = if private { &self.any_address } else { &self.public_only };
        let builder = client.request(request.method, request.url).timeout(request.timeout).headers(request.headers).body(request.body);
        match self.hand_over_to() {
            Some(home) => {
                let mut exchange = AbortOnDrop(home.spawn(exchange(builder)));
                (&mut exchange.0).await.unwrap_or_else(|_| Err(HttpError::Connection("the request was cancelled".into())))
            }
            None => exchange(builder).await,
        }
    }

    /// The gateway's runtime when the caller runs on another (the slow lane),
    /// to make the request there; `None` to make it where the caller is.
    fn hand_over_to(&self) -> Option<&tokio::runtime::Handle> {
        let here = tokio::runtime::Handle::try_current().map(|here| here.id()).ok();
        self.home.as_ref().filter(|home| here != Some(home.id()))
    }
}

/// Sends a request and reads its answer, up to [`MAX_RESPONSE_BYTES`].
async fn exchange(builder: reqwest::RequestBuilder) -> Result<IncomingResponse, HttpError> {
    let mut response = builder.send().await.map_err(map_error)?;
    let status = response.status().as_u16();
    let headers = response.headers().iter().filter_map(|(n, v)| Some(Header { name: n.as_str().to_owned(), value: v.to_str().ok()?.to_owned() })).collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(map_error)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(HttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(IncomingResponse { status, headers, body })
}

fn map_error(e: reqwest::Error) -> HttpError {
    if e.is_timeout() {
        HttpError::Timeout
    } else if e.is_builder() {
        HttpError::InvalidRequest(e.to_string())
    } else {
        // The chain of causes says what failed (refused, TLS, DNS) without anything secret.
        HttpError::Connection(crate::error_chain::Chain(&e).to_string())
    }
}

/// Refuses a URL whose host is, or resolves to, a non-public address.
async fn check_public(url: &url::Url) -> Result<(), HttpError> {
    let host = url.host().ok_or_else(|| HttpError::InvalidRequest("the URL has no host".into()))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => {
            tokio::net::lookup_host((name, port)).await.map_err(|e| HttpError::Connection(format!("cannot resolve {name}: {e}")))?.map(|a| a.ip()).collect()
        }
    };
    match addrs.iter().find(|ip| !is_public(**ip)) {
        Some(ip) => Err(HttpError::AddressRefused(format!("{} resolves to the non-public address {ip}", url.host_str().unwrap_or("")))),
        None => Ok(()),
    }
}

/// The resolver of the public-only client: refuses a name if any of its addresses is not public.
struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                let message = format!("{host} resolves to the non-public address {}", bad.ip());
                return Err(message.into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
#[path = "http_rebinding_tests.rs"]
mod rebinding_tests;

/// Whether `ip` is a globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 can reach private IPv4
        }
    }
}

impl Host for HostState {
    async fn send(&mut self, request: OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        let caps = self.caps.clone();
        if let Some(trial) = &caps.trial {
            return trial.http_send(&request);
        }
        let result = match within(self.deadline) {
            Some(limit) if limit.is_zero() => Err(HttpError::Timeout),
            Some(limit) => tokio::time::timeout(limit, caps.http.client.send(&caps.http, request)).await.unwrap_or(Err(HttpError::Timeout)),
            None => caps.http.client.send(&caps.http, request).await,
        };
        // The wait for the answer is not the guest's computing (see `slow_lane`).
        self.resume();
        match &result {
            Err(HttpError::NotGranted(origin)) => tracing::warn!(%origin, "refused an HTTP request: the policy does not grant this origin to this component"),
            Err(HttpError::AddressRefused(why)) => tracing::warn!(why = %why, "refused an HTTP request to a non-public address (grant http_private to allow)"),
            Err(HttpError::InvalidRequest(why)) if why == NOT_DURING_CHECK => {
                tracing::warn!("refused an HTTP request: components reach nothing during `portcullis check`")
            }
            _ => {}
        }
        result
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
