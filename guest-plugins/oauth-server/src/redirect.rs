//! Redirect URIs: what a client may register, and whether a presented one
//! matches a registered one.
//!
//! Matching is exact, character for character (no normalisation: case, a
//! trailing slash, a port or the scheme make another URI), with one
//! exception, RFC 8252 §7.3: a native app's loopback redirect
//! (`http://127.0.0.1`, `http://[::1]`, and `http://localhost`, see below) matches on
//! any port, because the app learns its port only when it listens.
//!
//! `localhost` gets the any-port rule too (decision): RFC 8252 §8.3 advises
//! IP literals, but clients in the field (Claude Code, the MCP SDKs) register
//! `http://localhost:PORT/...`, and the redirect stays on the user's machine
//! either way. The host must be written the same on both sides: a URI
//! registered with `localhost` does not match one presented with `127.0.0.1`.

/// The loopback hosts of the any-port rule, exactly as written (lower case).
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// What kind of redirect a URI is, for registration's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `http://` on a loopback host (RFC 8252 §7.3): native apps.
    Loopback,
    /// A private-use scheme such as `com.example.app:/cb` (RFC 8252 §7.1): native apps.
    CustomScheme,
    /// `https://`: web apps (and native apps with claimed URLs, §7.2).
    Https,
}

/// Schemes that are never a redirect target: they run or read something in the browser.
const REFUSED_SCHEMES: [&str; 9] = ["javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "ftp", "ws"];

/// The kind of an acceptable redirect URI, or why it is not acceptable.
pub fn kind(uri: &str) -> Result<Kind, String> {
    if uri.is_empty() || uri.len() > 2000 || uri.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
        return Err("a redirect URI must be 1 to 2000 characters without spaces, control characters or backslashes".into());
    }
    if uri.contains('#') {
        return Err("a redirect URI must not have a fragment (RFC 6749 §3.1.2)".into());
    }
    let url = url::Url::parse(uri).map_err(|_| "a redirect URI must be an absolute URI".to_owned())?;
    if portcullis_contract::net::has_user_info(url.username(), url.password()) {
        return Err("a redirect URI must not carry user information".into());
    }
    // The URL standard lower-cases the scheme; the text must already be lower case
    // so that what is matched later (exactly) is what was checked here.
    if !uri.starts_with(url.scheme()) {
        return Err("write the redirect URI's scheme in lower case".into());
    }
    match url.scheme() {
        "https" => match url.host_str() {
            Some(h) if !h.is_empty() && uri.starts_with("https://") => Ok(Kind::Https),
            _ => Err("an https redirect URI needs a host".into()),
        },
        "http" => match loopback_parts(uri) {
            Some(_) => Ok(Kind::Loopback),
            None => Err("an http redirect URI must be loopback (`http://127.0.0.1`, `http://[::1]` or `http://localhost`); use https otherwise".into()),
        },
        scheme if REFUSED_SCHEMES.contains(&scheme) || scheme == "wss" => Err(format!("`{scheme}:` is not a redirect URI scheme")),
        _ => Ok(Kind::CustomScheme),
    }
}

/// Whether the `presented` redirect URI matches the `registered` one.
pub fn matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    match (loopback_parts(registered), loopback_parts(presented)) {
        (Some(r), Some(p)) => r.host == p.host && r.rest == p.rest,
        _ => false,
    }
}

/// Whether `presented` matches any of `registered`.
pub fn matches_any(registered: &[String], presented: &str) -> bool {
    registered.iter().any(|r| matches(r, presented))
}

/// `http://HOST[:PORT]REST` with HOST one of [`LOOPBACK_HOSTS`] as written,
/// PORT digits, and REST empty or starting with `/` or `?`.
struct LoopbackParts<'a> {
    host: &'a str,
    rest: &'a str,
}

fn loopback_parts(uri: &str) -> Option<LoopbackParts<'_>> {
    let after = uri.strip_prefix("http://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let host = LOOPBACK_HOSTS.into_iter().find(|h| authority.starts_with(h))?;
    let port = &authority[host.len()..];
    let port_ok = match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()) && digits.parse::<u16>().is_ok(),
    };
    (port_ok && !rest.contains('#')).then_some(LoopbackParts { host, rest })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_outside_loopback() {
        let r = "https://app.example/cb";
        assert!(matches(r, "https://app.example/cb"));
        for other in [
            "https://APP.example/cb",
            "https://app.example/CB",
            "https://app.example/cb/",
            "https://app.example:443/cb",
            "https://app.example:8443/cb",
            "http://app.example/cb",
            "https://app.example/cb?x=1",
            "https://app.example/c",
            "https://app.example.evil/cb",
        ] {
            assert!(!matches(r, other), "{other}");
        }
        assert!(matches("com.example.app:/cb", "com.example.app:/cb"));
        assert!(!matches("com.example.app:/cb", "com.example.app:/cb2"));
    }

    #[test]
    fn loopback_matches_on_any_port_only() {
        for (registered, presented) in [
            ("http://127.0.0.1/callback", "http://127.0.0.1:53122/callback"),
            ("http://127.0.0.1:8000/callback", "http://127.0.0.1:9/callback"),
            ("http://[::1]/cb", "http://[::1]:65535/cb"),
            ("http://localhost:3000/cb", "http://localhost:41000/cb"),
            ("http://127.0.0.1", "http://127.0.0.1:5000"),
            ("http://127.0.0.1/cb?a=1", "http://127.0.0.1:80/cb?a=1"),
        ] {
            assert!(matches(registered, presented), "{registered} ~ {presented}");
        }
        for (registered, presented) in [
            ("http://127.0.0.1/callback", "http://127.0.0.1:53122/callback/"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:53122/Callback"),
            ("http://127.0.0.1/callback", "http://localhost:53122/callback"),
            ("http://localhost/callback", "http://127.0.0.1:53122/callback"),
            ("http://127.0.0.1/callback", "https://127.0.0.1:53122/callback"),
            ("http://127.0.0.1/callback", "HTTP://127.0.0.1:53122/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.2:53122/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1.evil.example/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:99999/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:1x/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1@evil.example/callback"),
            ("http://LOCALHOST/cb", "http://LOCALHOST:1/cb"),
            ("https://app.example/cb", "https://app.example:1/cb"),
        ] {
            assert!(!matches(registered, presented), "{registered} !~ {presented}");
        }
        assert!(matches_any(&["https://a.example/cb".into(), "http://[::1]/cb".into()], "http://[::1]:8/cb"));
    }

    #[test]
    fn what_may_be_registered() {
        assert_eq!(kind("https://app.example/cb"), Ok(Kind::Https));
        assert_eq!(kind("http://127.0.0.1/cb"), Ok(Kind::Loopback));
        assert_eq!(kind("http://[::1]:8080/cb"), Ok(Kind::Loopback));
        assert_eq!(kind("http://localhost:8080/cb"), Ok(Kind::Loopback));
        assert_eq!(kind("com.example.app:/oauth"), Ok(Kind::CustomScheme));
        assert_eq!(kind("cursor://anysphere.cursor/oauth"), Ok(Kind::CustomScheme));
        for bad in [
            "http://app.example/cb",
            "http://10.0.0.1/cb",
            "https://app.example/cb#x",
            "https://u:p@app.example/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "HTTPS://app.example/cb",
            "Com.Example.App:/cb",
            "/relative",
            "",
            "https://app.example/a b",
            "https:app.example/cb",
        ] {
            assert!(kind(bad).is_err(), "{bad}");
        }
    }
}
