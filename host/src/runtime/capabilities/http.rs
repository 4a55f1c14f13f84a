//! The `http-client` import: outbound requests to granted origins only.
//!
//! Two checks guard every request: the URL's origin must be granted, and every
//! address its host resolves to must be public unless the grant says
//! `http_private = true` (so a component cannot probe loopback or the LAN). The
//! address check runs again inside the client's resolver, at connection time,
//! so a DNS answer that changes between the check and the connection (DNS
//! rebinding) is refused too. Redirects are not followed: a component that
//! wants to follow one sends a new request, which is checked again.

use super::HostState;
use crate::runtime::bindings::host::portcullis::auth::http_client::{Host, HttpError, IncomingResponse, OutgoingRequest};
use crate::runtime::bindings::types::Header;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
const MAX_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// `scheme://host:port`, lower-cased, with the default port filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedOrigin {
    scheme: String,
    host: String,
    port: u16,
}

impl GrantedOrigin {
    pub fn parse(origin: &str) -> Option<Self> {
        let url = url::Url::parse(origin).ok()?;
        if !matches!(url.scheme(), "http" | "https") || url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
            return None;
        }
        Self::of(&url)
    }

    fn of(url: &url::Url) -> Option<Self> {
        Some(GrantedOrigin {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }
}

impl std::fmt::Display for GrantedOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

pub struct HttpGrants {
    origins: Vec<GrantedOrigin>,
    private: bool,
    client: Arc<OutboundHttp>,
}

impl HttpGrants {
    pub fn new(origins: &[String], private: bool, client: Arc<OutboundHttp>) -> Self {
        HttpGrants { origins: origins.iter().filter_map(|o| GrantedOrigin::parse(o)).collect(), private, client }
    }
}

/// The process-wide HTTP clients: one whose resolver refuses non-public
/// addresses, one for grants with `http_private = true`.
pub struct OutboundHttp {
    public_only: reqwest::Client,
    any_address: reqwest::Client,
}

impl Default for OutboundHttp {
    fn default() -> Self {
        Self::new()
    }
}

impl OutboundHttp {
    pub fn new() -> Self {
        let build = |public_only: bool| {
            let builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(MAX_TIMEOUT)
                .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
            let builder = if public_only { builder.dns_resolver(Arc::new(PublicOnlyResolver)) } else { builder };
            builder.build().expect("the HTTP client configuration is valid")
        };
        OutboundHttp { public_only: build(true), any_address: build(false) }
    }

    async fn send(&self, grants: &HttpGrants, request: OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        let url = url::Url::parse(&request.url).map_err(|e| HttpError::InvalidRequest(format!("bad URL: {e}")))?;
        let origin = GrantedOrigin::of(&url)
            .filter(|_| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| HttpError::InvalidRequest("only http:// and https:// URLs with a host are supported".into()))?;
        if !grants.origins.contains(&origin) {
            return Err(HttpError::NotGranted(origin.to_string()));
        }
        if !grants.private {
            check_public(&url).await?;
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("bad method {:?}", request.method)))?;
        let timeout = request.timeout_ms.map(|ms| Duration::from_millis(ms.into())).unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT);
        let client = if grants.private { &self.any_address } else { &self.public_only };
        let mut builder = client.request(method, url).timeout(timeout);
        for Header { name, value } in request.headers {
            builder = builder.header(name, value);
        }
        let mut response = builder.body(request.body).send().await.map_err(map_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some(Header { name: n.as_str().to_owned(), value: v.to_str().ok()?.to_owned() }))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map_error)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(IncomingResponse { status, headers, body })
    }
}

fn map_error(e: reqwest::Error) -> HttpError {
    if e.is_timeout() {
        HttpError::Timeout
    } else if e.is_builder() {
        HttpError::InvalidRequest(e.to_string())
    } else {
        // The chain of causes says what failed (refused, TLS, DNS) without anything secret.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        HttpError::Connection(message)
    }
}

/// Refuses a URL whose host is, or resolves to, a non-public address.
async fn check_public(url: &url::Url) -> Result<(), HttpError> {
    let host = url.host().ok_or_else(|| HttpError::InvalidRequest("the URL has no host".into()))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| HttpError::Connection(format!("cannot resolve {name}: {e}")))?
            .map(|a| a.ip())
            .collect(),
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
        let result = caps.http.client.send(&caps.http, request).await;
        match &result {
            Err(HttpError::NotGranted(origin)) => tracing::warn!(workload = %caps.label.workload, component = %caps.label.component,
                %origin, "refused an HTTP request: the policy does not grant this origin to this component"),
            Err(HttpError::AddressRefused(why)) => tracing::warn!(workload = %caps.label.workload, component = %caps.label.component,
                why = %why, "refused an HTTP request to a non-public address (grant http_private to allow)"),
            _ => {}
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_normalise() {
        let a = GrantedOrigin::parse("https://IdP.example.com").unwrap();
        assert_eq!(a.to_string(), "https://idp.example.com:443");
        assert!(GrantedOrigin::parse("https://idp.example.com/path").is_none());
        assert!(GrantedOrigin::parse("ftp://x").is_none());
        assert!(GrantedOrigin::parse("not a url").is_none());
    }

    #[test]
    fn public_addresses() {
        for private in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "64:ff9b::a00:1"] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
