//! The embedded authorization server (`builtin:oauth-server` in
//! `[workloads.server]`) end to end: the official MCP SDK client discovers it,
//! registers, logs in with Chromium at the company IdP it federates to, and
//! reaches a real MCP server through the gateway, which never passes a token
//! on; then bad input on every route, each refused with the right OAuth error
//! and nothing stored (counted in Redis).

use portcullis_tests::gateway::{PASSWORD, TestGateway};
use portcullis_tests::leaks;
use portcullis_tests::node::free_port;
use portcullis_tests::oauth::{
    Authorize, Browser, CompanyIdp, Consent, Discovered, HeaderReportingMcpServer, LISTED_CLIENT, Landing, Pkce, ServerPolicy, Stored, client, jwt_parts,
    listed_code, login, mcp_status, prepare_dir, random, redeem, refresh, register, sdk_client, token,
};
use portcullis_tests::redis::RedisServer;
use reqwest::StatusCode;

/// A gateway whose workload `mcp` runs the authorization server, with the IdP and the MCP server behind it.
pub(crate) struct Setup {
    pub gw: TestGateway,
    pub policy: ServerPolicy,
    pub server: Discovered,
    pub mcp: HeaderReportingMcpServer,
    pub idp: CompanyIdp,
}

impl Setup {
    /// `adjust` edits the policy (config lines, store, keys) before the start.
    pub(crate) async fn start(adjust: impl Fn(&mut ServerPolicy)) -> Setup {
        let mcp = HeaderReportingMcpServer::start().await;
        for _ in 0..5 {
            let port = free_port();
            let idp = CompanyIdp::start(&[format!("http://127.0.0.1:{port}/oauth/callback")]).await;
            let dir = tempfile::tempdir().unwrap();
            let mut policy = ServerPolicy::new(port, &mcp.url(), &idp.issuer);
            // Absolute: the in-process gateway's working directory is not the policy's.
            policy.key_dir = dir.path().join("keys").display().to_string();
            adjust(&mut policy);
            prepare_dir(dir.path(), &["as-1", "as-2"], PASSWORD);
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

    pub(crate) fn mcp_url(&self) -> String {
        self.policy.public_url()
    }

    pub(crate) fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.policy.port)
    }
}

fn with_redis(redis: &RedisServer) -> impl Fn(&mut ServerPolicy) + '_ {
    move |p: &mut ServerPolicy| {
        p.store = format!("[store]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"pc\"\n", redis.url());
        p.config = "  registration_per_minute = 3\n".into();
    }
}

/// The keys in Redis, but for the per-source registration counters (which a refused request may count).
fn stored(redis: &RedisServer) -> Vec<String> {
    redis.keys().into_iter().filter(|k| !k.contains(":rl:")).collect()
}

#[tokio::test]
async fn the_sdk_client_logs_in_through_the_gateway_and_the_mcp_server_sees_no_token() {
    let mut setup = Setup::start(|_| {}).await;
    let report = sdk_client(&[&setup.mcp_url(), "--tool", "request_headers", "--refresh"]).await;
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["firstStatus"], "unauthorized", "the first connection met a 401 and discovered the server");
    assert_eq!(report["registered"], true, "no CIMD URL offered: the SDK registered dynamically");

    // What the SDK sent and got: PKCE S256, the workload as resource, RFC 9207 `iss` back.
    let authorize = &report["authorizeParams"];
    assert_eq!(authorize["code_challenge_method"], "S256", "{authorize}");
    assert_eq!(authorize["resource"], setup.server.resource.as_str(), "{authorize}");
    assert_eq!(report["callbackParams"]["iss"], setup.issuer().as_str(), "{report:#}");
    assert_eq!(report["callbackParams"]["state"], authorize["state"], "{report:#}");

    // The access token: an RFC 9068 JWT from this server for this workload and this client.
    assert_eq!(report["tokenHeader"]["typ"], "at+jwt", "{report:#}");
    let claims = &report["tokenClaims"];
    assert_eq!(claims["iss"], setup.issuer().as_str(), "{claims}");
    assert!(claims["aud"] == setup.server.resource.as_str() || claims["aud"][0] == setup.server.resource.as_str(), "{claims}");
    assert_eq!(claims["client_id"], report["clientId"], "{claims}");
    assert_eq!(claims["sub"], "alice", "the IdP's subject: {claims}");
    for claim in ["exp", "iat", "jti", "scope", "sid"] {
        assert!(!claims[claim].is_null(), "{claim} missing: {claims}");
    }
    assert_eq!(report["hasRefreshToken"], true);

    // Tools reached through the gateway, and no token reached the MCP server.
    let tools = report["tools"].as_array().unwrap();
    assert!(tools.iter().any(|t| t == "echo") && tools.iter().any(|t| t == "request_headers"), "{tools:?}");
    let headers: serde_json::Value = serde_json::from_str(report["callText"].as_str().unwrap()).unwrap();
    assert!(headers.get("authorization").is_none(), "the MCP server got an Authorization header: {headers}");
    assert_eq!(report["tokenInCall"], false);
    let bearer = headers.as_object().unwrap().values().filter_map(|v| v.as_str()).any(|v| v.to_ascii_lowercase().contains("bearer") || v.starts_with("eyJ"));
    assert!(!bearer, "a token-like header reached the MCP server: {headers}");
    // The SDK's refresh: a new access token and a rotated refresh token, which reach the tools.
    let refreshed = &report["refreshed"];
    assert_eq!(refreshed["result"], "AUTHORIZED", "{report:#}");
    assert_eq!((&refreshed["newAccessToken"], &refreshed["rotatedRefreshToken"]), (&true.into(), &true.into()), "{refreshed}");
    assert!(refreshed["tools"].as_u64().unwrap() >= 5, "{refreshed}");

    let requests = setup.mcp.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| r.ends_with("auth=no")), "{requests:#?}");
}

/// Bad authorization requests: refused before any login, with the error
/// redirected only to a trusted client's registered redirect URI, and nothing stored.
#[tokio::test]
async fn bad_authorization_requests_are_refused_and_store_nothing() {
    let redis = RedisServer::start();
    let setup = Setup::start(with_redis(&redis)).await;
    let server = &setup.server;
    let endpoint = server.endpoint("authorization_endpoint");
    let pkce = Pkce::new();
    let before = stored(&redis);

    // Refusals redirected to the (trusted) client with an OAuth error, `state` and `iss`.
    type Edit = fn(&mut Authorize);
    let redirected: [(&str, Edit, &[&str]); 6] = [
        ("no code_challenge", |a| a.challenge = None, &["invalid_request"]),
        ("plain PKCE", |a| a.method = Some("plain".into()), &["invalid_request"]),
        ("no code_challenge_method (plain by default)", |a| a.method = None, &["invalid_request"]),
        ("no resource", |a| a.resource = None, &["invalid_target", "invalid_request"]),
        ("another server's resource", |a| a.resource = Some("http://127.0.0.1:1/other".into()), &["invalid_target"]),
        ("a scope outside the list", |a| a.scope = Some("admin".into()), &["invalid_scope"]),
    ];
    for (case, edit, errors) in redirected {
        let mut request = Authorize::listed(&server.resource, &pkce, 40001);
        edit(&mut request);
        let landing = login(&request.url(&endpoint), "alice", &request.redirect_uri).await;
        let error = landing.param("error").unwrap_or_else(|| panic!("{case}: not refused with a redirect: {landing:?}"));
        assert!(errors.contains(&error.as_str()), "{case}: error={error}, want one of {errors:?}");
        assert_eq!(landing.param("state").as_deref(), Some(request.state.as_str()), "{case}: state round-tripped");
        assert_eq!(landing.param("iss").as_deref(), Some(setup.issuer().as_str()), "{case}: RFC 9207 iss");
        assert!(landing.param("code").is_none(), "{case}");
        assert_eq!(stored(&redis), before, "{case}: nothing stored");
    }

    // Untrusted redirect URIs and clients: an error page, never a redirect (no open redirect).
    let shown: [(&str, Edit); 8] = [
        ("path differs by case", |a| a.redirect_uri = a.redirect_uri.replace("/callback", "/Callback")),
        ("trailing slash", |a| a.redirect_uri.push('/')),
        ("https instead of http", |a| a.redirect_uri = a.redirect_uri.replace("http:", "https:")),
        ("localhost for a 127.0.0.1 registration", |a| a.redirect_uri = a.redirect_uri.replace("127.0.0.1", "localhost")),
        ("another host", |a| a.redirect_uri = "http://evil.example/callback".into()),
        ("unknown client", |a| a.client_id = "nobody".into()),
        ("CIMD client id over http", |a| a.client_id = "http://127.0.0.1:9/client.json".into()),
        ("CIMD client id on a private address", |a| a.client_id = "https://10.0.0.1/client.json".into()),
    ];
    for (case, edit) in shown {
        let mut request = Authorize::listed(&server.resource, &pkce, 40001);
        edit(&mut request);
        let landing = login(&request.url(&endpoint), "alice", &request.redirect_uri).await;
        match &landing {
            Landing::Page { status, url, body } => {
                assert_eq!(*status, StatusCode::BAD_REQUEST, "{case}: {url} {body}");
                assert!(url.starts_with(&endpoint), "{case}: shown by the authorization endpoint, not after a redirect: {url}");
            }
            Landing::Redirect { .. } => panic!("{case}: redirected to an untrusted redirect URI: {landing:?}"),
        }
        // Nothing stored, but for a CIMD fetch's failure, cached briefly (so a bad URL is not fetched on every request).
        for key in stored(&redis).into_iter().filter(|k| !before.contains(k)) {
            assert!(case.starts_with("CIMD") && key.contains(":cimd:"), "{case}: stored {key}");
            let ttl = redis.ttl(&key);
            assert!((1..=300).contains(&ttl), "{case}: a failure is cached briefly, not {ttl} s");
        }
    }

    // A registered web client's https redirect URI matches exactly: another
    // port, case, a trailing slash or http are untrusted (an error page).
    let metadata = serde_json::json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "none", "application_type": "web"});
    let web_client = register(server, metadata).await;
    let authorize_web = |redirect_uri: &str| {
        let mut request = Authorize::listed(&server.resource, &pkce, 1);
        (request.client_id, request.redirect_uri) = (web_client.clone(), redirect_uri.to_owned());
        client().get(request.url(&endpoint)).send()
    };
    let accepted = authorize_web("https://app.example/cb").await.unwrap();
    assert_eq!(accepted.status(), StatusCode::OK, "the registered URI is accepted: the person is asked");
    assert!(accepted.text().await.unwrap().contains("https://app.example/cb"), "the consent page names the redirect URI");
    let before = stored(&redis);
    for (case, redirect_uri) in [
        ("another port", "https://app.example:8443/cb"),
        ("path case", "https://app.example/CB"),
        ("trailing slash", "https://app.example/cb/"),
        ("http", "http://app.example/cb"),
    ] {
        let response = authorize_web(redirect_uri).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert!(response.headers().get("location").is_none(), "{case}: redirected");
        assert_eq!(stored(&redis), before, "{case}: nothing stored");
    }

    // Loopback redirect URIs match on any port (RFC 8252 7.3): two ports, two codes.
    for port in [40002, 5] {
        let request = Authorize::listed(&server.resource, &pkce, port);
        let landing = login(&request.url(&endpoint), "alice", &request.redirect_uri).await;
        assert!(landing.param("code").is_some(), "port {port}: {landing:?}");
    }
}

/// A CIMD client id on a private address is never fetched (the HTTP import's
/// address rule, before any TLS): the listener sees no connection.
#[tokio::test]
async fn a_cimd_client_id_on_loopback_is_not_fetched() {
    let setup = Setup::start(|_| {}).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = tokio::spawn(async move { tokio::time::timeout(std::time::Duration::from_secs(3), listener.accept()).await.is_ok() });
    let pkce = Pkce::new();
    let mut request = Authorize::listed(&setup.server.resource, &pkce, 40003);
    request.client_id = format!("https://127.0.0.1:{port}/client.json");
    let landing = login(&request.url(&setup.server.endpoint("authorization_endpoint")), "alice", &request.redirect_uri).await;
    assert!(matches!(&landing, Landing::Page { status, .. } if *status == StatusCode::BAD_REQUEST), "{landing:?}");
    assert!(!accepted.await.unwrap(), "the authorization server connected to a loopback CIMD URL");
}

/// Bad token requests: each refused with the right error and nothing new stored.
#[tokio::test]
async fn bad_token_requests_are_refused() {
    let redis = RedisServer::start();
    let setup = Setup::start(with_redis(&redis)).await;
    let server = &setup.server;

    // PKCE: a wrong verifier, none, and the challenge itself sent as verifier (`plain`).
    let pkce = Pkce::new();
    for (case, verifier, errors) in [
        ("wrong verifier", Pkce::new().verifier, &["invalid_grant"][..]),
        ("missing verifier", String::new(), &["invalid_grant", "invalid_request"]),
        ("plain: the challenge as verifier", pkce.challenge.clone(), &["invalid_grant"]),
    ] {
        let (request, code) = listed_code(server, &pkce, "alice").await;
        let before = stored(&redis);
        let answer = redeem(server, &request, &code, &verifier).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{case}: {answer:?}");
        assert!(errors.contains(&answer.error()), "{case}: {answer:?}");
        let after = stored(&redis);
        assert!(after.iter().all(|k| before.contains(k)), "{case}: stored {after:?} (before {before:?})");
    }

    // The redirect URI at the token endpoint must be the authorization request's.
    let (request, code) = listed_code(server, &pkce, "alice").await;
    let mut other = request.clone();
    other.redirect_uri = "http://127.0.0.1:40099/callback".into();
    let answer = redeem(server, &other, &code, &pkce.verifier).await;
    assert_eq!((answer.status, answer.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{answer:?}");

    // A replayed code is refused, and what the first redemption issued is revoked.
    let (request, code) = listed_code(server, &pkce, "alice").await;
    let first = redeem(server, &request, &code, &pkce.verifier).await;
    assert_eq!(first.cache_control.as_deref(), Some("no-store"), "{first:?}");
    let (access, refresh_token) = (first.access_token(), first.refresh_token());
    leaks::register(&access);
    leaks::register(&refresh_token);
    assert_eq!(mcp_status(&setup.mcp_url(), &access).await, StatusCode::OK);
    let replay = redeem(server, &request, &code, &pkce.verifier).await;
    assert_eq!((replay.status, replay.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{replay:?}");
    let after_replay = refresh(server, &refresh_token).await;
    assert_eq!((after_replay.status, after_replay.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "the replay revoked the first grant: {after_replay:?}");

    // A reused refresh token revokes its family: the newer token stops working too.
    let (request, code) = listed_code(server, &pkce, "bob").await;
    let issued = redeem(server, &request, &code, &pkce.verifier).await;
    let rt1 = issued.refresh_token();
    let rotated = refresh(server, &rt1).await;
    let rt2 = rotated.refresh_token();
    assert_ne!(rt1, rt2, "rotated on use");
    let (_, claims) = jwt_parts(&rotated.access_token());
    assert_eq!(claims["sub"], "bob", "{claims}");
    let reuse = refresh(server, &rt1).await;
    assert_eq!((reuse.status, reuse.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{reuse:?}");
    let newer = refresh(server, &rt2).await;
    assert_eq!((newer.status, newer.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "the family is revoked: {newer:?}");

    // Revocation (RFC 7009): a revoked refresh token no longer refreshes.
    let (request, code) = listed_code(server, &pkce, "carol").await;
    let rt = redeem(server, &request, &code, &pkce.verifier).await.refresh_token();
    let revoked = client().post(server.endpoint("revocation_endpoint")).form(&[("token", rt.as_str()), ("client_id", LISTED_CLIENT)]).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let after = refresh(server, &rt).await;
    assert_eq!((after.status, after.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{after:?}");

    // Unknown grant types and clients.
    let answer = token(&server.endpoint("token_endpoint"), &[("grant_type", "password"), ("client_id", LISTED_CLIENT)]).await;
    assert_eq!((answer.status, answer.error()), (StatusCode::BAD_REQUEST, "unsupported_grant_type"), "{answer:?}");
}

/// A callback whose `state` this server never issued is refused and stores nothing.
#[tokio::test]
async fn a_callback_with_a_foreign_state_is_refused() {
    let redis = RedisServer::start();
    let setup = Setup::start(with_redis(&redis)).await;
    let before = stored(&redis);
    // Well-formed (a state of this server's shape), but never issued by it.
    let callback = format!("{}/oauth/callback?code={}&state={}&iss={}", setup.issuer(), random(32), random(32), setup.idp.issuer);
    let response = client().get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none(), "no redirect anywhere");
    assert_eq!(stored(&redis), before);
}

/// A login the identity provider refuses (the person cancels, the provider
/// denies) ends at the client's redirect URI with `access_denied`, the
/// client's `state` and our `iss` (RFC 6749 §4.1.2.1, RFC 9207): the client
/// is told rather than left waiting. The request is used up.
#[tokio::test]
async fn a_refused_upstream_login_is_reported_to_the_client() {
    let setup = Setup::start(|_| {}).await;
    let pkce = Pkce::new();
    let request = Authorize::listed(&setup.server.resource, &pkce, 43210);
    // The server sends the browser to the IdP with a state of its own.
    let mut browser = Browser::new(Consent::Allow);
    let to_idp = browser.get(&request.url(&setup.server.endpoint("authorization_endpoint"))).await;
    assert_eq!(to_idp.status(), StatusCode::FOUND);
    let location = reqwest::Url::parse(to_idp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(&setup.idp.issuer), "{location}");
    let upstream_state = location.query_pairs().find(|(n, _)| n == "state").map(|(_, v)| v.into_owned()).unwrap();
    // What the IdP sends back when the person cancels.
    let callback = format!("{}/oauth/callback?error=access_denied&state={upstream_state}&iss={}", setup.issuer(), setup.idp.issuer);
    let back = browser.get(&callback).await;
    assert_eq!(back.status(), StatusCode::FOUND, "{:?}", back.text().await);
    let to_client = reqwest::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    assert!(to_client.as_str().starts_with(&request.redirect_uri), "{to_client}");
    let param = |name: &str| to_client.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned());
    assert_eq!(param("error").as_deref(), Some("access_denied"));
    assert_eq!(param("state").as_deref(), Some(request.state.as_str()));
    assert_eq!(param("iss"), Some(setup.issuer()));
    assert_eq!(param("code"), None);
    // Used up: the same callback again is foreign.
    assert_eq!(browser.get(&callback).await.status(), StatusCode::BAD_REQUEST);
}

/// Dynamic registration: public clients only, rate-limited per source (429 past the limit).
#[tokio::test]
async fn a_registration_flood_is_limited() {
    let redis = RedisServer::start();
    let setup = Setup::start(with_redis(&redis)).await;
    let register = setup.server.endpoint("registration_endpoint");
    let body = serde_json::json!({
        "redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"], "application_type": "native",
    });
    // A confidential client is refused (public clients only).
    let mut confidential = body.clone();
    confidential["token_endpoint_auth_method"] = "client_secret_basic".into();
    let response = client().post(&register).json(&confidential).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_client_metadata", "{error}");

    // registration_per_minute = 3 per source (the refused one above may have counted).
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(client().post(&register).json(&body).send().await.unwrap().status().as_u16());
    }
    let created = statuses.iter().take_while(|s| **s == 201).count();
    assert!((2..=3).contains(&created) && statuses[created..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(stored(&redis).iter().filter(|k| k.contains(":client:")).count(), created, "{:?}", redis.keys());
}

/// Oversize and malformed bodies on every route: a 4xx (never a 5xx, never a
/// hang), and the server still answers afterwards.
#[tokio::test]
async fn oversize_and_malformed_bodies_are_refused_on_every_route() {
    let setup = Setup::start(|_| {}).await;
    let issuer = setup.issuer();
    let routes = [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/mcp",
        "/oauth/jwks",
        "/oauth/authorize",
        "/oauth/token",
        "/oauth/register",
        "/oauth/revoke",
        "/oauth/callback",
    ];
    let oversize = vec![b'a'; 2 * 1024 * 1024];
    let malformed: [(&str, &[u8]); 4] = [
        ("application/x-www-form-urlencoded", b"grant_type=authorization_code&code=%zz&&=="),
        ("application/x-www-form-urlencoded", b"\xff\xfe\x00grant_type"),
        ("application/json", b"{\"redirect_uris\": [\"http://127.0.0.1/cb\""),
        ("application/json", b"[]"),
    ];
    for route in routes {
        let url = format!("{issuer}{route}");
        let response = client().post(&url).header("content-type", "application/x-www-form-urlencoded").body(oversize.clone()).send().await;
        match response {
            // A POST route refuses the body unread (413); a GET route refuses the method (405).
            Ok(r) => {
                let posted = ["/oauth/token", "/oauth/register", "/oauth/revoke", "/oauth/authorize"].contains(&route);
                let want = if posted { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::METHOD_NOT_ALLOWED };
                assert_eq!(r.status(), want, "{route} oversize");
            }
            Err(e) => assert!(e.is_request() || e.is_body(), "{route} oversize: {e}"), // closed while sending: refused early
        }
        for (content_type, body) in malformed {
            let status = client().post(&url).header("content-type", content_type).body(body.to_vec()).send().await.unwrap().status();
            assert!(status.is_client_error(), "{route} {content_type} {body:?}: {status}");
        }
    }
    // Metadata still served.
    let again = Discovered::from(&setup.mcp_url()).await;
    assert_eq!(again.issuer, issuer);
    // The token endpoint names the problem the OAuth way.
    let answer = client().post(format!("{issuer}/oauth/token")).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert!(error["error"] == "invalid_request" || error["error"] == "unsupported_grant_type", "{error}");
}

/// The harness's own check: the plain-HTTP login gets a code from the company
/// IdP's dev login pages and the IdP redeems it (so a failure above is the
/// authorization server's, not the login driver's).
#[tokio::test]
async fn the_plain_http_login_gets_a_code_from_the_idp() {
    let mut idp = CompanyIdp::start(&[]).await;
    let pkce = Pkce::new();
    let request = Authorize {
        client_id: portcullis_tests::oauth::IDP_CLIENT_ID.into(),
        redirect_uri: "http://127.0.0.1:40100/callback".into(),
        resource: None,
        scope: Some("openid".into()),
        state: "s-1".into(),
        challenge: Some(pkce.challenge.clone()),
        method: Some("S256".into()),
    };
    let landing = login(&request.url(&format!("{}/auth", idp.issuer)), "carol", &request.redirect_uri).await;
    assert_eq!(landing.param("state").as_deref(), Some("s-1"), "{landing:?}");
    assert_eq!(landing.param("iss").as_deref(), Some(idp.issuer.as_str()));
    let answer = token(
        &format!("{}/token", idp.issuer),
        &[
            ("grant_type", "authorization_code"),
            ("code", &landing.code()),
            ("code_verifier", &pkce.verifier),
            ("client_id", &request.client_id),
            ("redirect_uri", &request.redirect_uri),
        ],
    )
    .await;
    let (_, claims) = jwt_parts(answer.body["id_token"].as_str().unwrap_or_else(|| panic!("{answer:?}")));
    assert_eq!(claims["sub"], "carol");

    // The IdP forges the next ID token on request (for the relying party's checks).
    idp.tamper_id_token("nonce").await;
    let url = format!("{}&nonce=n-1", request.url(&format!("{}/auth", idp.issuer)));
    let landing = login(&url, "carol", &request.redirect_uri).await;
    let answer = token(
        &format!("{}/token", idp.issuer),
        &[
            ("grant_type", "authorization_code"),
            ("code", &landing.code()),
            ("code_verifier", &pkce.verifier),
            ("client_id", &request.client_id),
            ("redirect_uri", &request.redirect_uri),
        ],
    )
    .await;
    let (_, claims) = jwt_parts(answer.body["id_token"].as_str().unwrap_or_else(|| panic!("{answer:?}")));
    assert_eq!((claims["sub"].as_str(), claims["nonce"].as_str()), (Some("carol"), Some("not-the-nonce-you-sent")));
}

/// An upstream ID token with a wrong `nonce`, `aud` or signature ends the
/// login: no code for the client, no session or code stored.
#[tokio::test]
async fn an_upstream_id_token_with_a_wrong_nonce_audience_or_signature_is_refused() {
    let redis = RedisServer::start();
    let mut setup = Setup::start(with_redis(&redis)).await;
    let pkce = Pkce::new();
    let endpoint = setup.server.endpoint("authorization_endpoint");
    for what in ["nonce", "aud", "signature"] {
        setup.idp.tamper_id_token(what).await;
        let request = Authorize::listed(&setup.server.resource, &pkce, 40200);
        let landing = login(&request.url(&endpoint), "alice", &request.redirect_uri).await;
        assert!(landing.param("code").is_none(), "{what}: the login went through: {landing:?}");
        if let Landing::Page { status, .. } = &landing {
            assert!(status.is_client_error() || status.is_server_error(), "{what}: {landing:?}");
        }
        let kept: Vec<String> = stored(&redis).into_iter().filter(|k| k.contains(":session:") || k.contains(":code:")).collect();
        assert!(kept.is_empty(), "{what}: stored {kept:?}");
    }
    // The same IdP, untampered: the login works (the refusals were the forgeries').
    let (_, code) = listed_code(&setup.server, &pkce, "alice").await;
    assert!(!code.is_empty());
}

/// A person's browser reaches `/oauth/authorize` from the client's site and
/// `/oauth/callback` from the IdP's: top-level navigations that a browser
/// marks `Sec-Fetch-Site: cross-site` and sends without an `Origin`. The
/// gateway's browser guard (meant for the MCP endpoint) must not refuse them,
/// or no login completes in a real browser.
#[tokio::test]
async fn cross_site_browser_navigations_reach_the_server_routes() {
    let setup = Setup::start(|_| {}).await;
    let pkce = Pkce::new();
    let request = Authorize::listed(&setup.server.resource, &pkce, 40300);
    let navigate = |url: String| {
        client()
            .get(url)
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-dest", "document")
            .header("sec-fetch-user", "?1")
            .send()
    };
    let authorize = navigate(request.url(&setup.server.endpoint("authorization_endpoint"))).await.unwrap();
    let location = authorize.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    assert!(authorize.status().is_redirection(), "{}: {:?}", authorize.status(), authorize.text().await);
    assert!(location.unwrap().starts_with(&setup.idp.issuer), "sent on to the IdP");
    let callback = navigate(format!("{}/oauth/callback?code=x&state=unknown", setup.issuer())).await.unwrap();
    let status = callback.status();
    let body = callback.text().await.unwrap();
    assert!(!body.contains("origin_not_allowed"), "{status}: {body}");
    assert_eq!(status, StatusCode::BAD_REQUEST, "the server's own answer to an unknown state: {body}");
}

/// The upstream tokens (the IdP's access, refresh and ID tokens) are stored
/// sealed: after a login, the session record exists, has a lifetime, and no
/// stored value holds a JWT (the ID token) or the person's IdP login in clear.
#[tokio::test]
async fn upstream_tokens_are_stored_sealed() {
    let redis = RedisServer::start();
    let setup = Setup::start(with_redis(&redis)).await;
    let pkce = Pkce::new();
    let (request, code) = listed_code(&setup.server, &pkce, "dora-the-explorer").await;
    assert_eq!(redeem(&setup.server, &request, &code, &pkce.verifier).await.status, StatusCode::OK);
    let keys = redis.keys();
    let sessions: Vec<&String> = keys.iter().filter(|k| k.contains(":session:")).collect();
    assert!(!sessions.is_empty(), "the upstream tokens are stored per session: {keys:?}");
    for key in &sessions {
        assert!(redis.ttl(key) > 0, "{key} has a lifetime");
    }
    for key in &keys {
        let Some(value) = redis.get(key) else { continue };
        let text = value;
        assert!(!text.contains("eyJ"), "{key} holds a JWT in clear");
        if key.contains(":session:") {
            assert!(!text.contains("dora-the-explorer"), "{key} holds upstream claims in clear");
        }
    }
}

/// RFC 8414 metadata in the MCP profile, at the well-known URL and its
/// path-inserted form, naming the workload's issuer; the RFC 9728 document
/// names this server.
#[tokio::test]
async fn the_metadata_is_the_mcp_profiles() {
    let setup = Setup::start(|_| {}).await;
    let issuer = setup.issuer();
    assert_eq!(setup.server.issuer, issuer, "the RFC 9728 document names the embedded server");
    assert_eq!(setup.server.resource, setup.mcp_url());
    let metadata = &setup.server.metadata;
    assert_eq!(metadata["issuer"], issuer.as_str());
    assert_eq!(metadata["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    assert_eq!(metadata["authorization_response_iss_parameter_supported"], true);
    assert_eq!(metadata["response_types_supported"], serde_json::json!(["code"]));
    for (name, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("registration_endpoint", "/oauth/register"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("jwks_uri", "/oauth/jwks"),
    ] {
        assert_eq!(metadata[name], format!("{issuer}{path}").as_str(), "{name}");
    }
    let inserted: serde_json::Value = client().get(format!("{issuer}/.well-known/oauth-authorization-server/mcp")).send().await.unwrap().json().await.unwrap();
    assert_eq!(&inserted, metadata, "the path-inserted form serves the same document");
}

/// A client that runs in a web page (an inspector, a web agent) calls the
/// discovery, registration, token and revocation routes from its own origin:
/// they answer its preflight and any origin may read them. The routes a
/// person's browser navigates (authorize, its consent form, the callback)
/// are not readable by other sites.
#[tokio::test]
async fn a_client_in_a_web_page_may_call_the_token_routes_and_nothing_else() {
    let setup = Setup::start(|_| {}).await;
    let issuer = setup.issuer();
    let page = "http://inspector.example:6274";
    let preflight = |route: &str, method: &str, headers: &str| {
        client()
            .request(reqwest::Method::OPTIONS, format!("{issuer}{route}"))
            .header("origin", page)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers)
            .send()
    };
    let header = |response: &reqwest::Response, name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    for (route, method, headers) in [
        ("/oauth/token", "POST", "content-type"),
        ("/oauth/register", "POST", "content-type"),
        ("/oauth/revoke", "POST", "content-type"),
        ("/.well-known/oauth-authorization-server", "GET", "mcp-protocol-version"),
        ("/oauth/jwks", "GET", ""),
    ] {
        let answer = preflight(route, method, headers).await.unwrap();
        assert!(answer.status().is_success(), "{route}: {}", answer.status());
        assert_eq!(header(&answer, "access-control-allow-origin").as_deref(), Some("*"), "{route}");
        assert!(header(&answer, "access-control-allow-methods").is_some_and(|m| m.contains(method)), "{route}");
        assert!(header(&answer, "access-control-allow-headers").is_some_and(|h| h.contains(headers)), "{route}");
    }
    // The answers themselves, errors included, are readable.
    let token = client().post(format!("{issuer}/oauth/token")).header("origin", page).form(&[("grant_type", "password")]).send().await.unwrap();
    assert_eq!(token.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&token, "access-control-allow-origin").as_deref(), Some("*"));

    // Not the person's routes: no preflight, and nothing readable cross-origin.
    for route in ["/oauth/authorize", "/oauth/callback"] {
        let answer = preflight(route, "POST", "content-type").await.unwrap();
        assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED, "{route}");
        assert!(header(&answer, "access-control-allow-origin").is_none(), "{route}");
    }
    let pkce = Pkce::new();
    let authorize =
        client().get(Authorize::listed(&setup.server.resource, &pkce, 40600).url(&setup.server.endpoint("authorization_endpoint"))).send().await.unwrap();
    assert!(header(&authorize, "access-control-allow-origin").is_none());
}
