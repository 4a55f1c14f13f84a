//! RFC 8693 token exchange at the embedded authorization server
//! (`builtin:oauth-server`, `[workloads.server.config.token_exchange]`),
//! end to end through a real gateway:
//!
//! - a person (`alice`) logs in through the gateway, federated to the company
//!   IdP (`registry-idp.mjs`, oidc-provider), and gets the server's access token;
//! - an agent (the listed client `agent`) exchanges it at `/oauth/token`,
//!   proving who it is with an actor token from a trusted issuer (a second
//!   real OpenID provider, `oidc-provider.mjs`, client-credentials JWTs; the
//!   actor is its `test-client`). The answer is an access token of this
//!   server with `sub` = alice, `act` = the agent, `client_id` = agent, the
//!   configured short life, and no refresh token;
//! - that token reaches the MCP server through the workload's
//!   `builtin:oidc-verifier` (`embedded_server = true`), which passes no
//!   token on;
//! - refused, each with its RFC 8693 / RFC 6749 error: an actor no rule
//!   lists (`eng-client` of the trusted issuer), an actor with a listed `sub`
//!   at another issuer, a subject token from an OpenID provider that is not
//!   listed as trusted (a third real provider), a subject token whose claims
//!   were changed after signing, a scope beyond the subject token's, another
//!   resource, a refresh token asked for, a client not listed for the grant,
//!   no actor token (`require_actor` is on by default);
//! - accepted: a trusted issuer's own JWT as the subject token (its `sub`
//!   becomes the subject), which the MCP server then also accepts;
//! - `may_act` (RFC 8693 §4.4) in a subject token of a second trusted
//!   issuer (a key server of the test's, ES256 tokens it mints): the actor it
//!   names is accepted though no rule lists it, an actor a rule lists is
//!   refused when `may_act` names another, and the rules decide without it;
//!   an expired subject token and one signed by an unpublished key are refused;
//! - off by default: without the table the grant is `unsupported_grant_type`
//!   and the metadata does not list it.
//!
//! Every token the test sees is registered with `leaks`: none may appear in
//! the gateway's log (the audit lines name subjects, never tokens).
//!
//! Left to the crate's unit tests: the audit line's content, `nbf`/`iat`,
//! wrong `aud` and `typ`, `alg` `none`/HS256, lifetime caps by the actor token.

use crate::oauth_server::Setup as PlainSetup;
use crate::oidc::{EcKey, ec_key, es256};
use portcullis_tests::gateway::{PASSWORD, TestGateway};
use portcullis_tests::key_server::KeyServer;
use portcullis_tests::leaks;
use portcullis_tests::node::{OpenIdProvider, free_port};
use portcullis_tests::oauth::{
    CompanyIdp, Discovered, HeaderReportingMcpServer, Pkce, ServerPolicy, jwt_parts, listed_code, mcp_status, prepare_dir, redeem, token,
};
use reqwest::StatusCode;
use serde_json::json;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The `aud` the trusted issuer's tokens carry for this gateway.
const EXCHANGE_AUDIENCE: &str = "http://127.0.0.1/portcullis-exchange";
/// The exchanged tokens' life (`token_exchange.token_ttl`).
const TTL: u64 = 120;

/// A gateway whose authorization server exchanges tokens, trusting `trusted`.
struct Setup {
    _gw: TestGateway,
    policy: ServerPolicy,
    server: Discovered,
    mcp: HeaderReportingMcpServer,
    _idp: CompanyIdp,
    trusted: OpenIdProvider,
    /// A second trusted issuer, whose tokens the test mints (with `may_act`).
    minting: KeyServer,
    minting_key: EcKey,
}

impl Setup {
    async fn start() -> Setup {
        let mcp = HeaderReportingMcpServer::start().await;
        let trusted = OpenIdProvider::start().await;
        let minting_key = ec_key("m1", json!({}));
        let minting = KeyServer::start(json!({ "keys": [minting_key.jwk] })).await;
        for _ in 0..5 {
            let port = free_port();
            let idp = CompanyIdp::start(&[format!("http://127.0.0.1:{port}/oauth/callback")]).await;
            let dir = tempfile::tempdir().unwrap();
            let mut policy = ServerPolicy::new(port, &mcp.url(), &idp.issuer);
            policy.key_dir = dir.path().join("keys").display().to_string();
            let (t, m) = (&trusted.issuer, &minting.issuer);
            policy.config = format!(
                r#"  [workloads.server.config.token_exchange]
  clients = ["agent"]
  token_ttl = {TTL}
  [[workloads.server.config.token_exchange.trusted_issuers]]
  issuer = "{t}"
  jwks_uri = "{t}/jwks"
  audience = "{EXCHANGE_AUDIENCE}"
  scopes = ["mcp"]
  [[workloads.server.config.token_exchange.trusted_issuers]]
  issuer = "{m}"
  jwks_uri = "{m}/jwks"
  audience = "{EXCHANGE_AUDIENCE}"
  scopes = ["mcp"]
  [[workloads.server.config.token_exchange.actors]]
  issuer = "{t}"
  sub = "test-client"
  scopes = ["mcp"]
  [[workloads.server.config.clients]]
  client_id = "agent"
  redirect_uris = ["http://127.0.0.1/agent-callback"]
"#
            );
            // The trusted issuers' key sets are fetched through the `http` import: their origins are granted.
            let toml = policy.toml().replace(&format!("http = [\"{}\", ", idp.issuer), &format!("http = [\"{}\", \"{t}\", \"{m}\", ", idp.issuer));
            assert!(toml.contains(&format!("\"{m}\", \"https://*\"")), "{toml}");
            prepare_dir(dir.path(), &["as-1"], PASSWORD);
            match TestGateway::start_in(dir, &toml).await {
                Ok(gw) => {
                    let server = Discovered::from(&policy.public_url()).await;
                    return Setup { _gw: gw, policy, server, mcp, _idp: idp, trusted, minting, minting_key };
                }
                Err(e) if format!("{e:#}").contains("in use") => continue,
                Err(e) => panic!("the gateway did not start: {e:#}\n{toml}"),
            }
        }
        panic!("no free port for the gateway");
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.policy.port)
    }

    /// A client-credentials JWT of the trusted issuer for `client`, with this gateway's exchange audience.
    async fn trusted_token(&self, client: &str) -> String {
        let jwt = self.trusted.token(client, EXCHANGE_AUDIENCE, "mcp:read").await;
        leaks::register(&jwt);
        jwt
    }

    /// A JWT of the minting issuer for `sub`, with `claims` added (or replaced).
    fn minted(&self, sub: &str, claims: serde_json::Value) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let mut all = json!({ "iss": self.minting.issuer, "sub": sub, "aud": EXCHANGE_AUDIENCE, "iat": now, "exp": now + 600 });
        for (name, value) in claims.as_object().unwrap() {
            all[name] = value.clone();
        }
        es256("m1", &all, &self.minting_key)
    }

    /// A token-exchange request by `client_id` with `subject` (an access token
    /// of this server unless `subject_type` says otherwise) and `actor` (a JWT).
    async fn exchange(
        &self,
        client_id: &str,
        subject: &str,
        subject_type: &str,
        actor: Option<&str>,
        more: &[(&str, &str)],
    ) -> portcullis_tests::oauth::TokenAnswer {
        let mut form = vec![
            ("grant_type", GRANT),
            ("client_id", client_id),
            ("resource", self.server.resource.as_str()),
            ("subject_token", subject),
            ("subject_token_type", subject_type),
        ];
        if let Some(actor) = actor {
            form.extend([("actor_token", actor), ("actor_token_type", JWT)]);
        }
        for (name, value) in more {
            form.retain(|(n, _)| n != name);
            form.push((name, value));
        }
        let answer = token(&self.server.endpoint("token_endpoint"), &form).await;
        if let Some(issued) = answer.body["access_token"].as_str() {
            leaks::register(issued);
        }
        answer
    }
}

/// What is wrong, the client, the subject token, the actor token, more parameters, the status and the error.
type Refusal<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a [(&'a str, &'a str)], StatusCode, &'a str);

#[tokio::test]
async fn an_agent_acts_for_a_logged_in_user_and_the_mcp_server_accepts_its_token() {
    let mut setup = Setup::start().await;
    let server = &setup.server;
    let grants = server.metadata["grant_types_supported"].as_array().unwrap();
    assert!(grants.iter().any(|g| g == GRANT), "the metadata lists the grant: {grants:?}");

    // Alice logs in through the gateway (federated to the company IdP).
    let pkce = Pkce::new();
    let (request, code) = listed_code(server, &pkce, "alice").await;
    let alice = redeem(server, &request, &code, &pkce.verifier).await.access_token();
    leaks::register(&alice);
    let (_, alice_claims) = jwt_parts(&alice);

    // The agent proves who it is with its own token from the trusted issuer, and exchanges alice's.
    let agent = setup.trusted_token("test-client").await;
    let answer = setup.exchange("agent", &alice, ACCESS_TOKEN, Some(&agent), &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body["issued_token_type"], ACCESS_TOKEN, "{answer:?}");
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], TTL, "the configured short life");
    assert_eq!(answer.body["scope"], "mcp");
    assert!(answer.body.get("refresh_token").is_none(), "no refresh token: {answer:?}");
    assert!(answer.cache_control.as_deref().is_some_and(|c| c.contains("no-store")), "{answer:?}");
    let delegated = answer.access_token();
    let (header, claims) = jwt_parts(&delegated);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["iss"], setup.issuer().as_str());
    assert_eq!(claims["sub"], "alice", "the subject stays the person: {claims}");
    assert_eq!(claims["aud"], server.resource.as_str());
    assert_eq!(claims["client_id"], "agent");
    assert_eq!(claims["act"], serde_json::json!({"sub": "test-client", "iss": setup.trusted.issuer}), "the delegation is visible: {claims}");
    assert_eq!(claims["sid"], alice_claims["sid"], "still alice's session (her upstream tokens, not the agent's)");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), TTL);

    // It reaches the MCP server through the workload's verifier, which passes no token on.
    assert_eq!(mcp_status(&setup.policy.public_url(), &delegated).await, StatusCode::OK);
    let mut requests = setup.mcp.requests();
    for _ in 0..50 {
        if !requests.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        requests = setup.mcp.requests();
    }
    assert!(!requests.is_empty() && requests.iter().all(|r| r.ends_with("auth=no")), "{requests:#?}");

    // Exchanged again by the same agent: the earlier delegation is nested (RFC 8693 §4.1).
    let again = setup.exchange("agent", &delegated, ACCESS_TOKEN, Some(&agent), &[]).await.access_token();
    let (_, claims) = jwt_parts(&again);
    assert_eq!(claims["act"]["act"], serde_json::json!({"sub": "test-client", "iss": setup.trusted.issuer}), "{claims}");
    assert!(claims["exp"].as_u64() <= jwt_parts(&delegated).1["exp"].as_u64(), "never outlives its subject token");

    // Refusals.
    let eng = setup.trusted_token("eng-client").await;
    let foreign = OpenIdProvider::start().await;
    let foreign_actor = foreign.token("test-client", EXCHANGE_AUDIENCE, "mcp:read").await;
    let foreign_subject = foreign.token("test-client", &server.resource, "mcp:read").await;
    leaks::register(&foreign_actor);
    leaks::register(&foreign_subject);
    let tampered = {
        let parts: Vec<&str> = alice.split('.').collect();
        let mut claims = alice_claims.clone();
        claims["sub"] = "mallory".into();
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    leaks::register(&tampered);
    let refusals: [Refusal; 10] = [
        ("no actor (require_actor is on by default)", "agent", &alice, None, &[], StatusCode::BAD_REQUEST, "invalid_request"),
        ("an actor no rule lists", "agent", &alice, Some(&eng), &[], StatusCode::BAD_REQUEST, "invalid_request"),
        ("the listed actor's sub at an issuer not trusted", "agent", &alice, Some(&foreign_actor), &[], StatusCode::BAD_REQUEST, "invalid_request"),
        (
            "a subject token of a provider not trusted",
            "agent",
            &foreign_subject,
            Some(&agent),
            &[("subject_token_type", JWT)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        ("a subject token changed after signing", "agent", &tampered, Some(&agent), &[], StatusCode::BAD_REQUEST, "invalid_request"),
        ("a scope beyond the subject token's", "agent", &alice, Some(&agent), &[("scope", "mcp admin")], StatusCode::BAD_REQUEST, "invalid_scope"),
        ("another resource", "agent", &alice, Some(&agent), &[("resource", "http://127.0.0.1:1/other")], StatusCode::BAD_REQUEST, "invalid_target"),
        (
            "a refresh token asked for",
            "agent",
            &alice,
            Some(&agent),
            &[("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        ("a client not listed for the grant", "cli", &alice, Some(&agent), &[], StatusCode::BAD_REQUEST, "unauthorized_client"),
        ("a client unknown to the server", "nobody", &alice, Some(&agent), &[], StatusCode::BAD_REQUEST, "unauthorized_client"),
    ];
    for (case, client_id, subject, actor, more, status, error) in refusals {
        let answer = setup.exchange(client_id, subject, ACCESS_TOKEN, actor, more).await;
        assert_eq!((answer.status, answer.error()), (status, error), "{case}: {answer:?}");
        assert!(answer.body.get("access_token").is_none(), "{case}");
    }

    // A trusted issuer's own JWT as the subject token: accepted, and the MCP server takes the result.
    let answer = setup.exchange("agent", &eng, JWT, Some(&agent), &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let from_trusted = answer.access_token();
    let (_, claims) = jwt_parts(&from_trusted);
    assert_eq!((claims["sub"].as_str(), claims["act"]["sub"].as_str()), (Some("eng-client"), Some("test-client")), "{claims}");
    assert!(claims.get("sid").is_none(), "no session of this server behind it: {claims}");
    assert_eq!(mcp_status(&setup.policy.public_url(), &from_trusted).await, StatusCode::OK);
    // The trusted issuer's token itself is no token of this workload.
    assert_eq!(mcp_status(&setup.policy.public_url(), &eng).await, StatusCode::UNAUTHORIZED);

    // Exchanges are counted for the operator, issued and refused apart.
    let metrics = setup._gw.metrics().await;
    let count = |event: &str| {
        let series = format!("portcullis_component_events_total{{workload=\"mcp\",component=\"builtin:oauth-server\",event=\"{event}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    assert!(count("token-exchanged") >= 3, "{metrics}");
    assert!(count("token-exchange-failed") >= 10, "{metrics}");
}

#[tokio::test]
async fn token_exchange_is_off_by_default() {
    let setup = PlainSetup::start(|_| {}).await;
    let grants = setup.server.metadata["grant_types_supported"].as_array().unwrap();
    assert!(!grants.iter().any(|g| g == GRANT), "{grants:?}");
    let answer = token(
        &setup.server.endpoint("token_endpoint"),
        &[("grant_type", GRANT), ("client_id", "cli"), ("subject_token", "x.y.z"), ("subject_token_type", ACCESS_TOKEN)],
    )
    .await;
    assert_eq!((answer.status, answer.error()), (StatusCode::BAD_REQUEST, "unsupported_grant_type"), "{answer:?}");
}

/// `may_act` in the subject token (RFC 8693 §4.4) decides who may act for
/// its subject: the actor it names is accepted though no rule lists it; an
/// actor a rule does list is refused when `may_act` names another; and an
/// expired subject token is refused. The subject tokens are minted by a
/// second trusted issuer (a key server of the test's, ES256).
#[tokio::test]
async fn may_act_in_the_subject_token_decides_who_may_act() {
    let setup = Setup::start().await;
    let trusted = setup.trusted.issuer.clone();
    let dana = setup.minted("dana", json!({ "may_act": { "sub": "ops-client", "iss": trusted } }));
    let ops = setup.trusted_token("ops-client").await;
    let agent = setup.trusted_token("test-client").await;

    // Named by may_act, listed by no rule: accepted, and the MCP server takes the result.
    let answer = setup.exchange("agent", &dana, JWT, Some(&ops), &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let delegated = answer.access_token();
    let (_, claims) = jwt_parts(&delegated);
    assert_eq!((claims["sub"].as_str(), claims["act"]["sub"].as_str()), (Some("dana"), Some("ops-client")), "{claims}");
    assert_eq!(mcp_status(&setup.policy.public_url(), &delegated).await, StatusCode::OK);

    // The agent a rule allows, but not the one may_act names: refused.
    let answer = setup.exchange("agent", &dana, JWT, Some(&agent), &[]).await;
    assert_eq!((answer.status, answer.error()), (StatusCode::BAD_REQUEST, "invalid_request"), "{answer:?}");
    assert!(answer.body["error_description"].as_str().unwrap().contains("may_act"), "{answer:?}");
    // may_act naming the sub at another issuer: refused.
    let elsewhere = setup.minted("dana", json!({ "may_act": { "sub": "test-client", "iss": "http://127.0.0.1:1" } }));
    let answer = setup.exchange("agent", &elsewhere, JWT, Some(&agent), &[]).await;
    assert_eq!((answer.status, answer.error()), (StatusCode::BAD_REQUEST, "invalid_request"), "{answer:?}");
    // Without may_act the rule decides: the listed agent may act for dana.
    let plain = setup.minted("dana", json!({}));
    assert_eq!(setup.exchange("agent", &plain, JWT, Some(&agent), &[]).await.status, StatusCode::OK);

    // An expired subject token.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let expired = setup.minted("dana", json!({ "iat": now - 700, "exp": now - 10 }));
    let answer = setup.exchange("agent", &expired, JWT, Some(&agent), &[]).await;
    assert_eq!((answer.status, answer.error()), (StatusCode::BAD_REQUEST, "invalid_request"), "{answer:?}");
    assert!(answer.body["error_description"].as_str().unwrap().contains("expired"), "{answer:?}");
    // Signed by a key the issuer does not publish.
    let other_key = ec_key("m1", json!({}));
    let forged = es256("m1", &jwt_parts(&plain).1, &other_key);
    let answer = setup.exchange("agent", &forged, JWT, Some(&agent), &[]).await;
    assert_eq!((answer.status, answer.error()), (StatusCode::BAD_REQUEST, "invalid_request"), "{answer:?}");
}
