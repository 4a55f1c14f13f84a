//! `builtin:oidc-verifier` end to end: tokens from a real OpenID Provider, and
//! tokens the tests mint for each attack class RFC 8725 warns about.

use crate::{client, json, seen};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey};
use portcullis_tests::gateway::{TestGateway, workload};
use portcullis_tests::node::{EverythingServer, OpenIdProvider, mcp_client};
use portcullis_tests::upstream::TestUpstream;
use serde_json::{Value, json};

pub(crate) const PUBLIC_URL: &str = "http://127.0.0.1:8080/mcp";
pub(crate) const ISSUER: &str = "https://issuer.test";
const HS_SECRET: &str = "hs-secret-hs-secret-hs-secret-32b";

/// A public key in the forms a confused verifier could use as an HMAC key.
type PublicForms = Vec<(&'static str, Vec<u8>)>;

/// A P-256 signing key and its public JWK.
pub(crate) struct EcKey {
    encoding: EncodingKey,
    pub(crate) jwk: Value,
    /// The public key in the forms a confused verifier could use as an HMAC key.
    public: PublicForms,
}

pub(crate) fn ec_key(kid: &str, extra: Value) -> EcKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    let mut jwk = json!({ "kty": "EC", "crv": "P-256", "kid": kid, "x": B64.encode(&raw[1..33]), "y": B64.encode(&raw[33..65]) });
    for (k, v) in extra.as_object().unwrap() {
        jwk[k] = v.clone();
    }
    let pem = pair.public_key_pem();
    let public = vec![
        ("SPKI DER", rcgen::PublicKeyData::subject_public_key_info(&pair)),
        ("SPKI PEM", pem.clone().into_bytes()),
        ("SPKI PEM without its last newline", pem.trim_end().as_bytes().to_vec()),
        ("uncompressed point", raw.to_vec()),
        ("x and y", raw[1..].to_vec()),
        ("x", raw[1..33].to_vec()),
        ("JWK text", jwk.to_string().into_bytes()),
    ];
    EcKey { encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(), jwk, public }
}

/// An RSA public key (the HMAC confusion attack needs no private key): its
/// JWK, and its forms a confused verifier could use as an HMAC key.
fn rsa_public_key(kid: &str) -> (Value, PublicForms) {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPublicKey::from(rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap());
    let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
    let jwk = json!({ "kty": "RSA", "kid": kid, "n": B64.encode(&n), "e": B64.encode(&e) });
    let public = vec![
        ("SPKI DER", key.to_public_key_der().unwrap().into_vec()),
        ("SPKI PEM", key.to_public_key_pem(LineEnding::LF).unwrap().into_bytes()),
        ("PKCS#1 DER", key.to_pkcs1_der().unwrap().into_vec()),
        ("PKCS#1 PEM", key.to_pkcs1_pem(LineEnding::LF).unwrap().into_bytes()),
        ("modulus", n),
        ("JWK text", jwk.to_string().into_bytes()),
    ];
    (jwk, public)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

pub(crate) fn good_claims() -> Value {
    json!({ "iss": ISSUER, "sub": "alice", "aud": PUBLIC_URL, "exp": now() + 600, "iat": now(), "scope": "mcp:read mcp:write", "groups": ["dev", "ops"] })
}

/// Encodes header and claims as given (however malformed) and signs them.
fn mint(header: &Value, claims: &[u8], key: &EncodingKey, alg: Algorithm) -> String {
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims));
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
    let token = format!("{input}.{signature}");
    // A bearer token is a credential: it must never be logged.
    portcullis_tests::leaks::register(&token);
    token
}

pub(crate) fn es256(kid: &str, claims: &Value, key: &EcKey) -> String {
    mint(&json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid }), claims.to_string().as_bytes(), &key.encoding, Algorithm::ES256)
}

struct Keys {
    good: EcKey,
    enc: EcKey,
    rs_only: EcKey,
    attacker: EcKey,
}

fn keys() -> Keys {
    Keys {
        good: ec_key("k1", json!({ "use": "sig", "alg": "ES256" })),
        enc: ec_key("enc-key", json!({ "use": "enc" })),
        rs_only: ec_key("rs-only", json!({ "alg": "RS256" })),
        attacker: ec_key("attacker", json!({})),
    }
}

/// Keys in the set with no `use` or `alg` to restrict them, as many providers
/// publish them: the targets of the HMAC confusion attack.
fn unrestricted_keys() -> (EcKey, (Value, PublicForms)) {
    (ec_key("plain-ec", json!({})), rsa_public_key("plain-rsa"))
}

/// The verifier entry; its key set is read from `jwks.json` beside the policy.
fn verifier(extra: &str) -> String {
    format!(
        "  [[workloads.inbound]]\n  component = \"builtin:oidc-verifier\"\n  grants = {{ secrets = [\"oidc:hs\"] }}\n  [workloads.inbound.config]\n  issuer = \"{ISSUER}\"\n  jwks_file = \"jwks.json\"\n  algorithms = [\"ES256\", \"HS256\"]\n  hs_secret = \"oidc:hs\"\n  claims_to_headers = {{ sub = \"x-user\", groups = \"x-groups\" }}\n{extra}\n"
    )
}

fn oidc_workload(name: &str, upstream: &str, body: &str) -> String {
    workload(name, upstream, body).replace("public_url = \"http://127.0.0.1:8080\"", &format!("public_url = \"{PUBLIC_URL}\""))
}

async fn gateway(upstream: &TestUpstream, keys: &Keys) -> TestGateway {
    gateway_trusting(upstream, keys, &[]).await
}

/// The gateway of [`gateway`], with `more` keys in its key set.
async fn gateway_trusting(upstream: &TestUpstream, keys: &Keys, more: &[&Value]) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let store = portcullis::secrets::SecretStore::new(
        &dir.path().join("home"),
        Some(portcullis::secrets::SecretString::from(portcullis_tests::gateway::PASSWORD.to_owned())),
    );
    portcullis_tests::leaks::register(HS_SECRET);
    store.set("oidc:hs", portcullis::secrets::SecretString::from(HS_SECRET.to_owned())).unwrap();
    let mut jwks = json!({ "keys": [keys.good.jwk, keys.enc.jwk, keys.rs_only.jwk] });
    jwks["keys"].as_array_mut().unwrap().extend(more.iter().map(|k| (*k).clone()));
    std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
    let policy = format!(
        "version = 1\n{}{}",
        oidc_workload("api", &upstream.url(), &verifier("")),
        oidc_workload("scoped", &upstream.url(), &verifier("  required_scopes = [\"mcp:admin\"]\n")),
    );
    TestGateway::start_in(dir, &policy).await.unwrap()
}

async fn call(gw: &TestGateway, workload: &str, token: &str) -> reqwest::Response {
    client().get(format!("{}/mcp", gw.url(workload).await)).header("authorization", format!("Bearer {token}")).send().await.unwrap()
}

/// Asserts a 401 `invalid_token` challenge pointing at the metadata; returns the challenge.
async fn assert_invalid(gw: &TestGateway, token: &str, case: &str) -> String {
    let r = call(gw, "api", token).await;
    assert_eq!(r.status(), 401, "{case}");
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\""), "{case}: {challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{case}: {challenge}");
    challenge
}

#[tokio::test]
async fn valid_tokens_pass_and_attacks_fail() {
    let upstream = TestUpstream::start().await;
    let keys = keys();
    let (plain_ec, (plain_rsa, plain_rsa_public)) = unrestricted_keys();
    let gw = gateway_trusting(&upstream, &keys, &[&plain_ec.jwk, &plain_rsa]).await;

    // A good token: allowed, its claims go upstream as headers, the token does not.
    let r = call(&gw, "api", &es256("k1", &good_claims(), &keys.good)).await;
    assert_eq!(r.status(), 200);
    let echo = json(r).await;
    assert!(seen(&echo, "authorization").is_empty(), "no token passthrough");
    assert_eq!(seen(&echo, "x-user"), ["alice"]);
    assert_eq!(seen(&echo, "x-groups"), ["dev,ops"]);
    // A client cannot smuggle claim headers of its own.
    let r = client()
        .get(format!("{}/mcp", gw.url("api").await))
        .header("authorization", format!("Bearer {}", es256("k1", &good_claims(), &keys.good)))
        .header("x-user", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(seen(&json(r).await, "x-user"), ["alice"]);

    // No token: a challenge without an error code.
    let r = client().get(format!("{}/mcp", gw.url("api").await)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer resource_metadata=") && !challenge.contains("error="), "{challenge}");

    let with = |edit: &dyn Fn(&mut Value)| {
        let mut claims = good_claims();
        edit(&mut claims);
        es256("k1", &claims, &keys.good)
    };
    let cases: Vec<(&str, String)> = vec![
        ("expired", with(&|c| c["exp"] = json!(now() - 120))),
        (
            "no exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        ("not yet valid", with(&|c| c["nbf"] = json!(now() + 3600))),
        ("wrong audience", with(&|c| c["aud"] = json!("http://127.0.0.1:9999/other"))),
        ("wrong issuer", with(&|c| c["iss"] = json!("https://evil.test"))),
        ("issuer with a trailing slash", with(&|c| c["iss"] = json!("https://issuer.test/"))),
        ("unknown kid", es256("nope", &good_claims(), &keys.good)),
        ("signed by another key", es256("k1", &good_claims(), &keys.attacker)),
        ("key meant for encryption", es256("enc-key", &good_claims(), &keys.enc)),
        ("key restricted to another algorithm", es256("rs-only", &good_claims(), &keys.rs_only)),
        ("duplicate claims", {
            let claims = format!(r#"{{"iss":"{ISSUER}","sub":"alice","sub":"admin","aud":"{PUBLIC_URL}","exp":{}}}"#, now() + 600);
            mint(&json!({ "alg": "ES256", "typ": "at+jwt", "kid": "k1" }), claims.as_bytes(), &keys.good.encoding, Algorithm::ES256)
        }),
        (
            "unknown crit",
            mint(
                &json!({ "alg": "ES256", "typ": "at+jwt", "kid": "k1", "crit": ["exp"], "exp": 1 }),
                good_claims().to_string().as_bytes(),
                &keys.good.encoding,
                Algorithm::ES256,
            ),
        ),
        // The key comes from the key set, never from the token (RFC 8725 §3.10):
        // with a trusted `kid`, only that rule can refuse the attacker's key.
        (
            "embedded jwk with a trusted kid",
            mint(
                &json!({ "alg": "ES256", "typ": "at+jwt", "kid": "k1", "jwk": keys.attacker.jwk }),
                good_claims().to_string().as_bytes(),
                &keys.attacker.encoding,
                Algorithm::ES256,
            ),
        ),
        (
            "embedded jwk with its own kid",
            mint(
                &json!({ "alg": "ES256", "typ": "at+jwt", "kid": "attacker", "jwk": keys.attacker.jwk }),
                good_claims().to_string().as_bytes(),
                &keys.attacker.encoding,
                Algorithm::ES256,
            ),
        ),
        (
            "jku and x5u",
            mint(
                &json!({ "alg": "ES256", "typ": "at+jwt", "kid": "k1", "jku": "https://evil.test/jwks", "x5u": "https://evil.test/cert" }),
                good_claims().to_string().as_bytes(),
                &keys.attacker.encoding,
                Algorithm::ES256,
            ),
        ),
        ("RS256 not allowed", {
            let input =
                format!("{}.{}", B64.encode(json!({ "alg": "RS256", "typ": "at+jwt", "kid": "k1" }).to_string()), B64.encode(good_claims().to_string()));
            format!("{input}.{}", B64.encode([7u8; 256]))
        }),
        ("ECDSA r = n", ecdsa_out_of_range(&keys, true)),
        ("ECDSA r = s = 0", ecdsa_out_of_range(&keys, false)),
        ("too large", with(&|c| c["pad"] = json!("x".repeat(9000)))),
        ("not a JWT", "abc.def".to_owned()),
    ];
    for alg in ["none", "None", "NONE", "nOnE"] {
        let input = format!("{}.{}", B64.encode(json!({ "alg": alg }).to_string()), B64.encode(good_claims().to_string()));
        assert_invalid(&gw, &format!("{input}."), &format!("alg {alg}")).await;
    }
    // Cases whose refusal must come from one rule, not from an easier failure on the way.
    let reasons = [
        ("unknown kid", "no trusted key matches the token"),
        ("signed by another key", "the signature is not valid"),
        // `jku`/`x5u` are never followed: the trusted key checks the attacker's signature.
        ("jku and x5u", "the signature is not valid"),
        ("embedded jwk with a trusted kid", "the signature is not valid"),
        ("RS256 not allowed", "the algorithm RS256 is not accepted"),
        ("wrong issuer", "the token's issuer is not trusted"),
        ("unknown crit", "the token uses a critical header extension this server does not support"),
    ];
    for (case, token) in &cases {
        let challenge = assert_invalid(&gw, token, case).await;
        if let Some((_, reason)) = reasons.iter().find(|(c, _)| c == case) {
            assert!(challenge.contains(&format!("error_description=\"{reason}\"")), "{case}: {challenge}");
        }
    }
    // HS256 keyed with a trusted public key, in every form a confused verifier
    // could take it as an HMAC secret (RFC 8725 §2.1, §3.1): an HS* token is
    // checked only with the configured `hs_secret`, and a public key never
    // verifies an HMAC.
    let targets = [("plain-ec", &plain_ec.public), ("plain-rsa", &plain_rsa_public), ("k1", &keys.good.public)];
    for (kid, forms) in targets {
        for (form, public) in forms {
            let token = mint(
                &json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid }),
                good_claims().to_string().as_bytes(),
                &EncodingKey::from_secret(public),
                Algorithm::HS256,
            );
            let challenge = assert_invalid(&gw, &token, &format!("HS256 keyed with {kid}'s {form}")).await;
            assert!(challenge.contains("error_description=\"the signature is not valid\""), "{kid}'s {form}: {challenge}");
        }
    }

    // With a good signature, `jku` and `x5u` change nothing: they are ignored, not obeyed.
    let with_jku = mint(
        &json!({ "alg": "ES256", "typ": "at+jwt", "kid": "k1", "jku": "https://evil.test/jwks", "x5u": "https://evil.test/cert" }),
        good_claims().to_string().as_bytes(),
        &keys.good.encoding,
        Algorithm::ES256,
    );
    assert_eq!(call(&gw, "api", &with_jku).await.status(), 200);
    // Tampering with a good token's payload breaks its signature.
    let good = es256("k1", &good_claims(), &keys.good);
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut claims = good_claims();
    claims["sub"] = json!("admin");
    parts[1] = B64.encode(claims.to_string());
    assert_invalid(&gw, &parts.join("."), "tampered payload").await;

    // HMAC works with the configured secret (and only with it).
    let hs = mint(
        &json!({ "alg": "HS256", "typ": "at+jwt" }),
        good_claims().to_string().as_bytes(),
        &EncodingKey::from_secret(HS_SECRET.as_bytes()),
        Algorithm::HS256,
    );
    assert_eq!(call(&gw, "api", &hs).await.status(), 200);

    // A valid token without the required scope: 403 insufficient_scope.
    let r = call(&gw, "scoped", &es256("k1", &good_claims(), &keys.good)).await;
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"mcp:admin\""), "{challenge}");
}

/// An ES256 signature whose `r` is the curve order `n` (or zero): outside the valid range.
fn ecdsa_out_of_range(keys: &Keys, r_is_n: bool) -> String {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3,
        0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    ];
    let _ = &keys.good;
    let mut sig = [0u8; 64];
    if r_is_n {
        sig[..32].copy_from_slice(&N);
        sig[63] = 1;
    }
    let input = format!("{}.{}", B64.encode(json!({ "alg": "ES256", "typ": "at+jwt", "kid": "k1" }).to_string()), B64.encode(good_claims().to_string()));
    format!("{input}.{}", B64.encode(sig))
}

#[tokio::test]
async fn metadata_comes_from_the_policy_not_the_request() {
    let upstream = TestUpstream::start().await;
    let keys = keys();
    let gw = gateway(&upstream, &keys).await;
    let port = gw.addr("api").await.port();
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let r = client()
            .get(format!("{}{path}", gw.url("api").await))
            .header("host", format!("localhost:{port}"))
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let doc = json(r).await;
        assert_eq!(doc["resource"], PUBLIC_URL);
        assert_eq!(doc["authorization_servers"], json!([ISSUER]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
}

fn provider_workload(name: &str, upstream: &str, issuer: &str, public_url: &str) -> String {
    workload(
        name,
        upstream,
        &format!(
            // Discovery and a key fetch on the first request: give them time on a loaded machine.
            "  [[workloads.inbound]]\n  component = \"builtin:oidc-verifier\"\n  config = {{ issuer = \"{issuer}\" }}\n  grants = {{ http = [\"{issuer}\"], http_private = true }}\n  limits = {{ deadline_ms = 3000 }}\n"
        ),
    )
    .replace("public_url = \"http://127.0.0.1:8080\"", &format!("public_url = \"{public_url}\""))
}

#[tokio::test]
async fn tokens_from_a_real_provider_reach_a_real_mcp_server() {
    let server = EverythingServer::start().await;
    let mut op = OpenIdProvider::start().await;
    let public_url = "http://127.0.0.1:8080/mcp";
    let gw = TestGateway::start(&format!("version = 1\n{}", provider_workload("mcp", &server.url(), &op.issuer, public_url))).await.unwrap();
    let url = format!("{}/mcp", gw.url("mcp").await);

    let token = op.token("test-client", public_url, "mcp:read").await;
    let header = format!("Authorization: Bearer {token}");
    let report = mcp_client(&["http", &url, "--header", &header], &[]).await;
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["echo"].as_str().unwrap().contains("hello portcullis"), "{report}");

    // ES256 tokens from the same provider work too.
    let es = op.token("test-client-es256", public_url, "mcp:read").await;
    assert_eq!(call_url(&url, &es).await, 200);

    // A token for another resource is refused.
    let other = op.token("test-client", "http://127.0.0.1:9/other", "mcp:read").await;
    assert_eq!(call_url(&url, &other).await, 401);

    // Key rotation at the provider: a token with the new kid verifies without a restart.
    let new_kid = op.rotate().await;
    let rotated = op.token("test-client", public_url, "mcp:read").await;
    let header: Value = serde_json::from_slice(&B64.decode(rotated.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["kid"], new_kid);
    assert_eq!(call_url(&url, &rotated).await, 200);

    // The provider goes away: tokens signed with the cached keys still verify.
    let unseen = op.token("test-client", public_url, "mcp:write").await;
    op.stop().await;
    assert_eq!(call_url(&url, &unseen).await, 200);
}

/// Sends an MCP `initialize` with `token`; returns the status.
async fn call_url(url: &str, token: &str) -> u16 {
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "test", "version": "1" } }
    });
    client()
        .post(url)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(initialize.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_provider_serving_html_or_500_does_not_break_verification() {
    use portcullis_tests::key_server::{KeyServer, Mode};
    let upstream = TestUpstream::start().await;
    let keys = keys();
    // One provider and one gateway per failure mode: the refetch limit (one per
    // 30 s) would otherwise keep the second mode from ever being asked.
    for mode in [Mode::Html, Mode::ServerError] {
        let server = KeyServer::start(json!({ "keys": [keys.good.jwk] })).await;
        let gw = TestGateway::start(&format!("version = 1\n{}", provider_workload("w", &upstream.url(), &server.issuer, PUBLIC_URL))).await.unwrap();
        let claims = || {
            let mut c = good_claims();
            c["iss"] = json!(server.issuer);
            c["jti"] = json!(now().to_string() + &rand_suffix());
            c
        };
        assert_eq!(call(&gw, "w", &es256("k1", &claims(), &keys.good)).await.status(), 200);
        assert_eq!(server.jwks_requests(), 1, "{mode:?}: the key set was fetched once");
        server.set_mode(mode);
        // An unknown kid makes the verifier refetch; the provider answers with
        // HTML or a 500, the request is refused cleanly...
        assert_eq!(call(&gw, "w", &es256("k-new", &claims(), &keys.attacker)).await.status(), 401, "{mode:?}");
        assert_eq!(server.jwks_requests(), 2, "{mode:?}: the refetch reached the failing provider");
        // ...and the keys it had keep verifying, without asking again.
        assert_eq!(call(&gw, "w", &es256("k1", &claims(), &keys.good)).await.status(), 200, "{mode:?}");
        assert_eq!(call(&gw, "w", &es256("k-other", &claims(), &keys.attacker)).await.status(), 401, "{mode:?}");
        assert_eq!(server.jwks_requests(), 2, "{mode:?}: at most one refetch per interval, and none for known keys");
        let metrics = gw.metrics().await;
        assert!(metrics.contains("component=\"builtin:oidc-verifier\",kind=\"trap\",blame=\"guest\"} 0"), "no component failure: {metrics}");
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

#[tokio::test]
async fn several_providers_are_chosen_by_issuer_and_required_claims_apply() {
    let upstream = TestUpstream::start().await;
    let (a, b) = (ec_key("a1", json!({})), ec_key("b1", json!({})));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), json!({ "keys": [a.jwk] }).to_string()).unwrap();
    std::fs::write(dir.path().join("b.json"), json!({ "keys": [b.jwk] }).to_string()).unwrap();
    let body = r#"  [[workloads.inbound]]
  component = "builtin:oidc-verifier"
  [workloads.inbound.config]
  required_claims = ["email"]
  providers = [
    { issuer = "https://a.test", jwks_file = "a.json", algorithms = ["ES256"] },
    { issuer = "https://b.test", jwks_file = "b.json", algorithms = ["ES256"] },
  ]
"#;
    let gw = TestGateway::start_in(dir, &format!("version = 1\n{}", oidc_workload("w", &upstream.url(), body))).await.unwrap();
    let claims = |iss: &str, email: bool| {
        let mut c = good_claims();
        c["iss"] = json!(iss);
        if email {
            c["email"] = json!("alice@example.com");
        }
        c
    };
    assert_eq!(call(&gw, "w", &es256("a1", &claims("https://a.test", true), &a)).await.status(), 200);
    assert_eq!(call(&gw, "w", &es256("b1", &claims("https://b.test", true), &b)).await.status(), 200);
    // Each issuer's keys verify only that issuer's tokens.
    assert_eq!(call(&gw, "w", &es256("b1", &claims("https://a.test", true), &b)).await.status(), 401);
    // A required claim that is missing.
    assert_eq!(call(&gw, "w", &es256("a1", &claims("https://a.test", false), &a)).await.status(), 401);
}

#[test]
fn check_warns_when_the_audience_check_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(
        &policy,
        "version = 1\n[[workloads]]\nname = \"w\"\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:9\"\npublic_url = \"http://127.0.0.1:8080/mcp\"\n  [[workloads.inbound]]\n  component = \"builtin:oidc-verifier\"\n  config = { issuer = \"https://idp.example.com\", audiences = [] }\n",
    )
    .unwrap();
    let out = std::process::Command::new(crate::cli::portcullis())
        .args(["check", policy.to_str().unwrap()])
        .env("PORTCULLIS_HOME", dir.path())
        .env("PORTCULLIS_SECRETS_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning:") && stderr.contains("audiences"), "{stderr}");
}

/// An ID token for a client whose id is an accepted audience is not an access
/// token (issue "Hardening", item 4; RFC 9068 §4, RFC 8725 §3.11).
#[tokio::test]
async fn id_tokens_are_not_access_tokens() {
    let upstream = TestUpstream::start().await;
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwks.json"), json!({ "keys": [keys.good.jwk] }).to_string()).unwrap();
    let entry = |extra: &str| {
        format!(
            "  [[workloads.inbound]]\n  component = \"builtin:oidc-verifier\"\n  [workloads.inbound.config]\n  issuer = \"{ISSUER}\"\n  jwks_file = \"jwks.json\"\n  algorithms = [\"ES256\"]\n{extra}"
        )
    };
    let policy = format!(
        "version = 1\n{}{}",
        oidc_workload("strict", &upstream.url(), &entry("")),
        oidc_workload("relaxed", &upstream.url(), &entry("  require_at_jwt = false\n")),
    );
    let gw = TestGateway::start_in(dir, &policy).await.unwrap();
    let token = |typ: Option<&str>, extra: Value| {
        let mut claims = good_claims();
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let mut header = json!({ "alg": "ES256", "kid": "k1" });
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        mint(&header, claims.to_string().as_bytes(), &keys.good.encoding, Algorithm::ES256)
    };
    let id_token = token(Some("JWT"), json!({ "nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "azp": "client" }));
    let keycloak_id = token(Some("JWT"), json!({ "typ": "ID" }));
    let untyped_access = token(None, json!({}));
    for (workload, token, expected, case) in [
        ("strict", token(Some("at+jwt"), json!({})), 200, "a typed access token"),
        ("strict", token(Some("application/at+jwt"), json!({})), 200, "the media-type form"),
        ("strict", untyped_access.clone(), 401, "an untyped token, by default"),
        ("strict", id_token.clone(), 401, "an ID token"),
        ("relaxed", untyped_access, 200, "an untyped access token, with require_at_jwt = false"),
        ("relaxed", id_token, 401, "an ID token (nonce, at_hash), even relaxed"),
        ("relaxed", keycloak_id, 401, "Keycloak's typ: ID, even relaxed"),
        ("relaxed", token(Some("JWT"), json!({ "c_hash": "x" })), 401, "c_hash"),
    ] {
        assert_eq!(call(&gw, workload, &token).await.status(), expected, "{case}");
    }
}

/// A reload takes effect on the very next request: nothing verified under the
/// old configuration is admitted under the new one (item 5).
#[tokio::test]
async fn a_reload_takes_effect_on_the_next_request() {
    let upstream = TestUpstream::start().await;
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({ "keys": [keys.good.jwk] }).to_string()).unwrap();
    let body = |extra: &str| {
        format!(
            "  [[workloads.inbound]]\n  component = \"builtin:oidc-verifier\"\n  [workloads.inbound.config]\n  issuer = \"{ISSUER}\"\n  jwks_file = \"jwks.json\"\n  algorithms = [\"ES256\"]\n{extra}"
        )
    };
    let policy = |extra: &str| format!("version = 1\n{}", oidc_workload("api", &upstream.url(), &body(extra)));
    let gw = TestGateway::start_in(dir, &policy("")).await.unwrap();
    let good = es256("k1", &good_claims(), &keys.good);
    assert_eq!(call(&gw, "api", &good).await.status(), 200);
    assert_eq!(call(&gw, "api", &good).await.status(), 200, "now cached");

    // A scope requirement added: the cached token is not enough.
    gw.reload_with(&policy("  required_scopes = [\"mcp:admin\"]\n")).await.unwrap();
    assert_eq!(call(&gw, "api", &good).await.status(), 403);
    // Another audience: refused.
    gw.reload_with(&policy("  audiences = [\"https://other.example/mcp\"]\n")).await.unwrap();
    assert_eq!(call(&gw, "api", &good).await.status(), 401);
    // Back, then the key removed from the file: refused at once.
    gw.reload_with(&policy("")).await.unwrap();
    assert_eq!(call(&gw, "api", &good).await.status(), 200);
    std::fs::write(&jwks, json!({ "keys": [keys.attacker.jwk] }).to_string()).unwrap();
    gw.reload_with(&policy("")).await.unwrap();
    assert_eq!(call(&gw, "api", &good).await.status(), 401);
}

/// A provider that accepts connections and never answers: known keys keep
/// verifying, an unknown `kid` is a 401 (not a 503), and the provider is not
/// asked again during the backoff (item 6).
#[tokio::test]
async fn a_black_holed_provider_costs_no_failures() {
    use portcullis_tests::key_server::{KeyServer, Mode};
    let upstream = TestUpstream::start().await;
    let keys = keys();
    let server = KeyServer::start(json!({ "keys": [keys.good.jwk] })).await;
    // The host cuts the black-holed fetch off a tenth of the deadline before
    // it, and the verifier's fallback must fit in that tenth: 300 ms here (the
    // 400 ms this had left 40 ms, thin on a loaded machine). Not more: the
    // verifier's own 3 s fetch timeout must not end the fetch first, or the
    // host's cut would go untested.
    let body = format!(
        "  [[workloads.inbound]]\n  component = \"builtin:oidc-verifier\"\n  config = {{ issuer = \"{iss}\" }}\n  grants = {{ http = [\"{iss}\"], http_private = true }}\n  limits = {{ deadline_ms = 3000 }}\n",
        iss = server.issuer
    );
    let gw = TestGateway::start(&format!("version = 1\n{}", oidc_workload("w", &upstream.url(), &body))).await.unwrap();
    let claims = |n: u32| {
        let mut c = good_claims();
        c["iss"] = json!(server.issuer);
        c["jti"] = json!(n);
        c
    };
    assert_eq!(call(&gw, "w", &es256("k1", &claims(0), &keys.good)).await.status(), 200);
    server.set_mode(Mode::BlackHole);
    let r = call(&gw, "w", &es256("k-new", &claims(1), &keys.attacker)).await;
    assert_eq!(r.status(), 401, "an unknown kid during an outage: {}", r.text().await.unwrap());
    for n in 2..6 {
        assert_eq!(call(&gw, "w", &es256("k1", &claims(n), &keys.good)).await.status(), 200, "known keys keep verifying");
    }
    assert_eq!(call(&gw, "w", &es256("k-other", &claims(9), &keys.attacker)).await.status(), 401);
    let metrics = gw.metrics().await;
    assert!(metrics.contains("component=\"builtin:oidc-verifier\",kind=\"deadline\",blame=\"guest\"} 0"), "no call ran out of time: {metrics}");
}

/// RFC 8414 §3: for an issuer with a path, the metadata lives at
/// `/.well-known/oauth-authorization-server/<path>` (item 19).
#[tokio::test]
async fn rfc8414_metadata_is_found_for_an_issuer_with_a_path() {
    use portcullis_tests::key_server::KeyServer;
    let upstream = TestUpstream::start().await;
    let keys = keys();
    let server = KeyServer::start(json!({ "keys": [keys.good.jwk] })).await;
    let issuer = format!("{}/tenant", server.issuer);
    let body = format!(
        "  [[workloads.inbound]]\n  component = \"builtin:oidc-verifier\"\n  config = {{ issuer = \"{issuer}\" }}\n  grants = {{ http = [\"{}\"], http_private = true }}\n  limits = {{ deadline_ms = 2000 }}\n",
        server.issuer
    );
    let gw = TestGateway::start(&format!("version = 1\n{}", oidc_workload("w", &upstream.url(), &body))).await.unwrap();
    let mut claims = good_claims();
    claims["iss"] = json!(issuer);
    assert_eq!(call(&gw, "w", &es256("k1", &claims, &keys.good)).await.status(), 200);
}

/// Key strength and algorithms the gateway cannot verify (items 16 and 19).
#[tokio::test]
async fn short_hmac_secrets_and_unverifiable_algorithms_are_refused() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = portcullis::secrets::SecretStore::new(
        &dir.path().join("home"),
        Some(portcullis::secrets::SecretString::from(portcullis_tests::gateway::PASSWORD.to_owned())),
    );
    let short = "sixteen-byte-key";
    portcullis_tests::leaks::register(short);
    store.set("oidc:short", portcullis::secrets::SecretString::from(short.to_owned())).unwrap();
    let body = format!(
        "  [[workloads.inbound]]\n  component = \"builtin:oidc-verifier\"\n  grants = {{ secrets = [\"oidc:short\"] }}\n  config = {{ issuer = \"{ISSUER}\", algorithms = [\"HS256\"], hs_secret = \"oidc:short\", jwks = {{ keys = [] }} }}\n"
    );
    let gw = TestGateway::start_in(dir, &format!("version = 1\n{}", oidc_workload("w", &upstream.url(), &body))).await.unwrap();
    let hs =
        mint(&json!({ "alg": "HS256", "typ": "at+jwt" }), good_claims().to_string().as_bytes(), &EncodingKey::from_secret(short.as_bytes()), Algorithm::HS256);
    assert_eq!(call(&gw, "w", &hs).await.status(), 401, "a 16-byte HS256 key verifies nothing");
    assert_eq!(upstream.hits(), 0);

    for alg in ["ES512", "Ed25519"] {
        let body = format!(
            "  [[workloads.inbound]]\n  component = \"builtin:oidc-verifier\"\n  config = {{ issuer = \"{ISSUER}\", algorithms = [\"{alg}\"], jwks = {{ keys = [] }} }}\n"
        );
        let err = format!("{:#}", TestGateway::start(&format!("version = 1\n{}", oidc_workload("w", &upstream.url(), &body))).await.err().unwrap());
        assert!(err.contains("not supported"), "{alg}: {err}");
    }
}
