//! The login's steps in order, with a fake gateway: what is stored when,
//! what is taken once, what is removed on failure, and that no token reaches
//! an error or a log line.

use super::*;
use crate::upstream::UpstreamConfig;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use provider_tokens::seal;
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

const NOW: u64 = 1_800_000_000;
const KEY: [u8; 32] = [3; 32];
const CALLBACK: &str = "https://gw.example.com/oauth/callback";
const ISSUER: &str = "https://idp.example.com";

struct Fake {
    counter: Cell<u32>,
    store: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    /// What happened, in order.
    events: RefCell<Vec<String>>,
    warnings: RefCell<Vec<String>>,
    iss_parameter: bool,
    answer: RefCell<Result<Map<String, Value>, String>>,
    signature_ok: bool,
    userinfo: Result<Map<String, Value>, String>,
    fail_put: bool,
    fail_take: bool,
    client_secret_seen: RefCell<Option<String>>,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            counter: Cell::new(0),
            store: RefCell::new(HashMap::new()),
            events: RefCell::new(Vec::new()),
            warnings: RefCell::new(Vec::new()),
            iss_parameter: false,
            answer: RefCell::new(Err("no answer prepared".into())),
            signature_ok: true,
            userinfo: Err("no userinfo prepared".into()),
            fail_put: false,
            fail_take: false,
            client_secret_seen: RefCell::new(None),
        }
    }

    fn event(&self, what: String) {
        self.events.borrow_mut().push(what);
    }

    fn events(&self) -> Vec<String> {
        self.events.borrow().clone()
    }

    fn leg(&self, state: &str) -> pending::Leg {
        pending::Leg::from_bytes(&self.store.borrow()[&pending::key(state)].0).unwrap()
    }
}

impl Host for Fake {
    fn now(&self) -> u64 {
        NOW
    }
    fn random(&self) -> Result<String, String> {
        self.counter.set(self.counter.get() + 1);
        Ok(format!("{:0>43}", self.counter.get()))
    }
    fn warn(&self, message: &str) {
        self.warnings.borrow_mut().push(message.to_owned());
    }
    fn put_new(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<bool, String> {
        self.event(format!("put_new {key}"));
        let mut store = self.store.borrow_mut();
        if store.contains_key(key) {
            return Ok(false);
        }
        store.insert(key.to_owned(), (value.to_vec(), ttl_seconds));
        Ok(true)
    }
    fn put(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<(), String> {
        self.event(format!("put {key}"));
        if self.fail_put {
            return Err("the store is unavailable: connection refused".into());
        }
        self.store.borrow_mut().insert(key.to_owned(), (value.to_vec(), ttl_seconds));
        Ok(())
    }
    fn take(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.event(format!("take {key}"));
        if self.fail_take {
            return Err("the store is unavailable: connection refused".into());
        }
        Ok(self.store.borrow_mut().remove(key).map(|(value, _)| value))
    }
    fn delete(&self, key: &str) -> Result<(), String> {
        self.event(format!("delete {key}"));
        self.store.borrow_mut().remove(key);
        Ok(())
    }
    fn secret(&self, name: &str) -> Result<String, String> {
        match name {
            "oauth:corp-client-secret" => Ok("client-s3cret".into()),
            _ => Err("no such secret is stored".into()),
        }
    }
    fn metadata(&self, issuer: &str, _issuer_is_local: bool) -> Result<discovery::Metadata, String> {
        assert_eq!(issuer, ISSUER);
        Ok(discovery::Metadata {
            authorization_endpoint: format!("{ISSUER}/authorize"),
            token_endpoint: format!("{ISSUER}/token"),
            jwks_uri: format!("{ISSUER}/jwks"),
            iss_parameter: self.iss_parameter,
            id_token_algs: None,
        })
    }
    fn forget_metadata(&self, issuer: &str) {
        self.event(format!("forget_metadata {issuer}"));
    }
    fn jwk(&self, jwks_uri: &str, alg: &str, kid: Option<&str>) -> Result<String, String> {
        assert_eq!((jwks_uri, alg, kid), ("https://idp.example.com/jwks", "RS256", Some("k1")));
        Ok(r#"{"kty":"RSA","kid":"k1"}"#.into())
    }
    fn verify_jws(&self, _alg: &str, _jwk: &str, _signing_input: &str, signature: &str) -> Result<bool, String> {
        self.event("verify".into());
        Ok(self.signature_ok && signature == "c2ln")
    }
    fn exchange(&self, token_endpoint: &str, client: &exchange::Client, code: &str, redirect_uri: &str, verifier: &str) -> Result<Map<String, Value>, String> {
        self.event(format!("exchange {token_endpoint} code={code} redirect_uri={redirect_uri} verifier={verifier}"));
        *self.client_secret_seen.borrow_mut() = client.secret.map(str::to_owned);
        self.answer.borrow().clone()
    }
    fn userinfo(&self, endpoint: &str, access_token: &str) -> Result<Map<String, Value>, String> {
        self.event(format!("userinfo {endpoint} with {}", access_token.len()));
        self.userinfo.clone()
    }
}

fn oidc() -> UpstreamConfig {
    serde_json::from_value(json!({"name": "corp", "issuer": ISSUER, "client_id": "portcullis", "scopes": ["openid", "email"]})).unwrap()
}

fn oauth2(userinfo: bool) -> UpstreamConfig {
    let mut config = json!({"name": "gh", "authorization_endpoint": "https://gh.example.com/authorize", "token_endpoint": "https://gh.example.com/token",
        "client_id": "portcullis", "client_secret_secret": "oauth:corp-client-secret", "subject_claim": "id"});
    if userinfo {
        config["userinfo_endpoint"] = "https://api.gh.example.com/user".into();
    } else {
        config["subject_claim"] = "authed_user.id".into();
    }
    serde_json::from_value(config).unwrap()
}

fn params(url: &str) -> HashMap<String, String> {
    form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes()).into_owned().collect()
}

fn id_token(claims: Value) -> String {
    let header = json!({"alg": "RS256", "kid": "k1", "typ": "JWT"});
    format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

fn good_claims(nonce: &str) -> Value {
    json!({"iss": ISSUER, "sub": "user-1", "aud": "portcullis", "exp": NOW + 300, "iat": NOW, "nonce": nonce, "email": "jane@example.com"})
}

fn answer(id_token: Option<String>) -> Map<String, Value> {
    let mut answer = json!({"access_token": "at-secret", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-secret", "scope": "openid email"});
    if let Some(id_token) = id_token {
        answer["id_token"] = id_token.into();
    }
    answer.as_object().unwrap().clone()
}

/// Begins an OIDC login; the state and the stored leg.
fn begun(fake: &Fake, upstreams: &Upstreams) -> (String, pending::Leg) {
    let url = begin(fake, upstreams, "corp", "pending-1", CALLBACK).unwrap();
    let state = params(&url)["state"].clone();
    let leg = fake.leg(&state);
    (state, leg)
}

fn session_record(fake: &Fake) -> Option<StoredTokens> {
    let store = fake.store.borrow();
    let (sealed, _) = store.get("session:sid-1:corp")?;
    tokens::open_record(sealed, "sid-1", "corp", &KEY)
}

/// Every error and warning of a failed login, checked for tokens.
fn no_token_in(texts: &[String]) {
    for text in texts {
        for token in ["at-secret", "rt-secret", "client-s3cret", "c2ln"] {
            assert!(!text.contains(token), "{token} in {text:?}");
        }
    }
}

#[test]
fn begin_creates_state_pkce_and_nonce() {
    let fake = Fake::new();
    let upstreams = Upstreams::from_config(vec![oidc()]).unwrap();
    let url = begin(&fake, &upstreams, "corp", "pending-1", CALLBACK).unwrap();
    assert!(url.starts_with("https://idp.example.com/authorize?response_type=code&client_id=portcullis&"), "{url}");
    let params = params(&url);
    let leg = fake.leg(&params["state"]);
    assert_eq!(leg.pending_id, "pending-1");
    assert_eq!(leg.provider, "corp");
    assert_eq!(leg.redirect_uri, CALLBACK);
    assert_eq!(params["redirect_uri"], CALLBACK);
    assert_eq!(params["scope"], "openid email");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"], crate::pkce::challenge(&leg.verifier));
    assert_ne!(params["code_challenge"], leg.verifier, "the verifier never leaves the server");
    assert_eq!(Some(&params["nonce"]), leg.nonce.as_ref());
    let distinct: std::collections::HashSet<&str> = [params["state"].as_str(), leg.verifier.as_str(), params["nonce"].as_str()].into();
    assert_eq!(distinct.len(), 3, "state, verifier and nonce are separate random values");
    assert_eq!(fake.store.borrow()[&pending::key(&params["state"])].1, 600, "ten minutes");
    assert!(begin(&fake, &upstreams, "nope", "p", CALLBACK).unwrap_err().contains("no upstream named \"nope\""));
}

#[test]
fn a_login_completes_and_its_tokens_are_sealed() {
    let fake = Fake::new();
    let upstreams = Upstreams::from_config(vec![oidc()]).unwrap().with_session_ttl(3600);
    let (state, leg) = begun(&fake, &upstreams);
    *fake.answer.borrow_mut() = Ok(answer(Some(id_token(good_claims(leg.nonce.as_deref().unwrap())))));
    let query = format!("code=the-code&state={state}&iss=https%3A%2F%2Fidp.example.com");
    let done = finish(&fake, &upstreams, &query, CALLBACK, "sid-1", &KEY).unwrap();
    assert_eq!((done.subject.as_str(), done.provider.as_str()), ("user-1", "corp"));
    assert_eq!(done.claims["email"], "jane@example.com");
    assert!(!done.claims.to_string().contains("secret"), "the claims hold no token");

    let exchange = format!("exchange https://idp.example.com/token code=the-code redirect_uri={CALLBACK} verifier={}", leg.verifier);
    assert!(fake.events().contains(&exchange), "{:?}", fake.events());
    assert_eq!(*fake.client_secret_seen.borrow(), None, "a public client");
    let (sealed, ttl) = fake.store.borrow()["session:sid-1:corp"].clone();
    assert_eq!(ttl, 3600);
    assert!(!sealed.windows(9).any(|w| w == b"at-secret" || w == b"rt-secret"), "no plaintext token in the store");
    let tokens = session_record(&fake).unwrap();
    assert_eq!((tokens.access_token.as_str(), tokens.refresh_token.as_deref()), ("at-secret", Some("rt-secret")));
    assert!(tokens.id_token.is_some() && tokens.expires_at == Some(NOW + 3600));
    assert!(seal::open(&KEY, "session:sid-2:corp", &sealed).is_none(), "bound to its session");
    assert!(!fake.store.borrow().contains_key(&pending::key(&state)), "the state is used up");

    assert_eq!(finish(&fake, &upstreams, &query, CALLBACK, "sid-1", &KEY).unwrap_err(), CallbackError::ForeignState, "a replayed callback");
}

#[test]
fn tokens_are_stored_before_the_id_token_is_checked_and_removed_when_it_fails() {
    for (what, claims_change, signature_ok) in [
        ("`nonce` is not this login's", json!({"nonce": "another-login"}), true),
        ("`aud` does not include", json!({"aud": "someone-else"}), true),
        ("`iss` is not", json!({"iss": "https://evil.example.com"}), true),
        ("has expired", json!({"exp": NOW - 3600}), true),
        ("signature does not verify", json!({}), false),
    ] {
        let fake = Fake { signature_ok, ..Fake::new() };
        let upstreams = Upstreams::from_config(vec![oidc()]).unwrap();
        let (state, leg) = begun(&fake, &upstreams);
        let mut claims = good_claims(leg.nonce.as_deref().unwrap());
        for (k, v) in claims_change.as_object().unwrap() {
            claims[k] = v.clone();
        }
        *fake.answer.borrow_mut() = Ok(answer(Some(id_token(claims))));
        let error = finish(&fake, &upstreams, &format!("code=c&state={state}"), CALLBACK, "sid-1", &KEY).unwrap_err();
        let CallbackError::Upstream { why, .. } = error else { panic!("{what}: {error:?}") };
        assert!(why.starts_with("`corp`: ") && why.contains(what), "{what}: {why}");
        let events = fake.events();
        let put = events.iter().position(|e| e == "put session:sid-1:corp").expect("stored");
        let verify = events.iter().position(|e| e == "verify").expect("verified");
        let delete = events.iter().position(|e| e == "delete session:sid-1:corp").expect("removed");
        assert!(put < verify && verify < delete, "{what}: {events:?}");
        assert!(session_record(&fake).is_none(), "{what}: the failed login's tokens are gone");
        assert_eq!(events.contains(&"forget_metadata https://idp.example.com".to_owned()), !signature_ok, "{what}");
        no_token_in(&[why]);
        no_token_in(&fake.warnings.borrow());
    }
}

#[test]
fn an_id_token_signed_with_none_is_refused() {
    let fake = Fake::new();
    let upstreams = Upstreams::from_config(vec![oidc()]).unwrap();
    let (state, leg) = begun(&fake, &upstreams);
    let claims = good_claims(leg.nonce.as_deref().unwrap());
    let unsigned = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(claims.to_string()));
    *fake.answer.borrow_mut() = Ok(answer(Some(unsigned)));
    let error = finish(&fake, &upstreams, &format!("code=c&state={state}"), CALLBACK, "sid-1", &KEY).unwrap_err();
    assert!(matches!(&error, CallbackError::Upstream { why, .. } if why.contains("\"none\", which is not accepted")), "{error:?}");
    assert!(!fake.events().contains(&"verify".to_owned()));
    assert!(session_record(&fake).is_none());
}

#[test]
fn no_id_token_is_a_failure() {
    let fake = Fake::new();
    let upstreams = Upstreams::from_config(vec![oidc()]).unwrap();
    let (state, _) = begun(&fake, &upstreams);
    *fake.answer.borrow_mut() = Ok(answer(None));
    let error = finish(&fake, &upstreams, &format!("code=c&state={state}"), CALLBACK, "sid-1", &KEY).unwrap_err();
    assert_eq!(error.why(), Some("the token response of `corp` has no ID token"));
    assert!(session_record(&fake).is_none());
}

#[test]
fn foreign_states() {
    let fake = Fake::new();
    let upstreams = Upstreams::from_config(vec![oidc()]).unwrap();
    let (state, _) = begun(&fake, &upstreams);
    let unknown = format!("{:0>43}", 999);
    for query in [
        format!("code=c&state={unknown}"),
        "code=c&state=short".to_owned(),
        "code=c&state=up%3Ax".to_owned(),
        "code=c".to_owned(),
        format!("code=c&state={state}&state={state}"),
        format!("code=c&code=d&state={state}"),
    ] {
        assert_eq!(finish(&fake, &upstreams, &query, CALLBACK, "sid-1", &KEY).unwrap_err(), CallbackError::ForeignState, "{query}");
    }
    assert!(fake.store.borrow().contains_key(&pending::key(&state)), "a malformed callback does not cancel the real login");
    assert!(!fake.events().iter().any(|e| e.starts_with("exchange")));
    assert_eq!(fake.events().iter().filter(|e| e.starts_with("take")).count(), 1, "only the well-formed unknown state was looked up");
}

#[test]
fn a_refused_login_uses_up_its_state() {
    let fake = Fake::new();
    let upstreams = Upstreams::from_config(vec![oidc()]).unwrap();
    let (state, _) = begun(&fake, &upstreams);
    let query = format!("error=access_denied&error_description=at-secret+no&state={state}");
    assert_eq!(
        finish(&fake, &upstreams, &query, CALLBACK, "sid-1", &KEY).unwrap_err(),
        CallbackError::Upstream { pending_id: "pending-1".into(), provider: "corp".into(), why: "`corp` refused the login: access_denied".into() },
        "the failure names the authorization request it ends, so the client can be told"
    );
    assert!(!fake.events().iter().any(|e| e.starts_with("exchange") || e.starts_with("put session")));
    assert_eq!(finish(&fake, &upstreams, &format!("code=c&state={state}"), CALLBACK, "sid-1", &KEY).unwrap_err(), CallbackError::ForeignState);
    assert_eq!(fake.warnings.borrow().len(), 1);
    no_token_in(&fake.warnings.borrow());
}

#[test]
fn the_token_endpoint_refuses() {
    let fake = Fake::new();
    let upstreams = Upstreams::from_config(vec![oidc()]).unwrap();
    let (state, _) = begun(&fake, &upstreams);
    *fake.answer.borrow_mut() = exchange::classify(400, br#"{"error":"invalid_grant","error_description":"code at-secret spent"}"#);
    let error = finish(&fake, &upstreams, &format!("code=c&state={state}"), CALLBACK, "sid-1", &KEY).unwrap_err();
    assert_eq!(error.why(), Some("the token endpoint of `corp` answered 400 invalid_grant"));
    assert!(!fake.store.borrow().keys().any(|k| k.starts_with("session:")));
}

#[test]
fn mix_up_and_callback_checks() {
    let fake = Fake { iss_parameter: true, ..Fake::new() };
    let upstreams = Upstreams::from_config(vec![oidc()]).unwrap();
    for (query_tail, callback, why) in [
        ("&iss=https%3A%2F%2Fevil.example.com", CALLBACK, "names the issuer \"https://evil.example.com\""),
        ("", CALLBACK, "has no `iss`"),
        ("&iss=https%3A%2F%2Fidp.example.com", "https://other.example.com/oauth/callback", "another callback URL"),
        ("", CALLBACK, ""),
    ] {
        let (state, _) = begun(&fake, &upstreams);
        let query = if why.is_empty() { format!("state={state}") } else { format!("code=c&state={state}{query_tail}") };
        let error = finish(&fake, &upstreams, &query, callback, "sid-1", &KEY).unwrap_err();
        let expected = if why.is_empty() { "neither a code nor an error" } else { why };
        assert!(matches!(&error, CallbackError::Upstream { why: w, .. } if w.contains(expected)), "{error:?}");
    }
    assert!(!fake.events().iter().any(|e| e.starts_with("exchange")), "nothing exchanged");
}

/// The store failing when the callback's state is taken decides nothing: the
/// login is not attributed to anyone nor failed (a 503, try again).
#[test]
fn a_store_failure_at_the_state_is_unavailable_not_a_failed_login() {
    let upstreams = Upstreams::from_config(vec![oidc()]).unwrap();
    let fake = Fake::new();
    let (state, _) = begun(&fake, &upstreams);
    let failing = Fake { fail_take: true, ..Fake::new() };
    let error = finish(&failing, &upstreams, &format!("code=c&state={state}"), CALLBACK, "sid-1", &KEY).unwrap_err();
    assert!(matches!(&error, CallbackError::Unavailable(why) if why.contains("state could not be read")), "{error:?}");
}

#[test]
fn a_store_failure_stops_before_anything_else() {
    let fake = Fake { fail_put: true, ..Fake::new() };
    let upstreams = Upstreams::from_config(vec![oidc()]).unwrap();
    let (state, leg) = begun(&fake, &upstreams);
    *fake.answer.borrow_mut() = Ok(answer(Some(id_token(good_claims(leg.nonce.as_deref().unwrap())))));
    let error = finish(&fake, &upstreams, &format!("code=c&state={state}"), CALLBACK, "sid-1", &KEY).unwrap_err();
    assert_eq!(error.why(), Some("the tokens of `corp` could not be stored: the store is unavailable: connection refused"));
    assert!(!fake.events().contains(&"verify".to_owned()), "no login without its tokens kept");
}

#[test]
fn oauth2_with_userinfo_and_a_confidential_client() {
    let user = json!({"id": 583231, "login": "octocat"}).as_object().unwrap().clone();
    let fake = Fake { userinfo: Ok(user), ..Fake::new() };
    let upstreams = Upstreams::from_config(vec![oidc(), oauth2(true)]).unwrap();
    assert_eq!(upstreams.identity_provider(), "corp");
    let url = begin(&fake, &upstreams, "gh", "pending-2", CALLBACK).unwrap();
    assert!(url.starts_with("https://gh.example.com/authorize?"));
    let params = params(&url);
    assert!(!params.contains_key("nonce"), "no nonce for OAuth 2");
    *fake.answer.borrow_mut() = Ok(answer(None));
    let done = finish(&fake, &upstreams, &format!("code=c&state={}", params["state"]), CALLBACK, "sid-1", &KEY).unwrap();
    assert_eq!((done.subject.as_str(), done.provider.as_str()), ("583231", "gh"));
    assert_eq!(done.claims["login"], "octocat");
    assert_eq!(fake.client_secret_seen.borrow().as_deref(), Some("client-s3cret"));
    assert!(fake.store.borrow().contains_key("session:sid-1:gh"));
    assert!(fake.events().contains(&"userinfo https://api.gh.example.com/user with 9".to_owned()));
}

#[test]
fn oauth2_subject_from_the_token_response_or_a_failure() {
    let fake = Fake::new();
    let upstreams = Upstreams::from_config(vec![oauth2(false)]).unwrap();
    let mut with_user = answer(None);
    with_user.insert("authed_user".into(), json!({"id": "U123"}));
    for (response, subject) in [(with_user, Some("U123")), (answer(None), None)] {
        let url = begin(&fake, &upstreams, "gh", "p", CALLBACK).unwrap();
        *fake.answer.borrow_mut() = Ok(response);
        let result = finish(&fake, &upstreams, &format!("code=c&state={}", params(&url)["state"]), CALLBACK, "sid-1", &KEY);
        match subject {
            Some(subject) => {
                let done = result.unwrap();
                assert_eq!(done.subject, subject);
                assert_eq!(done.claims, json!({"sub": subject}), "nothing else of the token response, which holds tokens");
                assert!(fake.store.borrow().contains_key("session:sid-1:gh"));
            }
            None => {
                assert_eq!(result.unwrap_err().why(), Some("the token response of `gh` has no usable `authed_user.id`"));
                assert!(!fake.store.borrow().contains_key("session:sid-1:gh"), "removed");
            }
        }
    }
}

#[test]
fn rfc_9207_iss() {
    assert_eq!(check_iss(Some("https://idp"), "https://idp", true), Ok(()));
    assert_eq!(check_iss(None, "https://idp", false), Ok(()));
    assert!(check_iss(None, "https://idp", true).unwrap_err().contains("RFC 9207"));
    assert!(check_iss(Some("https://evil"), "https://idp", false).unwrap_err().contains("evil"));
    assert!(check_iss(Some("https://idp/"), "https://idp", false).is_err());
}
