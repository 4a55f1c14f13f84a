//! Just enough URL inspection for the checks this component makes: the
//! scheme, whether the host is a loopback name, and whether there is a query
//! or a fragment. Full parsing stays with the gateway, whose HTTP client
//! refuses any URL it cannot use; what matters here is that nothing is sent
//! in the clear to a host that is not this machine.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// What the checks need to know about an `http(s)://` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub scheme: Scheme,
    /// The host is `localhost`, `127.0.0.1` or `[::1]`.
    pub loopback: bool,
    pub has_query: bool,
    pub has_fragment: bool,
}

impl Parts {
    /// `http://` on a loopback host: a provider on this machine, for development.
    pub fn is_local_http(&self) -> bool {
        self.scheme == Scheme::Http && self.loopback
    }
}

/// The parts of an absolute `http://` or `https://` URL, or `None` when it is
/// not one. User information (`user:password@`) is refused: credentials do
/// not belong in these URLs, and `https://good@evil` misleads a reader.
pub fn parts(url: &str) -> Option<Parts> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else {
        return None;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains(['@', '\\']) {
        return None;
    }
    let host = host(authority)?;
    Some(Parts {
        scheme,
        loopback: host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "::1",
        has_query: tail.contains('?'),
        has_fragment: tail.contains('#'),
    })
}

/// The host of `host[:port]` or `[v6][:port]` (without brackets); `None` when
/// the host is empty or the port is not a number.
fn host(authority: &str) -> Option<&str> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']')?;
            (host, if after.is_empty() { None } else { Some(after.strip_prefix(':')?) })
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u32>().is_ok_and(|n| n <= 65_535));
    (!host.is_empty() && port_ok).then_some(host)
}

/// An absolute URI in the sense of RFC 3986 §4.3 (a scheme, something after
/// it, no fragment), as RFC 8707 asks of a `resource` indicator.
pub fn is_absolute_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    scheme_ok && !rest.is_empty() && !uri.contains('#') && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_loopback_hosts() {
        let p = parts("https://idp.example.com/realms/x?a=1").unwrap();
        assert_eq!((p.scheme, p.loopback, p.has_query, p.has_fragment), (Scheme::Https, false, true, false));
        for local in ["http://localhost:8080", "http://127.0.0.1/x", "http://[::1]:9000/", "HTTP://LocalHost"] {
            assert!(parts(local).unwrap().is_local_http(), "{local}");
        }
        for remote in ["http://127.0.0.2", "http://localhost.evil.example", "http://[::2]", "http://10.0.0.1"] {
            assert!(!parts(remote).unwrap().is_local_http(), "{remote}");
        }
        assert!(parts("https://idp/#frag").unwrap().has_fragment);
    }

    #[test]
    fn what_is_not_an_http_url() {
        for bad in [
            "idp.example.com",
            "ftp://idp.example.com",
            "https://",
            "https:///path",
            "https://user:pw@idp.example.com",
            "https://idp.example.com:notaport/",
            "https://idp.example.com:99999/",
            "https://idp.example.com:/",
            "https://[::1/",
            "https://[::1]x/",
            "https://idp.example.com/a b",
            "https://idp\\evil/",
        ] {
            assert!(parts(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn absolute_uris() {
        for good in ["https://registry.example.com/api", "urn:example:registry", "api+x://thing"] {
            assert!(is_absolute_uri(good), "{good}");
        }
        for bad in ["registry.example.com", "/api", "https://x/#f", "1http://x", "https:", ":x", "api://my registry"] {
            assert!(!is_absolute_uri(bad), "{bad}");
        }
    }
}
