//! `builtin:oidc-verifier`'s token handling, built natively from its crate:
//! strict parsing, the token type and the claim checks (all but the
//! signature, which the host checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|token: &str| {
    oidc_verifier::fuzz_token(token);
});
