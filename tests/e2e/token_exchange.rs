//! `builtin:token-exchange` end to end, with real parts: clients hold access
//! tokens of a real OpenID Provider (`oidc-provider.mjs`, JWTs for the
//! workload's resource; its clients `eng-client` and `ops-client` are the two
//! users); the gateway's `builtin:oidc-verifier` checks them and forwards them
//! to the injector (`forward_token = true`), which exchanges them (RFC 8693)
//! at a real security token service (`sts.mjs`: oidc-provider with a
//! token-exchange grant). The STS checks, per exchange: the client's own
//! authentication (client_secret_basic, client_secret_post or
//! private_key_jwt, by oidc-provider); `subject_token_type` = access token;
//! the subject token's signature against the OpenID Provider's JWKS, its
//! `iss` and `exp`; its `sub` among the users it knows; an `audience`; and
//! `requested_token_type` = access token. It issues opaque tokens of its own
//! for that user and audience. The MCP server (`mcp-server.mjs --introspect`)
//! checks every Bearer token at the STS's introspection endpoint (active,
//! Bearer) and answers `whoami` with its user: the client's own token is
//! not one it accepts.

use base64::Engine as _;
use portcullis::secrets::{SecretStore, SecretString};
use portcullis_tests::gateway::{PASSWORD, TestGateway};
use portcullis_tests::leaks;
use portcullis_tests::node::OpenIdProvider;
use portcullis_tests::oauth::{signing_key_pem, write_private};
use portcullis_tests::redis::RedisServer;
use portcullis_tests::token_exchange::{AUDIENCE, CLIENT_SECRET, CLIENT_SECRET_NAME, PUBLIC_URL, Sts, policy};
use portcullis_tests::upstream_token::{Called, IntrospectingMcpServer, call_tool};
use reqwest::StatusCode;
use std::time::Duration;

struct Setup {
    gw: TestGateway,
    op: OpenIdProvider,
    sts: Sts,
    mcp: IntrospectingMcpServer,
    url: String,
    toml: String,
    replica: Option<TestGateway>,
}

/// A gateway home whose secret store holds the STS client secret and, when
/// given, the token key (`tx:key`).
fn prepared_dir(token_key: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretStore::new(&dir.path().join("home"), Some(SecretString::from(PASSWORD.to_owned())));
    secrets.set(CLIENT_SECRET_NAME, SecretString::from(CLIENT_SECRET.to_owned())).unwrap();
    if !token_key.is_empty() {
        secrets.set("tx:key", SecretString::from(token_key.to_owned())).unwrap();
    }
    leaks::register(CLIENT_SECRET);
    dir
}

const BASIC: (&str, &str) = (r#"client_id = "gateway-basic", client_secret = "sts:client-secret""#, r#"secrets = ["sts:client-secret"]"#);

impl Setup {
    /// `entry`: the injector's client fields and grants (see [`BASIC`]); `extra`: more config fields.
    async fn start(entry: (&str, &str), extra: &str) -> Setup {
        Self::start_with(entry, extra, "", "").await
    }

    /// With a `[store]` section, and the token key's base64 text (or "").
    async fn start_with(entry: (&str, &str), extra: &str, store: &str, token_key: &str) -> Setup {
        let op = OpenIdProvider::start().await;
        let dir = prepared_dir(token_key);
        let key_path = dir.path().join("client-key.pem");
        write_private(&key_path, &signing_key_pem());
        let sts = Sts::start(&op, &["eng-client", "ops-client"], Some(&key_path)).await;
        let mcp = IntrospectingMcpServer::start(&sts.issuer).await;
        let (client, grants) = (entry.0.replace("{key}", &key_path.display().to_string()), entry.1.replace("{key}", &key_path.display().to_string()));
        let config = if extra.is_empty() { client } else { format!("{client}, {extra}") };
        let toml = policy(&op.issuer, &sts.issuer, &mcp.url(), &config, &grants).replacen("version = 1\n", &format!("version = 1\n{store}"), 1);
        let gw = TestGateway::start_in(dir, &toml).await.unwrap_or_else(|e| panic!("the gateway did not start: {e:#}\n{toml}"));
        let url = format!("{}/mcp", gw.url("mcp").await);
        Setup { gw, op, sts, mcp, url, toml, replica: None }
    }

    /// A second gateway on the same policy (and store): its `/mcp` URL.
    async fn replica(&mut self, token_key: &str) -> String {
        let gw = TestGateway::start_in(prepared_dir(token_key), &self.toml).await.unwrap();
        let url = format!("{}/mcp", gw.url("mcp").await);
        self.replica = Some(gw);
        url
    }

    /// A fresh access token of the OpenID Provider for `user` (one of its clients).
    async fn token(&self, user: &str) -> String {
        let token = self.op.token(user, PUBLIC_URL, "mcp:read").await;
        leaks::register(&token);
        token
    }

    async fn call(&self, token: &str, tool: &str) -> Called {
        call_tool(&self.url, token, tool).await
    }

    /// The token that reached the MCP server with `token`'s call.
    async fn upstream_token_of(&self, token: &str) -> String {
        let called = self.call(token, "request_headers").await;
        assert_eq!(called.status, StatusCode::OK, "{called:?}");
        let text = called.text.unwrap();
        assert!(!text.contains(token), "the client's token never reaches the MCP server: {text}");
        let headers: serde_json::Value = serde_json::from_str(&text).unwrap();
        let bearer = headers["authorization"].as_str().and_then(|v| v.strip_prefix("Bearer ")).expect("a Bearer token reached the MCP server").to_owned();
        leaks::register(&bearer);
        bearer
    }

    fn exchanges(&mut self) -> Vec<String> {
        self.sts.exchanges()
    }
}

fn exchange_line(status: u16, sub: &str, client: &str) -> String {
    format!("EXCHANGE {status} aud={AUDIENCE} sub={sub} client={client}")
}

/// Two users each reach the MCP server with a token the STS issued for them
/// (the MCP server accepts no other, and names the user); their second
/// calls are served from the cache: the STS sees one exchange per user.
#[tokio::test]
async fn each_user_reaches_the_mcp_server_with_an_exchanged_token_exchanged_once() {
    let mut s = Setup::start(BASIC, "").await;
    let (eng, ops) = (s.token("eng-client").await, s.token("ops-client").await);

    // The MCP server itself refuses the client's own token: only the STS's
    // serve (the STS's introspection answers 400 for a JWT it did not issue,
    // which the MCP server answers 502).
    let direct = call_tool(&format!("{}/mcp", s.mcp.url()), &eng, "whoami").await;
    assert_eq!((direct.status, direct.text), (StatusCode::BAD_GATEWAY, None), "the client's token is no good at the MCP server");

    for (token, user) in [(&eng, "eng-client"), (&ops, "ops-client")] {
        let called = s.call(token, "whoami").await;
        assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some(user)), "{called:?}");
    }
    assert_eq!(s.exchanges(), [exchange_line(200, "eng-client", "gateway-basic"), exchange_line(200, "ops-client", "gateway-basic")]);

    // Cache hits: the same tokens again, and no exchange.
    let (eng_upstream, ops_upstream) = (s.upstream_token_of(&eng).await, s.upstream_token_of(&ops).await);
    assert_ne!(eng_upstream, ops_upstream, "each user has his own exchanged token");
    for (token, user) in [(&eng, "eng-client"), (&ops, "ops-client")] {
        let called = s.call(token, "whoami").await;
        assert_eq!(called.text.as_deref(), Some(user), "{called:?}");
        assert_eq!(&s.upstream_token_of(token).await, if user == "eng-client" { &eng_upstream } else { &ops_upstream });
    }
    assert_eq!(s.exchanges().len(), 2, "the second calls did not reach the STS: {:?}", s.exchanges());
    // The MCP server prints its line after it answered: the last one may still be on its way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = s.mcp.introspected();
    assert_eq!(seen[0], "INTROSPECTED failed sub=-", "the direct call");
    assert!(seen[1..].iter().all(|line| line.starts_with("INTROSPECTED active")), "every call through the gateway carried a token the STS issued: {seen:?}");
    // Each exchange counted for the operator.
    let metrics = s.gw.metrics().await;
    assert!(metrics.contains("component=\"builtin:token-exchange\",event=\"token-exchanged\"} 2"), "{metrics}");
    drop(s.gw);
}

/// A token that lives 3 s, used until 1 s before: exchanged again after it.
#[tokio::test]
async fn a_short_lived_token_is_exchanged_again() {
    let mut s = Setup::start(BASIC, "renew_before_seconds = 1").await;
    s.sts.command("ttl 3").await;
    let eng = s.token("eng-client").await;
    let first = s.upstream_token_of(&eng).await;
    assert_eq!(s.upstream_token_of(&eng).await, first, "cached");
    assert_eq!(s.exchanges().len(), 1);
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    let second = s.upstream_token_of(&eng).await;
    assert_ne!(second, first, "a new token after the first one's time");
    assert_eq!(s.exchanges().len(), 2, "{:?}", s.exchanges());
    let called = s.call(&eng, "whoami").await;
    assert_eq!(called.text.as_deref(), Some("eng-client"), "{called:?}");
    drop(s.gw);
}

/// The two other client authentications, at the same STS.
#[tokio::test]
async fn client_secret_post_and_private_key_jwt() {
    let post = (r#"client_id = "gateway-post", client_auth = "client_secret_post", client_secret = "sts:client-secret""#, r#"secrets = ["sts:client-secret"]"#);
    let mut s = Setup::start(post, "").await;
    let eng = s.token("eng-client").await;
    let called = s.call(&eng, "whoami").await;
    assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some("eng-client")), "{called:?}");
    assert_eq!(s.exchanges(), [exchange_line(200, "eng-client", "gateway-post")]);
    drop(s.gw);

    let jwt = (r#"client_id = "gateway-jwt", client_auth = "private_key_jwt""#, r#"signing_keys = ["file:{key}"]"#);
    let mut s = Setup::start(jwt, "").await;
    let ops = s.token("ops-client").await;
    let called = s.call(&ops, "whoami").await;
    assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some("ops-client")), "{called:?}");
    assert_eq!(s.exchanges(), [exchange_line(200, "ops-client", "gateway-jwt")]);
    drop(s.gw);
}

/// Nothing reaches the MCP server without an exchanged token: a subject
/// the STS does not know is the workload's 401 challenge; an STS that
/// answers 500 or too slowly is 503, one that issues another token type 502.
/// A token cached before the STS broke still serves.
#[tokio::test]
async fn bad_input_fails_closed() {
    let mut s = Setup::start(BASIC, "").await;
    let cached = s.token("eng-client").await;
    assert_eq!(s.call(&cached, "whoami").await.status, StatusCode::OK);

    // Valid at the gateway, foreign to the STS.
    let foreign = s.token("test-client").await;
    let refused = s.call(&foreign, "whoami").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    let challenge = refused.www_authenticate.unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\"")
            && challenge.contains("resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\""),
        "{challenge}"
    );
    assert_eq!(s.exchanges().last().unwrap(), "EXCHANGE 400 aud=https://mcp.example/api sub=test-client client=gateway-basic");

    for (command, status, error) in [
        ("mode 500", StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
        ("mode slow 3000", StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
        ("mode wrong-type", StatusCode::BAD_GATEWAY, "token_exchange_failed"),
    ] {
        s.sts.command(command).await;
        let fresh = s.token("ops-client").await;
        let response = portcullis_tests::oauth::client()
            .post(&s.url)
            .bearer_auth(&fresh)
            .header("accept", "application/json, text/event-stream")
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{command}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{command}: {body}");
        // The cached token still serves.
        let called = s.call(&cached, "whoami").await;
        assert_eq!(called.text.as_deref(), Some("eng-client"), "{command}: {called:?}");
    }
    // The slow answer comes after the gateway gave up on it.
    for _ in 0..50 {
        if s.exchanges().len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines = s.exchanges();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(
        lines[2..],
        [
            exchange_line(500, "ops-client", "gateway-basic"),
            exchange_line(200, "ops-client", "gateway-basic"),
            exchange_line(200, "ops-client", "gateway-basic")
        ]
    );
    // Only the cached user's calls (the first and three more) reached the MCP server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.mcp.introspected().len(), 4, "{:?}", s.mcp.introspected());
    assert!(s.mcp.introspected().iter().all(|line| line == "INTROSPECTED active sub=eng-client"), "{:?}", s.mcp.introspected());
    drop(s.gw);
}

/// Two gateways on one Redis, the injector granted a shared store: the
/// second gateway's first call finds the first one's exchanged token there
/// (one exchange for both), and Redis holds it sealed: no token in clear in
/// any key or value.
#[tokio::test]
async fn replicas_share_exchanged_tokens_sealed_in_redis() {
    let redis = RedisServer::start();
    let store = format!("[store]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"pc\"\n", redis.url());
    let shared = (
        r#"client_id = "gateway-basic", client_secret = "sts:client-secret", token_key_secret = "tx:key""#,
        r#"secrets = ["sts:client-secret", "tx:key"], store = "exchange""#,
    );
    let token_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let mut s = Setup::start_with(shared, "", &store, &token_key).await;
    let second = s.replica(&token_key).await;

    let eng = s.token("eng-client").await;
    let first = s.upstream_token_of(&eng).await;
    let called = call_tool(&second, &eng, "request_headers").await;
    let headers: serde_json::Value = serde_json::from_str(called.text.as_deref().unwrap()).unwrap();
    assert_eq!(headers["authorization"].as_str(), Some(format!("Bearer {first}").as_str()), "the second gateway uses the first one's token");
    assert_eq!(s.exchanges().len(), 1, "one exchange for both gateways: {:?}", s.exchanges());

    let keys = redis.cli(&["KEYS", "*"]);
    assert!(keys.lines().any(|key| key.contains("tx:")), "the exchanged token is in the store: {keys}");
    for key in keys.lines() {
        let value = redis.cli(&["GET", key]);
        for secret in [&eng, &first] {
            assert!(!key.contains(secret.as_str()) && !value.contains(secret.as_str()), "a token in clear in Redis under {key}");
        }
    }
    drop(s.gw);
}
