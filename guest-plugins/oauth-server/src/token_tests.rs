use super::*;
use crate::config::File;
use crate::form::encode;
use crate::kv::Memory;
use std::cell::RefCell;

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
        ..Pending::default()
    }
}

/// A completed login of `sub` through `corp`, in session `sid`.
fn login(sid: &str, sub: &str) -> Pending {
    Pending { session: sid.into(), subject: sub.into(), connected: vec!["corp".into()], ..pending() }
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
        Tokens {
            config: &self.config,
            kv: &self.kv,
            now: NOW,
            sign: &sign,
            client_known: |_, _| Ok(true),
            warn: |_| {},
            verify: &|_, _, _, _, _| Ok(false),
            audit: |_| {},
        }
    }
    /// A code for `sub` in session `sid`, whose info is written first (as the callback does).
    fn code(&self, sub: &str, sid: &str) -> String {
        crate::session::start(&self.kv, &login(sid, sub), NOW, 3600).unwrap();
        self.tokens().issue_code(&pending(), sub, sid).unwrap()
    }
    fn tokens_on<'a>(&'a self, kv: &'a dyn Kv) -> Tokens<'a> {
        Tokens { kv, ..self.tokens() }
    }
    fn families(&self) -> usize {
        self.kv.0.borrow().keys().filter(|k| k.starts_with("family:")).count()
    }
}

#[test]
fn a_code_gives_tokens_once() {
    let s = Setup::new();
    let code = s.code("alice", "sid-1");
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
        let code = s.code("alice", "sid");
        assert_eq!(error(s.tokens().grant(&redeem(&code, changes))), *expected, "{changes:?}");
        assert_eq!(s.families(), 0, "nothing issued: {changes:?}");
        assert_eq!(error(s.tokens().grant(&redeem(&code, &[]))), "invalid_grant", "spent: {changes:?}");
        assert!(
            s.kv.0.borrow().keys().all(|k| k.starts_with("code:") || k.starts_with("session-info:")),
            "nothing stored but the spent code (and the session the callback began): {changes:?}"
        );
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
    let code = s.code("alice", "sid");
    for (changes, expected) in cases {
        assert_eq!(error(s.tokens().grant(&redeem(&code, changes))), *expected, "{changes:?}");
    }
    assert!(s.tokens().grant(&redeem(&code, &[])).is_ok());
}

#[test]
fn a_replayed_code_revokes_what_it_issued() {
    let s = Setup::new();
    let code = s.code("alice", "sid");
    let answer = s.tokens().grant(&redeem(&code, &[])).unwrap();
    assert_eq!(s.families(), 1);
    assert_eq!(error(s.tokens().grant(&redeem(&code, &[]))), "invalid_grant");
    assert_eq!(s.families(), 0, "the family is revoked");
    let refresh_token = answer["refresh_token"].as_str().unwrap();
    assert_eq!(error(s.tokens().grant(&refresh(refresh_token, &[]))), "invalid_grant", "its refresh token no longer works");
}

#[test]
fn an_ended_session_refreshes_nothing() {
    let s = Setup::new();
    let code = s.code("alice", "sid");
    let token = s.tokens().grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    // `portcullis sessions revoke` deletes the session's info.
    s.kv.delete(&portcullis_contract::sessions::info_key("sid")).unwrap();
    assert_eq!(error(s.tokens().grant(&refresh(&token, &[]))), "invalid_grant");
    assert_eq!(s.families(), 0, "the family is revoked");
}

#[test]
fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let s = Setup::new();
    let code = s.code("alice", "sid");
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
    let code = s.code("alice", "sid");
    let token = s.tokens().grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(error(s.tokens().grant(&refresh(&token, &[("scope", "mcp root")]))), "invalid_scope");
    let s = Setup::new();
    let code = s.code("alice", "sid");
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
    let code = s.code("alice", "sid");
    let token = s.tokens().grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    let later = Tokens { now: NOW + 604_800, ..s.tokens() };
    assert_eq!(error(later.grant(&refresh(&token, &[]))), "invalid_grant");
}

#[test]
fn revocation() {
    let s = Setup::new();
    let code = s.code("alice", "sid");
    let token = s.tokens().grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    s.tokens().revoke(&params(&[("token", "unknown")])).unwrap();
    s.tokens().revoke(&params(&[("token", &token), ("client_id", "other")])).unwrap();
    assert_eq!(s.families(), 1, "another client's revocation changes nothing");
    s.tokens().revoke(&params(&[("token", &token), ("token_type_hint", "refresh_token")])).unwrap();
    assert_eq!(s.families(), 0);
    assert_eq!(error(s.tokens().grant(&refresh(&token, &[]))), "invalid_grant");
    assert!(matches!(s.tokens().revoke(&params(&[])), Err(Failure::OAuth { error: "invalid_request", .. })));
}

/// A store in which, when a request reaches its one-time step (its `swap`) on
/// a key that starts with `prefix`, the next queued request runs
/// in full: just before that step (`after` false: both read the key first),
/// or just after it (`after` true: between the step and what follows it).
struct Race<'a> {
    inner: &'a Memory,
    prefix: &'static str,
    after: bool,
    queued: RefCell<Vec<Request<'a>>>,
}

/// A request that runs on the store it is given.
type Request<'a> = Box<dyn FnOnce(&dyn Kv) + 'a>;

impl Race<'_> {
    fn interleave(&self, key: &str) {
        if key.starts_with(self.prefix) {
            let next = self.queued.borrow_mut().pop();
            if let Some(run) = next {
                run(self);
            }
        }
    }
}

impl Kv for Race<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn put(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<(), StoreError> {
        self.inner.put(key, value, ttl_seconds)
    }
    fn swap(&self, key: &str, expected: &[u8], value: &[u8], ttl_seconds: u32) -> Result<bool, StoreError> {
        if !self.after {
            self.interleave(key);
        }
        let swapped = self.inner.swap(key, expected, value, ttl_seconds);
        if self.after {
            self.interleave(key);
        }
        swapped
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key)
    }
}

/// `n` copies of `request` interleaved on `prefix` keys as `Race` says; the
/// answers, the first request's last.
fn race(s: &Setup, prefix: &'static str, after: bool, n: usize, request: &Params) -> Vec<Result<Value, Failure>> {
    let answers = RefCell::new(Vec::new());
    let store = Race { inner: &s.kv, prefix, after, queued: RefCell::new(Vec::new()) };
    for _ in 1..n {
        store.queued.borrow_mut().push(Box::new(|kv: &dyn Kv| {
            let answer = s.tokens_on(kv).grant(request);
            answers.borrow_mut().push(answer);
        }));
    }
    let first = s.tokens_on(&store).grant(request);
    answers.borrow_mut().push(first);
    answers.take()
}

/// Of the answers, exactly one has tokens and every other is `invalid_grant`; its refresh token.
fn one_winner(answers: Vec<Result<Value, Failure>>) -> String {
    let (won, lost): (Vec<_>, Vec<_>) = answers.into_iter().partition(Result::is_ok);
    assert_eq!(won.len(), 1, "exactly one redemption succeeds; the others: {lost:?}");
    for answer in lost {
        assert_eq!(error(answer), "invalid_grant");
    }
    won[0].as_ref().unwrap()["refresh_token"].as_str().unwrap().to_owned()
}

#[test]
fn a_code_replayed_during_its_redemption_revokes_what_it_issued() {
    for (after, n) in [(true, 2), (false, 2), (false, 3)] {
        let s = Setup::new();
        let code = s.code("alice", "sid");
        let winner = one_winner(race(&s, "code:", after, n, &redeem(&code, &[])));
        assert_eq!(s.families(), 0, "after {after}, {n} at once: the family is revoked and no loser left one");
        assert_eq!(error(s.tokens().grant(&refresh(&winner, &[]))), "invalid_grant", "after {after}, {n} at once");
        assert_eq!(error(s.tokens().grant(&redeem(&code, &[]))), "invalid_grant", "after {after}, {n} at once: still spent");
    }
}

#[test]
fn a_refresh_token_replayed_during_its_rotation_revokes_the_family() {
    for (after, n) in [(true, 2), (false, 2), (false, 3)] {
        let s = Setup::new();
        let code = s.code("alice", "sid");
        let token = s.tokens().grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
        let winner = one_winner(race(&s, "rt:", after, n, &refresh(&token, &[])));
        assert_eq!(s.families(), 0, "after {after}, {n} at once: the family is revoked");
        assert_eq!(error(s.tokens().grant(&refresh(&winner, &[]))), "invalid_grant", "after {after}, {n} at once");
    }
}

#[test]
fn a_code_that_failed_a_check_is_spent_but_a_redemption_it_raced_is_revoked() {
    // A wrong verifier and the right one at once: one spends the code; when
    // the right one issued tokens, the wrong one's loss revokes them.
    for after in [true, false] {
        let s = Setup::new();
        let code = s.code("alice", "sid");
        let wrong = redeem(&code, &[("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK")]);
        let answers = RefCell::new(Vec::new());
        let store = Race { inner: &s.kv, prefix: "code:", after, queued: RefCell::new(Vec::new()) };
        store.queued.borrow_mut().push(Box::new(|kv: &dyn Kv| answers.borrow_mut().push(s.tokens_on(kv).grant(&wrong))));
        let right = s.tokens_on(&store).grant(&redeem(&code, &[]));
        assert_eq!(error(answers.take().pop().unwrap()), "invalid_grant");
        if let Ok(answer) = right {
            assert_eq!(s.families(), 0, "after {after}: what the right one issued is revoked");
            assert_eq!(error(s.tokens().grant(&refresh(answer["refresh_token"].as_str().unwrap(), &[]))), "invalid_grant");
        } else {
            assert_eq!(error(right), "invalid_grant", "after {after}");
            assert_eq!(s.families(), 0, "after {after}");
        }
        assert_eq!(error(s.tokens().grant(&redeem(&code, &[]))), "invalid_grant", "after {after}: spent");
    }
}

#[test]
fn the_replay_markers_live_as_long_as_the_family() {
    // A map that keeps the TTLs.
    #[derive(Default)]
    struct Ttls(Memory, RefCell<std::collections::HashMap<String, u32>>);
    impl Kv for Ttls {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.0.get(key)
        }
        fn put(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<(), StoreError> {
            self.1.borrow_mut().insert(key.to_owned(), ttl_seconds);
            self.0.put(key, value, ttl_seconds)
        }
        fn swap(&self, key: &str, expected: &[u8], value: &[u8], ttl_seconds: u32) -> Result<bool, StoreError> {
            let swapped = self.0.swap(key, expected, value, ttl_seconds)?;
            if swapped {
                self.1.borrow_mut().insert(key.to_owned(), ttl_seconds);
            }
            Ok(swapped)
        }
        fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.1.borrow_mut().remove(key);
            self.0.delete(key)
        }
    }
    let s = Setup::new();
    let store = Ttls::default();
    crate::session::start(&store, &login("sid", "alice"), NOW, 3600).unwrap();
    let code = s.tokens_on(&store).issue_code(&pending(), "alice", "sid").unwrap();
    assert_eq!(store.1.borrow()[&format!("code:{}", random::hash(&code))], 60, "a code lives code_ttl");
    let token = s.tokens_on(&store).grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    let later = Tokens { now: NOW + 1000, ..s.tokens_on(&store) };
    later.grant(&refresh(&token, &[])).unwrap();
    let ttls = store.1.borrow();
    let marker = |prefix: &str, secret: &str| {
        let keys = [format!("{prefix}:{}", random::hash(secret)), format!("used:{}", random::hash(secret)), format!("rt-used:{}", random::hash(secret))];
        keys.iter().find_map(|k| ttls.get(k).copied())
    };
    assert_eq!(marker("code", &code), Some(604_800), "a redeemed code's marker lives as long as its family");
    assert_eq!(marker("rt", &token), Some(604_800 - 1000), "a rotated token's marker lives as long as its family");
}

#[test]
fn a_refresh_needs_a_client_this_server_still_trusts() {
    let s = Setup::new();
    let code = s.code("alice", "sid");
    let token = s.tokens().grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    // Removed from the policy, its registration expired, or `cimd` switched off.
    let forgotten = Tokens { client_known: |_, client_id| Ok(client_id != "cli"), ..s.tokens() };
    assert_eq!(error(forgotten.grant(&refresh(&token, &[]))), "invalid_grant");
    assert_eq!(s.families(), 0, "the family is revoked");
    assert_eq!(error(s.tokens().grant(&refresh(&token, &[]))), "invalid_grant", "trusted again, the family stays revoked");
}

#[test]
fn a_code_needs_a_client_this_server_still_trusts() {
    let s = Setup::new();
    let code = s.code("alice", "sid");
    let forgotten = Tokens { client_known: |_, client_id| Ok(client_id != "cli"), ..s.tokens() };
    assert_eq!(error(forgotten.grant(&redeem(&code, &[]))), "invalid_grant");
    assert_eq!(s.families(), 0, "nothing issued");
    assert_eq!(error(s.tokens().grant(&redeem(&code, &[]))), "invalid_grant", "the code is spent");
}

#[test]
fn a_store_failure_at_the_client_check_is_unavailable_and_spends_nothing() {
    let s = Setup::new();
    let down = Tokens { client_known: |_, _| Err(StoreError::Unavailable("down".into())), ..s.tokens() };
    let code = s.code("alice", "sid");
    assert!(matches!(down.grant(&redeem(&code, &[])), Err(Failure::Store(StoreError::Unavailable(_)))));
    let token = s.tokens().grant(&redeem(&code, &[])).expect("the code was not spent")["refresh_token"].as_str().unwrap().to_owned();
    assert!(matches!(down.grant(&refresh(&token, &[])), Err(Failure::Store(StoreError::Unavailable(_)))));
    s.tokens().grant(&refresh(&token, &[])).expect("the refresh token was not spent");
    assert_eq!(s.families(), 1);
}

#[test]
fn revoking_a_rotated_token_changes_nothing() {
    let s = Setup::new();
    let code = s.code("alice", "sid");
    let first = s.tokens().grant(&redeem(&code, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    let second = s.tokens().grant(&refresh(&first, &[])).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    s.tokens().revoke(&params(&[("token", &first)])).unwrap();
    assert_eq!(s.families(), 1, "a rotated token is already dead: revoking it is a no-op");
    s.tokens().grant(&refresh(&second, &[])).unwrap();
}
