//! This server's resource (RFC 8707) and issuer, both from the workload's public URL.
//!
//! A `resource` a client sends is compared after both sides are parsed by the
//! `url` crate, as the gateway parses `public_url`: the host's case, a
//! default port and an empty path's `/` do not matter; the path, a
//! non-default port, the scheme and a query do.

use portcullis_contract::net::{has_user_info, is_secure_or_loopback};

#[derive(Debug, Clone)]
pub struct Resource {
    /// As written in the policy: the gateway's RFC 9728 document names it
    /// so, and the verifier expects it as the tokens' `aud`.
    written: String,
    parsed: url::Url,
}

impl Resource {
    pub fn new(public_url: &str) -> Result<Resource, String> {
        let parsed =
            parse(public_url).ok_or_else(|| format!("{public_url:?} is not an https URL (or http on loopback) without a fragment or user information"))?;
        if !is_secure_or_loopback(parsed.scheme(), parsed.host_str()) {
            return Err(format!("{public_url:?}: tokens may only be issued for https (or http on loopback)"));
        }
        Ok(Resource { written: public_url.to_owned(), parsed })
    }

    /// The issuer: the public URL's origin (`scheme://host[:port]`, no path, no `/`).
    pub fn issuer(&self) -> String {
        self.parsed.origin().ascii_serialization()
    }

    /// The public URL's path, as the `url` crate gives it (`/` for none).
    pub fn path(&self) -> &str {
        self.parsed.path()
    }

    /// The tokens' audience.
    pub fn audience(&self) -> &str {
        &self.written
    }

    /// Whether `candidate` names this resource.
    pub fn is(&self, candidate: &str) -> bool {
        parse(candidate).is_some_and(|c| c == self.parsed)
    }
}

/// An absolute http(s) URL without a fragment (RFC 8707 §2) or user information.
fn parse(text: &str) -> Option<url::Url> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
        return None;
    }
    let url = url::Url::parse(text).ok()?;
    let ok = matches!(url.scheme(), "http" | "https") && url.fragment().is_none() && !has_user_info(url.username(), url.password()) && url.host_str().is_some();
    ok.then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_is_compared_as_parsed() {
        let r = Resource::new("https://GW.example:443/mcp").unwrap();
        assert_eq!(r.issuer(), "https://gw.example");
        assert_eq!(r.audience(), "https://GW.example:443/mcp");
        for same in ["https://gw.example/mcp", "https://GW.EXAMPLE/mcp", "https://gw.example:443/mcp"] {
            assert!(r.is(same), "{same}");
        }
        for other in [
            "https://gw.example/mcp/",
            "https://gw.example/MCP",
            "https://gw.example/",
            "http://gw.example/mcp",
            "https://gw.example:8443/mcp",
            "https://other.example/mcp",
            "https://gw.example/mcp#x",
            "https://gw.example/mcp?x=1",
            "https://u@gw.example/mcp",
            "gw.example/mcp",
            "",
        ] {
            assert!(!r.is(other), "{other}");
        }
        let root = Resource::new("http://127.0.0.1:8080").unwrap();
        assert!(root.is("http://127.0.0.1:8080/"));
        assert!(root.is("http://127.0.0.1:8080"));
        assert_eq!(root.issuer(), "http://127.0.0.1:8080");
        assert_eq!(root.path(), "/");
        assert!(Resource::new("http://gw.example/mcp").is_err(), "cleartext off loopback");
        assert!(Resource::new("https://gw.example/mcp#f").is_err());
    }
}
