//! Finding the key that may verify a token: static keys from the policy, or the
//! provider's JWKS (from discovery), cached through the host cache.
//!
//! Caching, by the key set's URL: the key set is kept fresh for the provider's
//! `Cache-Control: max-age` (between 1 minute and 1 day; 5 minutes if absent),
//! and a last-good copy for 7 days. When the provider is down, slow or answers
//! nonsense, the last-good keys keep verifying and the log says so; a failed
//! fetch backs off for 30 seconds, during which no request waits for the
//! provider. An unknown `kid` triggers one refetch, at most every 30 seconds per
//! key set, and none at all if the marker that enforces that cannot be stored.
//! The gateway ends a fetch before the call's deadline, so a black-holed
//! provider costs one request a wait, never a failure of the call.

use crate::config::Provider;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_plugin::jwk::find;
use portcullis_plugin::{cache, http, log, secrets};
use serde_json::Value;
use std::time::Duration;

const STALE_TTL: u32 = 7 * 24 * 3600;
const REFETCH_INTERVAL: u32 = 30;
const BACKOFF: u32 = 30;

thread_local! {
    static WARNED_SHORT_SECRET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// When this instance last saw a fetch fail, by URL: the backoff holds even
    /// if the host cache could not store its marker.
    static FAILED_AT: std::cell::RefCell<std::collections::HashMap<String, u64>> = std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Why no key could be found.
pub enum KeyError {
    /// No key of the set matches (unknown `kid`, wrong type, ...).
    NoMatchingKey,
    /// The key set could not be obtained and none is cached.
    Unavailable(String),
}

/// The JWK (as JSON text) that must verify a token signed with `alg` and `kid`.
pub fn select(provider: &Provider, alg: &str, kid: Option<&str>) -> Result<String, KeyError> {
    if alg.starts_with("HS") {
        return hmac_key(provider, alg);
    }
    if let Some(keys) = &provider.static_keys {
        return find(keys, alg, kid).ok_or(KeyError::NoMatchingKey);
    }
    let uri = match &provider.jwks_uri {
        Some(uri) => uri.clone(),
        None => discover_jwks_uri(provider).map_err(|why| {
            log::error(&format!("cannot discover the signing keys of {}: {why}", provider.issuer));
            KeyError::Unavailable(why)
        })?,
    };
    let keys = key_set(&uri, false)?;
    if let Some(key) = find(&keys, alg, kid) {
        return Ok(key);
    }
    // A new `kid` usually means the provider rotated its keys: refetch, but not
    // more than once per interval, so random kids cannot make us hammer it. If
    // the marker cannot be stored, do not refetch: the limit must hold.
    let marker = format!("jwks-refetch:{uri}");
    if kid.is_some() && cache::get(&marker).is_none() && cache::set(&marker, b"1", seconds(REFETCH_INTERVAL)) {
        let keys = key_set(&uri, true)?;
        return find(&keys, alg, kid).ok_or(KeyError::NoMatchingKey);
    }
    Err(KeyError::NoMatchingKey)
}

/// An HMAC key at least as long as the hash (RFC 7518 §3.2).
fn hmac_key(provider: &Provider, alg: &str) -> Result<String, KeyError> {
    let name = provider.hs_secret.as_deref().ok_or(KeyError::NoMatchingKey)?;
    let secret = secrets::get(name).map_err(|e| KeyError::Unavailable(format!("the HMAC secret `{name}` cannot be read: {e}")))?;
    let minimum = match alg {
        "HS384" => 48,
        "HS512" => 64,
        _ => 32,
    };
    if secret.len() < minimum {
        let why = format!("the HMAC secret `{name}` is shorter than the {minimum} bytes {alg} needs; no token is accepted with it");
        // A configuration fact: said once per instance, not on every request.
        if !WARNED_SHORT_SECRET.with(|w| w.replace(true)) {
            log::error(&why);
        }
        return Err(KeyError::Unavailable(why));
    }
    Ok(serde_json::json!({ "kty": "oct", "k": URL_SAFE_NO_PAD.encode(secret.as_bytes()) }).to_string())
}

/// The key set at `uri`: cached, or fetched (`force` skips the fresh cache).
/// During a backoff after a failed fetch, the last-good keys serve without asking.
fn key_set(uri: &str, force: bool) -> Result<Vec<Value>, KeyError> {
    let fresh_key = format!("jwks:{uri}");
    let stale_key = format!("jwks-stale:{uri}");
    let backoff_key = format!("jwks-backoff:{uri}");
    if !force && let Some(keys) = cache::get(&fresh_key).and_then(|b| parse_keys(&b).ok()) {
        return Ok(keys);
    }
    let stale = || cache::get(&stale_key).and_then(|b| parse_keys(&b).ok());
    if cache::get(&backoff_key).is_some() || recently_failed(uri) {
        return stale().ok_or_else(|| KeyError::Unavailable(format!("the key set {uri} could not be fetched recently; retrying later")));
    }
    match fetch_key_set(uri) {
        Ok((body, keys, ttl)) => {
            cache::set(&fresh_key, &body, seconds(ttl));
            cache::set(&stale_key, &body, seconds(STALE_TTL));
            FAILED_AT.with(|f| f.borrow_mut().remove(uri));
            Ok(keys)
        }
        Err(why) => {
            cache::set(&backoff_key, b"1", seconds(BACKOFF));
            FAILED_AT.with(|f| f.borrow_mut().insert(uri.to_owned(), crate::now()));
            match stale() {
                Some(keys) => {
                    log::warn(&format!("cannot refresh the signing keys {uri}: {why}; still using the cached keys"));
                    Ok(keys)
                }
                None => {
                    log::error(&format!("cannot get the signing keys {uri}: {why}"));
                    Err(KeyError::Unavailable(why))
                }
            }
        }
    }
}

fn recently_failed(uri: &str) -> bool {
    FAILED_AT.with(|f| f.borrow().get(uri).is_some_and(|at| crate::now() < at.saturating_add(u64::from(BACKOFF))))
}

fn parse_keys(body: &[u8]) -> Result<Vec<Value>, String> {
    let set: Value = serde_json::from_slice(body).map_err(|_| "the key set is not JSON".to_string())?;
    match set.get("keys") {
        Some(Value::Array(keys)) => Ok(keys.clone()),
        _ => Err("the key set has no `keys` array".into()),
    }
}

fn fetch_key_set(uri: &str) -> Result<(Vec<u8>, Vec<Value>, u32), String> {
    let (body, ttl) = get(uri)?;
    let keys = parse_keys(&body)?;
    Ok((body, keys, ttl))
}

/// OpenID Connect discovery (RFC 8414 metadata as a fallback). The document's
/// `issuer` must equal the configured one exactly (OpenID Connect Discovery §4.3).
fn discover_jwks_uri(provider: &Provider) -> Result<String, String> {
    let cache_key = format!("discovery:{}", provider.issuer);
    if let Some(uri) = cache::get(&cache_key) {
        return String::from_utf8(uri).map_err(|_| "bad cached discovery".to_string());
    }
    let (body, ttl) = get(&openid_configuration_url(&provider.issuer)).or_else(|_| get(&oauth_metadata_url(&provider.issuer)?))?;
    let doc: Value = serde_json::from_slice(&body).map_err(|_| "the discovery document is not JSON".to_string())?;
    if doc.get("issuer").and_then(Value::as_str) != Some(provider.issuer.as_str()) {
        return Err(format!("the discovery document names another issuer ({:?})", doc.get("issuer")));
    }
    let uri = doc.get("jwks_uri").and_then(Value::as_str).ok_or("the discovery document has no jwks_uri")?.to_owned();
    crate::config::require_https("jwks_uri", &uri)?;
    cache::set(&cache_key, uri.as_bytes(), seconds(ttl));
    Ok(uri)
}

/// OpenID Connect Discovery §4: the well-known path is appended to the issuer.
pub fn openid_configuration_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

/// RFC 8414 §3: the well-known segment goes between the host and the issuer's path
/// (`https://idp/tenant` → `https://idp/.well-known/oauth-authorization-server/tenant`).
pub fn oauth_metadata_url(issuer: &str) -> Result<String, String> {
    let url = url::Url::parse(issuer).map_err(|_| format!("the issuer {issuer:?} is not a URL"))?;
    Ok(format!("{}/.well-known/oauth-authorization-server{}", url.origin().ascii_serialization(), url.path().trim_end_matches('/')))
}

/// GETs `url`; returns the body and a cache lifetime from `Cache-Control`.
fn get(url: &str) -> Result<(Vec<u8>, u32), String> {
    let response = http::Request::get(url).header("accept", "application/json").timeout(Duration::from_secs(3)).send().map_err(|e| format!("{url}: {e}"))?;
    if response.status != 200 {
        return Err(format!("{url} answered HTTP {}", response.status));
    }
    let max_age = response
        .headers
        .iter()
        .filter(|(name, _)| name == "cache-control")
        .flat_map(|(_, value)| value.split(','))
        .find_map(|d| d.trim().strip_prefix("max-age=").and_then(|v| v.parse::<u32>().ok()));
    Ok((response.body, max_age.unwrap_or(300).clamp(60, 86_400)))
}

fn seconds(secs: u32) -> Duration {
    Duration::from_secs(u64::from(secs))
}
