//! The upstream ID token (OpenID Connect Core §3.1.3.7), checked in the order
//! RFC 8725 asks: parse strictly; the algorithm from an allow-list (never
//! `none`, never HMAC: a client secret is no signing key); no unknown `crit`;
//! the key from the provider's own key set; the signature (natively, by the
//! gateway's `crypto` import); then the claims: `iss`, `aud`, `azp`, `exp`,
//! `iat`, `nbf`, `nonce` and `sub`.

use crate::upstream::text::{printable, strict_object};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_plugin::constant_time_eq;
use serde_json::{Map, Value};

/// Asymmetric signature algorithms the gateway verifies.
pub const ALLOWED_ALGS: [&str; 9] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// Clock skew allowed between this server and the provider (seconds).
pub const SKEW: u64 = 60;
/// An ID token issued longer ago than this (plus [`SKEW`]) cannot come from
/// a login that started at most ten minutes ago (the `up:` record's TTL).
pub const MAX_AGE: u64 = 600;

/// A compact JWS, parsed; the signature is not checked yet.
pub struct Parsed<'a> {
    pub alg: String,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    /// `header.payload`, what the signature covers.
    pub signing_input: &'a str,
    pub signature: &'a str,
}

/// Parses `token` and checks its header. `provider_algs` is the provider's
/// `id_token_signing_alg_values_supported`, when it publishes one.
pub fn parse<'a>(token: &'a str, provider_algs: Option<&[String]>) -> Result<Parsed<'a>, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("the ID token is not a compact JWS (three dot-separated parts)".into());
    };
    let decode = |part: &str, what: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| format!("the ID token's {what} is not base64url"));
    let header = strict_object(&decode(header, "header")?).map_err(|why| format!("the ID token's header is {why}"))?;
    let claims = strict_object(&decode(payload, "payload")?).map_err(|why| format!("the ID token's claims are {why}"))?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) if ALLOWED_ALGS.contains(&alg.as_str()) => alg.clone(),
        Some(Value::String(alg)) => return Err(format!("the ID token is signed with {:?}, which is not accepted", printable(alg, 20))),
        _ => return Err("the ID token's header has no `alg`".into()),
    };
    if provider_algs.is_some_and(|algs| !algs.contains(&alg)) {
        return Err(format!("the ID token is signed with {alg}, which the provider's discovery document does not list"));
    }
    // RFC 7515 §4.1.11: an extension this server does not understand must not be ignored.
    if header.contains_key("crit") {
        return Err("the ID token's header has `crit` extensions, which are not supported".into());
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err("the ID token's `kid` is not a string".into()),
    };
    let signing_input = &token[..token.len() - signature.len() - 1];
    Ok(Parsed { alg, kid, claims, signing_input, signature })
}

/// What the claims must say.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The `nonce` sent in this login's authorization request.
    pub nonce: &'a str,
    /// Unix seconds.
    pub now: u64,
}

/// The claim checks, after the signature verified.
pub fn check_claims(claims: &Map<String, Value>, expected: &Expected) -> Result<(), String> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(expected.issuer) {
        return Err("the ID token's `iss` is not the provider's issuer".into());
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().map(|a| a.as_str().ok_or("the ID token's `aud` is not a list of texts")).collect::<Result<_, _>>()?,
        _ => return Err("the ID token has no `aud`".into()),
    };
    if !audiences.contains(&expected.client_id) {
        return Err("the ID token's `aud` does not include this server's client_id".into());
    }
    // Core §3.1.3.7 items 4-5: with several audiences, `azp` says who the token was issued to.
    match (claims.get("azp"), audiences.len()) {
        (Some(Value::String(azp)), _) if azp == expected.client_id => {}
        (Some(_), _) => return Err("the ID token's `azp` is not this server's client_id".into()),
        (None, 1) => {}
        (None, _) => return Err("the ID token has several audiences and no `azp`".into()),
    }
    let time = |name: &str| -> Result<Option<u64>, String> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64)).map(Some).ok_or(()),
            Some(_) => Err(()),
        }
        .map_err(|()| format!("the ID token's `{name}` is not a time"))
    };
    match time("exp")? {
        Some(exp) if expected.now < exp.saturating_add(SKEW) => {}
        Some(_) => return Err("the ID token has expired".into()),
        None => return Err("the ID token has no `exp`".into()),
    }
    match time("iat")? {
        Some(iat) if iat > expected.now.saturating_add(SKEW) => return Err("the ID token was issued in the future (`iat`)".into()),
        Some(iat) if iat.saturating_add(MAX_AGE + SKEW) < expected.now => return Err("the ID token was issued before this login began (`iat`)".into()),
        Some(_) => {}
        None => return Err("the ID token has no `iat`".into()),
    }
    if let Some(nbf) = time("nbf")?
        && nbf > expected.now.saturating_add(SKEW)
    {
        return Err("the ID token is not valid yet (`nbf`)".into());
    }
    match text("nonce") {
        Some(nonce) if constant_time_eq(nonce.as_bytes(), expected.nonce.as_bytes()) => {}
        Some(_) => return Err("the ID token's `nonce` is not this login's".into()),
        None => return Err("the ID token has no `nonce`".into()),
    }
    match text("sub") {
        Some(sub) if !sub.is_empty() => Ok(()),
        _ => Err("the ID token has no `sub`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn expected() -> Expected<'static> {
        Expected { issuer: "https://idp.example.com", client_id: "portcullis", nonce: "n-0S6_WzA2Mj", now: NOW }
    }

    fn claims(changes: Value) -> Map<String, Value> {
        let mut claims = json!({
            "iss": "https://idp.example.com", "sub": "248289761001", "aud": "portcullis",
            "exp": NOW + 300, "iat": NOW - 5, "nonce": "n-0S6_WzA2Mj", "email": "jane@example.com",
        });
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims.as_object().unwrap().clone()
    }

    fn check(changes: Value) -> Result<(), String> {
        check_claims(&claims(changes), &expected())
    }

    fn token(header: Value, payload: Value) -> String {
        format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload.to_string()))
    }

    #[test]
    fn good_claims() {
        assert_eq!(check(json!({})), Ok(()));
        assert_eq!(check(json!({"aud": ["portcullis", "other"], "azp": "portcullis"})), Ok(()));
        assert_eq!(check(json!({"aud": ["portcullis"]})), Ok(()));
        assert_eq!(check(json!({"exp": NOW - 30, "iat": NOW + 30, "nbf": NOW + 30})), Ok(()), "within the skew");
        assert_eq!(check(json!({"exp": (NOW + 300) as f64 + 0.5})), Ok(()));
    }

    #[test]
    fn wrong_issuer_audience_and_azp() {
        assert!(check(json!({"iss": "https://evil.example.com"})).unwrap_err().contains("`iss`"));
        assert!(check(json!({"iss": "https://idp.example.com/"})).unwrap_err().contains("`iss`"));
        assert!(check(json!({"iss": null})).unwrap_err().contains("`iss`"));
        assert!(check(json!({"aud": "someone-else"})).unwrap_err().contains("`aud` does not include"));
        assert!(check(json!({"aud": ["a", "b"]})).unwrap_err().contains("`aud` does not include"));
        assert!(check(json!({"aud": null})).unwrap_err().contains("no `aud`"));
        assert!(check(json!({"aud": ["portcullis", 1]})).unwrap_err().contains("not a list of texts"));
        assert!(check(json!({"aud": ["portcullis", "other"]})).unwrap_err().contains("no `azp`"));
        assert!(check(json!({"aud": ["portcullis", "other"], "azp": "other"})).unwrap_err().contains("`azp`"));
        assert!(check(json!({"azp": "other"})).unwrap_err().contains("`azp`"));
    }

    #[test]
    fn wrong_times() {
        assert!(check(json!({"exp": NOW - SKEW})).unwrap_err().contains("expired"));
        assert!(check(json!({"exp": null})).unwrap_err().contains("no `exp`"));
        assert!(check(json!({"exp": "tomorrow"})).unwrap_err().contains("`exp` is not a time"));
        assert!(check(json!({"exp": -1})).unwrap_err().contains("`exp` is not a time"));
        assert!(check(json!({"iat": NOW + SKEW + 1})).unwrap_err().contains("future"));
        assert!(check(json!({"iat": NOW - MAX_AGE - SKEW - 1})).unwrap_err().contains("before this login"));
        assert!(check(json!({"iat": null})).unwrap_err().contains("no `iat`"));
        assert!(check(json!({"nbf": NOW + SKEW + 1})).unwrap_err().contains("not valid yet"));
    }

    #[test]
    fn wrong_nonce_or_subject() {
        assert!(check(json!({"nonce": "n-0S6_WzA2Mk"})).unwrap_err().contains("`nonce` is not this login's"));
        assert!(check(json!({"nonce": ""})).unwrap_err().contains("`nonce` is not this login's"));
        assert!(check(json!({"nonce": null})).unwrap_err().contains("no `nonce`"));
        assert!(check(json!({"sub": ""})).unwrap_err().contains("no `sub`"));
        assert!(check(json!({"sub": 42})).unwrap_err().contains("no `sub`"));
    }

    #[test]
    fn headers() {
        let payload = json!({"sub": "x"});
        let good = token(json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}), payload.clone());
        let parsed = parse(&good, None).unwrap();
        assert_eq!((parsed.alg.as_str(), parsed.kid.as_deref(), parsed.signature), ("RS256", Some("k1"), "c2ln"));
        assert_eq!(parsed.signing_input.matches('.').count(), 1);
        assert_eq!(parsed.claims["sub"], "x");
        for alg in ["none", "None", "HS256", "HS512", "RSA-OAEP", ""] {
            let error = parse(&token(json!({"alg": alg}), payload.clone()), None).err().unwrap();
            assert!(error.contains("not accepted"), "{alg}: {error}");
        }
        assert!(parse(&token(json!({"typ": "JWT"}), payload.clone()), None).err().unwrap().contains("no `alg`"));
        let es = ["ES256".to_owned()];
        assert!(parse(&token(json!({"alg": "RS256"}), payload.clone()), Some(&es)).err().unwrap().contains("does not list"));
        assert!(parse(&token(json!({"alg": "ES256"}), payload.clone()), Some(&es)).is_ok());
        assert!(parse(&token(json!({"alg": "RS256", "crit": ["exp"]}), payload.clone()), None).err().unwrap().contains("`crit`"));
        assert!(parse(&token(json!({"alg": "RS256", "kid": 7}), payload.clone()), None).err().unwrap().contains("`kid`"));
    }

    #[test]
    fn malformed_tokens() {
        let good = token(json!({"alg": "RS256"}), json!({"sub": "x"}));
        assert!(parse("a.b", None).err().unwrap().contains("three"));
        assert!(parse(&format!("{good}.x"), None).err().unwrap().contains("three"));
        assert!(parse("!!.e30.c2ln", None).err().unwrap().contains("header is not base64url"));
        let dup = format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#), URL_SAFE_NO_PAD.encode(r#"{"sub":"a","sub":"b"}"#));
        assert!(parse(&dup, None).err().unwrap().contains("duplicate key `sub`"));
        let dup_alg = format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","alg":"none"}"#));
        assert!(parse(&dup_alg, None).err().unwrap().contains("duplicate"));
    }
}
