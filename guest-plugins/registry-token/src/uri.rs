//! What this component checks on a URL: the scheme, whether the host is
//! loopback, and whether there is a query or a fragment. URLs are parsed with
//! the `url` crate, as the gateway's HTTP client parses them, so both see the
//! same host; what matters here is that nothing is sent in the clear to a
//! host that is not this machine ([`portcullis_contract::net`]).

use portcullis_contract::net::{has_user_info, is_loopback_host};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// What the checks need to know about an `http(s)://` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub scheme: Scheme,
    /// The host is loopback ([`is_loopback_host`]).
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
pub fn parts(text: &str) -> Option<Parts> {
    if !written_plainly(text) {
        return None;
    }
    let url = url::Url::parse(text).ok()?;
    let scheme = match url.scheme() {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        _ => return None,
    };
    if has_user_info(url.username(), url.password()) {
        return None;
    }
    let host = url.host_str().filter(|h| !h.is_empty())?;
    Some(Parts { scheme, loopback: is_loopback_host(host), has_query: url.query().is_some(), has_fragment: url.fragment().is_some() })
}

/// Whether `text` needs none of the repairs the URL standard makes before
/// parsing: removing spaces, tabs and newlines, reading `\` as `/`, and
/// finding the host after a missing or a third `/` (`https:idp`,
/// `https:///idp`). A reader of such a URL would guess another host than the
/// parser finds, so it is refused rather than repaired.
fn written_plainly(text: &str) -> bool {
    let authority = text.split_once(':').map(|(_, rest)| rest);
    !text.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') && authority.is_some_and(|rest| rest.starts_with("//") && !rest.starts_with("///"))
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
        for local in ["http://localhost:8080", "http://127.0.0.1/x", "http://127.0.0.2", "http://[::1]:9000/", "HTTP://LocalHost", "http://127.1:80/"] {
            assert!(parts(local).unwrap().is_local_http(), "{local}");
        }
        for remote in [
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example",
            "http://a.localhost",
            "http://[::ffff:127.0.0.1]",
            "http://[::2]",
            "http://10.0.0.1",
        ] {
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
            "https:idp.example.com",
            "https:/idp.example.com",
            "https://user@idp.example.com",
            "https://:pw@idp.example.com",
            "https://user:pw@idp.example.com",
            "https://idp.example.com:notaport/",
            "https://idp.example.com:99999/",
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
