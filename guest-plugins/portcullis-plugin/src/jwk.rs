//! Choosing the JSON Web Key that verifies a token (RFC 7517): the rules the
//! built-ins share (the OIDC verifier, the authorization server's upstream
//! ID-token check), written once. The gateway's `crypto` import enforces the
//! same fit again, so a component cannot be tricked into checking a
//! signature with the wrong kind of key.

use serde_json::Value;

/// Whether `key` may verify `alg`: its type and curve fit, and its `use`,
/// `key_ops` and `alg` (when present) allow it. `oct` keys never qualify here.
pub fn usable(key: &Value, alg: &str) -> bool {
    let field = |name: &str| key.get(name).and_then(Value::as_str);
    let type_fits = match (field("kty"), alg) {
        (Some("RSA"), "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512") => true,
        (Some("EC"), "ES256") => field("crv") == Some("P-256"),
        (Some("EC"), "ES384") => field("crv") == Some("P-384"),
        (Some("OKP"), "EdDSA") => field("crv") == Some("Ed25519"),
        _ => false,
    };
    let use_fits = field("use").is_none_or(|u| u == "sig");
    let ops_fit = match key.get("key_ops") {
        None => true,
        Some(Value::Array(ops)) => ops.iter().any(|op| op == "verify"),
        Some(_) => false,
    };
    let alg_fits = field("alg").is_none_or(|a| a == alg);
    type_fits && use_fits && ops_fit && alg_fits
}

/// The key for `kid`; without a `kid`, the only usable key (several is ambiguous).
pub fn find(keys: &[Value], alg: &str, kid: Option<&str>) -> Option<String> {
    let mut usable_keys = keys.iter().filter(|k| usable(k, alg));
    let found = match kid {
        Some(kid) => usable_keys.find(|k| k.get("kid").and_then(Value::as_str) == Some(kid)),
        None => {
            let first = usable_keys.next();
            if usable_keys.next().is_some() { None } else { first }
        }
    };
    found.map(Value::to_string)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_key_fits_its_algorithm_use_and_operations() {
        let rsa = json!({"kty": "RSA", "kid": "r1", "n": "x", "e": "AQAB"});
        assert!(super::usable(&rsa, "RS256"));
        assert!(!super::usable(&rsa, "ES256"), "an RSA key for ES256");
        assert!(!super::usable(&json!({"kty": "oct", "k": "x"}), "HS256"), "symmetric keys never");
        assert!(!super::usable(&json!({"kty": "EC", "crv": "P-384"}), "ES256"), "the curve must fit");
        assert!(!super::usable(&json!({"kty": "RSA", "use": "enc"}), "RS256"));
        assert!(!super::usable(&json!({"kty": "RSA", "key_ops": ["encrypt"]}), "RS256"));
        assert!(!super::usable(&json!({"kty": "RSA", "alg": "RS512"}), "RS256"));
        let two = [rsa.clone(), json!({"kty": "RSA", "kid": "r2"})];
        assert!(super::find(&two, "RS256", Some("r2")).unwrap().contains("\"r2\""));
        assert_eq!(super::find(&two, "RS256", None), None, "without kid, two usable keys are ambiguous");
        assert!(super::find(&two[..1], "RS256", None).is_some(), "without kid, the only usable key");
    }
}
