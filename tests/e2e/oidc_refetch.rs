//! `builtin:oidc-verifier`'s refetch limit when its marker cannot be stored:
//! an unknown `kid` triggers one refetch of the key set at most every 30 s,
//! enforced by a marker in the host cache; if the marker cannot be stored, no
//! refetch at all, so tokens with random kids cannot make it hammer the provider.

use crate::client;
use crate::oidc::{PUBLIC_URL, ec_key, es256, good_claims};
use portcullis_tests::gateway::{TestGateway, workload};
use portcullis_tests::key_server::KeyServer;
use serde_json::json;

#[tokio::test]
async fn no_refetch_when_the_refetch_marker_cannot_be_stored() {
    let upstream = portcullis_tests::upstream::TestUpstream::start().await;
    let (good, attacker) = (ec_key("k1", json!({})), ec_key("attacker", json!({})));
    let server = KeyServer::start(json!({ "keys": [good.jwk] })).await;
    // The host cache keeps keys of at most 1 KiB: with a key set URL this long
    // (the server ignores the query), neither the keys nor the marker
    // (`jwks-refetch:<url>`) can be stored, so every request fetches the key
    // set once, and one with an unknown kid must not fetch it a second time.
    let jwks_uri = format!("{}/jwks?pad={}", server.issuer, "x".repeat(1100));
    let entry = format!(
        "  [[workloads.inbound]]\n  component = \"builtin:oidc-verifier\"\n  config = {{ issuer = \"{}\", jwks_uri = \"{jwks_uri}\" }}\n  grants = {{ http = [\"{}\"], http_private = true }}\n  limits = {{ deadline_ms = 3000 }}\n",
        server.issuer, server.issuer
    );
    let policy = workload("w", &upstream.url(), &entry).replace("public_url = \"http://127.0.0.1:8080\"", &format!("public_url = \"{PUBLIC_URL}\""));
    let gw = TestGateway::start(&format!("version = 1\n{policy}")).await.unwrap();
    let url = format!("{}/mcp", gw.url("w").await);
    let call = |token: String| {
        let url = url.clone();
        async move { client().get(url).header("authorization", format!("Bearer {token}")).send().await.unwrap().status().as_u16() }
    };
    let claims = || {
        let mut c = good_claims();
        c["iss"] = json!(server.issuer);
        c
    };

    assert_eq!(call(es256("k1", &claims(), &good)).await, 200);
    assert_eq!(server.jwks_requests(), 1, "the key set, fetched (and not cached)");
    for (n, kid) in ["new-1", "new-2", "new-3"].into_iter().enumerate() {
        assert_eq!(call(es256(kid, &claims(), &attacker)).await, 401, "{kid}");
        assert_eq!(server.jwks_requests(), 2 + n, "{kid}: the uncached fetch only, no refetch");
    }
}
