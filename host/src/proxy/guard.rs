//! The request guard's `Host` and `Origin` checks.
//!
//! A web page can make a browser send requests to `127.0.0.1:<port>` under a
//! name the attacker controls (DNS rebinding), and a browser adds `Origin` to
//! cross-site requests. The MCP transport specification asks local servers to
//! check both. By default only `public_url`'s host and the loopback names are
//! accepted (on any port); the policy's `allowed_hosts` and `allowed_origins`
//! extend that. A request without `Origin` (a non-browser client) is fine,
//! unless a browser says it comes from another site (`Sec-Fetch-Site`): an
//! `<img>` or a link on any page would otherwise drive a workload that needs
//! no credential from the caller (an anonymous workload whose injector adds the
//! user's token).

use crate::origin::{Origin, host_of};
use http::request::Parts;
use http::{HeaderMap, header};
use portcullis_contract::net::is_loopback_host;

const SEC_FETCH_SITE: http::HeaderName = http::HeaderName::from_static("sec-fetch-site");

/// A workload's accepted hosts and origins, built once at policy load.
#[derive(Debug, Clone)]
pub struct RequestGuard {
    /// Host names accepted on any port (lower case, IPv6 in brackets),
    /// besides the loopback hosts ([`is_loopback_host`]).
    any_port: Vec<String>,
    /// `host:port` pairs accepted exactly.
    exact: Vec<String>,
    /// Origins accepted besides those whose host is in `any_port`.
    origins: Vec<Origin>,
}

/// A value of `allowed_hosts` or `allowed_origins` that is not one: the list
/// and the index, for the policy loader to locate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardError {
    /// `allowed_hosts` or `allowed_origins`.
    pub field: &'static str,
    pub index: usize,
    pub message: String,
    pub hint: String,
}

impl RequestGuard {
    /// Parses the policy's `allowed_hosts` and `allowed_origins` (every value,
    /// each error kept). `public_url`: the workload's (its host is accepted on
    /// any port); `None` for the admin listener.
    pub fn parse(public_url: Option<&url::Url>, allowed_hosts: &[String], allowed_origins: &[String]) -> Result<Self, Vec<GuardError>> {
        let mut errors = Vec::new();
        let mut any_port = Vec::new();
        if let Some(host) = public_url.and_then(host_of) {
            any_port.push(host);
        }
        let mut origins = Vec::with_capacity(allowed_origins.len());
        for (index, text) in allowed_origins.iter().enumerate() {
            match Origin::parse(text) {
                Some(origin) => origins.push(origin),
                None => errors.push(GuardError {
                    field: "allowed_origins",
                    index,
                    message: format!("{text:?} is not an origin"),
                    hint: "write scheme://host[:port], e.g. `https://app.example.com`".into(),
                }),
            }
        }
        let mut exact = Vec::new();
        for (index, entry) in allowed_hosts.iter().enumerate() {
            if entry.is_empty() || entry.contains(['/', ' ', '@']) {
                let message = format!("{entry:?} is not a host name");
                errors.push(GuardError { field: "allowed_hosts", index, message, hint: "write `host` or `host:port`".into() });
                continue;
            }
            let entry = entry.to_ascii_lowercase();
            match split_host_port(&entry) {
                Some((_, Some(_))) => exact.push(entry),
                _ => any_port.push(entry),
            }
        }
        if errors.is_empty() { Ok(RequestGuard { any_port, exact, origins }) } else { Err(errors) }
    }

    /// Whether `authority` (the `Host` header or HTTP/2 `:authority`) names this server.
    pub fn host_allowed(&self, authority: &str) -> bool {
        // Compared without case and without allocating: this runs on every request.
        let Some((host, _port)) = split_host_port(authority) else {
            return false;
        };
        is_loopback_host(host) || self.any_port.iter().any(|h| h.eq_ignore_ascii_case(host)) || self.exact.iter().any(|e| e.eq_ignore_ascii_case(authority))
    }

    /// Whether the request's `Origin` (if any) is acceptable, and a browser's
    /// cross-site request carries one that is.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(http::header::ORIGIN).iter();
        let Some(value) = values.next() else {
            // A browser sends no `Origin` with a GET from an `<img>`, a link or
            // a form on another site, but it does say where the request comes
            // from: without an `Origin` to check, a cross-site one is refused.
            return !cross_site(headers);
        };
        if values.next().is_some() {
            return false;
        }
        let Some(origin) = value.to_str().ok().and_then(Origin::parse) else {
            // Includes `Origin: null` (sandboxed frames, file: pages): never trusted.
            return false;
        };
        self.origins.contains(&origin) || is_loopback_host(origin.host()) || self.any_port.iter().any(|h| h == origin.host())
    }
}

/// Whether a browser marks the request as sent by another site (Fetch
/// Metadata, `Sec-Fetch-Site`): `cross-site`, or `same-site` (another origin of
/// the same site, such as another port on `localhost`). Several values are
/// ambiguous and count as cross-site; `same-origin`, `none` (typed by the user)
/// and no header (not a browser) do not. A browser never lets a page set it.
fn cross_site(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(SEC_FETCH_SITE).iter();
    match (values.next(), values.next()) {
        (None, _) => false,
        (Some(value), None) => {
            let value = value.as_bytes();
            value.eq_ignore_ascii_case(b"cross-site") || value.eq_ignore_ascii_case(b"same-site")
        }
        (Some(_), Some(_)) => true,
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
        RequestGuard::parse(Some(&public), &["alias.example.com".into(), "other.example:8443".into()], &["https://app.example.org".into()]).unwrap()
    }

    #[test]
    fn every_bad_value_is_reported_with_its_list_and_index() {
        let hosts = ["ok.example".into(), "".into(), "a/b".into(), "u@h".into(), "x y".into()];
        let origins = ["https://ok.example".into(), "null".into(), "https://a.example/path".into()];
        let errors = RequestGuard::parse(None, &hosts, &origins).unwrap_err();
        let found: Vec<(&str, usize)> = errors.iter().map(|e| (e.field, e.index)).collect();
        assert_eq!(
            found,
            [("allowed_origins", 1), ("allowed_origins", 2), ("allowed_hosts", 1), ("allowed_hosts", 2), ("allowed_hosts", 3), ("allowed_hosts", 4)]
        );
    }

    #[test]
    fn hosts() {
        let g = guard();
        for ok in
            ["mcp.example.com", "MCP.example.com:443", "localhost:8080", "127.0.0.1:1", "[::1]:9", "127.0.0.2", "alias.example.com:1", "other.example:8443"]
        {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "mcp.example.com.evil.example",
            "other.example:8444",
            "",
            "127.0.0.1.evil.example",
            "a.localhost",
            "[::ffff:127.0.0.1]",
            "localhost:notaport",
            "a@localhost",
        ] {
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
        for ok in
            ["http://localhost:3000", "https://mcp.example.com", "https://app.example.org", "http://127.0.0.1:6274", "http://127.0.0.2:6274", "http://[::1]:1"]
        {
            assert!(g.origin_allowed(&with(ok)), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "null",
            "https://app.example.org.evil",
            "http://app.example.org",
            "http://a.localhost:3000",
            "http://[::ffff:127.0.0.1]",
            "file://",
            "junk",
        ] {
            assert!(!g.origin_allowed(&with(bad)), "{bad}");
        }
        let mut two = with("http://localhost");
        two.append(http::header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!g.origin_allowed(&two));
    }

    #[test]
    fn cross_site_requests_need_an_accepted_origin() {
        let g = guard();
        let request = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (name, value) in pairs {
                h.append(http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
            }
            h
        };
        // A cross-site <img> or link: no Origin, only Sec-Fetch-Site.
        for site in ["cross-site", "same-site", "CROSS-SITE"] {
            assert!(!g.origin_allowed(&request(&[("sec-fetch-site", site)])), "{site}");
            assert!(!g.origin_allowed(&request(&[("sec-fetch-site", site), ("origin", "https://evil.example")])), "{site}");
            assert!(g.origin_allowed(&request(&[("sec-fetch-site", site), ("origin", "https://app.example.org")])), "{site}");
            assert!(g.origin_allowed(&request(&[("sec-fetch-site", site), ("origin", "http://localhost:3000")])), "{site}");
        }
        for site in ["none", "same-origin"] {
            assert!(g.origin_allowed(&request(&[("sec-fetch-site", site)])), "{site}");
        }
        // Two values cannot be told apart: refused, as two Origins are.
        assert!(!g.origin_allowed(&request(&[("sec-fetch-site", "same-origin"), ("sec-fetch-site", "cross-site")])));
    }
}
