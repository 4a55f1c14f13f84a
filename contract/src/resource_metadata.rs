//! OAuth 2.0 Protected Resource Metadata (RFC 9728 §3.1): where a resource's
//! metadata is served and which URL a `WWW-Authenticate` challenge names. The
//! gateway serves the document and `builtin:oidc-verifier` names it in its
//! challenges, so both must compute the same URL.

/// The well-known path segment.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata's path for a resource whose URL has the path `resource_path`
/// (as the `url` crate gives it: `/` for none): the well-known segment, then
/// the resource's path without its trailing `/`.
pub fn path(resource_path: &str) -> String {
    format!("{WELL_KNOWN}{}", resource_path.trim_end_matches('/'))
}

/// The metadata's URL: `origin` (as `url::Url::origin().ascii_serialization()`
/// gives it: scheme, host and any non-default port, lower case) and [`path`].
/// The resource URL's query and fragment are not part of it.
pub fn url(origin: &str, resource_path: &str) -> String {
    format!("{origin}{}", path(resource_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_inserted_after_the_well_known_segment() {
        assert_eq!(url("http://127.0.0.1:8080", "/mcp"), "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp");
        assert_eq!(url("https://x.example", "/"), "https://x.example/.well-known/oauth-protected-resource");
        assert_eq!(url("https://x.example", "/a/b/"), "https://x.example/.well-known/oauth-protected-resource/a/b");
        assert_eq!(path("/"), WELL_KNOWN);
    }
}
