use super::*;
use crate::runtime::bindings::host::portcullis::auth::crypto::CryptoError;
use crate::runtime::capabilities::crypto::verify_jws;
use crate::signing::key::tests::{EC_KID, EC_PEM, RSA_KID, RSA_PEM};

fn key(pem: &str) -> Arc<SigningKey> {
    Arc::new(SigningKey::from_pem(pem.as_bytes()).unwrap())
}

fn ring(keys: &[&str]) -> KeyRing {
    KeyRing::new(keys.iter().map(|pem| key(pem)).collect()).unwrap()
}

/// The header, and the claims bytes, of a compact JWS.
fn parts(jws: &str) -> (String, String) {
    let mut parts = jws.split('.');
    let mut decode = || String::from_utf8(URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    (decode(), decode())
}

/// Verifies `jws` as a verifier would: the key its `kid` names in `jwks`,
/// through the crypto import's own code. `None`: no such key.
pub(crate) fn verify(jws: &str, jwks: &str) -> Option<Result<bool, CryptoError>> {
    let header: serde_json::Value = serde_json::from_str(&parts(jws).0).unwrap();
    let jwks: serde_json::Value = serde_json::from_str(jwks).unwrap();
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"])?;
    let (input, signature) = jws.rsplit_once('.').unwrap();
    Some(verify_jws(header["alg"].as_str().unwrap(), &jwk.to_string(), input, signature))
}

#[test]
fn tokens_verify_through_the_crypto_import_with_the_published_jwk() {
    for (pem, alg) in [(EC_PEM, "ES256"), (RSA_PEM, "RS256")] {
        let ring = ring(&[pem]);
        let jws = ring.sign(r#"{"sub":"alice"}"#, "at+jwt").unwrap();
        assert_eq!(verify(&jws, ring.jwks()), Some(Ok(true)), "{alg}");
        // Another claim, the same signature: refused.
        let (head, rest) = jws.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged = format!("{head}.{}.{signature}", URL_SAFE_NO_PAD.encode(r#"{"sub":"mallory"}"#));
        assert_eq!(verify(&forged, ring.jwks()), Some(Ok(false)), "{alg}");
    }
}

#[test]
fn the_header_names_alg_kid_and_typ_and_the_claims_are_signed_as_given() {
    let claims = "{ \"sub\" : \"alice\",\n \"aud\": [\"b\", \"a\"] }";
    let (header, signed) = parts(&ring(&[EC_PEM, RSA_PEM]).sign(claims, "at+jwt").unwrap());
    assert_eq!(header, format!(r#"{{"alg":"ES256","kid":"{EC_KID}","typ":"at+jwt"}}"#));
    assert_eq!(signed, claims);
    let (header, _) = parts(&ring(&[RSA_PEM, EC_PEM]).sign("{}", "JWT").unwrap());
    assert_eq!(header, format!(r#"{{"alg":"RS256","kid":"{RSA_KID}","typ":"JWT"}}"#));
}

#[test]
fn claims_must_be_one_object_and_typ_a_token_type() {
    let ring = ring(&[EC_PEM]);
    for claims in ["", "[]", "1", "\"a\"", "null", "{", r#"{"a":1} {}"#, r#"{"a":1}x"#, r#"{"a":1,"a":2}"#, r#"{"a":1,"\u0061":2}"#] {
        assert_eq!(ring.sign(claims, "JWT"), Err(SignError::InvalidClaims), "{claims:?}");
    }
    assert!(ring.sign(" {\"a\":{\"a\":1}} \n", "JWT").is_ok(), "nested names and outer whitespace are fine");
    for typ in ["", "at jwt", "a\"b", "a\\b", "é", &"a".repeat(65)] {
        assert_eq!(ring.sign("{}", typ), Err(SignError::InvalidType), "{typ:?}");
    }
    for typ in ["JWT", "at+jwt", "dpop+jwt", "vnd.a-b", &"a".repeat(64)] {
        assert!(ring.sign("{}", typ).is_ok(), "{typ:?}");
    }
}

#[test]
fn the_jwks_lists_every_key_signer_first() {
    let ring = ring(&[RSA_PEM, EC_PEM]);
    let jwks: serde_json::Value = serde_json::from_str(&ring.jwks_json()).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.iter().map(|k| k["kid"].as_str().unwrap()).collect::<Vec<_>>(), [RSA_KID, EC_KID]);
    assert!(keys.iter().all(|k| k["use"] == "sig" && k.get("d").is_none() && k.get("p").is_none()));
    assert_eq!(ring.kids().collect::<Vec<_>>(), [RSA_KID, EC_KID]);
    assert_eq!(format!("{ring:?}"), format!(r#"KeyRing {{ kids: ["{RSA_KID}", "{EC_KID}"] }}"#));
}

#[test]
fn a_ring_has_keys_each_once() {
    assert!(matches!(KeyRing::new(Vec::new()), Err(None)));
    assert!(matches!(KeyRing::new(vec![key(EC_PEM), key(RSA_PEM), key(EC_PEM)]), Err(Some(2))));
}

#[test]
fn rotation_keeps_listed_keys_valid() {
    // The old key signs; the new one is published second.
    let before = ring(&[EC_PEM, RSA_PEM]);
    let old_token = before.sign("{}", "JWT").unwrap();
    // The new key moved first: the old one's tokens still verify.
    let after = ring(&[RSA_PEM, EC_PEM]);
    let new_token = after.sign("{}", "JWT").unwrap();
    assert_eq!(verify(&old_token, after.jwks()), Some(Ok(true)));
    assert_eq!(verify(&new_token, before.jwks()), Some(Ok(true)));
    // The old key dropped: its tokens no longer find a key.
    let dropped = ring(&[RSA_PEM]);
    assert_eq!(verify(&old_token, dropped.jwks()), None);
    assert_eq!(verify(&new_token, dropped.jwks()), Some(Ok(true)));
}
