//! One `Origin` type (RFC 6454: scheme, host, port) for everything that names
//! one: the policy's `allowed_origins` and `grants.http`, a browser's `Origin`
//! header checked by the request guard, the URL a component asks to fetch.
//! One parser, so the guard and the grants cannot disagree on what an origin is.

use std::fmt;

/// `http` or `https`, a lower-case host (IPv6 in brackets), and a port (the
/// scheme's default filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: &'static str,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]` (a trailing `/` is fine); refuses paths,
    /// queries, fragments, user info, other schemes and `null`.
    pub fn parse(text: &str) -> Option<Origin> {
        let url = url::Url::parse(text).ok()?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        Origin::of(&url)
    }

    /// The origin of an `http` or `https` URL.
    pub fn of(url: &url::Url) -> Option<Origin> {
        let scheme = match url.scheme() {
            "http" => "http",
            "https" => "https",
            _ => return None,
        };
        Some(Origin { scheme, host: host_of(url)?, port: url.port_or_known_default()? })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The host, lower case, IPv6 in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// A URL's host as it appears in an authority: lower case, IPv6 in brackets.
pub fn host_of(url: &url::Url) -> Option<String> {
    Some(match url.host()? {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => format!("[{ip}]"),
    })
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let a = Origin::parse("https://IdP.example.com").unwrap();
        assert_eq!(a.to_string(), "https://idp.example.com:443");
        assert_eq!(Origin::parse("http://[::1]:8080/").unwrap().to_string(), "http://[::1]:8080");
        assert_eq!(Origin::parse("https://a.example:443"), Origin::parse("https://a.example"));
        for bad in ["https://idp.example.com/path", "ftp://x", "not a url", "null", "https://u@x.example", "https://x.example/?q", "file:///etc"] {
            assert!(Origin::parse(bad).is_none(), "{bad}");
        }
    }
}
