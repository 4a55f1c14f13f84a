//! The embedded authorization server asks the person before a client that
//! anyone could have registered gets a code, and completes a login only in
//! the browser that started it. The attack both stop: someone registers a
//! client whose redirect URI is theirs and sends a victim the authorization
//! link (or the identity provider's link of a login they started); a victim
//! already logged in at the IdP would otherwise hand them a code unseen.

use crate::oauth_server::Setup;
use portcullis_tests::oauth::{Authorize, Browser, Consent, Landing, Pkce, Stored, client, hidden_inputs, login, redeem, token as token_request};
use portcullis_tests::redis::RedisServer;
use reqwest::StatusCode;

/// Registers a public client with `redirect_uri` and `name`; its id.
async fn register(setup: &Setup, redirect_uri: &str, name: &str) -> String {
    let metadata = serde_json::json!({"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none", "client_name": name});
    portcullis_tests::oauth::register(&setup.server, metadata).await
}

/// A gateway whose store is `redis`.
async fn start(redis: &RedisServer) -> Setup {
    Setup::start(|p| p.store = format!("[store]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"pc\"\n", redis.url())).await
}

/// The upstream logins begun (each waits under `up:{state}`): none before the person allows.
fn logins_begun(redis: &RedisServer) -> usize {
    redis.keys().into_iter().filter(|k| k.contains(":up:")).count()
}

/// An authorization request of `client_id` to its loopback `port`.
fn request_for(setup: &Setup, client_id: &str, pkce: &Pkce, port: u16) -> Authorize {
    let mut request = Authorize::listed(&setup.server.resource, pkce, port);
    request.client_id = client_id.to_owned();
    request
}

#[tokio::test]
async fn a_registered_client_gets_a_code_only_after_the_person_allows_it() {
    let redis = RedisServer::start();
    let setup = start(&redis).await;
    let endpoint = setup.server.endpoint("authorization_endpoint");
    let pkce = Pkce::new();
    let client_id = register(&setup, "http://127.0.0.1/callback", "<b>Helpful</b> Tool").await;
    let request = request_for(&setup, &client_id, &pkce, 40500);

    // The authorization request shows a page; nothing goes to the IdP yet.
    let mut browser = Browser::new(Consent::Allow);
    let shown = browser.get(&request.url(&endpoint)).await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert!(shown.headers().get("location").is_none(), "redirected without asking");
    let header = |name: &str| shown.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(header("content-type").starts_with("text/html"), "{}", header("content-type"));
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"), "not to be framed");
    assert_eq!(header("x-frame-options"), "DENY");
    let cookie = header("set-cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Max-Age=600"), "{cookie}");
    let page = shown.text().await.unwrap();
    assert!(page.contains("&lt;b&gt;Helpful&lt;/b&gt; Tool") && !page.contains("<b>Helpful"), "the name escaped: {page}");
    assert!(page.contains("http://127.0.0.1:40500/callback") && page.contains(&setup.server.resource), "where the code goes, for what: {page}");
    assert_eq!(logins_begun(&redis), 0, "no login begun at the IdP before the consent");

    // Denied: the client is told, with its state and the issuer; no code.
    let denied = Browser::new(Consent::Deny).login(&request.url(&endpoint), "alice", &request.redirect_uri).await;
    assert_eq!(denied.param("error").as_deref(), Some("access_denied"), "{denied:?}");
    assert_eq!(denied.param("state").as_deref(), Some(request.state.as_str()));
    assert_eq!(denied.param("iss").as_deref(), Some(setup.issuer().as_str()));
    assert!(denied.param("code").is_none());

    // Allowed: the login goes through, and the code redeems.
    let mut browser = Browser::new(Consent::Allow);
    let allowed = browser.login(&request.url(&endpoint), "alice", &request.redirect_uri).await;
    let answer = redeem(&setup.server, &request, &allowed.code(), &pkce.verifier).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert!(browser.cookies(&endpoint).is_none_or(|c| !c.contains("portcullis-login-")), "the binding is cleared after the login");
}

/// The consent form counts only when posted from this origin, by the browser
/// the request is bound to; anything else changes nothing.
#[tokio::test]
async fn the_consent_form_counts_only_from_the_bound_browser_on_this_origin() {
    let redis = RedisServer::start();
    let setup = start(&redis).await;
    let endpoint = setup.server.endpoint("authorization_endpoint");
    let pkce = Pkce::new();
    let client_id = register(&setup, "http://127.0.0.1/callback", "Tool").await;
    let request = request_for(&setup, &client_id, &pkce, 40501);
    let (mut mine, mut theirs) = (Browser::new(Consent::Allow), Browser::new(Consent::Allow));
    let page = mine.get(&request.url(&endpoint)).await.text().await.unwrap();
    let _ = theirs.get(&request.url(&endpoint)).await;
    let fields = hidden_inputs(&page);
    assert!(fields.iter().any(|(name, _)| name == "pending"), "{page}");
    let allow: Vec<(String, String)> = fields.into_iter().chain([("decision".to_owned(), "allow".to_owned())]).collect();
    let post = |cookies: Option<String>, origin: Option<&str>, fetch_site: Option<&str>| {
        let mut post = client().post(&endpoint).form(&allow);
        for (name, value) in [("cookie", cookies.as_deref()), ("origin", origin), ("sec-fetch-site", fetch_site)] {
            if let Some(value) = value {
                // Several values in one string: each is sent as a header of its own.
                for value in value.split(" & ") {
                    post = post.header(name, value);
                }
            }
        }
        post.send()
    };
    let issuer = setup.issuer();
    let refused = [
        ("no cookie", post(None, Some(&issuer), Some("same-origin")).await.unwrap()),
        ("another browser's cookie", post(theirs.cookies(&endpoint), Some(&issuer), Some("same-origin")).await.unwrap()),
        ("another origin", post(mine.cookies(&endpoint), Some("http://evil.example"), None).await.unwrap()),
        ("a cross-site form", post(mine.cookies(&endpoint), None, Some("cross-site")).await.unwrap()),
        ("two origins", post(mine.cookies(&endpoint), Some(&format!("{issuer} & http://evil.example")), Some("same-origin")).await.unwrap()),
    ];
    for (case, response) in refused {
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
        assert!(response.headers().get("location").is_none(), "{case}: sent on");
    }
    assert_eq!(logins_begun(&redis), 0, "no refused post began a login at the IdP");
    let accepted = post(mine.cookies(&endpoint), Some(&issuer), Some("same-origin")).await.unwrap();
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    let location = accepted.headers().get("location").unwrap().to_str().unwrap();
    assert!(location.starts_with(&setup.idp.issuer), "{location}");
}

/// A login started in the attacker's browser and finished by the victim (who
/// followed the IdP link the attacker sent) ends at the callback: no code,
/// and the IdP's code is not even redeemed (no session stored).
#[tokio::test]
async fn a_login_started_in_one_browser_cannot_be_finished_in_another() {
    let redis = RedisServer::start();
    let setup = start(&redis).await;
    let endpoint = setup.server.endpoint("authorization_endpoint");
    let pkce = Pkce::new();
    let sessions = || redis.keys().into_iter().filter(|k| k.contains(":session:") || k.contains(":code:")).collect::<Vec<_>>();

    // A listed client (no consent page) and a registered one the attacker allowed in their own browser.
    let registered = register(&setup, "http://127.0.0.1/callback", "Tool").await;
    for client_id in [portcullis_tests::oauth::LISTED_CLIENT, registered.as_str()] {
        let request = request_for(&setup, client_id, &pkce, 40502);
        let mut attacker = Browser::new(Consent::Allow);
        let mut response = attacker.get(&request.url(&endpoint)).await;
        if response.status() == StatusCode::OK {
            let allow: Vec<(String, String)> =
                hidden_inputs(&response.text().await.unwrap()).into_iter().chain([("decision".to_owned(), "allow".to_owned())]).collect();
            let cookies = attacker.cookies(&endpoint).unwrap();
            response = client().post(&endpoint).header("cookie", cookies).form(&allow).send().await.unwrap();
        }
        let idp_link = response.headers().get("location").unwrap_or_else(|| panic!("{client_id}: {}", response.status())).to_str().unwrap().to_owned();
        assert!(idp_link.starts_with(&setup.idp.issuer), "{idp_link}");

        let landing = login(&idp_link, "victim", &request.redirect_uri).await;
        match &landing {
            Landing::Page { status, url, body } => {
                assert_eq!(*status, StatusCode::FORBIDDEN, "{client_id}: {url} {body}");
                assert!(body.contains("another browser"), "{body}");
            }
            Landing::Redirect { .. } => panic!("{client_id}: the victim's login reached the client: {landing:?}"),
        }
        assert_eq!(sessions(), Vec::<String>::new(), "{client_id}: the IdP's code was redeemed or a code issued");
    }

    // The same login in one browser completes (the refusals were the binding's).
    let request = request_for(&setup, portcullis_tests::oauth::LISTED_CLIENT, &pkce, 40503);
    assert!(login(&request.url(&endpoint), "alice", &request.redirect_uri).await.param("code").is_some());
}

/// A refresh re-checks the client: once a registered client's registration
/// is gone (expired, or removed by an operator), its refresh tokens get
/// nothing more, and the family is revoked.
#[tokio::test]
async fn a_refresh_needs_a_client_the_server_still_knows() {
    let redis = RedisServer::start();
    let setup = start(&redis).await;
    let pkce = Pkce::new();
    let client_id = register(&setup, "http://127.0.0.1/callback", "Tool").await;
    let request = request_for(&setup, &client_id, &pkce, 40504);
    let landing = login(&request.url(&setup.server.endpoint("authorization_endpoint")), "alice", &request.redirect_uri).await;
    let issued = redeem(&setup.server, &request, &landing.code(), &pkce.verifier).await;
    let token_endpoint = setup.server.endpoint("token_endpoint");
    let refresh = |token: String| {
        let (endpoint, client_id) = (token_endpoint.clone(), client_id.clone());
        async move { token_request(&endpoint, &[("grant_type", "refresh_token"), ("refresh_token", &token), ("client_id", &client_id)]).await }
    };
    let rotated = refresh(issued.refresh_token()).await;
    assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");

    let registration = redis.keys().into_iter().find(|k| k.ends_with(&format!(":client:{client_id}"))).expect("the registration is stored");
    redis.cli(&["del", &registration]);
    let refused = refresh(rotated.refresh_token()).await;
    assert_eq!((refused.status, refused.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{refused:?}");
    assert!(redis.keys().iter().all(|k| !k.contains(":family:")), "the family is revoked: {:?}", redis.keys());
}
