//! The gateway owns every header that crosses its boundary.
//!
//! A workload's [`HeaderRules`] are built once at policy load from the
//! manifests its components declared and the policy's `strip_request_headers`.
//! The pipeline applies them in this order:
//! 1. [`normalise_framing`]: one `Content-Length`, none beside `Transfer-Encoding`.
//! 2. [`remove_hop_by_hop`]: hop-by-hop headers and those named in `Connection`.
//! 3. [`HeaderRules::strip_untrusted`]: the identity namespace — proxy headers
//!    (`Forwarded`, every `X-Forwarded-*`, `X-Real-IP`, ...), every header an
//!    inbound component produces and every header an injector produces — so a
//!    client cannot forge what the upstream trusts. A name is stripped in every
//!    spelling a server may fold onto it: any case, `_` for `-`. The forwarder
//!    sets `X-Forwarded-For/-Proto/-Host` itself.
//! 4. [`HeaderRules::check_credentials`]: credential headers must be text.
//! 5. After the chain, [`HeaderRules::remove_consumed`]: every credential an
//!    inbound component consumes, whichever component allowed.

use super::error::GatewayError;
use crate::runtime::verdict::Manifest;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Proxy headers that upstreams, CDNs and frameworks read as facts about the
/// client or the request; never taken from one. Besides the classics
/// (`Forwarded`, RFC 7239; `X-Real-IP`, nginx), the client-address headers of
/// load balancers and CDNs (`X-Cluster-Client-IP`, `CF-Connecting-IP`,
/// `Fastly-Client-IP`, Rails' `Client-IP`), the host overrides (`X-Host`,
/// `X-Original-Host`) and the URL and method overrides that frameworks honour
/// (`X-Original-URL`, `X-HTTP-Method-Override` and its two variants), which
/// would let a client turn an authorized `GET` into a `DELETE` upstream, and
/// `X-Original-Method`, which nginx's `auth_request` convention trusts.
const UNTRUSTED: [&str; 20] = [
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "client-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "x-host",
    "x-original-host",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-method",
];

/// Whole families of proxy headers: every `X-Forwarded-*`, and Envoy's
/// `X-Envoy-*`, which Envoy trusts from an internal peer (the gateway is one to
/// a sidecar) and which set its routing, retries and timeouts.
const UNTRUSTED_PREFIXES: [&str; 2] = ["x-forwarded-", "x-envoy-"];

/// A workload's header rules, built at policy load.
#[derive(Debug, Clone, Default)]
pub struct HeaderRules {
    /// Removed from client requests before the chain (besides the
    /// [`UNTRUSTED_PREFIXES`]), in every spelling: lower case, `-` for `_`.
    strip: Vec<HeaderName>,
    /// Credentials consumed by some inbound component: must be UTF-8 text.
    credentials: Vec<HeaderName>,
    /// Removed after the chain: consumed and not forwarded.
    consumed: Vec<HeaderName>,
}

impl HeaderRules {
    /// `inbound`: the manifests of the workload's authenticators; `outbound`:
    /// those of its injectors; `extra`: the policy's `strip_request_headers`.
    pub fn new<'a>(inbound: impl IntoIterator<Item = &'a Manifest>, outbound: impl IntoIterator<Item = &'a Manifest>, extra: &[HeaderName]) -> Self {
        let mut rules = HeaderRules::default();
        let add = |list: &mut Vec<HeaderName>, name: &HeaderName| {
            if !list.contains(name) {
                list.push(name.clone());
            }
        };
        let mut strip: Vec<HeaderName> = UNTRUSTED.iter().map(|n| HeaderName::from_static(n)).chain(extra.iter().cloned()).collect();
        for manifest in inbound {
            strip.extend(manifest.produces.iter().cloned());
            for name in &manifest.consumes {
                add(&mut rules.credentials, name);
                if !manifest.forwards.contains(name) {
                    add(&mut rules.consumed, name);
                }
            }
        }
        // What an injector sets is the gateway's to set (a client's copy would
        // stand where the injector does not write, or beside its value in
        // another spelling), except a credential an authenticator reads first:
        // the consumed rules decide that one after the chain, and the injector
        // sets its own value over it.
        for manifest in outbound {
            strip.extend(manifest.produces.iter().filter(|name| !rules.credentials.contains(name)).cloned());
        }
        for name in strip {
            add(&mut rules.strip, &folded(name));
        }
        rules
    }

    /// Runs on every request: one pass over the request's names, compared
    /// without allocating; a name is cloned only to remove it (usually never).
    pub fn strip_untrusted(&self, headers: &mut HeaderMap) {
        while let Some(name) = headers.keys().find(|name| self.is_stripped(name)).cloned() {
            headers.remove(name);
        }
    }

    /// Whether a client's header name, in any spelling, is one the gateway strips.
    fn is_stripped(&self, name: &HeaderName) -> bool {
        // Header names are lower case already; only `_` needs folding.
        let name = name.as_str().as_bytes();
        UNTRUSTED_PREFIXES.iter().any(|prefix| name.len() > prefix.len() && eq_folded(&name[..prefix.len()], prefix.as_bytes()))
            || self.strip.iter().any(|stripped| eq_folded(name, stripped.as_str().as_bytes()))
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

/// `name` with every `_` as `-`: the spelling the rules keep.
fn folded(name: HeaderName) -> HeaderName {
    if !name.as_str().contains('_') {
        return name;
    }
    HeaderName::from_bytes(name.as_str().replace('_', "-").as_bytes()).expect("`-` for `_` keeps a header name valid")
}

/// `client` equals `folded` (lower case, `-` for `_`) once its `_` are read as `-`.
fn eq_folded(client: &[u8], folded: &[u8]) -> bool {
    client.len() == folded.len() && client.iter().zip(folded).all(|(&c, &f)| c == f || (c == b'_' && f == b'-'))
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
        let rules = HeaderRules::new([&manifest], [], &[HeaderName::from_static("x-tenant")]);
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
    fn other_spellings_and_injected_headers_are_stripped() {
        let inbound =
            Manifest { produces: vec![HeaderName::from_static("x-user-email")], consumes: vec![HeaderName::from_static("x-api-key")], ..Manifest::default() };
        // An injector's header is stripped, unless an authenticator reads it first.
        let injector = Manifest { produces: vec![HeaderName::from_static("x-upstream-key"), HeaderName::from_static("x-api-key")], ..Manifest::default() };
        let rules = HeaderRules::new([&inbound], [&injector], &[HeaderName::from_static("x_tenant")]);
        let mut h = map(&[
            ("X_Forwarded_User", "admin"),
            ("x-forwarded_email", "a@b"),
            ("x_real_ip", "10.0.0.1"),
            ("x_user_email", "forged"),
            ("x-tenant", "other"),
            ("x_tenant", "other"),
            ("x-upstream-key", "forged"),
            ("x_upstream_key", "forged"),
            ("cf-connecting-ip", "1"),
            ("x-http-method-override", "DELETE"),
            ("x_envoy_internal", "true"),
            ("x-api-key", "k"),
            ("x_forwarded", "not a family member"),
            ("x-user_emails", "not the same name"),
            ("accept", "*/*"),
        ]);
        rules.strip_untrusted(&mut h);
        let mut kept: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["accept", "x-api-key", "x-user_emails", "x_forwarded"]);
    }

    #[test]
    fn consumed_credentials_go_unless_forwarded() {
        let a = Manifest { consumes: vec![HeaderName::from_static("x-api-key")], ..Manifest::default() };
        let b = Manifest { consumes: vec![header::AUTHORIZATION], forwards: vec![header::AUTHORIZATION], ..Manifest::default() };
        let rules = HeaderRules::new([&a, &b], [], &[]);
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
