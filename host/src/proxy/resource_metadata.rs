//! OAuth 2.0 Protected Resource Metadata (RFC 9728) for workloads guarded by
//! `builtin:oidc-verifier`. The document is built once at policy load from the
//! policy alone — `public_url` and the verifier's issuers — never from the
//! request's `Host` or `X-Forwarded-*` headers, which a client controls.

use crate::body::{ProxyBody, full};
use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use portcullis_contract::resource_metadata;

pub struct ProtectedResource {
    /// The well-known path, and its path-inserted form for `public_url`'s path.
    paths: Vec<String>,
    document: Bytes,
    /// Where the document is, for `resource_metadata="..."` in challenges.
    pub url: String,
}

impl ProtectedResource {
    /// The metadata for `public_url` (as written in the policy: it is the
    /// resource identifier), naming `issuers` and (if any) `scopes`.
    pub fn new(public_url: &url::Url, written: &str, issuers: &[String], scopes: &[String]) -> Self {
        let mut document = serde_json::json!({
            "resource": written,
            "authorization_servers": issuers,
            "bearer_methods_supported": ["header"],
        });
        if !scopes.is_empty() {
            document["scopes_supported"] = serde_json::json!(scopes);
        }
        // The rule `builtin:oidc-verifier` names in its challenges, on the same parse.
        let url = resource_metadata::url(&public_url.origin().ascii_serialization(), public_url.path());
        let mut paths = vec![resource_metadata::WELL_KNOWN.to_owned()];
        let path = resource_metadata::path(public_url.path());
        if path != resource_metadata::WELL_KNOWN {
            paths.push(path);
        }
        ProtectedResource { paths, document: Bytes::from(document.to_string()), url }
    }

    pub fn serves(&self, path: &str) -> bool {
        self.paths.iter().any(|p| p == path)
    }

    pub fn response(&self, method: &Method) -> Response<ProxyBody> {
        let mut response = Response::new(full(if method == Method::HEAD { Bytes::new() } else { self.document.clone() }));
        if method != Method::GET && method != Method::HEAD {
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            *response.body_mut() = full(Bytes::new());
            response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("max-age=300"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The URL a challenge names is where the document is served, however
    /// `public_url` is written; `builtin:oidc-verifier` has the same case
    /// (`metadata_urls_of_non_canonical_public_urls`), on the same rule.
    #[test]
    fn served_where_named_for_non_canonical_public_urls() {
        for written in ["HTTPS://MCP.Example.com:443/mcp/", "https://mcp.example.com/mcp?tenant=a", "https://mcp.example.com/mcp"] {
            let resource = ProtectedResource::new(&url::Url::parse(written).unwrap(), written, &[], &[]);
            assert_eq!(resource.url, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", "{written}");
            assert!(resource.serves("/.well-known/oauth-protected-resource/mcp") && resource.serves("/.well-known/oauth-protected-resource"));
        }
        let root = ProtectedResource::new(&url::Url::parse("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080", &[], &[]);
        assert_eq!(root.url, "http://127.0.0.1:8080/.well-known/oauth-protected-resource");
        assert_eq!(root.paths, ["/.well-known/oauth-protected-resource"]);
    }
}
