//! The keys of one grant, in order: the first signs, every one is published.
//!
//! Rotation is a list edit and a reload: add the new key second (published,
//! not yet signing), move it first once every verifier has fetched the JWKS,
//! and drop the old key once the last token it signed has expired. A token
//! verifies as long as its key is listed, wherever it is in the list.

use super::key::SigningKey;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// Why nothing was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The claims are not one JSON object (or name a member twice).
    #[error("the claims are not a JSON object with distinct member names")]
    InvalidClaims,
    /// `typ` is not 1 to 64 of `A-Z a-z 0-9 . + -`.
    #[error("the token type is not 1 to 64 of `A-Za-z0-9.+-`")]
    InvalidType,
    /// `ring` refused to sign (the system's random number generator failed).
    #[error("the signature could not be computed")]
    Crypto,
}

/// The keys of one grant: never empty, no key twice.
pub struct KeyRing {
    keys: Vec<Arc<SigningKey>>,
    /// `{"keys":[...]}`, the signer first: computed once, served as is.
    jwks: String,
    rng: SystemRandom,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing").field("kids", &self.kids().collect::<Vec<_>>()).finish()
    }
}

impl KeyRing {
    /// A ring of `keys`, the first signing. `None` when there is no key, or
    /// when a key is listed twice (its index is returned: the policy names it).
    pub fn new(keys: Vec<Arc<SigningKey>>) -> Result<KeyRing, Option<usize>> {
        if keys.is_empty() {
            return Err(None);
        }
        let mut seen = HashSet::new();
        if let Some(twice) = keys.iter().position(|key| !seen.insert(key.kid())) {
            return Err(Some(twice));
        }
        let jwks = format!(r#"{{"keys":[{}]}}"#, keys.iter().map(|k| k.jwk()).collect::<Vec<_>>().join(","));
        Ok(KeyRing { keys, jwks, rng: SystemRandom::new() })
    }

    /// Signs `claims_json` with the first key, as a compact JWS (RFC 7515
    /// §7.1) whose header is `{"alg","kid","typ"}`. The claims are signed
    /// byte for byte as given: what the caller wrote is what verifiers read.
    pub fn sign(&self, claims_json: &str, typ: &str) -> Result<String, SignError> {
        if !is_token_type(typ) {
            return Err(SignError::InvalidType);
        }
        let mut claims = serde_json::Deserializer::from_str(claims_json);
        claims.deserialize_map(ObjectCheck).and_then(|()| claims.end()).map_err(|_| SignError::InvalidClaims)?;
        let signer = &self.keys[0];
        // `typ` is checked above and `kid` is base64url: neither needs escaping.
        let header = format!(r#"{{"alg":"{}","kid":"{}","typ":"{typ}"}}"#, signer.alg(), signer.kid());
        let mut jws = String::with_capacity((header.len() + claims_json.len()) * 4 / 3 + 96);
        URL_SAFE_NO_PAD.encode_string(header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(claims_json, &mut jws);
        let signature = signer.sign(&self.rng, jws.as_bytes()).map_err(|_| SignError::Crypto)?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(jws)
    }

    /// The JWK Set (`{"keys":[...]}`): every listed key, the signer first.
    pub fn jwks_json(&self) -> String {
        self.jwks.clone()
    }

    /// [`KeyRing::jwks_json`], borrowed.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// The `kid` of each key, the signer first.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid())
    }

    /// The key that signs.
    pub fn signer(&self) -> &SigningKey {
        &self.keys[0]
    }
}

/// A JWS `typ` value as tokens use it (`JWT`, `at+jwt`): 1 to 64 of `A-Za-z0-9.+-`.
fn is_token_type(typ: &str) -> bool {
    (1..=64).contains(&typ.len()) && typ.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
}

/// Reads a JSON object without keeping it: any member values, each name once
/// (RFC 7519 §4 lets a verifier take either of two same-named claims, so a
/// token never carries two).
struct ObjectCheck;

impl<'de> Visitor<'de> for ObjectCheck {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut names = HashSet::new();
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !names.insert(name) {
                return Err(de::Error::custom("a member named twice"));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "key_ring_tests.rs"]
pub(crate) mod tests;
