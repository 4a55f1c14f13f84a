//! Per-user upstream tokens (`builtin:upstream-token`) end to end, with the
//! real parts: the company IdP (`registry-idp.mjs`, oidc-provider with
//! rotating refresh tokens and access tokens that live 4 s) is both where
//! users log in and the MCP server's own authorization server; the MCP server
//! (`mcp-server.mjs --introspect`) checks every Bearer token at the IdP and
//! answers `whoami` with its user. Users log in through the gateway's
//! authorization server (Chromium with the official SDK client, and over
//! plain HTTP); each call reaches the MCP server with that user's own IdP
//! token, renewed as it expires, never the client's token.

use crate::cli::cli;
use crate::oauth_replicas::Deployment;
use portcullis_tests::gateway::{PASSWORD, TestGateway};
use portcullis_tests::leaks;
use portcullis_tests::node::free_port;
use portcullis_tests::oauth::{
    Authorize, CompanyIdp, Discovered, IDP_CLIENT_ID, Pkce, ServerPolicy, Stored, TOKEN_KEY_SECRET, TokenAnswer, add_secret, jwt_parts, listed_code, login,
    prepare_dir, redeem, refresh, sdk_client,
};
use portcullis_tests::redis::RedisServer;
use portcullis_tests::upstream_token::{IntrospectingMcpServer, NAMESPACE, call_tool, inject_user_tokens, injector, settled};
use reqwest::StatusCode;
use std::time::Duration;

/// The IdP's access tokens' lifetime: short, so a test sees several renewals.
const ACCESS_TTL: u64 = 4;

struct Setup {
    gw: TestGateway,
    policy: ServerPolicy,
    server: Discovered,
    mcp: IntrospectingMcpServer,
    idp: CompanyIdp,
}

impl Setup {
    async fn start(store: &str) -> Setup {
        for _ in 0..5 {
            let port = free_port();
            let idp = CompanyIdp::start_with(&[format!("http://127.0.0.1:{port}/oauth/callback")], &["--access-ttl", &ACCESS_TTL.to_string()]).await;
            let mcp = IntrospectingMcpServer::start(&idp.issuer).await;
            let dir = tempfile::tempdir().unwrap();
            let mut policy = ServerPolicy::new(port, &mcp.url(), &idp.issuer);
            policy.key_dir = dir.path().join("keys").display().to_string();
            policy.store = store.to_owned();
            inject_user_tokens(&mut policy, 1);
            prepare_dir(dir.path(), &["as-1"], PASSWORD);
            match TestGateway::start_in(dir, &policy.toml()).await {
                Ok(gw) => {
                    let server = Discovered::from(&policy.public_url()).await;
                    return Setup { gw, policy, server, mcp, idp };
                }
                Err(e) if format!("{e:#}").contains("in use") => continue,
                Err(e) => panic!("the gateway did not start: {e:#}\n{}", policy.toml()),
            }
        }
        panic!("no free port for the gateway");
    }

    /// `user` logs in over plain HTTP as the listed client: the gateway's access token.
    async fn log_in(&self, user: &str) -> String {
        self.log_in_answer(user).await.access_token()
    }

    /// The same, with the whole token answer (the refresh token too).
    async fn log_in_answer(&self, user: &str) -> TokenAnswer {
        let pkce = Pkce::new();
        let (request, code) = listed_code(&self.server, &pkce, user).await;
        let answer = redeem(&self.server, &request, &code, &pkce.verifier).await;
        leaks::register(&answer.access_token());
        leaks::register(&answer.refresh_token());
        answer
    }

    async fn whoami(&self, token: &str) -> portcullis_tests::upstream_token::Called {
        call_tool(&self.policy.public_url(), token, "whoami").await
    }

    /// The IdP token that reached the MCP server with `token`'s call (its
    /// `request_headers` tool says what it got): the user's own, for the leak checks.
    async fn upstream_token_of(&self, token: &str) -> String {
        let called = call_tool(&self.policy.public_url(), token, "request_headers").await;
        assert_eq!(called.status, StatusCode::OK, "{called:?}");
        let headers: serde_json::Value = serde_json::from_str(called.text.as_deref().unwrap()).unwrap();
        let bearer = headers["authorization"].as_str().and_then(|v| v.strip_prefix("Bearer ")).expect("a Bearer token reached the MCP server").to_owned();
        assert_ne!(bearer, token, "the client's own token never goes on");
        leaks::register(&bearer);
        bearer
    }

    fn refreshes(&mut self) -> usize {
        self.idp.token_requests().iter().filter(|l| l.starts_with("TOKEN refresh_token")).count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_reaches_the_mcp_server_with_their_own_token_renewed_as_it_expires() {
    let mut setup = Setup::start("").await;

    // Chromium, the official SDK client: discovery, registration, consent, login as carol.
    let report = sdk_client(&[&setup.policy.public_url(), "--user", "carol", "--tool", "whoami"]).await;
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["callText"], "carol", "the MCP server saw carol's own IdP token: {report:#}");

    // Two more users; each one's calls are answered as that user.
    let alice = setup.log_in("alice").await;
    let bob = setup.log_in("bob").await;
    let alice_upstream = setup.upstream_token_of(&alice).await;
    let bob_upstream = setup.upstream_token_of(&bob).await;
    assert_ne!(alice_upstream, bob_upstream);
    for (token, user) in [(&alice, "alice"), (&bob, "bob")] {
        let called = setup.whoami(token).await;
        assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some(user)), "{called:?}");
    }
    assert_eq!(setup.refreshes(), 0, "fresh tokens are not renewed");

    // The IdP's tokens expire every 4 s: three expiries, one renewal each per user.
    for round in 1..=3 {
        tokio::time::sleep(Duration::from_secs(ACCESS_TTL)).await;
        for (token, user) in [(&alice, "alice"), (&bob, "bob")] {
            let called = setup.whoami(token).await;
            assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some(user)), "round {round}: {called:?}");
        }
        let refreshes = settled(&(2 * round), || setup.refreshes()).await;
        assert_eq!(refreshes, 2 * round, "round {round}: {:?}", setup.idp.token_requests());
    }
    let renewed = setup.upstream_token_of(&alice).await;
    assert_ne!(renewed, alice_upstream, "a renewed token went upstream");
    let lines = setup.idp.token_requests();
    assert!(lines.iter().filter(|l| l.starts_with("TOKEN refresh_token")).all(|l| l.ends_with(" 200")), "{lines:?}");
    // Every request the MCP server saw carried an active token of the user who called.
    let introspected = setup.mcp.introspected();
    assert!(!introspected.is_empty() && introspected.iter().all(|l| l.starts_with("INTROSPECTED active")), "{introspected:#?}");
    for user in ["alice", "bob", "carol"] {
        assert!(introspected.iter().any(|l| l.ends_with(&format!("sub={user}"))), "{user}: {introspected:#?}");
    }
    // Each refresh counted, for the operator.
    let metrics = setup.gw.metrics().await;
    let renewed = "portcullis_component_events_total{workload=\"mcp\",component=\"builtin:upstream-token\",event=\"token-renewed\"} 6";
    assert!(metrics.contains(renewed), "{metrics}");
    drop(setup.gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_ends_the_session_s_tokens_with_a_challenge_and_no_loop() {
    let redis = RedisServer::start();
    let mut setup = Setup::start(&format!("[store]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"pc\"\n", redis.url())).await;
    let alice_login = setup.log_in_answer("alice").await;
    let alice = alice_login.access_token();
    let bob = setup.log_in("bob").await;
    let alice_upstream = setup.upstream_token_of(&alice).await;
    let bob_upstream = setup.upstream_token_of(&bob).await;
    let sid = |token: &str| jwt_parts(token).1["sid"].as_str().unwrap().to_owned();
    let records = || redis.keys().into_iter().filter(|k| k.contains("session")).collect::<Vec<_>>();
    let record_of = |token: &str| records().into_iter().find(|k| k.contains(&format!("session:{}", sid(token))));
    assert!(record_of(&alice).is_some() && record_of(&bob).is_some(), "{:?}", records());

    // Nothing the test saw is in Redis in plain text, keys or values.
    let dump: String = redis.keys().iter().map(|k| format!("{k}={}\n", redis.get(k).unwrap_or_default())).collect();
    for secret in [&alice, &bob, &alice_upstream, &bob_upstream] {
        assert!(!dump.contains(secret.as_str()), "a token is stored in plain text");
    }

    // Redis paused while alice's token is due: 503, nothing refreshed, the old tokens kept.
    tokio::time::sleep(Duration::from_secs(ACCESS_TTL)).await;
    let sealed_before = redis.get(&record_of(&alice).unwrap());
    redis.pause();
    let called = setup.whoami(&alice).await;
    redis.resume();
    assert_eq!(called.status, StatusCode::SERVICE_UNAVAILABLE, "{called:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(setup.refreshes(), 0, "no refresh without the store");
    assert_eq!(redis.get(&record_of(&alice).unwrap()), sealed_before, "the old tokens are kept");
    let seen = setup.mcp.introspected().len();
    let called = setup.whoami(&alice).await;
    assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some("alice")), "{called:?}");
    assert_eq!(settled(&1, || setup.refreshes()).await, 1);
    // The MCP server's line about this call comes after its answer: awaited, so the count below starts after it.
    assert_eq!(settled(&(seen + 1), || setup.mcp.introspected().len()).await, seen + 1);

    // The IdP revokes alice's grant: her next call meets the MCP server's 401,
    // one refresh is tried and refused, and she is sent to log in again.
    setup.idp.command("revoke-user alice", "REVOKED-USER").await;
    let (idp_before, mcp_before) = (setup.idp.token_requests().len(), setup.mcp.introspected().len());
    let called = setup.whoami(&alice).await;
    assert_eq!(called.status, StatusCode::UNAUTHORIZED, "{called:?}");
    let challenge = called.www_authenticate.unwrap_or_default();
    assert!(
        challenge.contains(&format!("resource_metadata=\"http://127.0.0.1:{}/.well-known/oauth-protected-resource/mcp\"", setup.policy.port)),
        "{challenge}"
    );
    settled(&(idp_before + 1), || setup.idp.token_requests().len()).await;
    settled(&(mcp_before + 1), || setup.mcp.introspected().len()).await;
    // Anything more would come now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idp_after, mcp_after) = (setup.idp.token_requests(), setup.mcp.introspected());
    assert_eq!(&idp_after[idp_before..], ["TOKEN refresh_token 400"], "exactly one refresh, refused");
    assert_eq!(mcp_after[mcp_before..].to_vec(), ["INTROSPECTED inactive sub=-"], "the request was not sent again");
    assert_eq!(record_of(&alice), None, "alice's upstream tokens are gone from the store");
    assert!(!records().iter().any(|k| k.contains(&sid(&alice))), "and so is her session: {:?}", records());
    assert_eq!(refresh(&setup.server, &alice_login.refresh_token()).await.error(), "invalid_grant", "her client logs in again, it cannot refresh");
    let metrics = setup.gw.metrics().await;
    for event in ["token-renewed\"} 1", "token-renewal-failed\"} 1", "session-ended\"} 1"] {
        assert!(metrics.contains(&format!("component=\"builtin:upstream-token\",event=\"{event}")), "{event}: {metrics}");
    }
    // Again: answered at once, nothing reaches the IdP or the MCP server.
    let called = setup.whoami(&alice).await;
    assert_eq!(called.status, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((setup.idp.token_requests().len(), setup.mcp.introspected().len()), (idp_after.len(), mcp_after.len()));
    // Bob is untouched.
    assert!(record_of(&bob).is_some());
    let called = setup.whoami(&bob).await;
    assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some("bob")), "{called:?}");
    drop(setup.gw);
}

/// `portcullis sessions`: an operator lists the sessions (subjects,
/// providers, expiry, never a token) and ends one user's; her next call is
/// sent to log in again and her refresh token stops working, the other's
/// session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_lists_sessions_and_ends_one_user_s() {
    let redis = RedisServer::start();
    let setup = Setup::start(&format!("[store]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"pc\"\n", redis.url())).await;
    let alice = setup.log_in_answer("alice").await;
    let bob = setup.log_in_answer("bob").await;
    let alice_upstream = setup.upstream_token_of(&alice.access_token()).await;
    let home = tempfile::tempdir().unwrap();
    let policy = home.path().join("policy.toml");
    std::fs::write(&policy, setup.policy.toml()).unwrap();
    let policy = policy.display().to_string();
    let run = |args: &[&str]| {
        let output = cli(home.path(), PASSWORD, args, None);
        (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
    };

    let (code, listed, stderr) = run(&["sessions", "list", "--policy", &policy, "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let sessions: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let subjects: Vec<&str> = sessions.iter().map(|s| s["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["alice", "bob"], "{listed}");
    let sid = |answer: &TokenAnswer| jwt_parts(&answer.access_token()).1["sid"].as_str().unwrap().to_owned();
    assert_eq!(sessions[0]["session"], sid(&alice).as_str());
    assert_eq!((&sessions[0]["workload"], &sessions[0]["providers"], &sessions[0]["client_id"]), (&"mcp".into(), &serde_json::json!(["corp"]), &"cli".into()));
    assert!(sessions[0]["expires_at"].as_u64().unwrap() > sessions[0]["created_at"].as_u64().unwrap());
    let (_, table, _) = run(&["sessions", "list", "--policy", &policy]);
    assert!(table.contains("alice") && table.contains(&sid(&bob)), "{table}");
    for secret in [alice.access_token(), alice.refresh_token(), alice_upstream.clone()] {
        assert!(!listed.contains(&secret) && !table.contains(&secret), "a token in the listing");
    }

    let (code, _, stderr) = run(&["sessions", "revoke", "--policy", &policy, "--workload", "mcp", "--subject", "alice"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("revoked 1 session"), "{stderr}");
    let called = setup.whoami(&alice.access_token()).await;
    assert_eq!(called.status, StatusCode::UNAUTHORIZED, "{called:?}");
    assert!(called.www_authenticate.unwrap_or_default().contains("resource_metadata="));
    assert_eq!(refresh(&setup.server, &alice.refresh_token()).await.error(), "invalid_grant", "her refresh token stopped working");
    let called = setup.whoami(&bob.access_token()).await;
    assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some("bob")), "{called:?}");
    assert_eq!(refresh(&setup.server, &bob.refresh_token()).await.status, StatusCode::OK);
    let (_, listed, _) = run(&["sessions", "list", "--policy", &policy, "--json"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(!redis.keys().iter().any(|k| k.contains(&sid(&alice))), "nothing of alice's session is left: {:?}", redis.keys());
    // A session id that is not one, and the memory store, are refused with a clear error.
    let (code, _, stderr) = run(&["sessions", "revoke", "--policy", &policy, "--workload", "mcp", "not-a-session"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not a session id"), "{stderr}");
    std::fs::write(home.path().join("memory.toml"), setup.policy.toml().replace(&setup.policy.store, "")).unwrap();
    let (code, _, stderr) = run(&["sessions", "list", "--policy", &home.path().join("memory.toml").display().to_string()]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("inside the gateway process"), "{stderr}");
    drop(setup.gw);
}

/// Two gateway processes on one Redis behind HAProxy: 50 calls of one user
/// at once, just after her token expired, spread over both replicas; the
/// IdP sees exactly one refresh per expiry, and every call is answered as her.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_renew_each_expiry_once_for_fifty_concurrent_calls() {
    let mut d = Deployment::start_with(
        &["--access-ttl", &ACCESS_TTL.to_string()],
        |issuer| {
            let issuer = issuer.to_owned();
            async move {
                let mcp = IntrospectingMcpServer::start(&issuer).await;
                let url = mcp.url();
                (mcp, url)
            }
        },
        |policy| inject_user_tokens(policy, 1),
    )
    .await;
    let pkce = Pkce::new();
    let (request, code) = listed_code(&d.server, &pkce, "alice").await;
    let token = redeem(&d.server, &request, &code, &pkce.verifier).await.access_token();
    let called = call_tool(&d.mcp_url(), &token, "whoami").await;
    assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some("alice")), "{called:?}");

    let admitted = |d: &Deployment<IntrospectingMcpServer>| d.replicas.iter().map(|r| r.log().matches("request admitted").count()).collect::<Vec<_>>();
    let before = admitted(&d);
    for expiry in 1..=2 {
        tokio::time::sleep(Duration::from_secs(ACCESS_TTL)).await;
        let url = d.mcp_url();
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (url, token) = (url.clone(), token.clone());
            calls.spawn(async move { call_tool(&url, &token, "whoami").await });
        }
        let answers = calls.join_all().await;
        let wrong: Vec<_> = answers.iter().filter(|c| c.status != StatusCode::OK || c.text.as_deref() != Some("alice")).collect();
        assert!(wrong.is_empty(), "expiry {expiry}: {wrong:?}");
        let one_each = vec!["TOKEN refresh_token 200".to_owned(); expiry];
        let read = || d.idp.token_requests().into_iter().filter(|l| l.starts_with("TOKEN refresh_token")).collect::<Vec<String>>();
        settled(&one_each, read).await;
        // A second refresh would show now.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let refreshes: Vec<String> = d.idp.token_requests().into_iter().filter(|l| l.starts_with("TOKEN refresh_token")).collect();
        assert_eq!(refreshes, one_each, "expiry {expiry}: one refresh reached the IdP");
    }
    let after = admitted(&d);
    assert!(before.iter().zip(&after).all(|(b, a)| a > b), "both replicas served the calls: {before:?} -> {after:?}");
    // One audit line per refresh, in whichever replica made it.
    let audits: usize = d.replicas.iter().map(|r| r.log().matches("audit: renewed the upstream token of `alice` from `corp`").count()).sum();
    assert_eq!(audits, 2);
    let introspected = d.mcp.introspected();
    assert!(introspected.iter().all(|l| l == "INTROSPECTED active sub=alice"), "{introspected:#?}");
}

/// Two upstream providers for one workload: `corp`, where users log in, and
/// `tracker`, a second real IdP whose token the MCP server checks in
/// `X-Tracker-Token` for its tool `whoami_header` only. A login asking for
/// `upstream:tracker` goes through both; one that tracker declines goes on
/// without it: the corp tools keep working, and the tracker tool answers 403
/// `insufficient_scope` naming `upstream:tracker` until the client asks for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_provider_is_logged_in_when_asked_for_and_its_absence_breaks_only_its_tools() {
    let port = free_port();
    let callback = [format!("http://127.0.0.1:{port}/oauth/callback")];
    let idp = CompanyIdp::start_with(&callback, &[]).await;
    let mut tracker = CompanyIdp::start_with(&callback, &[]).await;
    let mut mcp = IntrospectingMcpServer::start_with(&idp.issuer, &["--introspect-header", "X-Tracker-Token", &tracker.issuer]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut policy = ServerPolicy::new(port, &mcp.url(), &idp.issuer);
    policy.key_dir = dir.path().join("keys").display().to_string();
    policy.store_grant = format!("\"{NAMESPACE}\"");
    policy.more_http = vec![tracker.issuer.clone()];
    policy.more = format!(
        "  [[workloads.server.config.upstreams]]\n  name = \"tracker\"\n  issuer = \"{tracker}\"\n  client_id = \"{IDP_CLIENT_ID}\"\n  scopes = [\"openid\"]\n{corp}{second}",
        tracker = tracker.issuer,
        corp = injector("corp", &idp.issuer, "renew_before_seconds = 1"),
        second = injector("tracker", &tracker.issuer, "header = \"X-Tracker-Token\", tools = [\"whoami_header\"]"),
    );
    prepare_dir(dir.path(), &["as-1"], PASSWORD);
    let gw = TestGateway::start_in(dir, &policy.toml()).await.unwrap_or_else(|e| panic!("{e:#}\n{}", policy.toml()));
    let server = Discovered::from(&policy.public_url()).await;
    let scopes = server.metadata["scopes_supported"].clone();
    assert_eq!(scopes, serde_json::json!(["mcp", "upstream:tracker"]), "the further provider's scope is offered");

    let log_in = |user: &'static str, scope: &'static str| {
        let server = &server;
        async move {
            let pkce = Pkce::new();
            let mut request = Authorize::listed(&server.resource, &pkce, 43210);
            request.scope = Some(scope.into());
            let landing = login(&request.url(&server.endpoint("authorization_endpoint")), user, &request.redirect_uri).await;
            let answer = redeem(server, &request, &landing.code(), &pkce.verifier).await;
            leaks::register(&answer.access_token());
            answer
        }
    };
    let url = policy.public_url();
    let tracker_logins = |tracker: &mut CompanyIdp| tracker.token_requests().iter().filter(|l| l.starts_with("TOKEN authorization_code 200")).count();

    // alice asks for the tracker too: her login goes through both providers.
    let alice = log_in("alice", "mcp upstream:tracker").await;
    assert_eq!(alice.body["scope"], "mcp upstream:tracker", "{alice:?}");
    assert_eq!(tracker_logins(&mut tracker), 1);
    let alice = alice.access_token();
    for (tool, user) in [("whoami", "alice"), ("whoami_header", "alice")] {
        let called = call_tool(&url, &alice, tool).await;
        assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some(user)), "{tool}: {called:?}");
    }
    // Her tracker token goes only with the tracker's tools.
    let headers = call_tool(&url, &alice, "request_headers").await;
    let headers: serde_json::Value = serde_json::from_str(headers.text.as_deref().unwrap()).unwrap();
    assert!(headers["authorization"].is_string() && headers.get("x-tracker-token").is_none(), "{headers}");

    // Carol asks for the corp provider only: the tracker is not visited.
    let carol = log_in("carol", "mcp").await;
    assert_eq!(carol.body["scope"], "mcp");
    assert_eq!(tracker_logins(&mut tracker), 1, "no tracker login was asked for");

    // The tracker declines bob: his login completes without it.
    tracker.command("decline-authorizations 1", "DECLINING").await;
    let bob = log_in("bob", "mcp upstream:tracker").await;
    assert_eq!(bob.body["scope"], "mcp", "the declined provider's scope is not granted: {bob:?}");
    assert_eq!(tracker_logins(&mut tracker), 1);
    for token in [bob.access_token(), carol.access_token()] {
        let called = call_tool(&url, &token, "whoami").await;
        assert_eq!(called.status, StatusCode::OK, "the corp tools keep working: {called:?}");
        // The MCP server prints its line about a request after answering it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = mcp.introspected().len();
        let called = call_tool(&url, &token, "whoami_header").await;
        assert_eq!(called.status, StatusCode::FORBIDDEN, "{called:?}");
        let challenge = called.www_authenticate.unwrap_or_default();
        assert!(challenge.starts_with("Bearer error=\"insufficient_scope\", scope=\"upstream:tracker\""), "{challenge}");
        assert!(challenge.contains(&format!("resource_metadata=\"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp\"")), "{challenge}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(mcp.introspected().len(), before, "the refused call did not reach the MCP server");
    }

    // Bob asks for the tracker's scope (step-up): a new login through both.
    let bob = log_in("bob", "mcp upstream:tracker").await;
    assert_eq!(bob.body["scope"], "mcp upstream:tracker");
    assert_eq!(tracker_logins(&mut tracker), 2);
    let called = call_tool(&url, &bob.access_token(), "whoami_header").await;
    assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some("bob")), "{called:?}");
    // (Dropping the gateway checks that no token the test saw was logged.)
    drop(gw);
}

/// `builtin:token-exchange` with `subject = "stored"`: the token exchanged
/// is not the client's but the user's own upstream token, which the
/// authorization server stored at login (sealed, under the session). The STS
/// (`sts.mjs --subject-introspection`) accepts only the company IdP's
/// tokens, checked by introspection there, and issues its own for the same
/// user; the MCP server checks every token at the STS, so `whoami` answers
/// only with a token exchanged from that user's stored one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_upstream_token_is_exchanged_for_each_user() {
    use portcullis_tests::token_exchange::{AUDIENCE, CLIENT_SECRET, CLIENT_SECRET_NAME, Sts};
    let port = free_port();
    let idp = CompanyIdp::start_with(&[format!("http://127.0.0.1:{port}/oauth/callback")], &[]).await;
    let mut sts = Sts::start_for(&idp.issuer, &["alice", "bob"], &["--subject-introspection"]).await;
    let mut mcp = IntrospectingMcpServer::start(&sts.issuer).await;
    let dir = tempfile::tempdir().unwrap();
    prepare_dir(dir.path(), &["as-1"], PASSWORD);
    add_secret(dir.path(), PASSWORD, CLIENT_SECRET_NAME, CLIENT_SECRET);
    leaks::register(CLIENT_SECRET);
    let mut policy = ServerPolicy::new(port, &mcp.url(), &idp.issuer);
    policy.key_dir = dir.path().join("keys").display().to_string();
    policy.store_grant = format!("\"{NAMESPACE}\"");
    policy.more = format!(
        r#"  [[workloads.outbound]]
  component = "builtin:token-exchange"
  config = {{ token_endpoint = "{sts}/token", audience = "{AUDIENCE}", client_id = "gateway-basic", client_secret = "{CLIENT_SECRET_NAME}", subject = "stored", provider = "corp", token_key_secret = "{TOKEN_KEY_SECRET}" }}
  grants = {{ http = ["{sts}"], http_private = true, secrets = ["{CLIENT_SECRET_NAME}", "{TOKEN_KEY_SECRET}"], store = "{NAMESPACE}" }}
  limits = {{ deadline_ms = 5000 }}
"#,
        sts = sts.issuer
    );
    let gw = TestGateway::start_in(dir, &policy.toml()).await.unwrap_or_else(|e| panic!("{e:#}\n{}", policy.toml()));
    let server = Discovered::from(&policy.public_url()).await;
    let log_in = async |user: &str| {
        let pkce = Pkce::new();
        let (request, code) = listed_code(&server, &pkce, user).await;
        let token = redeem(&server, &request, &code, &pkce.verifier).await.access_token();
        leaks::register(&token);
        token
    };
    let (alice, bob) = (log_in("alice").await, log_in("bob").await);
    for _ in 0..2 {
        for (token, user) in [(&alice, "alice"), (&bob, "bob")] {
            let called = call_tool(&policy.public_url(), token, "whoami").await;
            assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some(user)), "{called:?}");
        }
    }
    // One exchange per user (the second round came from the cache), each of that user's stored token.
    let exchanges = settled(&2, || sts.exchanges().len()).await;
    assert_eq!(exchanges, 2, "{:?}", sts.exchanges());
    for user in ["alice", "bob"] {
        assert!(sts.exchanges().iter().any(|l| l.starts_with("EXCHANGE 200") && l.contains(&format!("sub={user} "))), "{user}: {:?}", sts.exchanges());
    }
    let introspected = settled(&4, || mcp.introspected().len()).await;
    assert_eq!(introspected, 4);
    assert!(mcp.introspected().iter().all(|l| l.starts_with("INTROSPECTED active")), "{:?}", mcp.introspected());

    // carol logs in, but the STS does not know her: her stored token is refused there, and she gets 401.
    let carol = log_in("carol").await;
    let called = call_tool(&policy.public_url(), &carol, "whoami").await;
    assert_eq!(called.status, StatusCode::UNAUTHORIZED, "{called:?}");
    assert!(sts.exchanges().iter().any(|l| l.starts_with("EXCHANGE 400") && l.contains("sub=carol ")), "{:?}", sts.exchanges());
    drop(gw);
}

/// A workload may trust another issuer besides its embedded server (here a
/// partner's HS256 tokens). Such a token can name any `sid`: one naming
/// alice's session passes the inbound chain as mallory, and the injector
/// must still not hand mallory alice's upstream token, because only the
/// embedded server's tokens carry sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_trusted_issuer_s_token_naming_a_session_gets_no_upstream_token() {
    const PARTNER: &str = "https://partner.example";
    const PARTNER_KEY: &str = "partner-hmac-key-of-at-least-32-bytes!!";
    let port = free_port();
    let idp = CompanyIdp::start_with(&[format!("http://127.0.0.1:{port}/oauth/callback")], &[]).await;
    let mut mcp = IntrospectingMcpServer::start(&idp.issuer).await;
    let dir = tempfile::tempdir().unwrap();
    prepare_dir(dir.path(), &["as-1"], PASSWORD);
    add_secret(dir.path(), PASSWORD, "partner:hs", PARTNER_KEY);
    leaks::register(PARTNER_KEY);
    let mut policy = ServerPolicy::new(port, &mcp.url(), &idp.issuer);
    policy.key_dir = dir.path().join("keys").display().to_string();
    inject_user_tokens(&mut policy, 1);
    // The verifier trusts the embedded server and the partner.
    let embedded = "config = { embedded_server = true, ";
    let toml = policy.toml().replacen(
        embedded,
        &format!("grants = {{ secrets = [\"partner:hs\"] }}\n  {embedded}providers = [{{ issuer = \"{PARTNER}\", algorithms = [\"HS256\"], hs_secret = \"partner:hs\" }}], "),
        1,
    );
    assert_ne!(toml, policy.toml());
    let gw = TestGateway::start_in(dir, &toml).await.unwrap_or_else(|e| panic!("{e:#}\n{toml}"));
    let server = Discovered::from(&policy.public_url()).await;
    let pkce = Pkce::new();
    let (request, code) = listed_code(&server, &pkce, "alice").await;
    let alice = redeem(&server, &request, &code, &pkce.verifier).await.access_token();
    leaks::register(&alice);
    let called = call_tool(&policy.public_url(), &alice, "whoami").await;
    assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some("alice")), "{called:?}");

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({"iss": PARTNER, "sub": "mallory", "aud": policy.public_url(), "iat": now, "exp": now + 300,
        "scope": "mcp", "sid": jwt_parts(&alice).1["sid"]});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    let mallory = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(PARTNER_KEY.as_bytes())).unwrap();
    leaks::register(&mallory);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = mcp.introspected().len();
    let called = call_tool(&policy.public_url(), &mallory, "whoami").await;
    assert_eq!(called.status, StatusCode::UNAUTHORIZED, "{called:?}");
    // The injector's challenge, not a verifier's: the token passed the inbound chain.
    let challenge = called.www_authenticate.unwrap_or_default();
    assert!(challenge.contains("error_description=\"log in again\""), "{challenge}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(mcp.introspected().len(), seen, "nothing reached the MCP server");
    drop(gw);
}

/// The provider answers a refresh with 200 but no `access_token` (malformed:
/// RFC 6749 §5.1 requires it). Nothing of it is stored: the request fails
/// closed (503, the token having expired), the sealed record stays as it
/// was, and since the provider did rotate, the next renewal with the kept
/// refresh token is refused as reuse and the user is sent to log in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_answer_without_an_access_token_fails_closed_and_stores_nothing() {
    let redis = RedisServer::start();
    let mut setup = Setup::start(&format!("[store]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"pc\"\n", redis.url())).await;
    let alice = setup.log_in("alice").await;
    let called = setup.whoami(&alice).await;
    assert_eq!((called.status, called.text.as_deref()), (StatusCode::OK, Some("alice")), "{called:?}");
    let sid = jwt_parts(&alice).1["sid"].as_str().unwrap().to_owned();
    let record = redis.keys().into_iter().find(|k| k.ends_with(&format!("session:{sid}:corp"))).expect("alice's record");
    let sealed_before = redis.get(&record);

    tokio::time::sleep(Duration::from_secs(ACCESS_TTL)).await;
    setup.idp.command("strip-access-token", "STRIPPING").await;
    let called = setup.whoami(&alice).await;
    assert_eq!(called.status, StatusCode::SERVICE_UNAVAILABLE, "{called:?}");
    assert_eq!(settled(&1, || setup.refreshes()).await, 1);
    assert_eq!(redis.get(&record), sealed_before, "nothing of the malformed answer was stored");

    let called = setup.whoami(&alice).await;
    assert_eq!(called.status, StatusCode::UNAUTHORIZED, "{called:?}");
    assert!(called.www_authenticate.unwrap_or_default().contains("resource_metadata="));
    let lines = setup.idp.token_requests();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("TOKEN refresh_token")).cloned().collect::<Vec<_>>(),
        ["TOKEN refresh_token 200", "TOKEN refresh_token 400"]
    );
    drop(setup.gw);
}
