//! The `crypto` import: JWS signature verification in native code.
//!
//! Keys are matched to algorithms strictly (RSA keys only for RS*/PS*, EC keys
//! of the right curve for ES*, OKP for EdDSA, `oct` only for HS* and at least
//! as long as the hash, RFC 7518 §3.2), so a component cannot be tricked into
//! checking an HMAC with a public key. A JWK's own restrictions hold too: a
//! `use` other than `sig`, `key_ops` without `verify`, or an `alg` other than
//! the token's makes it refuse (RFC 7517 §4.2–4.4), whatever the component
//! checked itself.
//! [`Jwk`] reads the JWK (the members verification needs, with their types
//! checked); `ring` checks the signature, because its RSA and P-256 are several
//! times faster than the pure-Rust backends and it is already in the build for
//! TLS. Parsed keys are cached by their JWK text: a JWKS has few keys and a
//! token check should not re-parse an RSA modulus.

use super::HostState;
use crate::runtime::bindings::host::portcullis::auth::crypto::{CryptoError, Host};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// Parsed keys kept; when full, the cache starts over (keys are cheap to re-parse once).
const MAX_KEYS: usize = 1024;

/// RSA moduli `ring` verifies with: 2048 bits (RFC 7518 §3.3) to 8192.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// The JWS algorithms we verify (RFC 7518 §3.1, EdDSA from RFC 8037). `none`
/// is not one of them, and neither is any other spelling.
const ALGORITHMS: [&str; 12] = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// A public JWK (RFC 7517 §4, RFC 7518 §6): the key type's own members, and
/// the members that restrict its use. Other members are ignored (RFC 7517 §4
/// says to); a member written twice, missing or of the wrong JSON type makes
/// the key invalid.
#[derive(Deserialize)]
struct Jwk {
    #[serde(rename = "use")]
    usage: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    #[serde(flatten)]
    material: Material,
    // Never read, but typed: a key that writes them wrongly is refused rather
    // than half understood.
    #[serde(rename = "kid")]
    _kid: Option<String>,
    #[serde(rename = "x5u")]
    _x5u: Option<String>,
    #[serde(rename = "x5c")]
    _x5c: Option<Vec<String>>,
    #[serde(rename = "x5t")]
    _x5t: Option<String>,
    #[serde(rename = "x5t#S256")]
    _x5t_s256: Option<String>,
}

/// The key material by `kty`, base64url as written; an unknown `kty` matches
/// no variant and is refused.
#[derive(Deserialize)]
#[serde(untagged)]
// `kty` is matched by its type, never read.
#[allow(dead_code)]
enum Material {
    Rsa { kty: RsaType, n: String, e: String },
    Ec { kty: EcType, crv: String, x: String, y: String },
    Okp { kty: OkpType, crv: String, x: String },
    Oct { kty: OctType, k: String },
}

// One type per `kty` value, so that each variant above takes only its own, as
// a string (`#[serde(tag = "kty")]` would also take a number, as an index).
#[derive(Deserialize)]
enum RsaType {
    #[serde(rename = "RSA")]
    Rsa,
}
#[derive(Deserialize)]
enum EcType {
    #[serde(rename = "EC")]
    Ec,
}
#[derive(Deserialize)]
enum OkpType {
    #[serde(rename = "OKP")]
    Okp,
}
#[derive(Deserialize)]
enum OctType {
    #[serde(rename = "oct")]
    Oct,
}

#[derive(Clone, Copy, PartialEq)]
enum Curve {
    P256,
    P384,
}

/// A verification key, decoded once from its JWK.
enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed point (`04 || x || y`) on the named curve.
    Ec {
        curve: Curve,
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
    if jwk.usage.as_ref().is_some_and(|u| u != "sig") || jwk.key_ops.as_ref().is_some_and(|ops| !ops.iter().any(|op| op == "verify")) {
        return Err(CryptoError::InvalidKey);
    }
    Ok(Verifier { key: key_material(&jwk.material)?, alg: jwk.alg })
}

fn key_material(material: &Material) -> Result<Key, CryptoError> {
    Ok(match material {
        Material::Rsa { n, e, .. } => {
            // Some issuers pad `n` (or `e`) with a zero byte; `ring` takes
            // neither with one, so the key would fail every token.
            let (n, e) = (without_leading_zeros(unbase64(n)?), without_leading_zeros(unbase64(e)?));
            let bits = n.first().map_or(0, |top| n.len() * 8 - top.leading_zeros() as usize);
            // `ring` wants an odd public exponent from 3 to 2^33 - 1.
            let exponent = e.iter().fold(0u64, |value, byte| value.saturating_mul(256).saturating_add(u64::from(*byte)));
            if !RSA_BITS.contains(&bits) || e.len() > 5 || !(3..1 << 33).contains(&exponent) || exponent % 2 == 0 {
                return Err(CryptoError::InvalidKey);
            }
            Key::Rsa { n, e }
        }
        Material::Ec { crv, x, y, .. } => {
            let (curve, size) = match crv.as_str() {
                "P-256" => (Curve::P256, 32),
                "P-384" => (Curve::P384, 48),
                _ => return Err(CryptoError::InvalidKey),
            };
            let (x, y) = (unbase64(x)?, unbase64(y)?);
            if x.len() != size || y.len() != size {
                return Err(CryptoError::InvalidKey);
            }
            Key::Ec { curve, point: [&[4u8][..], &x, &y].concat() }
        }
        Material::Okp { crv, x, .. } if crv == "Ed25519" => {
            let x = unbase64(x)?;
            if x.len() != 32 {
                return Err(CryptoError::InvalidKey);
            }
            Key::Ed25519(x)
        }
        Material::Okp { .. } => return Err(CryptoError::InvalidKey),
        Material::Oct { k, .. } => {
            let secret = unbase64(k)?;
            if secret.is_empty() {
                return Err(CryptoError::InvalidKey);
            }
            Key::Hmac(secret)
        }
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

fn check_for(alg: &str, key: &Key) -> Option<Check> {
    Some(match (key, alg) {
        (Key::Rsa { .. }, "RS256") => Check::Rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
        (Key::Rsa { .. }, "RS384") => Check::Rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
        (Key::Rsa { .. }, "RS512") => Check::Rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
        (Key::Rsa { .. }, "PS256") => Check::Rsa(&signature::RSA_PSS_2048_8192_SHA256),
        (Key::Rsa { .. }, "PS384") => Check::Rsa(&signature::RSA_PSS_2048_8192_SHA384),
        (Key::Rsa { .. }, "PS512") => Check::Rsa(&signature::RSA_PSS_2048_8192_SHA512),
        (Key::Ec { curve: Curve::P256, .. }, "ES256") => Check::Public(&signature::ECDSA_P256_SHA256_FIXED),
        (Key::Ec { curve: Curve::P384, .. }, "ES384") => Check::Public(&signature::ECDSA_P384_SHA384_FIXED),
        (Key::Ed25519(_), "EdDSA") => Check::Public(&signature::ED25519),
        (Key::Hmac(secret), "HS256") if secret.len() >= 32 => Check::Hmac(ring::hmac::HMAC_SHA256),
        (Key::Hmac(secret), "HS384") if secret.len() >= 48 => Check::Hmac(ring::hmac::HMAC_SHA384),
        (Key::Hmac(secret), "HS512") if secret.len() >= 64 => Check::Hmac(ring::hmac::HMAC_SHA512),
        _ => return None,
    })
}

/// Verifies one compact-JWS signature.
pub fn verify_jws(alg: &str, jwk: &str, signing_input: &str, signature: &str) -> Result<bool, CryptoError> {
    if !ALGORITHMS.contains(&alg) {
        return Err(CryptoError::UnsupportedAlgorithm);
    }
    let verifier = key(jwk)?;
    if verifier.alg.as_deref().is_some_and(|allowed| allowed != alg) {
        return Err(CryptoError::InvalidKey);
    }
    let key = &verifier.key;
    let check = check_for(alg, key).ok_or(CryptoError::InvalidKey)?;
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
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
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

    /// JWKs of every type, good and bad: (case, JWK text, whether it is a usable key).
    fn jwk_cases() -> Vec<(&'static str, String, bool)> {
        let b = |n: usize| URL_SAFE_NO_PAD.encode(vec![0xC5u8; n]);
        let (p256, p384, n) = (b(32), b(48), b(256));
        vec![
            ("EC P-256", format!(r#"{{"kty":"EC","crv":"P-256","x":"{p256}","y":"{p256}"}}"#), true),
            ("EC P-384", format!(r#"{{"kty":"EC","crv":"P-384","x":"{p384}","y":"{p384}"}}"#), true),
            ("RSA", format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#), true),
            ("OKP Ed25519", format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{p256}"}}"#), true),
            ("oct", format!(r#"{{"kty":"oct","k":"{p256}"}}"#), true),
            // Members it does not know, and the optional ones well typed: ignored.
            (
                "other members",
                format!(
                    r#"{{"kty":"EC","crv":"P-256","x":"{p256}","y":"{p256}","kid":"a","x5c":["MII"],"x5t":"t","x5t#S256":"t","x5u":"https://a","n":5,"ext":true}}"#
                ),
                true,
            ),
            ("no kty", format!(r#"{{"crv":"P-256","x":"{p256}","y":"{p256}"}}"#), false),
            ("unknown kty", format!(r#"{{"kty":"ec","crv":"P-256","x":"{p256}","y":"{p256}"}}"#), false),
            ("kty not a string", format!(r#"{{"kty":1,"crv":"P-256","x":"{p256}","y":"{p256}"}}"#), false),
            ("EC without y", format!(r#"{{"kty":"EC","crv":"P-256","x":"{p256}"}}"#), false),
            ("EC without crv", format!(r#"{{"kty":"EC","x":"{p256}","y":"{p256}"}}"#), false),
            ("RSA without e", format!(r#"{{"kty":"RSA","n":"{n}"}}"#), false),
            ("OKP without x", r#"{"kty":"OKP","crv":"Ed25519"}"#.to_owned(), false),
            ("oct without k", r#"{"kty":"oct"}"#.to_owned(), false),
            ("P-521", format!(r#"{{"kty":"EC","crv":"P-521","x":"{}","y":"{}"}}"#, b(66), b(66)), false),
            ("secp256k1", format!(r#"{{"kty":"EC","crv":"secp256k1","x":"{p256}","y":"{p256}"}}"#), false),
            ("EC on Ed25519", format!(r#"{{"kty":"EC","crv":"Ed25519","x":"{p256}","y":"{p256}"}}"#), false),
            ("OKP X25519", format!(r#"{{"kty":"OKP","crv":"X25519","x":"{p256}"}}"#), false),
            ("OKP on P-256", format!(r#"{{"kty":"OKP","crv":"P-256","x":"{p256}"}}"#), false),
            ("P-256 y too short", format!(r#"{{"kty":"EC","crv":"P-256","x":"{p256}","y":"{}"}}"#, b(31)), false),
            ("P-256 x too long", format!(r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{p256}"}}"#, b(33)), false),
            ("P-384 with P-256 coordinates", format!(r#"{{"kty":"EC","crv":"P-384","x":"{p256}","y":"{p256}"}}"#), false),
            ("Ed25519 x too short", format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, b(31)), false),
            ("empty k", r#"{"kty":"oct","k":""}"#.to_owned(), false),
            ("x not base64url", format!(r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{p256}"}}"#, "+".repeat(43)), false),
            ("x a number", format!(r#"{{"kty":"EC","crv":"P-256","x":5,"y":"{p256}"}}"#), false),
            ("kid a number", format!(r#"{{"kty":"oct","k":"{p256}","kid":5}}"#), false),
            ("x5c a string", format!(r#"{{"kty":"oct","k":"{p256}","x5c":"MII"}}"#), false),
            ("use a number", format!(r#"{{"kty":"oct","k":"{p256}","use":1}}"#), false),
            ("key_ops a string", format!(r#"{{"kty":"oct","k":"{p256}","key_ops":"verify"}}"#), false),
            ("alg a number", format!(r#"{{"kty":"oct","k":"{p256}","alg":256}}"#), false),
            ("kty twice", format!(r#"{{"kty":"oct","kty":"oct","k":"{p256}"}}"#), false),
            ("k twice", format!(r#"{{"kty":"oct","k":"{p256}","k":"{p256}"}}"#), false),
            ("x twice", format!(r#"{{"kty":"EC","crv":"P-256","x":"{p256}","x":"{p256}","y":"{p256}"}}"#), false),
            ("use twice", format!(r#"{{"kty":"oct","k":"{p256}","use":"enc","use":"sig"}}"#), false),
            ("alg twice", format!(r#"{{"kty":"oct","k":"{p256}","alg":"HS512","alg":"HS256"}}"#), false),
            ("kid twice", format!(r#"{{"kty":"oct","k":"{p256}","kid":"a","kid":"b"}}"#), false),
            ("not an object", r#"["kty","oct"]"#.to_owned(), false),
            ("trailing text", format!(r#"{{"kty":"oct","k":"{p256}"}} x"#), false),
        ]
    }

    #[test]
    fn a_jwk_is_read_strictly() {
        for (case, jwk, usable) in jwk_cases() {
            assert_eq!(parse(&jwk).is_ok(), usable, "{case}: {jwk}");
        }
    }
}
