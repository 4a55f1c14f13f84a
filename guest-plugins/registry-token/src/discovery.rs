//! The provider's endpoints, from its metadata: OpenID Connect Discovery,
//! or RFC 8414 authorization server metadata when the former is not there.
//!
//! The document's `issuer` must equal the configured issuer exactly (OpenID
//! Connect Discovery §4.3, RFC 8414 §3.3): a document that names another
//! issuer is a misconfiguration or an impostor, and its endpoints would
//! receive the codes and refresh tokens. The endpoints must be https, unless
//! the issuer itself is plain http on loopback (a provider for development),
//! in which case loopback http endpoints are accepted too.
//!
//! A checked document is kept in the host cache for an hour: every instance
//! uses it, and a renewal costs one request to the provider, not two.

use crate::config::OAuth;
use crate::text::printable;
use crate::uri;
use portcullis_plugin::{cache, http};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const CACHE_FOR: Duration = Duration::from_secs(3600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// The endpoints this component uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    /// RFC 7009; only used by `logout`.
    pub revocation: Option<String>,
    /// RFC 8628; only used by the device login.
    #[serde(default)]
    pub device_authorization: DeviceEndpoint,
    /// The provider says it puts `iss` in its authorization responses
    /// (RFC 9207 `authorization_response_iss_parameter_supported`): a callback
    /// without it is then refused. (Absent in entries cached before it existed.)
    #[serde(default)]
    pub iss_required: bool,
}

/// The device authorization endpoint, as the metadata offers it. A bad one
/// does not fail discovery (the browser login does not need it); it is
/// refused when a device login asks for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceEndpoint {
    /// Not advertised: the provider does not offer the grant.
    #[default]
    Absent,
    Usable(String),
    /// Advertised, but it fails the checks: why.
    Unusable(String),
}

impl Endpoints {
    /// The device authorization endpoint, or why there is none to use.
    pub fn device_authorization(&self) -> Result<&str, String> {
        match &self.device_authorization {
            DeviceEndpoint::Usable(url) => Ok(url),
            DeviceEndpoint::Absent => Err("the identity provider does not offer the device authorization grant \
                 (no device_authorization_endpoint in its discovery document); log in with a browser instead"
                .into()),
            DeviceEndpoint::Unusable(why) => Err(format!("the device login cannot be used: {why}; log in with a browser instead")),
        }
    }
}

/// The endpoints of `oauth.issuer`, from the cache or fetched.
pub fn endpoints(oauth: &OAuth) -> Result<Endpoints, String> {
    let cache_key = format!("discovery:{}", oauth.issuer);
    if let Some(endpoints) = cache::get(&cache_key).and_then(|bytes| serde_json::from_slice(&bytes).ok()) {
        return Ok(endpoints);
    }
    let endpoints = validate(&fetch(&oauth.issuer)?, oauth)?;
    cache::set(&cache_key, &serde_json::to_vec(&endpoints).unwrap_or_default(), CACHE_FOR);
    Ok(endpoints)
}

/// The metadata document: the OpenID Connect location first, the RFC 8414
/// one when that is not found.
fn fetch(issuer: &str) -> Result<Vec<u8>, String> {
    let first = openid_configuration_url(issuer);
    match get(&first)? {
        (200, body) => Ok(body),
        (404, _) => match get(&oauth_metadata_url(issuer))? {
            (200, body) => Ok(body),
            (status, _) => Err(format!("{first} and {} answered HTTP 404 and {status}", oauth_metadata_url(issuer))),
        },
        (status, _) => Err(format!("{first} answered HTTP {status}")),
    }
}

fn get(url: &str) -> Result<(u16, Vec<u8>), String> {
    let response = http::Request::get(url)
        .header("accept", "application/json")
        .timeout(FETCH_TIMEOUT)
        .send()
        .map_err(|e| format!("could not fetch {url}: {}", printable(&e.to_string(), 200)))?;
    Ok((response.status, response.body))
}

/// OpenID Connect Discovery §4.1: the issuer without its trailing slash, then
/// `/.well-known/openid-configuration`.
pub fn openid_configuration_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

/// RFC 8414 §3.1: the well-known segment goes between the host and the
/// issuer's path (`https://idp/tenant` → `https://idp/.well-known/oauth-authorization-server/tenant`).
pub fn oauth_metadata_url(issuer: &str) -> String {
    let issuer = issuer.trim_end_matches('/');
    let (scheme, rest) = issuer.split_once("://").unwrap_or(("https", issuer));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    format!("{scheme}://{authority}/.well-known/oauth-authorization-server{path}")
}

/// The endpoints of a metadata document, checked against the configuration.
pub fn validate(body: &[u8], oauth: &OAuth) -> Result<Endpoints, String> {
    let doc: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|_| "the provider's metadata is not a JSON object".to_string())?;
    let text = |name: &str| doc.get(name).and_then(|v| v.as_str());
    match text("issuer") {
        Some(issuer) if issuer == oauth.issuer => {}
        Some(issuer) => {
            return Err(format!(
                "the provider's metadata names the issuer {:?}, not the configured {:?}; they must be identical, trailing slash included",
                printable(issuer, 200),
                oauth.issuer
            ));
        }
        None => return Err("the provider's metadata has no `issuer`".into()),
    }
    let endpoint = |name: &str| -> Result<String, String> {
        let url = text(name).ok_or_else(|| format!("the provider's metadata has no `{name}`"))?;
        check_endpoint(name, url, oauth.issuer_is_local)?;
        Ok(url.to_owned())
    };
    Ok(Endpoints {
        authorization: endpoint("authorization_endpoint")?,
        token: endpoint("token_endpoint")?,
        // Revocation is best effort: an endpoint that fails the checks is not used
        // (it would receive the refresh token), and the login still works.
        revocation: text("revocation_endpoint").filter(|url| check_endpoint("revocation_endpoint", url, oauth.issuer_is_local).is_ok()).map(str::to_owned),
        device_authorization: match doc.get("device_authorization_endpoint") {
            None | Some(serde_json::Value::Null) => DeviceEndpoint::Absent,
            Some(serde_json::Value::String(url)) => match check_endpoint("device_authorization_endpoint", url, oauth.issuer_is_local) {
                Ok(()) => DeviceEndpoint::Usable(url.clone()),
                Err(why) => DeviceEndpoint::Unusable(why),
            },
            Some(_) => DeviceEndpoint::Unusable("the provider's `device_authorization_endpoint` is not a string".into()),
        },
        iss_required: doc.get("authorization_response_iss_parameter_supported") == Some(&serde_json::Value::Bool(true)),
    })
}

fn check_endpoint(name: &str, url: &str, issuer_is_local: bool) -> Result<(), String> {
    let shown = || printable(url, 200);
    let parts = uri::parts(url).ok_or_else(|| format!("the provider's `{name}` {:?} is not an http(s) URL", shown()))?;
    if parts.has_fragment {
        return Err(format!("the provider's `{name}` {:?} has a fragment", shown()));
    }
    if parts.scheme == uri::Scheme::Https || (issuer_is_local && parts.is_local_http()) {
        Ok(())
    } else {
        Err(format!("the provider's `{name}` {:?} does not use https", shown()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(issuer: &str) -> OAuth {
        OAuth {
            issuer: issuer.into(),
            issuer_is_local: uri::parts(issuer).unwrap().is_local_http(),
            client_id: "cli".into(),
            scopes: vec![],
            audience: None,
            resource: None,
        }
    }

    #[test]
    fn metadata_locations() {
        assert_eq!(openid_configuration_url("https://idp.example.com"), "https://idp.example.com/.well-known/openid-configuration");
        assert_eq!(openid_configuration_url("https://idp.example.com/realms/x/"), "https://idp.example.com/realms/x/.well-known/openid-configuration");
        assert_eq!(oauth_metadata_url("https://idp.example.com"), "https://idp.example.com/.well-known/oauth-authorization-server");
        assert_eq!(oauth_metadata_url("https://idp.example.com/tenant/"), "https://idp.example.com/.well-known/oauth-authorization-server/tenant");
    }

    #[test]
    fn a_good_document() {
        let doc = br#"{"issuer":"https://idp.example.com/","authorization_endpoint":"https://idp.example.com/authorize?tenant=a",
            "token_endpoint":"https://idp.example.com/token","revocation_endpoint":"https://idp.example.com/revoke","jwks_uri":"https://x"}"#;
        let endpoints = validate(doc, &oauth("https://idp.example.com/")).unwrap();
        assert_eq!(
            endpoints,
            Endpoints {
                authorization: "https://idp.example.com/authorize?tenant=a".into(),
                token: "https://idp.example.com/token".into(),
                revocation: Some("https://idp.example.com/revoke".into()),
                device_authorization: DeviceEndpoint::Absent,
                iss_required: false,
            }
        );
        assert!(endpoints.device_authorization().unwrap_err().contains("does not offer the device authorization grant"));
    }

    #[test]
    fn the_device_authorization_endpoint() {
        let device = |issuer: &str, url: serde_json::Value| {
            let doc = serde_json::json!({"issuer": issuer, "authorization_endpoint": format!("{issuer}/a"), "token_endpoint": format!("{issuer}/t"),
                "device_authorization_endpoint": url})
            .to_string();
            validate(doc.as_bytes(), &oauth(issuer)).unwrap()
        };
        let endpoints = device("https://idp", "https://idp/device/auth".into());
        assert_eq!(endpoints.device_authorization(), Ok("https://idp/device/auth"));
        assert_eq!(device("http://127.0.0.1:9000", "http://127.0.0.1:9000/device/auth".into()).device_authorization(), Ok("http://127.0.0.1:9000/device/auth"));
        assert_eq!(device("https://idp", serde_json::Value::Null).device_authorization, DeviceEndpoint::Absent);
        // A bad device endpoint does not break the browser login, and says why it is not used.
        for (bad, why) in [("http://idp/device", "does not use https"), ("https://idp/device#x", "fragment"), ("device", "not an http(s) URL")] {
            let endpoints = device("https://idp", bad.into());
            assert_eq!(endpoints.token, "https://idp/t");
            let error = endpoints.device_authorization().unwrap_err();
            assert!(error.starts_with("the device login cannot be used: the provider's `device_authorization_endpoint`") && error.contains(why), "{error}");
        }
        assert!(device("https://idp", 42.into()).device_authorization().unwrap_err().contains("not a string"));
        // Cached before this field existed: read as absent.
        let old: Endpoints = serde_json::from_str(r#"{"authorization":"https://idp/a","token":"https://idp/t","revocation":null}"#).unwrap();
        assert_eq!(old.device_authorization, DeviceEndpoint::Absent);
        let round: Endpoints = serde_json::from_slice(&serde_json::to_vec(&endpoints).unwrap()).unwrap();
        assert_eq!(round, endpoints);
    }

    #[test]
    fn rfc_9207_support_is_read() {
        let doc = |flag: serde_json::Value| {
            let doc = serde_json::json!({"issuer": "https://idp", "authorization_endpoint": "https://idp/a", "token_endpoint": "https://idp/t",
                "authorization_response_iss_parameter_supported": flag});
            validate(doc.to_string().as_bytes(), &oauth("https://idp")).unwrap().iss_required
        };
        assert!(doc(true.into()));
        assert!(!doc(false.into()));
        assert!(!doc(serde_json::Value::Null), "absent");
        assert!(!doc("true".into()), "only the boolean counts");
        let old: Endpoints = serde_json::from_str(r#"{"authorization":"https://idp/a","token":"https://idp/t","revocation":null}"#).unwrap();
        assert!(!old.iss_required, "cached before the field existed");
    }

    #[test]
    fn the_issuer_must_match_exactly() {
        let doc = br#"{"issuer":"https://idp.example.com","authorization_endpoint":"https://idp.example.com/a","token_endpoint":"https://idp.example.com/t"}"#;
        let error = validate(doc, &oauth("https://idp.example.com/")).unwrap_err();
        assert!(error.contains(r#""https://idp.example.com""#) && error.contains(r#""https://idp.example.com/""#), "{error}");
        let doc =
            br#"{"issuer":"https://evil.example.com","authorization_endpoint":"https://evil.example.com/a","token_endpoint":"https://evil.example.com/t"}"#;
        assert!(validate(doc, &oauth("https://idp.example.com")).unwrap_err().contains("evil"));
        let doc = br#"{"authorization_endpoint":"https://idp/a","token_endpoint":"https://idp/t"}"#;
        assert!(validate(doc, &oauth("https://idp")).unwrap_err().contains("no `issuer`"));
    }

    #[test]
    fn endpoints_are_required_and_secure() {
        let check = |issuer: &str, authorization: &str, token: &str| {
            let doc = serde_json::json!({"issuer": issuer, "authorization_endpoint": authorization, "token_endpoint": token}).to_string();
            validate(doc.as_bytes(), &oauth(issuer))
        };
        assert!(check("https://idp", "https://idp/a", "http://idp/t").unwrap_err().contains("`token_endpoint`"));
        assert!(check("https://idp", "http://127.0.0.1/a", "https://idp/t").unwrap_err().contains("does not use https"), "https issuer: no http at all");
        assert!(check("https://idp", "https://idp/a#x", "https://idp/t").unwrap_err().contains("fragment"));
        assert!(check("https://idp", "javascript:alert(1)", "https://idp/t").is_err());
        assert!(check("http://127.0.0.1:9000", "http://127.0.0.1:9000/a", "http://localhost:9000/t").is_ok(), "a local provider");
        assert!(check("http://127.0.0.1:9000", "http://idp.example.com/a", "http://127.0.0.1:9000/t").is_err(), "plain http only on loopback");
        let doc = br#"{"issuer":"https://idp","token_endpoint":"https://idp/t"}"#;
        assert!(validate(doc, &oauth("https://idp")).unwrap_err().contains("`authorization_endpoint`"));
        assert!(validate(b"<html>", &oauth("https://idp")).unwrap_err().contains("not a JSON object"));
        assert!(validate(b"[]", &oauth("https://idp")).is_err());
    }

    #[test]
    fn an_insecure_revocation_endpoint_is_ignored() {
        let doc = br#"{"issuer":"https://idp","authorization_endpoint":"https://idp/a","token_endpoint":"https://idp/t","revocation_endpoint":"http://idp/r"}"#;
        assert_eq!(validate(doc, &oauth("https://idp")).unwrap().revocation, None);
    }
}
