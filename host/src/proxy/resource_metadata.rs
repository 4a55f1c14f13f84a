//! OAuth 2.0 Protected Resource Metadata (RFC 9728) for workloads guarded by
//! `builtin:oidc-verifier`. The document is built once at policy load from the
//! policy alone — `public_url` and the verifier's issuers — never from the
//! request's `Host` or `X-Forwarded-*` headers, which a client controls.

use super::body::{ProxyBody, full};
use crate::policy::file::ChainEntryFile;
use bytes::Bytes;
use http::{Method, Response, StatusCode, header};

pub const COMPONENT: &str = "builtin:oidc-verifier";
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

pub struct ProtectedResource {
    /// The well-known path, and its path-inserted form for `public_url`'s path.
    paths: Vec<String>,
    document: Bytes,
}

impl ProtectedResource {
    /// The metadata for a workload, if an OIDC verifier guards it.
    pub fn from_policy(public_url: &str, inbound: &[ChainEntryFile]) -> Option<Self> {
        let verifiers: Vec<&ChainEntryFile> = inbound.iter().filter(|e| e.component == COMPONENT).collect();
        if verifiers.is_empty() {
            return None;
        }
        let mut issuers: Vec<String> = Vec::new();
        let mut scopes: Vec<String> = Vec::new();
        for entry in verifiers {
            let config = &entry.config;
            let providers = config.get("providers").and_then(|p| p.as_array()).cloned().unwrap_or_default();
            let all = std::iter::once(serde_json::Value::Object(config.clone())).chain(providers);
            issuers.extend(all.filter_map(|p| p.get("issuer").and_then(|i| i.as_str()).map(str::to_owned)));
            for key in ["scopes_supported", "required_scopes"] {
                let listed = config.get(key).and_then(|s| s.as_array()).into_iter().flatten();
                scopes.extend(listed.filter_map(|s| s.as_str().map(str::to_owned)));
            }
        }
        issuers.dedup();
        scopes.sort();
        scopes.dedup();
        let mut document = serde_json::json!({
            "resource": public_url,
            "authorization_servers": issuers,
            "bearer_methods_supported": ["header"],
        });
        if !scopes.is_empty() {
            document["scopes_supported"] = serde_json::json!(scopes);
        }
        let path = url::Url::parse(public_url).map(|u| u.path().trim_end_matches('/').to_owned()).unwrap_or_default();
        let mut paths = vec![WELL_KNOWN.to_owned()];
        if !path.is_empty() {
            paths.push(format!("{WELL_KNOWN}{path}"));
        }
        Some(ProtectedResource { paths, document: Bytes::from(document.to_string()) })
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
