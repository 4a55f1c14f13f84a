//! The path rule, one place for both of its users: the request target of every
//! workload ([`crate::proxy::target`]) and the resource URIs of MCP messages
//! ([`crate::mcp::message`], [`crate::mcp::lists`]).
//!
//! Rather than normalise a path (and risk the components and the server
//! reading it differently), the gateway refuses every path that a server could
//! resolve to somewhere else: dot segments, raw or percent-encoded in any case,
//! encoded slashes and backslashes, and raw backslashes. What a component sees
//! is then exactly what the server gets. Envoy's `REJECT_REQUEST` for escaped
//! slashes and nginx's `merge_slashes` logic informed this; see docs/security.md.
//!
//! A resource URI is a name that policies match by prefix (`builtin:scopes`,
//! Cedar `like "file:///public/*"`), so it must also be the one spelling of
//! its resource: RFC 3986 section 6.2.2's normal form, checked, never produced.

/// Why `path` could resolve outside its base, if it could.
pub fn path_problem(path: &str) -> Option<&'static str> {
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

/// Why a resource URI (or URI template) is not the one spelling of its
/// resource, if it is not. On top of [`path_problem`] for its path:
/// - a scheme, in lower case (`FILE:` is `file:`);
/// - percent-encoding only where it is needed, in upper case: `%73` is `s`, and `%c3` is `%C3`;
/// - a `file` URI has no host (`file://localhost/x` is `file:///x`), and
///   other hosts are in lower case;
/// - no empty segment inside the path (`file:////x`, `/a//b`), which servers
///   merge or read as a host.
pub fn resource_uri_problem(uri: &str) -> Option<&'static str> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Some("the resource URI has no scheme");
    };
    let mut chars = scheme.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic()) || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
        return Some("the resource URI has no scheme");
    }
    if scheme.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("the resource URI's scheme is not in lower case");
    }
    if let Some(why) = percent_problem(uri) {
        return Some(why);
    }
    // The path ends at the query or the fragment.
    let before_query = rest.split(['?', '#']).next().unwrap_or(rest);
    let path = match before_query.strip_prefix("//") {
        Some(authority_and_path) => {
            let (authority, path) = authority_and_path.split_at(authority_and_path.find('/').unwrap_or(authority_and_path.len()));
            if scheme == "file" && !authority.is_empty() {
                return Some("a `file` resource URI names a host (write `file:///path`)");
            }
            if authority.bytes().any(|b| b.is_ascii_uppercase()) {
                return Some("the resource URI's host is not in lower case");
            }
            path
        }
        None => before_query,
    };
    if path.contains("//") {
        return Some("the resource URI's path has an empty segment");
    }
    if uri.contains('\\') {
        return Some("the resource URI contains a backslash");
    }
    path_problem(path)
}

/// Percent-encoding that is malformed, in lower case, or of an unreserved
/// character (RFC 3986 section 2.3: letters, digits, `-`, `.`, `_`, `~`).
fn percent_problem(text: &str) -> Option<&'static str> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'%') {
        let start = at + offset;
        let hex = bytes.get(start + 1..start + 3).filter(|h| h.iter().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)));
        let Some(hex) = hex else {
            return Some("the resource URI has a percent-encoding that is malformed or in lower case");
        };
        let byte = u8::from_str_radix(std::str::from_utf8(hex).unwrap_or_default(), 16).unwrap_or_default();
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            return Some("the resource URI percent-encodes a character that needs none");
        }
        at = start + 3;
    }
    None
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

    #[test]
    fn resource_uris() {
        for ok in [
            "file:///public/a.md",
            "file:///public/",
            "file:///public/{name}",
            "https://example.com/a?b=c/../d",
            "https://example.com",
            "note:x/y",
            "urn:isbn:0451450523",
            "file:///a%20b",
            "file:///caf%C3%A9",
            "db://main/users?limit=1#top",
        ] {
            assert_eq!(resource_uri_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "public/a.md",
            "1file:///a",
            "file:///public/../secrets/db.env",
            "file:///public/..",
            "file:///public/.%2E/x",
            "file:///public/%2e",
            "file:///public/%73ecret",
            "file:///public/%7E",
            "file:///public/%2D",
            "FILE:///public/a",
            "fiLe:///public/a",
            "file://localhost/public/a",
            "file://LOCALHOST/public/a",
            "file:////public/a",
            "file:///public//a",
            "file:///a%2Fb",
            "file:///a%5cb",
            "file:///a\\b",
            "file:///a?x=\\",
            "file:///caf%c3%a9",
            "file:///a%",
            "file:///a%G0",
            "https://Example.com/a",
            "note:a/./b",
        ] {
            assert!(resource_uri_problem(bad).is_some(), "{bad}");
        }
    }
}
