//! The request target: which methods and paths reach a workload at all.
//!
//! The upstream is a base URL, possibly with a path (`http://host/api/team-a`),
//! and a client must never reach outside it. Rather than normalise a path (and
//! risk the components and the upstream reading it differently), the gateway
//! refuses every path that a server could resolve to somewhere else: dot
//! segments, raw or percent-encoded in any case, encoded slashes and
//! backslashes, and raw backslashes. What a component sees is then exactly what
//! the upstream gets, below the base path. Envoy's `REJECT_REQUEST` for escaped
//! slashes and nginx's `merge_slashes` logic informed this; see docs/security.md.

use super::error::GatewayError;
use http::Method;
use http::request::Parts;

/// Refuses methods no MCP server or registry needs and that proxies get wrong,
/// and targets that are not a path.
pub fn check(parts: &Parts) -> Result<(), GatewayError> {
    // TRACE echoes the request (credentials included) back; CONNECT opens a tunnel.
    if parts.method == Method::TRACE || parts.method == Method::CONNECT {
        return Err(GatewayError::MethodNotAllowed);
    }
    let path = parts.uri.path();
    // Origin form (`/path`), or absolute form whose path is the same (HTTP/2
    // always gives an absolute URI). Asterisk form (`OPTIONS *`, whose path is
    // `*`) and authority form (empty path) are refused.
    if !path.starts_with('/') {
        return Err(GatewayError::BadTarget("the request target must be a path starting with `/`"));
    }
    if let Some(why) = path_problem(path) {
        return Err(GatewayError::BadTarget(why));
    }
    Ok(())
}

/// Why `path` could resolve outside its base, if it could.
fn path_problem(path: &str) -> Option<&'static str> {
    if path.contains('\\') {
        return Some("the path contains a backslash");
    }
    let lower_has = |needle: &str| path.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()));
    if lower_has("%2f") || lower_has("%5c") {
        return Some("the path contains an encoded slash or backslash");
    }
    for segment in path.split('/') {
        // `..;param` is `..` to servers that strip path parameters (Tomcat).
        let segment = segment.split(';').next().unwrap_or(segment);
        if is_dot_segment(segment) {
            return Some("the path contains a `.` or `..` segment");
        }
    }
    None
}

/// `.` or `..`, with any dot possibly written `%2e` / `%2E`.
fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in ["/", "/mcp", "/a/b.json", "/a/...", "/.well-known/x", "/a%2Eb", "/a/.hidden", "/%252e%252e/x", "//double"] {
            assert_eq!(path_problem(ok), None, "{ok}");
        }
        for bad in [
            "/..",
            "/../admin",
            "/a/./b",
            "/%2e%2e/admin",
            "/%2E%2e/x",
            "/.%2e/x",
            "/%2e/x",
            "/a%2fb",
            "/a%2Fb",
            "/a%5cb",
            "/a\\b",
            "/a/..",
            "/..;/admin",
            "/.;x/a",
        ] {
            assert!(path_problem(bad).is_some(), "{bad}");
        }
    }
}
