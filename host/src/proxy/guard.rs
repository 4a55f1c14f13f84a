//! The request guard's `Host` and `Origin` checks.
//!
//! A web page can make a browser send requests to `127.0.0.1:<port>` under a
//! name the attacker controls (DNS rebinding), and a browser adds `Origin` to
//! cross-site requests. The MCP transport specification asks local servers to
//! check both. By default only `public_url`'s host and the loopback names are
//! accepted (on any port); the policy's `allowed_hosts` and `allowed_origins`
//! extend that. A request without `Origin` (a non-browser client) is fine.

use crate::origin::{Origin, host_of};
use http::request::Parts;
use http::{HeaderMap, header};

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// A workload's accepted hosts and origins, built once at policy load.
#[derive(Debug, Clone)]
pub struct RequestGuard {
    /// Host names accepted on any port (lower case, IPv6 in brackets).
    any_port: Vec<String>,
    /// `host:port` pairs accepted exactly.
    exact: Vec<String>,
    /// Origins accepted besides those whose host is in `any_port`.
    origins: Vec<Origin>,
}

impl RequestGuard {
    /// `public_url`: the workload's (its host is accepted on any port); `None` for the admin listener.
    pub fn new(public_url: Option<&url::Url>, allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let mut any_port: Vec<String> = LOOPBACK_NAMES.iter().map(|s| s.to_string()).collect();
        if let Some(host) = public_url.and_then(host_of) {
            any_port.push(host);
        }
        let mut exact = Vec::new();
        for entry in allowed_hosts {
            let entry = entry.to_ascii_lowercase();
            match split_host_port(&entry) {
                Some((_, Some(_))) => exact.push(entry),
                _ => any_port.push(entry),
            }
        }
        let origins = allowed_origins.iter().filter_map(|o| Origin::parse(o)).collect();
        RequestGuard { any_port, exact, origins }
    }

    /// Whether `authority` (the `Host` header or HTTP/2 `:authority`) names this server.
    pub fn host_allowed(&self, authority: &str) -> bool {
        // Compared without case and without allocating: this runs on every request.
        let Some((host, _port)) = split_host_port(authority) else {
            return false;
        };
        self.any_port.iter().any(|h| h.eq_ignore_ascii_case(host)) || self.exact.iter().any(|e| e.eq_ignore_ascii_case(authority))
    }

    /// Whether the request's `Origin` (if any) is acceptable.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(http::header::ORIGIN).iter();
        let Some(value) = values.next() else {
            return true;
        };
        if values.next().is_some() {
            return false;
        }
        let Some(origin) = value.to_str().ok().and_then(Origin::parse) else {
            // Includes `Origin: null` (sandboxed frames, file: pages): never trusted.
            return false;
        };
        self.origins.contains(&origin) || self.any_port.iter().any(|h| h == origin.host())
    }
}

/// The request's authority: HTTP/2 `:authority` or HTTP/1.1 `Host`. Both present
/// and different is ambiguous and refused.
pub fn authority(parts: &Parts) -> Option<String> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (None, _) => None,
        (Some(one), None) => Some(one.to_str().ok()?),
        (Some(_), Some(_)) => return None,
    };
    match (parts.uri.authority().map(|a| a.as_str()), host) {
        (Some(uri), Some(host)) if !uri.eq_ignore_ascii_case(host) => None,
        (Some(uri), _) => Some(uri.to_owned()),
        (None, host) => host.map(str::to_owned),
    }
}

/// Splits `host[:port]` (IPv6 in brackets). `None` if malformed.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.is_empty() || authority.contains(['/', '@', ' ']) {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> RequestGuard {
        let public = url::Url::parse("https://mcp.example.com/mcp").unwrap();
        RequestGuard::new(Some(&public), &["alias.example.com".into(), "other.example:8443".into()], &["https://app.example.org".into()])
    }

    #[test]
    fn hosts() {
        let g = guard();
        for ok in ["mcp.example.com", "MCP.example.com:443", "localhost:8080", "127.0.0.1:1", "[::1]:9", "alias.example.com:1", "other.example:8443"] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in ["evil.example", "mcp.example.com.evil.example", "other.example:8444", "", "127.0.0.2", "localhost:notaport", "a@localhost"] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn origins() {
        let g = guard();
        let with = |o: &str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::ORIGIN, o.parse().unwrap());
            h
        };
        assert!(g.origin_allowed(&HeaderMap::new()));
        for ok in ["http://localhost:3000", "https://mcp.example.com", "https://app.example.org", "http://127.0.0.1:6274"] {
            assert!(g.origin_allowed(&with(ok)), "{ok}");
        }
        for bad in ["https://evil.example", "null", "https://app.example.org.evil", "http://app.example.org", "file://", "junk"] {
            assert!(!g.origin_allowed(&with(bad)), "{bad}");
        }
        let mut two = with("http://localhost");
        two.append(http::header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!g.origin_allowed(&two));
    }
}
