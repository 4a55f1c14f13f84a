//! Test keys, made once with `openssl genpkey` (P-256, P-384 and RSA 2048;
//! `openssl ec` wrote the SEC1 form). Their `kid`s were computed outside this
//! code (Python's hashlib over the canonical JWK, x/y/n from `openssl ... -pubout`).

use super::*;

pub(crate) const EC_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgybzfr8okIaX2nTt7\niEeWfXvRK4qdYExVwbkEpvsrpoihRANCAASm1zLvcZ508S+ZQE//0FC/In2O/KEx\nU2Mf/i2q0lGQR7f6OOTxYzW7b5KoU5Qfz4q7EmFZvGVtFnVembts5ZHV\n-----END PRIVATE KEY-----\n";
/// [`EC_PEM`] as SEC1 (`EC PRIVATE KEY`).
pub(crate) const EC_SEC1_PEM: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIMm836/KJCGl9p07e4hHln170SuKnWBMVcG5BKb7K6aIoAoGCCqGSM49\nAwEHoUQDQgAEptcy73GedPEvmUBP/9BQvyJ9jvyhMVNjH/4tqtJRkEe3+jjk8WM1\nu2+SqFOUH8+KuxJhWbxlbRZ1Xpm7bOWR1Q==\n-----END EC PRIVATE KEY-----\n";
pub(crate) const EC_KID: &str = "ALvT9nJYZN1kBkMMMJCoGUdXlnCYTVCskPgslA4FWDk";
pub(crate) const RSA_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDYVRh0Quy8/TWa\nhDCeM8WoIZrKAJroGIswSsZo2kA2ll3sDkr4WM+YL3S831nVbceZajj73aUff1hD\nHFN+5BK1qhCvXxAryXsQ3BvTPACtN/BDRcw7hlUfxRtbjXrDDuUgLUwJp8anO61c\nBBCjnt6Vm4NaQgMfFbA6YE1beFw9ScPMt+GCAZNO2/I5uh5Y3bypRAw7V134n8Nw\nAZC6jrDmm8C5vAU+5uV5uQ9K8KQEBkIGjHq/h7DOUpBgjHA9xwfc5GYP7tga/gKX\nUgAX2HPRMb1tp2Gekt8AOEjbst2bC+MH0oxKybMj+dYN9sNMGLPcy9Lc+8bPtN9K\nlTVhvwNlAgMBAAECggEAKefwDQNy1xhIxDYTse2u/gcGdFeCKnAotFHj1edjVX+y\n0XmiUbHogt88gqLUhNjXd7NBNx8EL9IMD7ICxZuaOTkossQcPpMwxP8SX8yph+SE\nZQ+2BJjc0ALvbgB91Z/CyEUmC9/Fhlsz1ZWPAJcToJEHtJoBf0nFAcXqbkvmOFPA\nznlj4un2mYHYYxSjY5lkRratHBSdL3r9ElzfO3friwDPw6lvATkxBIsZsxnww2CM\nAxVPT9kD5yoEb7VvYEYNvSJa7G2DACqMsuSun1nUYXXnzmDqgbGCY8KQTTUjsJln\n3VwR6adOVStsEPuZzCXXXh5gOtj2GvbX6/Sw55dpWQKBgQDsgIgifEtGi12qx37E\nsuuCJBM+FZDKvAPoY2mhUNSBsJii6ZucdJFMr3qVoS8NsoVvt5oYYvyymdrzbbc0\nBcHD1xOKxlmLe1uvTbebdXwDPbo5sws25QosAfoHb/47qed+Y+ArLQwQ/kl2OzVd\nL9YGiHAWyleumw8IA334HH9dSQKBgQDqKt/9xQ0LYlq8Pld4jnF47xaVjzBZttC/\nWbnQyRmHilXMOIbqNNEc4Zzofv+cy4aM9U/Uv9vyCWqhO+8KKj/QifSRU5Ybe50B\nJsfPOIfuWC+dp8qlANO8kjXDzBh4wAX1tRAsOAQzf0g1BmEtAhQTTMBPjicnLLV4\nm2IikkSBPQKBgQC4jEOuxVboIXBiB3JAg22LDCOH2sQ1rylNeeW/X5ez693vomMv\nXzbSpEv/3tsc0SWW26p/RR7zL2PPeNnw2l0tOPOi4syVLxmIXhjcUn0G+nAK/k/N\n8kRRuukkTJwSaq6dzcnrZyd3SzZ/8AvgP6e/SVBOOG7bbVv5YOA3b+VjIQKBgCdk\nmRPm31/n5t2+Gxbz15EBn6n/UaH2CD34iTLfccUEd5SIeeHSis8yASR3oOausm7q\nIcjnkcew39hJ7dem7d9WJeeAyULMU8hKzthEaVGmUjRSctu5POV/Lz5GCmPd4eLI\n1/SoY8SKCAqrjRN2QwxQIBYCEwIbGlg0w5iPRKj9AoGAckjOdoiRL9c8KUk7hOex\nOUU2eYzuElSDhrQy4devSdS9xLOUscRoJevMNuXCIe6AqQLR9uDqWUJIuWfALjVC\nDiAZ2pOw5biCmTa7DsP5jzWvRSY89HSBJPSYyxPC7CI0uDhg4OrjFoDLLhTANVZ9\ngzkJVoY9O3UWJa0JX6YzNnc=\n-----END PRIVATE KEY-----\n";
pub(crate) const RSA_KID: &str = "ysmyT5077A14omrgpopodTlCCXW0mVZtDvodILzn-58";
const P384_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCbLQ+hyqw1NH/6vmFs\nDRKu+EekNXb3YGnHqCnWgDli/atLr5+Gotip6BQUuEZbfm+hZANiAARv/vkNXROt\nhD6C83MVborpdmGKvmnSW7PybEUFN97Fm+yuVhjteq5zgMDc8uc+3G6atJABqgY3\nnrtV1H/yPA1QT4p2KVE2COwaxvbuqzPa0RIbVgaAl+c1xUiJjdxIZv4=\n-----END PRIVATE KEY-----\n";

#[test]
fn the_thumbprint_is_rfc_7638_s() {
    // RFC 7638 §3.1: the canonical JWK of the example RSA key, and its thumbprint.
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    assert_eq!(thumbprint(&format!(r#"{{"e":"AQAB","kty":"RSA","n":"{n}"}}"#)), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

#[test]
fn a_p256_key_s_kid_and_jwk() {
    let key = SigningKey::from_pem(EC_PEM.as_bytes()).unwrap();
    assert_eq!(key.alg(), "ES256");
    assert_eq!(key.kid(), EC_KID);
    let jwk: serde_json::Value = serde_json::from_str(key.jwk()).unwrap();
    assert_eq!(
        jwk,
        serde_json::json!({"kty": "EC", "crv": "P-256", "x": "ptcy73GedPEvmUBP_9BQvyJ9jvyhMVNjH_4tqtJRkEc",
            "y": "t_o45PFjNbtvkqhTlB_PirsSYVm8ZW0WdV6Zu2zlkdU", "kid": EC_KID, "alg": "ES256", "use": "sig"})
    );
    // The same key written as SEC1 is the same key.
    assert_eq!(SigningKey::from_pem(EC_SEC1_PEM.as_bytes()).unwrap().kid(), EC_KID);
}

#[test]
fn an_rsa_key_s_kid_and_jwk() {
    let key = SigningKey::from_pem(RSA_PEM.as_bytes()).unwrap();
    assert_eq!(key.alg(), "RS256");
    assert_eq!(key.kid(), RSA_KID);
    let jwk: serde_json::Value = serde_json::from_str(key.jwk()).unwrap();
    assert_eq!((jwk["kty"].as_str(), jwk["e"].as_str(), jwk["alg"].as_str(), jwk["use"].as_str()), (Some("RSA"), Some("AQAB"), Some("RS256"), Some("sig")));
    assert_eq!(jwk["n"].as_str().map(str::len), Some(342), "2048 bits, no leading zero");
}

#[test]
fn other_keys_are_refused_in_words() {
    let p384 = SigningKey::from_pem(P384_PEM.as_bytes()).unwrap_err();
    assert!(p384.0.contains("neither a P-256"), "{p384}");
    let none = SigningKey::from_pem(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap_err();
    assert!(none.0.contains("no PEM private key"), "{none}");
    // A PKCS#8 envelope around nonsense.
    let bad = SigningKey::from_pem(b"-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n").unwrap_err();
    assert!(bad.0.contains("neither"), "{bad}");
}

#[test]
fn debug_shows_the_kid_only() {
    let key = SigningKey::from_pem(EC_PEM.as_bytes()).unwrap();
    assert_eq!(format!("{key:?}"), format!(r#"SigningKey {{ alg: "ES256", kid: "{EC_KID}", .. }}"#));
}

#[test]
fn generated_keys_differ() {
    let (a, b) = (SigningKey::generate().unwrap(), SigningKey::generate().unwrap());
    assert_eq!(a.alg(), "ES256");
    assert_ne!(a.kid(), b.kid());
}
