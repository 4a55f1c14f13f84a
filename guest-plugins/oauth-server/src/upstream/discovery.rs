//! OpenID Connect Discovery (§4) of an upstream provider: its endpoints and
//! key set.
//!
//! The document's `issuer` must equal the configured issuer exactly (§4.3):
//! a document naming another issuer is a misconfiguration or an impostor,
//! and its endpoints would receive the codes and the client secret. The
//! endpoints must be https, unless the issuer itself is plain http on
//! loopback (a provider for development). A checked document is kept in the
//! host cache for an hour.

use crate::upstream::config::check_url;
use crate::upstream::fetch::{self, DOCUMENT_LIMIT};
use crate::upstream::text::{printable, strict_object};
use portcullis_plugin::{cache, http};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

const CACHE_FOR: Duration = Duration::from_secs(3600);

/// What this server uses of the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    /// RFC 9207 `authorization_response_iss_parameter_supported`: a callback
    /// without `iss` is then refused.
    pub iss_parameter: bool,
    /// `id_token_signing_alg_values_supported`, when given: an ID token
    /// signed otherwise is refused even when the algorithm is one we accept.
    pub id_token_algs: Option<Vec<String>>,
}

/// `{issuer}/.well-known/openid-configuration`, the issuer without its
/// trailing slash (§4.1).
pub fn location(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

/// The metadata of `issuer`, cached or fetched.
pub fn metadata(issuer: &str, issuer_is_local: bool) -> Result<Metadata, String> {
    let cache_key = format!("up-discovery:{issuer}");
    if let Some(metadata) = cache::get(&cache_key).and_then(|bytes| serde_json::from_slice(&bytes).ok()) {
        return Ok(metadata);
    }
    let url = location(issuer);
    let fetched = fetch::send(http::Request::get(&url).header("accept", "application/json"), DOCUMENT_LIMIT).map_err(|why| format!("{url}: {why}"))?;
    if fetched.status != 200 {
        return Err(format!("{url} answered HTTP {}", fetched.status));
    }
    let metadata = validate(&fetched.body, issuer, issuer_is_local)?;
    cache::set(&cache_key, &serde_json::to_vec(&metadata).unwrap_or_default(), CACHE_FOR);
    Ok(metadata)
}

/// Forgets the cached document (after its keys failed to verify a token, the
/// provider may have moved them).
pub fn forget(issuer: &str) {
    cache::delete(&format!("up-discovery:{issuer}"));
}

/// The document, checked against the configured issuer.
pub fn validate(body: &[u8], issuer: &str, issuer_is_local: bool) -> Result<Metadata, String> {
    fetch::check_size(body.len(), DOCUMENT_LIMIT).map_err(|why| format!("the discovery document is refused: {why}"))?;
    let doc = strict_object(body).map_err(|why| format!("the discovery document is {why}"))?;
    match doc.get("issuer") {
        Some(Value::String(named)) if named == issuer => {}
        Some(Value::String(named)) => {
            return Err(format!(
                "the discovery document names the issuer {:?}, not the configured {issuer:?}; they must be identical, trailing slash included",
                printable(named, 200)
            ));
        }
        _ => return Err("the discovery document has no `issuer`".into()),
    }
    let endpoint = |name: &str| -> Result<String, String> {
        let url = doc.get(name).and_then(Value::as_str).ok_or_else(|| format!("the discovery document has no `{name}`"))?;
        let local = check_url(name, url).map_err(|why| format!("the discovery document's {why}"))?;
        if local && !issuer_is_local {
            return Err(format!("the discovery document's `{name}` uses plain http, but the issuer does not"));
        }
        Ok(url.to_owned())
    };
    let id_token_algs = match doc.get("id_token_signing_alg_values_supported") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(list.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        Some(_) => return Err("the discovery document's `id_token_signing_alg_values_supported` is not a list".into()),
    };
    Ok(Metadata {
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        jwks_uri: endpoint("jwks_uri")?,
        iss_parameter: doc.get("authorization_response_iss_parameter_supported") == Some(&Value::Bool(true)),
        id_token_algs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "https://idp.example.com";

    fn doc(extra: Value) -> Vec<u8> {
        let mut doc = json!({
            "issuer": ISSUER,
            "authorization_endpoint": "https://idp.example.com/authorize?tenant=a",
            "token_endpoint": "https://idp.example.com/token",
            "jwks_uri": "https://keys.example.com/jwks",
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                doc.as_object_mut().unwrap().remove(k);
            } else {
                doc[k] = v.clone();
            }
        }
        doc.to_string().into_bytes()
    }

    #[test]
    fn a_good_document() {
        let metadata = validate(
            &doc(json!({"authorization_response_iss_parameter_supported": true, "id_token_signing_alg_values_supported": ["RS256", "ES256"]})),
            ISSUER,
            false,
        )
        .unwrap();
        assert_eq!(
            metadata,
            Metadata {
                authorization_endpoint: "https://idp.example.com/authorize?tenant=a".into(),
                token_endpoint: "https://idp.example.com/token".into(),
                jwks_uri: "https://keys.example.com/jwks".into(),
                iss_parameter: true,
                id_token_algs: Some(vec!["RS256".into(), "ES256".into()]),
            }
        );
        let plain = validate(&doc(json!({"authorization_response_iss_parameter_supported": "true"})), ISSUER, false).unwrap();
        assert!(!plain.iss_parameter && plain.id_token_algs.is_none(), "only the boolean counts");
        assert_eq!(location("https://idp.example.com/realms/x/"), "https://idp.example.com/realms/x/.well-known/openid-configuration");
    }

    #[test]
    fn the_issuer_must_match_exactly() {
        let error = validate(&doc(json!({"issuer": "https://idp.example.com/"})), ISSUER, false).unwrap_err();
        assert!(error.contains("trailing slash"), "{error}");
        assert!(validate(&doc(json!({"issuer": "https://evil.example.com"})), ISSUER, false).unwrap_err().contains("evil"));
        assert!(validate(&doc(json!({"issuer": null})), ISSUER, false).unwrap_err().contains("no `issuer`"));
        assert!(validate(&doc(json!({"issuer": ["https://idp.example.com"]})), ISSUER, false).unwrap_err().contains("no `issuer`"));
    }

    #[test]
    fn endpoints_are_required_and_secure() {
        for name in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
            assert!(validate(&doc(json!({name: null})), ISSUER, false).unwrap_err().contains(&format!("no `{name}`")), "{name}");
            assert!(validate(&doc(json!({name: "http://idp.example.com/x"})), ISSUER, false).unwrap_err().contains(&format!("`{name}`")), "{name}");
            assert!(validate(&doc(json!({name: "http://127.0.0.1/x"})), ISSUER, false).unwrap_err().contains("plain http"), "{name}");
        }
        assert!(validate(&doc(json!({"token_endpoint": "https://idp.example.com/t#x"})), ISSUER, false).unwrap_err().contains("fragment"));
        let local = json!({"issuer": "http://127.0.0.1:9000", "authorization_endpoint": "http://127.0.0.1:9000/a",
            "token_endpoint": "http://localhost:9000/t", "jwks_uri": "http://[::1]:9000/k"});
        assert!(validate(local.to_string().as_bytes(), "http://127.0.0.1:9000", true).is_ok(), "a provider on this machine");
    }

    #[test]
    fn malformed_and_oversize_documents() {
        assert!(validate(b"<html>", ISSUER, false).unwrap_err().contains("not valid JSON"));
        assert!(validate(b"[]", ISSUER, false).unwrap_err().contains("not a JSON object"));
        let twice = br#"{"issuer":"https://idp.example.com","issuer":"https://evil.example.com"}"#;
        assert!(validate(twice, ISSUER, false).unwrap_err().contains("duplicate key `issuer`"));
        assert!(validate(&doc(json!({"id_token_signing_alg_values_supported": "RS256"})), ISSUER, false).unwrap_err().contains("not a list"));
        let padded = doc(json!({"padding": "x".repeat(DOCUMENT_LIMIT)}));
        assert!(validate(&padded, ISSUER, false).unwrap_err().contains("larger than 256 KiB"));
    }
}
