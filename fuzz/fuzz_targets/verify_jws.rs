//! The `crypto` import's `verify-jws` (`runtime/capabilities/crypto.rs`): any
//! algorithm name, JWK text, signing input and signature get an answer, never
//! a panic, and only a known signature algorithm can ever say "valid".
//!
//! Input: the four arguments, separated by newlines, so the seeds are real
//! (algorithm, JWK, signing input, signature) quadruples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::runtime::capabilities::crypto::verify_jws;

const SIGNATURE_ALGORITHMS: [&str; 12] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256", "HS384", "HS512"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(4, '\n');
    let (Some(alg), Some(jwk), Some(input), Some(signature)) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return;
    };
    if verify_jws(alg, jwk, input, signature) == Ok(true) {
        assert!(SIGNATURE_ALGORITHMS.contains(&alg), "{alg:?} verified a signature");
    }
});
