//! The provider's signing keys (its JWKS, from `jwks_uri`), and the key that
//! may verify an ID token.
//!
//! The key set is cached for its `Cache-Control: max-age` (between 1 minute
//! and 1 day; 5 minutes when absent). An unknown `kid` usually means the
//! provider rotated its keys: the set is fetched again, at most once every 30
//! seconds, so that tokens with random `kid`s cannot make this server hammer
//! the provider. Keys come only from the configured provider's set, never
//! from the token (`jku`, `x5u`, `jwk`, `x5c` are ignored).

use crate::upstream::fetch::{self, DOCUMENT_LIMIT};
use crate::upstream::text::strict_object;
use portcullis_plugin::{cache, http};
use serde_json::Value;
use std::time::Duration;

const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// The JWK (as JSON text) for `alg` and `kid` from the set at `uri`.
pub fn key(uri: &str, alg: &str, kid: Option<&str>) -> Result<String, String> {
    let keys = key_set(uri, false)?;
    if let Some(key) = find(&keys, alg, kid) {
        return Ok(key);
    }
    // If the marker that limits refetches cannot be stored, do not refetch:
    // the limit must hold.
    let marker = format!("up-jwks-refetch:{uri}");
    if kid.is_some() && cache::get(&marker).is_none() && cache::set(&marker, b"1", REFETCH_INTERVAL) {
        let keys = key_set(uri, true)?;
        return find(&keys, alg, kid).ok_or_else(|| "no key of the provider's key set fits the ID token's `kid` and `alg`".into());
    }
    Err("no key of the provider's key set fits the ID token's `kid` and `alg`".into())
}

fn key_set(uri: &str, force: bool) -> Result<Vec<Value>, String> {
    let cache_key = format!("up-jwks:{uri}");
    if !force && let Some(keys) = cache::get(&cache_key).and_then(|bytes| parse(&bytes).ok()) {
        return Ok(keys);
    }
    let fetched =
        fetch::send(http::Request::get(uri).header("accept", "application/json"), DOCUMENT_LIMIT).map_err(|why| format!("the key set {uri}: {why}"))?;
    if fetched.status != 200 {
        return Err(format!("the key set {uri} answered HTTP {}", fetched.status));
    }
    let keys = parse(&fetched.body).map_err(|why| format!("the key set {uri}: {why}"))?;
    let ttl = fetched.max_age.unwrap_or(300).clamp(60, 86_400);
    cache::set(&cache_key, &fetched.body, Duration::from_secs(u64::from(ttl)));
    Ok(keys)
}

/// The keys of a JWK Set document.
pub fn parse(body: &[u8]) -> Result<Vec<Value>, String> {
    fetch::check_size(body.len(), DOCUMENT_LIMIT)?;
    match strict_object(body)?.remove("keys") {
        Some(Value::Array(keys)) => Ok(keys),
        _ => Err("no `keys` list".into()),
    }
}

/// The usable key with `kid`; without a `kid`, the only usable key (the SDK's rule).
pub use portcullis_plugin::jwk::find;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finding_the_key() {
        let keys = vec![
            json!({"kty": "RSA", "kid": "r1", "n": "x", "e": "AQAB", "use": "sig"}),
            json!({"kty": "EC", "kid": "e1", "crv": "P-256", "x": "x", "y": "y"}),
            json!({"kty": "RSA", "kid": "enc", "n": "x", "e": "AQAB", "use": "enc"}),
            json!({"kty": "oct", "kid": "h1", "k": "c2VjcmV0"}),
            json!({"kty": "RSA", "kid": "r2", "n": "x", "e": "AQAB", "alg": "PS256"}),
        ];
        assert!(find(&keys, "RS256", Some("r1")).unwrap().contains("\"r1\""));
        assert!(find(&keys, "ES256", Some("e1")).is_some());
        assert_eq!(find(&keys, "ES384", Some("e1")), None, "wrong curve");
        assert_eq!(find(&keys, "RS256", Some("enc")), None, "an encryption key");
        assert_eq!(find(&keys, "HS256", Some("h1")), None, "never a symmetric key");
        assert_eq!(find(&keys, "RS256", Some("r2")), None, "the key is for PS256 only");
        assert_eq!(find(&keys, "RS256", Some("nope")), None);
        assert!(find(&keys, "RS256", None).unwrap().contains("\"r1\""), "without kid, the only usable key");
        let mut two = keys.clone();
        two.push(json!({"kty": "RSA", "kid": "r3", "n": "y", "e": "AQAB"}));
        assert_eq!(find(&two, "RS256", None), None, "without kid, two usable keys are ambiguous");
        assert!(find(&two, "RS256", Some("r3")).is_some());
    }

    #[test]
    fn key_set_documents() {
        assert_eq!(parse(br#"{"keys":[{"kty":"RSA"}]}"#).unwrap().len(), 1);
        assert!(parse(br#"{"keys":{}}"#).unwrap_err().contains("no `keys`"));
        assert!(parse(br#"{"keys":[],"keys":[]}"#).unwrap_err().contains("duplicate"));
        let big = format!(r#"{{"keys":[],"x":"{}"}}"#, "a".repeat(DOCUMENT_LIMIT));
        assert!(parse(big.as_bytes()).unwrap_err().contains("larger than 256 KiB"));
    }
}
