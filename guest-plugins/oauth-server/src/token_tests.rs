use super::*;
use crate::config::File;
use crate::form::encode;
use crate::kv::Memory;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const NOW: u64 = 1_800_000_000;

fn config() -> Config {
    let file: File = portcullis_plugin::parse_config(r#"{"token_key_secret": "k", "scopes": ["mcp", "admin"]}"#).unwrap();
    Config::new(file, "https://gw.example/mcp").unwrap().0
}

/// "Signs" by returning the claims: the tests read them back.
fn sign(claims: &str) -> Result<String, String> {
    Ok(claims.to_owned())
}

fn pending() -> Pending {
    Pending {
        client_id: "cli".into(),
        redirect_uri: "http://127.0.0.1:5555/cb".into(),
        code_challenge: CHALLENGE.into(),
        scope: "mcp admin".into(),
        resource: "https://gw.example/mcp".into(),
        state: Some("s".into()),
        browser: String::new(),
    }
}

fn params(pairs: &[(&str, &str)]) -> Params {
    Params::parse(encode(pairs.iter().copied()).as_bytes()).unwrap()
}

fn redeem<'a>(code: &'a str, changes: &[(&'a str, &'a str)]) -> Params {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", "cli"),
        ("redirect_uri", "http://127.0.0.1:5555/cb"),
        ("code_verifier", VERIFIER),
    ];
    pairs.retain(|(n, _)| !changes.iter().any(|(c, _)| c == n));
    pairs.extend(changes.iter().filter(|(_, v)| !v.is_empty()));
    params(&pairs)
}

fn refresh<'a>(token: &'a str, changes: &[(&'a str, &'a str)]) -> Params {
    let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", "cli")];
    pairs.retain(|(n, _)| !changes.iter().any(|(c, _)| c == n));
    pairs.extend(changes.iter().filter(|(_, v)| !v.is_empty()));
    params(&pairs)
}

fn error(result: Result<Value, Failure>) -> &'static str {
    match result {
        Err(Failure::OAuth { error, .. }) => error,
        other => panic!("not an OAuth error: {other:?}"),
    }
}

struct Setup {
    config: Config,
    kv: Memory,
}

impl Setup {
    fn new() -> Self {
        Setup { config: config(), kv: Memory::default() }
    }
    fn tokens(&self) -> Tokens<'_> {
        Tokens { config: &self.config, kv: &self.kv, now: NOW, sign: &sign, warn: |_| {} }
    }
    fn families(&self) -> usize {
        self.kv.0.borrow().keys().filter(|k| k.starts_with("family:")).count()
    }
}

#[test]
fn a_code_gives_tokens_once() {
    let s = Setup::new();
    let code = s.tokens().issue_code(&pending(), "alice", "sid-1").unwrap();
    assert!(s.kv.0.borrow().keys().all(|k| !k.contains(&code)), "the code is stored hashed");
    let answer = s.tokens().grant(&redeem(&code, &[("resource", "https://gw.example/mcp")])).unwrap();
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 900);
    assert_eq!(answer["scope"], "mcp admin");
    let claims: Value = serde_json::from_str(answer["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["iss"], "https://gw.example");
    assert_eq!(claims["aud"], "https://gw.example/mcp");
    assert_eq!((claims["sub"].as_str(), claims["client_id"].as_str(), claims["sid"].as_str()), (Some("alice"), Some("cli"), Some("sid-1")));
    assert_eq!((claims["iat"].as_u64(), claims["exp"].as_u64()), (Some(NOW), Some(NOW + 900)));
    assert_eq!(claims["jti"].as_str().map(str::len), Some(43));
    let refresh_token = answer["refresh_token"].as_str().unwrap();
    assert!(s.kv.0.borrow().keys().all(|k| !k.contains(refresh_token)), "the refresh token is stored hashed");
}

#[test]
fn bad_redemptions_are_refused_and_spend_the_code() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK")], "invalid_grant"),
        (&[("code_verifier", CHALLENGE)], "invalid_grant"),
        (&[("client_id", "other")], "invalid_grant"),
        (&[("redirect_uri", "http://127.0.0.1:5555/cb/")], "invalid_grant"),
        (&[("redirect_uri", "http://127.0.0.1:5556/cb")], "invalid_grant"),
    ];
    for (changes, expected) in cases {
        let s = Setup::new();
        let code = s.tokens().issue_code(&pending(), "alice", "sid").unwrap();
        assert_eq!(error(s.tokens().grant(&redeem(&code, changes))), *expected, "{changes:?}");
        assert_eq!(s.families(), 0, "nothing issued: {changes:?}");
        assert_eq!(error(s.tokens().grant(&redeem(&code, &[]))), "invalid_grant", "spent: {changes:?}");
        assert_eq!(s.kv.0.borrow().len(), 0, "nothing stored: {changes:?}");
    }
    // Refused before the code is looked at: it stays redeemable.
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("code_verifier", "")], "invalid_request"),
        (&[("client_id", "")], "invalid_request"),
        (&[("redirect_uri", "")], "invalid_request"),
        (&[("resource", "https://other.example/mcp")], "invalid_target"),
        (&[("client_secret", "x")], "invalid_client"),
        (&[("grant_type", "password")], "unsupported_grant_type"),
        (&[("grant_type", "")], "invalid_request"),
    ];
    let s = Setup::new();
    let code = s.tokens().issue_code(&pending(), "alice", "sid").unwrap();
    for (changes, expected) in cases {
        assert_eq!(error(s.tokens().grant(&redeem(&code, changes))), *expected, "{changes:?}");
    }
    assert!(s.tokens().grant(&redeem(&code, &[])).is_ok());
}

#[test]
fn a_replayed_code_revokes_what_it_issued() {
    let s = Setup::new();
    let code = s.tokens().issue_code(&pending(), "alice", "sid").unwrap();
    let answer = s.tokens().grant(&redeem(&code, &[])).unwrap();
    assert_eq!(s.families(), 1);
    assert_eq!(error(s.tokens().grant(&redeem(&code, &[]))), "invalid_grant");
    assert_eq!(s.families(), 0, "the family is revoked");
    let refresh_token = answer["refresh_token"].as_str().unwrap();
    assert_eq!(error(s.tokens().grant(&refresh(refresh_token, &[]))), "invalid_grant", "its refresh token no longer works");
}

#[test]
fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let s = Setup::new();
    let code = s.tokens().issue_code(&pending(), "alice", "sid").unwrap();
    let first = s.tokens().grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    let second = s.tokens().grant(&refresh(&first, &[("scope", "mcp")])).unwrap();
    assert_eq!(second["scope"], "mcp");
    let second = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let third = s.tokens().grant(&refresh(&second, &[])).unwrap();
    assert_eq!(third["scope"], "mcp admin", "narrowing one access token keeps the family's scope");
    let third = third["refresh_token"].as_str().unwrap().to_owned();

    assert_eq!(error(s.tokens().grant(&refresh(&first, &[]))), "invalid_grant", "reuse of a rotated token");
    assert_eq!(s.families(), 0);
    assert_eq!(error(s.tokens().grant(&refresh(&third, &[]))), "invalid_grant", "the current token died with its family");
}

#[test]
fn bad_refreshes() {
    let s = Setup::new();
    let code = s.tokens().issue_code(&pending(), "alice", "sid").unwrap();
    let token = s.tokens().grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(error(s.tokens().grant(&refresh(&token, &[("scope", "mcp root")]))), "invalid_scope");
    let s = Setup::new();
    let code = s.tokens().issue_code(&pending(), "alice", "sid").unwrap();
    let token = s.tokens().grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(error(s.tokens().grant(&refresh(&token, &[("resource", "https://gw.example/")]))), "invalid_target");
    assert_eq!(error(s.tokens().grant(&refresh(&token, &[("client_id", "")]))), "invalid_request");
    assert_eq!(error(s.tokens().grant(&refresh("unknown", &[]))), "invalid_grant");
    assert_eq!(error(s.tokens().grant(&refresh(&token, &[("client_id", "other")]))), "invalid_grant");
    assert_eq!(error(s.tokens().grant(&refresh(&token, &[]))), "invalid_grant", "another client's attempt spent it; the owner's reuse then revokes");
    assert_eq!(s.families(), 0);
}

#[test]
fn an_expired_family_refreshes_nothing() {
    let s = Setup::new();
    let code = s.tokens().issue_code(&pending(), "alice", "sid").unwrap();
    let token = s.tokens().grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    let later = Tokens { now: NOW + 604_800, ..s.tokens() };
    assert_eq!(error(later.grant(&refresh(&token, &[]))), "invalid_grant");
}

#[test]
fn revocation() {
    let s = Setup::new();
    let code = s.tokens().issue_code(&pending(), "alice", "sid").unwrap();
    let token = s.tokens().grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    s.tokens().revoke(&params(&[("token", "unknown")])).unwrap();
    s.tokens().revoke(&params(&[("token", &token), ("client_id", "other")])).unwrap();
    assert_eq!(s.families(), 1, "another client's revocation changes nothing");
    s.tokens().revoke(&params(&[("token", &token), ("token_type_hint", "refresh_token")])).unwrap();
    assert_eq!(s.families(), 0);
    assert_eq!(error(s.tokens().grant(&refresh(&token, &[]))), "invalid_grant");
    assert!(matches!(s.tokens().revoke(&params(&[])), Err(Failure::OAuth { error: "invalid_request", .. })));
}
