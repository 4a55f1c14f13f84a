//! Cross-origin calls (CORS) to the routes a client's own code calls:
//! metadata, keys, registration, token and revocation. An MCP client that
//! runs in a browser page (an inspector, a web agent) calls them from its own
//! origin. They answer any origin: they use no cookies and no ambient
//! authority, only what the request carries (a code with its PKCE verifier,
//! a refresh token). The routes a person's browser navigates to (the
//! authorization request, its consent form, the callback) are not among them:
//! they use the login's binding cookie, and no other site may read them.

use portcullis_plugin::Response;

/// The answer to a preflight (`OPTIONS`) for a route that answers `methods`.
pub fn preflight(methods: &[&str]) -> Response {
    allow_any_origin(Response::new(204))
        .header("access-control-allow-methods", methods.join(", "))
        // What the MCP SDKs send: a form or JSON body, and the protocol version on discovery.
        .header("access-control-allow-headers", "content-type, mcp-protocol-version")
        .header("access-control-max-age", "600")
}

/// `response`, readable by a page of any origin.
pub fn allow_any_origin(response: Response) -> Response {
    response.set_header("access-control-allow-origin", "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preflight_names_the_methods_and_headers() {
        let answer = preflight(&["POST"]);
        assert_eq!(answer.status(), 204);
        assert_eq!(answer.header_value("access-control-allow-origin"), Some("*"));
        assert_eq!(answer.header_value("access-control-allow-methods"), Some("POST"));
        assert!(answer.header_value("access-control-allow-headers").is_some_and(|h| h.contains("content-type")));
    }
}
