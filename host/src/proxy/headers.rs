//! The gateway owns every header that crosses its boundary.
//!
//! A workload's [`HeaderRules`] are built once at policy load from the
//! manifests its components declared and the policy's `strip_request_headers`.
//! The pipeline applies them in this order:
//! 1. [`normalise_framing`]: one `Content-Length`, none beside `Transfer-Encoding`.
//! 2. [`remove_hop_by_hop`]: hop-by-hop headers and those named in `Connection`.
//! 3. [`HeaderRules::strip_untrusted`]: the identity namespace — proxy headers
//!    (`Forwarded`, every `X-Forwarded-*`, `X-Real-IP`, ...) and every header an
//!    inbound component produces — so a client cannot forge what the upstream
//!    trusts. The forwarder sets `X-Forwarded-For/-Proto/-Host` itself.
//! 4. [`HeaderRules::check_credentials`]: credential headers must be text.
//! 5. After the chain, [`HeaderRules::remove_consumed`]: every credential an
//!    inbound component consumes, whichever component allowed.

use super::error::GatewayError;
use crate::runtime::verdict::Manifest;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Proxy headers that upstreams read as facts about the client; never taken from one.
const UNTRUSTED: [&str; 7] = ["forwarded", "x-real-ip", "x-client-ip", "true-client-ip", "x-original-url", "x-original-uri", "x-rewrite-url"];

/// A workload's header rules, built at policy load.
#[derive(Debug, Clone, Default)]
pub struct HeaderRules {
    /// Removed from client requests before the chain (besides every `x-forwarded-*`).
    strip: Vec<HeaderName>,
    /// Credentials consumed by some inbound component: must be UTF-8 text.
    credentials: Vec<HeaderName>,
    /// Removed after the chain: consumed and not forwarded.
    consumed: Vec<HeaderName>,
}

impl HeaderRules {
    /// `inbound`: the manifests of the workload's authenticators; `extra`: the
    /// policy's `strip_request_headers`.
    pub fn new<'a>(inbound: impl IntoIterator<Item = &'a Manifest>, extra: &[HeaderName]) -> Self {
        let mut rules = HeaderRules::default();
        let add = |list: &mut Vec<HeaderName>, name: &HeaderName| {
            if !list.contains(name) {
                list.push(name.clone());
            }
        };
        for name in UNTRUSTED.iter().map(|n| HeaderName::from_static(n)).chain(extra.iter().cloned()) {
            add(&mut rules.strip, &name);
        }
        for manifest in inbound {
            for name in &manifest.produces {
                add(&mut rules.strip, name);
            }
            for name in &manifest.consumes {
                add(&mut rules.credentials, name);
                if !manifest.forwards.contains(name) {
                    add(&mut rules.consumed, name);
                }
            }
        }
        rules
    }

    pub fn strip_untrusted(&self, headers: &mut HeaderMap) {
        for name in &self.strip {
            headers.remove(name);
        }
        // Usually none: one pass over the names, no allocation.
        while let Some(name) = headers.keys().find(|n| n.as_str().starts_with("x-forwarded-")).cloned() {
            headers.remove(name);
        }
    }

    /// A credential that is not UTF-8 would be hidden from (or garbled for) the
    /// component that checks it, yet forwarded: refuse it.
    pub fn check_credentials(&self, headers: &HeaderMap) -> Result<(), GatewayError> {
        for name in &self.credentials {
            if headers.get_all(name).iter().any(|v| std::str::from_utf8(v.as_bytes()).is_err()) {
                return Err(GatewayError::BadRequest("a credential header is not valid UTF-8"));
            }
        }
        Ok(())
    }

    pub fn remove_consumed(&self, headers: &mut HeaderMap) {
        for name in &self.consumed {
            headers.remove(name);
        }
    }
}

/// Makes the body's framing unambiguous before anything else reads it
/// (RFC 9112 §6.3): `Transfer-Encoding` overrides `Content-Length`, which is
/// removed; several `Content-Length` values (`5, 5`, or two fields) that agree
/// become one; values that disagree or are not numbers are refused.
/// Returns the declared length.
pub fn normalise_framing(headers: &mut HeaderMap) -> Result<Option<u64>, GatewayError> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        headers.remove(header::CONTENT_LENGTH);
        return Ok(None);
    }
    let mut length: Option<u64> = None;
    let mut parts = 0;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let text = value.to_str().map_err(|_| GatewayError::BadRequest("invalid Content-Length"))?;
        for part in text.split(',') {
            let n: u64 = part.trim().parse().map_err(|_| GatewayError::BadRequest("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(GatewayError::BadRequest("conflicting Content-Length values"));
            }
            length = Some(n);
            parts += 1;
        }
    }
    if parts > 1
        && let Some(n) = length
    {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    Ok(length)
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those named in `Connection`.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // `Connection` rarely names anything but `keep-alive` / `close`; check before allocating.
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in
        [header::CONNECTION, header::TE, header::TRAILER, header::TRANSFER_ENCODING, header::UPGRADE, header::PROXY_AUTHORIZATION, header::PROXY_AUTHENTICATE]
    {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_identity_namespace_is_stripped() {
        let manifest = Manifest { produces: vec![HeaderName::from_static("x-user-email")], ..Manifest::default() };
        let rules = HeaderRules::new([&manifest], &[HeaderName::from_static("x-tenant")]);
        let mut h = map(&[
            ("x-forwarded-user", "admin"),
            ("x-forwarded-email", "a@b"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "10.0.0.1"),
            ("true-client-ip", "1"),
            ("x-original-url", "/admin"),
            ("x-user-email", "forged"),
            ("x-tenant", "other"),
            ("accept", "*/*"),
        ]);
        rules.strip_untrusted(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);
    }

    #[test]
    fn consumed_credentials_go_unless_forwarded() {
        let a = Manifest { consumes: vec![HeaderName::from_static("x-api-key")], ..Manifest::default() };
        let b = Manifest { consumes: vec![header::AUTHORIZATION], forwards: vec![header::AUTHORIZATION], ..Manifest::default() };
        let rules = HeaderRules::new([&a, &b], &[]);
        let mut h = map(&[("x-api-key", "k"), ("authorization", "Bearer t"), ("accept", "*/*")]);
        rules.remove_consumed(&mut h);
        assert!(h.get("x-api-key").is_none());
        assert!(h.get("authorization").is_some());
        let mut bad = HeaderMap::new();
        bad.insert("x-api-key", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert!(rules.check_credentials(&bad).is_err());
        assert!(rules.check_credentials(&h).is_ok());
    }

    #[test]
    fn framing() {
        let mut h = map(&[("content-length", "5, 5")]);
        assert_eq!(normalise_framing(&mut h).unwrap(), Some(5));
        assert_eq!(h.get_all("content-length").iter().collect::<Vec<_>>(), ["5"]);
        let mut h = map(&[("content-length", "5"), ("content-length", "5")]);
        assert_eq!(normalise_framing(&mut h).unwrap(), Some(5));
        assert_eq!(h.get_all("content-length").iter().count(), 1);
        assert!(normalise_framing(&mut map(&[("content-length", "5, 6")])).is_err());
        assert!(normalise_framing(&mut map(&[("content-length", "x")])).is_err());
        let mut h = map(&[("content-length", "5"), ("transfer-encoding", "chunked")]);
        assert_eq!(normalise_framing(&mut h).unwrap(), None);
        assert!(h.get("content-length").is_none());
    }
}
