//! The `crypto` import: JWS signature verification in native code.
//!
//! Keys are matched to algorithms strictly (RSA keys only for RS*/PS*, EC keys
//! of the right curve for ES*, OKP for EdDSA, `oct` only for HS*), so a
//! component cannot be tricked into checking an HMAC with a public key.
//! Parsed keys are cached by their JWK text: a JWKS has few keys and a token
//! check should not re-parse an RSA modulus.

use super::HostState;
use crate::runtime::bindings::host::portcullis::auth::crypto::{CryptoError, Host};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};

/// Parsed keys kept; when full, the cache starts over (keys are cheap to re-parse once).
const MAX_KEYS: usize = 1024;

/// A parsed JWK and the verification key made from it.
type ParsedKey = Arc<(Jwk, DecodingKey)>;

static KEYS: LazyLock<Mutex<HashMap<String, ParsedKey>>> = LazyLock::new(Default::default);

fn key(jwk_text: &str) -> Result<ParsedKey, CryptoError> {
    if let Some(found) = KEYS.lock().unwrap_or_else(|p| p.into_inner()).get(jwk_text) {
        return Ok(found.clone());
    }
    let jwk: Jwk = serde_json::from_str(jwk_text).map_err(|_| CryptoError::InvalidKey)?;
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| CryptoError::InvalidKey)?;
    let parsed = Arc::new((jwk, decoding));
    let mut keys = KEYS.lock().unwrap_or_else(|p| p.into_inner());
    if keys.len() >= MAX_KEYS {
        keys.clear();
    }
    keys.insert(jwk_text.to_owned(), parsed.clone());
    Ok(parsed)
}

fn key_fits(alg: Algorithm, jwk: &Jwk) -> bool {
    use Algorithm::*;
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), RS256 | RS384 | RS512 | PS256 | PS384 | PS512) => true,
        (AlgorithmParameters::EllipticCurve(ec), ES256) => ec.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(ec), ES384) => ec.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(okp), EdDSA) => okp.curve == EllipticCurve::Ed25519,
        (AlgorithmParameters::OctetKey(_), HS256 | HS384 | HS512) => true,
        _ => false,
    }
}

/// Verifies one compact-JWS signature.
pub fn verify_jws(alg: &str, jwk: &str, signing_input: &str, signature: &str) -> Result<bool, CryptoError> {
    // `Algorithm::from_str` knows no `none`; anything else unknown is refused too.
    let alg = Algorithm::from_str(alg).map_err(|_| CryptoError::UnsupportedAlgorithm)?;
    let parsed = key(jwk)?;
    if !key_fits(alg, &parsed.0) {
        return Err(CryptoError::InvalidKey);
    }
    if signature.is_empty() || !signature.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(CryptoError::MalformedSignature);
    }
    jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &parsed.1, alg).map_err(|_| CryptoError::MalformedSignature)
}

impl Host for HostState {
    fn verify_jws(&mut self, alg: String, jwk: String, signing_input: String, signature: String) -> Result<bool, CryptoError> {
        let result = verify_jws(&alg, &jwk, &signing_input, &signature);
        if let Some(trial) = &self.caps.trial {
            let outcome = match &result {
                Ok(valid) => valid.to_string(),
                Err(error) => format!("{error:?}"),
            };
            trial.record(super::trial::HostCall::VerifyJws { alg, result: outcome });
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const SECRET_JWK: &str = r#"{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}"#;

    #[test]
    fn hmac_round_trip_and_strict_key_types() {
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &serde_json::json!({"a":1}), &EncodingKey::from_secret(b"secret-secret-secret-secret-secret"))
                .unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        assert_eq!(verify_jws("HS256", SECRET_JWK, input, sig), Ok(true));
        assert_eq!(verify_jws("HS256", SECRET_JWK, &format!("{input}x"), sig), Ok(false));
        assert_eq!(verify_jws("none", SECRET_JWK, input, sig), Err(CryptoError::UnsupportedAlgorithm));
        assert_eq!(verify_jws("RS256", SECRET_JWK, input, sig), Err(CryptoError::InvalidKey));
        assert_eq!(verify_jws("HS256", "{}", input, sig), Err(CryptoError::InvalidKey));
        assert_eq!(verify_jws("HS256", SECRET_JWK, input, "a.b"), Err(CryptoError::MalformedSignature));
    }
}
