use super::*;
use crate::config::{Config, File};
use crate::form::encode;
use crate::kv::Memory;
use std::cell::RefCell;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://gw.example";
const RESOURCE: &str = "https://gw.example/mcp";
const IDP: &str = "https://idp.example";
const IDP_JWKS: &str = "https://idp.example/jwks";
const AGENTS: &str = "https://agents.example";
const AGENTS_JWKS: &str = "https://agents.example/jwks";
const EXCHANGE_AUD: &str = "https://gw.example/exchange";

const CONFIG: &str = r#"{
    "token_key_secret": "k",
    "scopes": ["mcp", "admin"],
    "token_exchange": {
        "clients": ["agent"],
        "require_actor": false,
        "trusted_issuers": [
            {"issuer": "https://idp.example", "jwks_uri": "https://idp.example/jwks", "audience": "https://gw.example/exchange", "scopes": ["mcp"]},
            {"issuer": "https://agents.example", "jwks_uri": "https://agents.example/jwks", "audience": "https://gw.example/exchange", "scopes": ["mcp"]}
        ],
        "actors": [
            {"issuer": "https://agents.example", "sub": "agent-1", "scopes": ["mcp"]},
            {"issuer": "https://agents.example", "sub": "agent-2", "subjects": ["bob"]},
            {"issuer": "https://gw.example", "sub": "bot"}
        ]
    }
}"#;

fn config(json: &str) -> Config {
    let file: File = portcullis_plugin::parse_config(json).unwrap();
    Config::new(file, RESOURCE).unwrap().0
}

thread_local! {
    static AUDIT: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn audit(line: &str) {
    AUDIT.with(|a| a.borrow_mut().push(line.to_owned()));
}

fn audit_lines() -> Vec<String> {
    AUDIT.with(|a| a.borrow_mut().drain(..).collect())
}

/// A compact JWS whose "signature" is the name of the key that made it and
/// what it signed: `own`, `idp` or `agents` verify with their key set;
/// anything else, or changed claims, does not.
fn jwt(header: Value, claims: Value, key: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", part(&header), part(&claims));
    let signature = URL_SAFE_NO_PAD.encode(format!("{key}:{input}"));
    format!("{input}.{signature}")
}

fn own_header() -> Value {
    json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"})
}

/// One of this server's access tokens for `sub`, with `changes` merged in (a `null` removes a claim).
fn own_token(sub: &str, changes: Value) -> String {
    let mut claims = json!({
        "iss": ISSUER, "sub": sub, "aud": RESOURCE, "client_id": "cli", "scope": "mcp admin",
        "iat": NOW - 10, "exp": NOW + 900, "jti": "j", "sid": "sid-1",
    });
    merge(&mut claims, changes);
    jwt(own_header(), claims, "own")
}

/// A token of the trusted issuer `iss` (signed with its key) for `sub`.
fn trusted_token(iss: &str, sub: &str, changes: Value) -> String {
    let mut claims = json!({"iss": iss, "sub": sub, "aud": EXCHANGE_AUD, "iat": NOW - 10, "exp": NOW + 3600});
    merge(&mut claims, changes);
    let key = if iss == IDP { "idp" } else { "agents" };
    jwt(json!({"alg": "RS256", "kid": "r1"}), claims, key)
}

fn merge(claims: &mut Value, changes: Value) {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
}

struct Setup {
    config: Config,
    kv: Memory,
    /// The key sets a verification asked for.
    fetched: RefCell<Vec<String>>,
}

impl Setup {
    fn new() -> Self {
        Self::with(CONFIG)
    }
    fn with(json: &str) -> Self {
        audit_lines();
        Setup { config: config(json), kv: Memory::default(), fetched: RefCell::new(Vec::new()) }
    }
    fn grant(&self, params: &Params) -> Result<Value, Failure> {
        let verify = |source: KeySource<'_>, alg: &str, _kid: Option<&str>, input: &str, signature: &str| -> Result<bool, String> {
            assert!(ALLOWED_ALGS.contains(&alg));
            let signature = String::from_utf8(URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
            let signed_by = |key: &str| signature == format!("{key}:{input}");
            Ok(match source {
                KeySource::Own => {
                    self.fetched.borrow_mut().push("own".into());
                    signed_by("own")
                }
                KeySource::Jwks(uri) => {
                    self.fetched.borrow_mut().push(uri.into());
                    (uri == IDP_JWKS && signed_by("idp")) || (uri == AGENTS_JWKS && signed_by("agents"))
                }
            })
        };
        let tokens = Tokens {
            config: &self.config,
            kv: &self.kv,
            now: NOW,
            sign: &|claims: &str| Ok(claims.to_owned()),
            client_known: |_, _| Ok(true),
            warn: |_| {},
            verify: &verify,
            audit,
        };
        tokens.grant(params)
    }
}

/// A token-exchange request by `agent` for this resource; `changes` replace
/// parameters (an empty value removes one).
fn exchange<'a>(subject: &'a str, actor: Option<&'a str>, changes: &[(&'a str, &'a str)]) -> Params {
    let mut pairs =
        vec![("grant_type", GRANT_TYPE), ("client_id", "agent"), ("resource", RESOURCE), ("subject_token", subject), ("subject_token_type", ACCESS_TOKEN_TYPE)];
    if let Some(actor) = actor {
        pairs.extend([("actor_token", actor), ("actor_token_type", JWT_TYPE)]);
    }
    pairs.retain(|(n, _)| !changes.iter().any(|(c, _)| c == n));
    pairs.extend(changes.iter().filter(|(_, v)| !v.is_empty()));
    Params::parse(encode(pairs.iter().copied()).as_bytes()).unwrap()
}

fn issued(answer: &Value) -> Value {
    serde_json::from_str(answer["access_token"].as_str().unwrap()).unwrap()
}

fn error(result: Result<Value, Failure>) -> (&'static str, String) {
    match result {
        Err(Failure::OAuth { error, description, .. }) => (error, description),
        Err(other) => panic!("not an OAuth error: {other:?}"),
        Ok(answer) => panic!("issued: {answer}"),
    }
}

#[test]
fn an_agent_acts_for_the_user_within_the_rule() {
    let s = Setup::new();
    let subject = own_token("alice", json!({}));
    let actor = trusted_token(AGENTS, "agent-1", json!({}));
    let answer = s.grant(&exchange(&subject, Some(&actor), &[])).unwrap();
    assert_eq!(answer["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 300, "the default token_ttl");
    assert_eq!(answer["scope"], "mcp", "the subject's scopes within the rule's");
    assert!(answer.get("refresh_token").is_none(), "no refresh token: {answer}");
    let claims = issued(&answer);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["client_id"], "agent");
    assert_eq!(claims["act"], json!({"sub": "agent-1", "iss": AGENTS}));
    assert_eq!(claims["sid"], "sid-1", "the user's session: the upstream tokens stay the user's");
    assert_eq!((claims["iat"].as_u64(), claims["exp"].as_u64()), (Some(NOW), Some(NOW + 300)));
    assert_eq!(*s.fetched.borrow(), ["own", AGENTS_JWKS]);

    let lines = audit_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    for part in ["client=\"agent\"", "subject=\"alice\"", "actor=\"agent-1\"", "audience=\"https://gw.example/mcp\"", "outcome=issued"] {
        assert!(line.contains(part), "{part} in {line}");
    }
    for token in [subject.as_str(), actor.as_str(), answer["access_token"].as_str().unwrap()] {
        assert!(!line.contains(token), "no token in the audit line");
    }
}

#[test]
fn a_requested_scope_and_an_actor_of_this_server() {
    let s = Setup::new();
    let subject = own_token("alice", json!({}));
    let bot = own_token("bot", json!({"client_id": "bot-client"}));
    let params = exchange(&subject, Some(&bot), &[("actor_token_type", ACCESS_TOKEN_TYPE), ("scope", "admin")]);
    let answer = s.grant(&params).unwrap();
    assert_eq!(answer["scope"], "admin", "the rule for `bot` names no scopes: any of the subject's");
    assert_eq!(issued(&answer)["act"], json!({"sub": "bot", "iss": ISSUER}));
}

#[test]
fn an_earlier_actor_is_nested_and_the_life_never_outlasts_the_subject_token() {
    let s = Setup::new();
    let subject = own_token("alice", json!({"act": {"sub": "agent-0", "iss": AGENTS}, "exp": NOW + 100}));
    let actor = trusted_token(AGENTS, "agent-1", json!({}));
    let answer = s.grant(&exchange(&subject, Some(&actor), &[])).unwrap();
    assert_eq!(answer["expires_in"], 100);
    let claims = issued(&answer);
    assert_eq!(claims["exp"].as_u64(), Some(NOW + 100));
    assert_eq!(claims["act"], json!({"sub": "agent-1", "iss": AGENTS, "act": {"sub": "agent-0", "iss": AGENTS}}));

    // Nor the actor token.
    let actor = trusted_token(AGENTS, "agent-1", json!({"exp": NOW + 50}));
    assert_eq!(s.grant(&exchange(&own_token("alice", json!({})), Some(&actor), &[])).unwrap()["expires_in"], 50);
}

#[test]
fn may_act_allows_an_actor_no_rule_lists() {
    let s = Setup::new();
    let subject = trusted_token(IDP, "carol", json!({"may_act": {"sub": "agent-9", "iss": AGENTS}}));
    let actor = trusted_token(AGENTS, "agent-9", json!({}));
    let answer = s.grant(&exchange(&subject, Some(&actor), &[("subject_token_type", JWT_TYPE)])).unwrap();
    let claims = issued(&answer);
    assert_eq!((claims["sub"].as_str(), claims["act"]["sub"].as_str()), (Some("carol"), Some("agent-9")));
    assert_eq!(claims["scope"], "mcp", "a trusted issuer's token stands for its configured scopes");
    assert!(claims.get("sid").is_none(), "no session of this server behind a trusted issuer's token");
}

#[test]
fn a_trusted_issuers_token_without_an_actor() {
    let s = Setup::new();
    let subject = trusted_token(IDP, "carol", json!({"scope": "whatever admin"}));
    let answer = s.grant(&exchange(&subject, None, &[("subject_token_type", JWT_TYPE), ("resource", ""), ("audience", RESOURCE)])).unwrap();
    let claims = issued(&answer);
    assert_eq!((claims["sub"].as_str(), claims["scope"].as_str()), (Some("carol"), Some("mcp")), "its own `scope` claim is not ours");
    assert!(claims.get("act").is_none(), "no actor, no act");
    assert_eq!(*s.fetched.borrow(), [IDP_JWKS]);
}

/// What is wrong, the subject token, the actor token, the parameters changed, the error, what its description says.
type Case<'a> = (&'a str, String, Option<String>, Vec<(&'a str, &'a str)>, &'a str, &'a str);

#[test]
fn every_refusal() {
    let alice = own_token("alice", json!({}));
    let agent1 = trusted_token(AGENTS, "agent-1", json!({}));
    let own_tampered = {
        let token = own_token("alice", json!({}));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(json!({"iss": ISSUER, "sub": "mallory", "aud": RESOURCE, "scope": "mcp admin", "exp": NOW + 900}).to_string());
        parts.join(".")
    };
    let cases: Vec<Case> = vec![
        ("expired subject token", own_token("alice", json!({"exp": NOW})), None, vec![], "invalid_request", "expired"),
        ("expired actor token", alice.clone(), Some(trusted_token(AGENTS, "agent-1", json!({"exp": NOW - 1}))), vec![], "invalid_request", "expired"),
        ("subject token without exp", own_token("alice", json!({"exp": null})), None, vec![], "invalid_request", "no `exp`"),
        (
            "foreign subject token",
            jwt(json!({"alg": "RS256", "kid": "r1"}), json!({"iss": "https://evil.example", "sub": "alice", "aud": EXCHANGE_AUD, "exp": NOW + 60}), "idp"),
            None,
            vec![],
            "invalid_request",
            "nor by a trusted issuer",
        ),
        (
            "bad signature",
            jwt(own_header(), json!({"iss": ISSUER, "sub": "alice", "aud": RESOURCE, "exp": NOW + 60}), "forged"),
            None,
            vec![],
            "invalid_request",
            "signature",
        ),
        ("claims changed after signing", own_tampered, None, vec![], "invalid_request", "signature"),
        (
            "a trusted issuer's token signed by another",
            jwt(json!({"alg": "RS256"}), json!({"iss": IDP, "sub": "x", "aud": EXCHANGE_AUD, "exp": NOW + 60}), "agents"),
            None,
            vec![],
            "invalid_request",
            "signature",
        ),
        ("own token for another resource", own_token("alice", json!({"aud": "https://gw.example/other"})), None, vec![], "invalid_request", "`aud`"),
        (
            "trusted token for another audience",
            trusted_token(IDP, "carol", json!({"aud": "https://elsewhere.example"})),
            None,
            vec![],
            "invalid_request",
            "`aud`",
        ),
        (
            "own token not at+jwt",
            jwt(json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}), json!({"iss": ISSUER, "sub": "a", "aud": RESOURCE, "exp": NOW + 60}), "own"),
            None,
            vec![],
            "invalid_request",
            "at+jwt",
        ),
        (
            "alg none",
            jwt(json!({"alg": "none", "typ": "at+jwt"}), json!({"iss": ISSUER, "sub": "a", "aud": RESOURCE, "exp": NOW + 60}), ""),
            None,
            vec![],
            "invalid_request",
            "alg",
        ),
        (
            "alg HS256",
            jwt(json!({"alg": "HS256", "typ": "at+jwt"}), json!({"iss": ISSUER, "sub": "a", "aud": RESOURCE, "exp": NOW + 60}), "own"),
            None,
            vec![],
            "invalid_request",
            "alg",
        ),
        ("not a JWT", "opaque-token".into(), None, vec![], "invalid_request", "not a JWT"),
        ("unlisted actor", alice.clone(), Some(trusted_token(AGENTS, "agent-9", json!({}))), vec![], "invalid_request", "may not act"),
        ("actor listed for other subjects", alice.clone(), Some(trusted_token(AGENTS, "agent-2", json!({}))), vec![], "invalid_request", "may not act"),
        ("actor of another issuer with a listed sub", alice.clone(), Some(trusted_token(IDP, "agent-1", json!({}))), vec![], "invalid_request", "may not act"),
        ("may_act names another actor", own_token("alice", json!({"may_act": {"sub": "agent-7"}})), Some(agent1.clone()), vec![], "invalid_request", "may_act"),
        (
            "may_act names the sub at another issuer",
            own_token("alice", json!({"may_act": {"sub": "agent-1", "iss": IDP}})),
            Some(agent1.clone()),
            vec![],
            "invalid_request",
            "may_act",
        ),
        ("scope widening", own_token("alice", json!({"scope": "mcp"})), None, vec![("scope", "mcp admin")], "invalid_scope", "admin"),
        ("a scope beyond the actor's rule", alice.clone(), Some(agent1.clone()), vec![("scope", "admin")], "invalid_scope", "admin"),
        (
            "a scope this server no longer offers",
            own_token("alice", json!({"scope": "mcp retired"})),
            None,
            vec![("scope", "retired")],
            "invalid_scope",
            "retired",
        ),
        ("a subject token with no scope", own_token("alice", json!({"scope": null})), None, vec![], "invalid_scope", "no scope"),
        ("wrong resource", alice.clone(), None, vec![("resource", "https://gw.example/other")], "invalid_target", "resource"),
        ("wrong audience", alice.clone(), None, vec![("audience", "https://other.example")], "invalid_target", "audience"),
        ("no resource", alice.clone(), None, vec![("resource", "")], "invalid_request", "resource"),
        (
            "refresh token requested",
            alice.clone(),
            None,
            vec![("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")],
            "invalid_request",
            "requested_token_type",
        ),
        (
            "id token requested",
            alice.clone(),
            None,
            vec![("requested_token_type", "urn:ietf:params:oauth:token-type:id_token")],
            "invalid_request",
            "requested_token_type",
        ),
        (
            "subject token type id_token",
            alice.clone(),
            None,
            vec![("subject_token_type", "urn:ietf:params:oauth:token-type:id_token")],
            "invalid_request",
            "token type",
        ),
        ("no subject token type", alice.clone(), None, vec![("subject_token_type", "")], "invalid_request", "subject_token_type"),
        ("actor token without its type", alice.clone(), Some(agent1.clone()), vec![("actor_token_type", "")], "invalid_request", "go together"),
        ("a client not listed for the grant", alice.clone(), None, vec![("client_id", "cli")], "unauthorized_client", "may not exchange"),
        ("no client", alice.clone(), None, vec![("client_id", "")], "invalid_request", "client_id"),
        ("client authentication", alice.clone(), None, vec![("client_secret", "x")], "invalid_client", "public"),
    ];
    for (what, subject, actor, changes, expected, said) in cases {
        let s = Setup::new();
        let (error, description) = error(s.grant(&exchange(&subject, actor.as_deref(), &changes)));
        assert_eq!(error, expected, "{what}: {description}");
        assert!(description.contains(said), "{what}: {description:?} should say {said:?}");
        assert!(s.kv.0.borrow().is_empty(), "{what}: nothing stored");
        if what.starts_with("foreign") {
            assert!(s.fetched.borrow().is_empty(), "no key set fetched for an issuer not listed");
        }
        let lines = audit_lines();
        if what != "client authentication" {
            assert_eq!(lines.len(), 1, "{what}: one audit line: {lines:?}");
            assert!(lines[0].contains("outcome=refused") && lines[0].contains(expected), "{what}: {}", lines[0]);
            assert!(!lines[0].contains(&subject), "{what}: no token in the audit line");
        }
    }
}

#[test]
fn an_actor_is_required_by_default() {
    let s = Setup::with(&CONFIG.replace(r#""require_actor": false,"#, ""));
    let (error, description) = error(s.grant(&exchange(&own_token("alice", json!({})), None, &[])));
    assert_eq!(error, "invalid_request", "{description}");
    assert!(description.contains("actor_token is required"), "{description}");
    let actor = trusted_token(AGENTS, "agent-1", json!({}));
    assert!(s.grant(&exchange(&own_token("alice", json!({})), Some(&actor), &[])).is_ok());
}

#[test]
fn the_grant_is_off_without_its_table() {
    let s = Setup::with(r#"{"token_key_secret": "k", "scopes": ["mcp"]}"#);
    let (error, description) = error(s.grant(&exchange(&own_token("alice", json!({})), None, &[])));
    assert_eq!(error, "unsupported_grant_type", "{description}");
    assert!(s.fetched.borrow().is_empty(), "nothing verified");
}

#[test]
fn configuration_refusals() {
    let parse = |exchange: &str| -> Result<Config, String> {
        let json = format!(r#"{{"token_key_secret": "k", "scopes": ["mcp"], "token_exchange": {exchange}}}"#);
        let file: File = portcullis_plugin::parse_config(&json)?;
        Config::new(file, RESOURCE).map(|(c, _)| c)
    };
    let c = parse(r#"{"clients": ["agent"]}"#).unwrap();
    let e = c.exchange.unwrap();
    assert_eq!((e.token_ttl, e.clients.as_slice(), e.require_actor), (300, &["agent".to_owned()][..], true));
    let trusted = |extra: &str| {
        format!(
            r#"{{"clients": ["a"], "trusted_issuers": [{{"issuer": "https://t.example", "jwks_uri": "https://t.example/jwks", "audience": "x", "scopes": ["mcp"]{extra}}}]"#
        )
    };
    for (bad, said) in [
        (r#"{"clients": []}"#.to_owned(), "clients"),
        (r#"{"clients": ["a b"]}"#.to_owned(), "clients"),
        (r#"{"clients": ["a"], "token_ttl": 7200}"#.to_owned(), "token_ttl"),
        (r#"{"clients": ["a"], "enabled": true}"#.to_owned(), "unknown field"),
        (r#"{"clients": ["a"], "trusted_issuers": [{"issuer": "https://gw.example", "jwks_uri": "https://gw.example/j", "audience": "x", "scopes": ["mcp"]}]}"#.to_owned(), "another issuer"),
        (r#"{"clients": ["a"], "trusted_issuers": [{"issuer": "https://t.example", "jwks_uri": "http://t.example/j", "audience": "x", "scopes": ["mcp"]}]}"#.to_owned(), "https"),
        (r#"{"clients": ["a"], "trusted_issuers": [{"issuer": "https://t.example", "jwks_uri": "https://t.example/j", "audience": "x", "scopes": ["admin"]}]}"#.to_owned(), "not among `scopes`"),
        (r#"{"clients": ["a"], "trusted_issuers": [{"issuer": "https://t.example", "jwks_uri": "https://t.example/j", "audience": "x", "scopes": []}]}"#.to_owned(), "scopes"),
        (format!("{}}}", trusted(r#"}, {"issuer": "https://t.example", "jwks_uri": "https://t.example/j", "audience": "x", "scopes": ["mcp"]"#)), "twice"),
        (r#"{"clients": ["a"], "actors": [{"issuer": "https://other.example", "sub": "x"}]}"#.to_owned(), "neither"),
        (r#"{"clients": ["a"], "actors": [{"issuer": "https://gw.example", "sub": "x", "scopes": ["admin"]}]}"#.to_owned(), "not among `scopes`"),
    ] {
        let refused = parse(&bad).expect_err(&bad);
        assert!(refused.contains(said), "{bad}: {refused}");
    }
    assert!(parse(&format!("{}, \"actors\": [{{\"issuer\": \"https://t.example\", \"sub\": \"agent\"}}]}}", trusted(""))).is_ok());
}
