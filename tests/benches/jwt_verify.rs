//! Bearer-JWT verification: `builtin:oidc-verifier` against native
//! `jsonwebtoken` (RustCrypto) on the same tokens, the signature check alone as
//! the host's `crypto` import runs it (ring), and the verified-token cache.
//!
//! `cargo bench -p portcullis-tests --bench jwt_verify`; figures go in docs/benchmarks.md.
//! The component runs with `token_cache = false` for the verification figures
//! (every call verifies the signature), and with the cache on for the cached path.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use portcullis::policy::file::Isolation;
use portcullis::runtime::Runtime;
use portcullis::runtime::builtins;
use portcullis::runtime::verdict::Verdict;
use portcullis_tests::plugin::{authenticator, mcp_request};
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::json;

const ISSUER: &str = "https://issuer.bench";
const AUD: &str = "http://127.0.0.1:8080/mcp";

struct Signer {
    alg: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: serde_json::Value,
}

fn rsa_signer() -> Signer {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let n = B64.encode(key.n().to_bytes_be());
    let e = B64.encode(key.e().to_bytes_be());
    Signer {
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        decoding: DecodingKey::from_rsa_components(&n, &e).unwrap(),
        jwk: json!({ "kty": "RSA", "kid": "rs", "n": n, "e": e, "alg": "RS256", "use": "sig" }),
    }
}

fn ec_signer() -> Signer {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    let (x, y) = (B64.encode(&raw[1..33]), B64.encode(&raw[33..65]));
    Signer {
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
        decoding: DecodingKey::from_ec_components(&x, &y).unwrap(),
        jwk: json!({ "kty": "EC", "crv": "P-256", "kid": "ec", "x": x, "y": y, "alg": "ES256", "use": "sig" }),
    }
}

fn token(signer: &Signer) -> String {
    let mut header = Header::new(signer.alg);
    header.kid = signer.jwk["kid"].as_str().map(str::to_owned);
    // An access token as RFC 9068 types it (the verifier requires it by default).
    header.typ = Some("at+jwt".to_owned());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({ "iss": ISSUER, "sub": "alice", "aud": AUD, "exp": now + 3600, "iat": now, "scope": "mcp:read" });
    jsonwebtoken::encode(&header, &claims, &signer.encoding).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let runtime = Runtime::new(Some(portcullis_tests::gateway::shared_cache_dir())).unwrap();
    let builtin = builtins::lookup("oidc-verifier").unwrap();
    let component = runtime.component(builtin.sha256(), builtin.wasm).unwrap();
    let signers = [rsa_signer(), ec_signer()];
    let jwks = json!({ "keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>() });
    let plugin = |token_cache: bool| {
        let config = json!({ "issuer": ISSUER, "jwks": jwks, "algorithms": ["RS256", "ES256"], "token_cache": token_cache }).to_string();
        rt.block_on(authenticator(&runtime, component.clone(), "builtin:oidc-verifier", &config, AUD, Isolation::Pooled))
    };
    let uncached = plugin(false);
    let cached = plugin(true);

    for signer in &signers {
        let token = token(signer);
        let name = format!("{:?}", signer.alg);
        let mut validation = Validation::new(signer.alg);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUD]);
        c.bench_function(&format!("jwt/{name}/native-jsonwebtoken"), |b| {
            b.iter(|| jsonwebtoken::decode::<serde_json::Value>(&token, &signer.decoding, &validation).unwrap())
        });
        // The signature check alone, natively, as the `crypto` import runs it (ring).
        let jwk = signer.jwk.to_string();
        let (input, signature) = token.rsplit_once('.').unwrap();
        c.bench_function(&format!("jwt/{name}/native-signature"), |b| {
            b.iter(|| assert_eq!(portcullis::runtime::capabilities::crypto::verify_jws(&name, &jwk, input, signature), Ok(true)))
        });
        let view = mcp_request(&[("authorization", &format!("Bearer {token}"))]);
        c.bench_function(&format!("jwt/{name}/component"), |b| {
            b.to_async(&rt).iter(|| async { assert!(matches!(uncached.authenticate(&view).await.unwrap(), Verdict::Allow { .. })) })
        });
        c.bench_function(&format!("jwt/{name}/component-cached"), |b| {
            b.to_async(&rt).iter(|| async { assert!(matches!(cached.authenticate(&view).await.unwrap(), Verdict::Allow { .. })) })
        });
    }
}

/// The embedded authorization server's own tokens (issue 24): signed by the
/// host's `KeyRing` (ES256, `at+jwt`, with `sid` and `client_id`), checked by
/// a verifier configured as `embedded_server = true` makes it (the issuer,
/// the audience and the key ring's JWKS inline). They must stay on the
/// cached path (≤ 5 µs). Also the cost of one signature, paid per token issued.
fn embedded_server(c: &mut Criterion) {
    use portcullis::signing::{KeyRing, SigningKey};
    use std::sync::Arc;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let runtime = Runtime::new(Some(portcullis_tests::gateway::shared_cache_dir())).unwrap();
    let builtin = builtins::lookup("oidc-verifier").unwrap();
    let component = runtime.component(builtin.sha256(), builtin.wasm).unwrap();
    let keys = KeyRing::new(vec![Arc::new(SigningKey::generate().unwrap())]).unwrap();
    let issuer = "http://127.0.0.1:8080";
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims =
        json!({ "iss": issuer, "sub": "alice", "aud": AUD, "client_id": "cli", "scope": "mcp", "exp": now + 900, "iat": now, "jti": "j1", "sid": "s1" })
            .to_string();
    c.bench_function("jwt/embedded-server/sign-ES256", |b| b.iter(|| keys.sign(&claims, "at+jwt").unwrap()));
    let token = keys.sign(&claims, "at+jwt").unwrap();
    let jwks: serde_json::Value = serde_json::from_str(&keys.jwks_json()).unwrap();
    let view = mcp_request(&[("authorization", &format!("Bearer {token}"))]);
    for (name, token_cache) in [("component", false), ("component-cached", true)] {
        let config = json!({ "issuer": issuer, "audiences": [AUD], "jwks": jwks, "algorithms": ["ES256"], "token_cache": token_cache }).to_string();
        let plugin = rt.block_on(authenticator(&runtime, component.clone(), "builtin:oidc-verifier", &config, AUD, Isolation::Pooled));
        c.bench_function(&format!("jwt/embedded-server/{name}"), |b| {
            b.to_async(&rt).iter(|| async { assert!(matches!(plugin.authenticate(&view).await.unwrap(), Verdict::Allow { .. })) })
        });
    }
}

criterion_group!(benches, bench, embedded_server);
criterion_main!(benches);
