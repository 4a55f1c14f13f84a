//! The `crypto` import: JWS signature verification in native code.
//!
//! Keys are matched to algorithms strictly (RSA keys only for RS*/PS*, EC keys
//! of the right curve for ES*, OKP for EdDSA, `oct` only for HS* and at least
//! as long as the hash, RFC 7518 §3.2), so a component cannot be tricked into
//! checking an HMAC with a public key. A JWK's own restrictions hold too: a
//! `use` other than `sig`, `key_ops` without `verify`, or an `alg` other than
//! the token's makes it refuse (RFC 7517 §4.2–4.4), whatever the component
//! checked itself.
//! `jsonwebtoken` reads the JWK; `ring` checks the signature, because its RSA
//! and P-256 are several times faster than the pure-Rust backends and it is
//! already in the build for TLS. Parsed keys are cached by their JWK text: a
//! JWKS has few keys and a token check should not re-parse an RSA modulus.

use super::HostState;
use crate::runtime::bindings::host::portcullis::auth::crypto::{CryptoError, Host};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};

/// Parsed keys kept; when full, the cache starts over (keys are cheap to re-parse once).
const MAX_KEYS: usize = 1024;

/// RSA moduli `ring` verifies with: 2048 bits (RFC 7518 §3.3) to 8192.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// A verification key, decoded once from its JWK.
enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed point (`04 || x || y`) on the named curve.
    Ec {
        curve: EllipticCurve,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
    Hmac(Vec<u8>),
}

/// A key and the one algorithm its JWK allows, if it names one.
struct Verifier {
    key: Key,
    alg: Option<String>,
}

static KEYS: LazyLock<Mutex<HashMap<String, Arc<Verifier>>>> = LazyLock::new(Default::default);

fn unbase64(text: &str) -> Result<Vec<u8>, CryptoError> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).map_err(|_| CryptoError::InvalidKey)
}

fn without_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

fn parse(jwk_text: &str) -> Result<Verifier, CryptoError> {
    let jwk: Jwk = serde_json::from_str(jwk_text).map_err(|_| CryptoError::InvalidKey)?;
    let common = &jwk.common;
    if common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature)
        || common.key_operations.as_ref().is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return Err(CryptoError::InvalidKey);
    }
    // The JWA name (`RS256`, ...), as the token's header writes it.
    let alg = common.key_algorithm.and_then(|a| serde_json::to_value(a).ok()).and_then(|v| v.as_str().map(str::to_owned));
    Ok(Verifier { key: key_material(&jwk)?, alg })
}

fn key_material(jwk: &Jwk) -> Result<Key, CryptoError> {
    Ok(match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            // Some issuers pad `n` (or `e`) with a zero byte; `ring` takes
            // neither with one, so the key would fail every token.
            let (n, e) = (without_leading_zeros(unbase64(&rsa.n)?), without_leading_zeros(unbase64(&rsa.e)?));
            let bits = n.first().map_or(0, |top| n.len() * 8 - top.leading_zeros() as usize);
            // `ring` wants an odd public exponent from 3 to 2^33 - 1.
            let exponent = e.iter().fold(0u64, |value, byte| value.saturating_mul(256).saturating_add(u64::from(*byte)));
            if !RSA_BITS.contains(&bits) || e.len() > 5 || !(3..1 << 33).contains(&exponent) || exponent % 2 == 0 {
                return Err(CryptoError::InvalidKey);
            }
            Key::Rsa { n, e }
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let size = match ec.curve {
                EllipticCurve::P256 => 32,
                EllipticCurve::P384 => 48,
                _ => return Err(CryptoError::InvalidKey),
            };
            let (x, y) = (unbase64(&ec.x)?, unbase64(&ec.y)?);
            if x.len() != size || y.len() != size {
                return Err(CryptoError::InvalidKey);
            }
            let point = [&[4u8][..], &x, &y].concat();
            Key::Ec { curve: ec.curve.clone(), point }
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            let x = unbase64(&okp.x)?;
            if x.len() != 32 {
                return Err(CryptoError::InvalidKey);
            }
            Key::Ed25519(x)
        }
        AlgorithmParameters::OctetKey(oct) => {
            let secret = unbase64(&oct.value)?;
            if secret.is_empty() {
                return Err(CryptoError::InvalidKey);
            }
            Key::Hmac(secret)
        }
        _ => return Err(CryptoError::InvalidKey),
    })
}

fn key(jwk_text: &str) -> Result<Arc<Verifier>, CryptoError> {
    if let Some(found) = KEYS.lock().unwrap_or_else(|p| p.into_inner()).get(jwk_text) {
        return Ok(found.clone());
    }
    let parsed = Arc::new(parse(jwk_text)?);
    let mut keys = KEYS.lock().unwrap_or_else(|p| p.into_inner());
    if keys.len() >= MAX_KEYS {
        keys.clear();
    }
    keys.insert(jwk_text.to_owned(), parsed.clone());
    Ok(parsed)
}

/// The check for `alg` with this key, or `None` when the key does not fit the algorithm.
enum Check {
    Public(&'static dyn VerificationAlgorithm),
    Rsa(&'static signature::RsaParameters),
    Hmac(ring::hmac::Algorithm),
}

fn check_for(alg: Algorithm, key: &Key) -> Option<Check> {
    use Algorithm::*;
    Some(match (key, alg) {
        (Key::Rsa { .. }, RS256) => Check::Rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
        (Key::Rsa { .. }, RS384) => Check::Rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
        (Key::Rsa { .. }, RS512) => Check::Rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
        (Key::Rsa { .. }, PS256) => Check::Rsa(&signature::RSA_PSS_2048_8192_SHA256),
        (Key::Rsa { .. }, PS384) => Check::Rsa(&signature::RSA_PSS_2048_8192_SHA384),
        (Key::Rsa { .. }, PS512) => Check::Rsa(&signature::RSA_PSS_2048_8192_SHA512),
        (Key::Ec { curve: EllipticCurve::P256, .. }, ES256) => Check::Public(&signature::ECDSA_P256_SHA256_FIXED),
        (Key::Ec { curve: EllipticCurve::P384, .. }, ES384) => Check::Public(&signature::ECDSA_P384_SHA384_FIXED),
        (Key::Ed25519(_), EdDSA) => Check::Public(&signature::ED25519),
        (Key::Hmac(secret), HS256) if secret.len() >= 32 => Check::Hmac(ring::hmac::HMAC_SHA256),
        (Key::Hmac(secret), HS384) if secret.len() >= 48 => Check::Hmac(ring::hmac::HMAC_SHA384),
        (Key::Hmac(secret), HS512) if secret.len() >= 64 => Check::Hmac(ring::hmac::HMAC_SHA512),
        _ => return None,
    })
}

/// Verifies one compact-JWS signature.
pub fn verify_jws(alg: &str, jwk: &str, signing_input: &str, signature: &str) -> Result<bool, CryptoError> {
    // `Algorithm::from_str` knows no `none`; anything else unknown is refused too.
    let algorithm = Algorithm::from_str(alg).map_err(|_| CryptoError::UnsupportedAlgorithm)?;
    let verifier = key(jwk)?;
    if verifier.alg.as_deref().is_some_and(|allowed| allowed != alg) {
        return Err(CryptoError::InvalidKey);
    }
    let key = &verifier.key;
    let check = check_for(algorithm, key).ok_or(CryptoError::InvalidKey)?;
    if signature.is_empty() || !signature.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(CryptoError::MalformedSignature);
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| CryptoError::MalformedSignature)?;
    let message = signing_input.as_bytes();
    let valid = match (check, key) {
        (Check::Rsa(params), Key::Rsa { n, e }) => RsaPublicKeyComponents { n, e }.verify(params, message, &signature).is_ok(),
        (Check::Public(algorithm), Key::Ec { point: public, .. } | Key::Ed25519(public)) => {
            UnparsedPublicKey::new(algorithm, public).verify(message, &signature).is_ok()
        }
        // `hmac::verify` compares in constant time.
        (Check::Hmac(algorithm), Key::Hmac(secret)) => ring::hmac::verify(&ring::hmac::Key::new(algorithm, secret), message, &signature).is_ok(),
        _ => return Err(CryptoError::InvalidKey),
    };
    Ok(valid)
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
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

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

    #[test]
    fn a_jwk_s_own_restrictions_and_the_hmac_key_size_hold() {
        let secret = "secret-secret-secret-secret-secret-secret-secret-secret-secret-secret";
        let k = URL_SAFE_NO_PAD.encode(secret);
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &serde_json::json!({"a":1}), &EncodingKey::from_secret(secret.as_bytes())).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let jwk = |extra: &str| format!(r#"{{"kty":"oct","k":"{k}"{extra}}}"#);
        assert_eq!(verify_jws("HS256", &jwk(r#","use":"sig","key_ops":["verify"],"alg":"HS256""#), input, sig), Ok(true));
        assert_eq!(verify_jws("HS256", &jwk(r#","use":"enc""#), input, sig), Err(CryptoError::InvalidKey));
        assert_eq!(verify_jws("HS256", &jwk(r#","key_ops":["sign"]"#), input, sig), Err(CryptoError::InvalidKey));
        assert_eq!(verify_jws("HS256", &jwk(r#","alg":"HS512""#), input, sig), Err(CryptoError::InvalidKey));
        // 34 bytes: enough for HS256, not for HS384 or HS512.
        let short = r#"{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}"#;
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS384), &serde_json::json!({"a":1}), &EncodingKey::from_secret(b"secret-secret-secret-secret-secret"))
                .unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        assert_eq!(verify_jws("HS384", short, input, sig), Err(CryptoError::InvalidKey));
    }

    #[test]
    fn ecdsa_and_eddsa_verify_only_with_their_own_curve() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..]));
        let jwk = format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}"}}"#);
        let input = "eyJhbGciOiJFUzI1NiJ9.eyJhIjoxfQ";
        let sig = URL_SAFE_NO_PAD.encode(pair.sign(&rng, input.as_bytes()).unwrap());
        assert_eq!(verify_jws("ES256", &jwk, input, &sig), Ok(true));
        assert_eq!(verify_jws("ES256", &jwk, &format!("{input}x"), &sig), Ok(false));
        assert_eq!(verify_jws("ES384", &jwk, input, &sig), Err(CryptoError::InvalidKey));
        assert_eq!(verify_jws("HS256", &jwk, input, &sig), Err(CryptoError::InvalidKey));
        let short = format!(r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{y}"}}"#, URL_SAFE_NO_PAD.encode(&point[2..33]));
        assert_eq!(verify_jws("ES256", &short, input, &sig), Err(CryptoError::InvalidKey));

        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()));
        let sig = URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()));
        assert_eq!(verify_jws("EdDSA", &jwk, input, &sig), Ok(true));
        assert_eq!(verify_jws("EdDSA", &jwk, &format!("{input}x"), &sig), Ok(false));
        assert_eq!(verify_jws("ES256", &jwk, input, &sig), Err(CryptoError::InvalidKey));
    }

    #[test]
    fn rsa_keys_are_read_as_ring_needs_them() {
        let rsa = |n: &[u8], e: &str| parse(&format!(r#"{{"kty":"RSA","n":"{}","e":"{e}"}}"#, URL_SAFE_NO_PAD.encode(n)));
        let modulus = [0xC5u8; 256];
        // A zero byte in front of `n` or `e` is taken off, not refused.
        let padded = [&[0u8][..], &modulus].concat();
        assert!(matches!(rsa(&padded, "AAEAAQ"), Ok(Verifier { key: Key::Rsa { n, e }, .. }) if n.len() == 256 && e == [1, 0, 1]));
        // 2040 bits, or 8200: refused at the key rather than failing every token.
        assert!(matches!(rsa(&modulus[..255], "AQAB"), Err(CryptoError::InvalidKey)));
        assert!(matches!(rsa(&[0xC5u8; 1025], "AQAB"), Err(CryptoError::InvalidKey)));
        // An even, too small or too large exponent.
        for e in ["AQAA", "AQ", "AQAAAAAA"] {
            assert!(matches!(rsa(&modulus, e), Err(CryptoError::InvalidKey)), "{e}");
        }
        let jwk = format!(r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#, URL_SAFE_NO_PAD.encode([0xC5u8; 128]));
        assert_eq!(verify_jws("RS256", &jwk, "a.b", "c2ln"), Err(CryptoError::InvalidKey));
    }
}
