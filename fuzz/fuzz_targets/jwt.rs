//! `builtin:oidc-verifier`'s token handling, compiled natively from its own
//! source files: strict parsing, the token type, the claim checks and the
//! claim headers, on a fixed configuration. The signature is checked by the
//! host (`crypto` import), so it is not part of this target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

#[allow(dead_code)]
#[path = "../../guest-plugins/oidc-verifier/src/claims.rs"]
mod claims;
#[allow(dead_code)]
#[path = "../../guest-plugins/oidc-verifier/src/config.rs"]
mod config;
#[allow(dead_code)]
#[path = "../../guest-plugins/oidc-verifier/src/jwt.rs"]
mod jwt;
#[allow(dead_code)]
#[path = "../../guest-plugins/oidc-verifier/src/strict_json.rs"]
mod strict_json;

static CONFIG: LazyLock<config::Config> = LazyLock::new(|| {
    let file: config::File = serde_json::from_str(
        r#"{"issuer":"https://issuer.example","jwks_uri":"https://issuer.example/jwks","required_scopes":["mcp:read"],"required_claims":["sub"],"claims_to_headers":{"email":"x-email","groups":"x-groups"}}"#,
    )
    .expect("the fuzzing configuration is valid");
    config::Config::new(file, "https://mcp.example/mcp").expect("the fuzzing configuration is valid")
});

fuzz_target!(|token: &str| {
    let Ok(parsed) = jwt::parse(token) else { return };
    let provider = &CONFIG.providers[0];
    let _ = claims::check_token_type(provider, &parsed.header, &parsed.claims);
    let _ = claims::check(&CONFIG, provider, &parsed.claims, 1_700_000_000);
    for (claim, _) in &CONFIG.claims_to_headers {
        let _ = parsed.claims.get(claim).and_then(claims::header_value);
    }
});
