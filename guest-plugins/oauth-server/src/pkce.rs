//! PKCE (RFC 7636), S256 only: `plain` would hand the verifier to anyone who
//! sees the authorization request, which PKCE is there to prevent.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Why a PKCE parameter of the authorization request is refused.
pub fn check_challenge(challenge: Option<&str>, method: Option<&str>) -> Result<String, &'static str> {
    match method {
        Some("S256") => {}
        Some("plain") => return Err("code_challenge_method `plain` is not supported: use S256"),
        Some(_) => return Err("code_challenge_method must be S256"),
        // RFC 7636 §4.3 defaults a missing method to `plain`, which is refused.
        None => return Err("code_challenge_method is required and must be S256"),
    }
    let challenge = challenge.ok_or("code_challenge is required (PKCE S256)")?;
    // BASE64URL(SHA-256(..)) without padding is exactly 43 characters.
    if challenge.len() != 43 || !challenge.bytes().all(is_base64url) {
        return Err("code_challenge must be the 43-character base64url SHA-256 of the verifier");
    }
    Ok(challenge.to_owned())
}

/// The S256 challenge of `verifier`: `BASE64URL(SHA256(verifier))`, RFC 7636 §4.2
/// (for a client's verifier here, and for the server's own toward the upstream provider).
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is a well-formed RFC 7636 verifier whose S256
/// challenge is `challenge`, compared in constant time.
pub fn verify(verifier: &str, expected: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len()) && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = challenge(verifier);
    // Compute and compare even for a malformed verifier: the time says nothing about which check failed.
    let same = portcullis_plugin::constant_time_eq(computed.as_bytes(), expected.as_bytes());
    well_formed & same
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_appendix_b() {
        assert_eq!(super::challenge(VERIFIER), CHALLENGE);
        assert!(verify(VERIFIER, CHALLENGE));
        assert!(!verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK", CHALLENGE));
        assert!(!verify(CHALLENGE, CHALLENGE), "plain: the challenge as its own verifier");
        assert!(!verify("", CHALLENGE));
        assert!(!verify("short", &URL_SAFE_NO_PAD.encode(Sha256::digest(b"short"))), "a verifier under 43 characters");
    }

    #[test]
    fn only_s256_challenges() {
        assert_eq!(check_challenge(Some(CHALLENGE), Some("S256")).unwrap(), CHALLENGE);
        assert!(check_challenge(Some(CHALLENGE), Some("plain")).is_err());
        assert!(check_challenge(Some(CHALLENGE), None).is_err());
        assert!(check_challenge(Some(CHALLENGE), Some("s256")).is_err());
        assert!(check_challenge(None, Some("S256")).is_err());
        assert!(check_challenge(Some(&CHALLENGE[1..]), Some("S256")).is_err());
        assert!(check_challenge(Some(&format!("{}=", &CHALLENGE[1..])), Some("S256")).is_err());
    }
}
