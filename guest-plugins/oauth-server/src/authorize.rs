//! `/oauth/authorize`: the checks of an authorization request, in the order
//! that decides where an error goes. Until the client and its redirect URI
//! are trusted, an error is shown on a page (a redirect would be an open
//! redirect); after that, it goes back to the client with `state` and `iss`
//! (RFC 9207), as every redirect from this server does.

use crate::config::{Config, is_scope_token};
use crate::form::{Params, encode};
use crate::pkce;
use crate::register::Client;
use serde::{Deserialize, Serialize};

/// An authorization request that passed every check, kept under
/// `pending:{id}` while the person logs in upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub client_id: String,
    /// As presented (for a loopback redirect, with its port).
    pub redirect_uri: String,
    pub code_challenge: String,
    /// Space-separated.
    pub scope: String,
    pub resource: String,
    pub state: Option<String>,
    /// The hash of the browser binding's secret (`browser`); empty in a
    /// request stored before bindings existed, which then binds no browser.
    #[serde(default)]
    pub browser: String,
    /// The session this login opens (`portcullis_contract::sessions`), drawn
    /// when the request is accepted so that every provider's tokens land
    /// under it; empty in a request stored before (one is drawn at the callback).
    #[serde(default)]
    pub session: String,
    /// The providers still to log in at, in order, after the current one.
    #[serde(default)]
    pub next: Vec<String>,
    /// The providers logged in at so far, the login's own first.
    #[serde(default)]
    pub connected: Vec<String>,
    /// The user's id at the login's own provider, once logged in there.
    #[serde(default)]
    pub subject: String,
}

impl Pending {
    /// Records a completed provider leg, once (a consent form sent twice
    /// starts two legs at the same provider).
    pub fn connect(&mut self, provider: String) {
        if !self.connected.contains(&provider) {
            self.connected.push(provider);
        }
    }

    /// Takes `provider`'s scope out of the granted ones: its login failed or
    /// was declined, and the rest goes on without it.
    pub fn without_provider(&mut self, provider: &str) {
        let scope = portcullis_contract::sessions::provider_scope(provider);
        self.scope = self.scope.split(' ').filter(|s| *s != scope).collect::<Vec<_>>().join(" ");
    }
}

/// Where an error goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// On a page, to the person: the client or redirect URI is not trusted.
    Page(String),
    /// Back to the client (RFC 6749 §4.1.2.1).
    Redirect { location: String },
}

/// The longest `state` kept (it comes back in a URL).
const MAX_STATE: usize = 1024;

/// The client's id and redirect URI, checked first (the caller looks the
/// client up between the two steps: that needs the store).
pub fn client_id(params: &Params) -> Result<&str, Refusal> {
    params.get("client_id").ok_or_else(|| Refusal::Page("The request has no client_id.".into()))
}

/// Checks the request for `client` (trusted); the pending authorization, or where the error goes.
pub fn check(params: &Params, client: &Client, config: &Config) -> Result<Pending, Refusal> {
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| Refusal::Page("The request has no redirect_uri.".into()))?;
    if !crate::redirect::matches_any(&client.redirect_uris, redirect_uri) {
        return Err(Refusal::Page("The redirect_uri is not one this client registered.".into()));
    }
    // Trusted from here on: errors go back to the client.
    let state = params.get("state");
    let back = |error: &str, description: &str| Refusal::Redirect { location: error_location(redirect_uri, error, description, state, &config.issuer) };
    if state.is_some_and(|s| s.len() > MAX_STATE) {
        return Err(back("invalid_request", "state is too long"));
    }
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => return Err(back("unsupported_response_type", "only response_type=code is supported")),
        None => return Err(back("invalid_request", "response_type is required")),
    }
    let code_challenge = pkce::check_challenge(params.get("code_challenge"), params.get("code_challenge_method")).map_err(|e| back("invalid_request", e))?;
    match params.get("resource") {
        Some(resource) if config.resource.is(resource) => {}
        Some(_) => return Err(back("invalid_target", "resource does not name this server's resource")),
        None if config.require_resource => return Err(back("invalid_target", "resource is required (RFC 8707): name this server's resource")),
        None => {}
    }
    let scope = match params.get("scope") {
        None => config.scopes.join(" "),
        Some(requested) => {
            let mut scopes: Vec<&str> = Vec::new();
            for scope in requested.split(' ') {
                if !is_scope_token(scope) || !config.scopes.iter().any(|s| s == scope) {
                    return Err(back("invalid_scope", "a requested scope is not offered by this server"));
                }
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
            scopes.join(" ")
        }
    };
    Ok(Pending {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        code_challenge,
        scope,
        resource: config.resource.audience().to_owned(),
        state: state.map(str::to_owned),
        ..Pending::default()
    })
}

/// `redirect_uri` with an error, `state` and `iss` added.
pub fn error_location(redirect_uri: &str, error: &str, description: &str, state: Option<&str>, issuer: &str) -> String {
    let mut pairs = vec![("error", error), ("error_description", description)];
    pairs.extend(state.map(|s| ("state", s)));
    pairs.push(("iss", issuer));
    with_query(redirect_uri, &encode(pairs))
}

/// `redirect_uri` with the code, `state` and `iss` added.
pub fn code_location(redirect_uri: &str, code: &str, state: Option<&str>, issuer: &str) -> String {
    let mut pairs = vec![("code", code)];
    pairs.extend(state.map(|s| ("state", s)));
    pairs.push(("iss", issuer));
    with_query(redirect_uri, &encode(pairs))
}

/// Appends `query` to the URI's own query, if it has one (RFC 6749 §3.1.2 allows it).
fn with_query(redirect_uri: &str, query: &str) -> String {
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::File;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn config() -> Config {
        let file: File = portcullis_plugin::parse_config(r#"{"token_key_secret": "k", "scopes": ["mcp", "admin"]}"#).unwrap();
        Config::new(file, "https://gw.example/mcp").unwrap().0
    }

    fn client() -> Client {
        Client {
            client_id: "cli".into(),
            redirect_uris: vec!["http://127.0.0.1/cb".into(), "https://app.example/cb?x=1".into()],
            application_type: None,
            client_name: None,
        }
    }

    fn query(extra: &[(&str, &str)], without: &[&str]) -> Params {
        let mut pairs = vec![
            ("client_id", "cli"),
            ("redirect_uri", "http://127.0.0.1:5555/cb"),
            ("response_type", "code"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("resource", "https://gw.example/mcp"),
            ("state", "s1"),
        ];
        pairs.retain(|(n, _)| !without.contains(n) && !extra.iter().any(|(e, _)| e == n));
        pairs.extend_from_slice(extra);
        Params::parse(encode(pairs).as_bytes()).unwrap()
    }

    fn redirected(refusal: Refusal) -> String {
        match refusal {
            Refusal::Redirect { location } => location,
            Refusal::Page(p) => panic!("a page, not a redirect: {p}"),
        }
    }

    #[test]
    fn a_good_request() {
        let p = check(&query(&[], &[]), &client(), &config()).unwrap();
        assert_eq!(p.redirect_uri, "http://127.0.0.1:5555/cb");
        assert_eq!(p.scope, "mcp admin", "no scope: every configured one");
        assert_eq!(p.resource, "https://gw.example/mcp");
        assert_eq!(p.state.as_deref(), Some("s1"));
        let p = check(&query(&[("scope", "admin admin")], &["state"]), &client(), &config()).unwrap();
        assert_eq!((p.scope.as_str(), p.state), ("admin", None));
    }

    #[test]
    fn untrusted_redirects_get_a_page() {
        assert!(matches!(client_id(&query(&[], &["client_id"])), Err(Refusal::Page(_))));
        for redirect in
            ["http://127.0.0.1:5555/cb/", "http://127.0.0.1:5555/CB", "https://127.0.0.1:5555/cb", "https://evil.example/cb", "https://app.example/cb"]
        {
            let refusal = check(&query(&[("redirect_uri", redirect)], &[]), &client(), &config()).unwrap_err();
            assert!(matches!(refusal, Refusal::Page(_)), "{redirect}");
        }
        assert!(matches!(check(&query(&[], &["redirect_uri"]), &client(), &config()), Err(Refusal::Page(_))));
    }

    /// Parameters to set, parameters to drop, the error expected.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);

    #[test]
    fn errors_go_back_with_state_and_iss() {
        let cases: &[Case] = &[
            (&[("response_type", "token")], &[], "unsupported_response_type"),
            (&[], &["response_type"], "invalid_request"),
            (&[("code_challenge_method", "plain")], &[], "invalid_request"),
            (&[], &["code_challenge_method"], "invalid_request"),
            (&[], &["code_challenge"], "invalid_request"),
            (&[], &["resource"], "invalid_target"),
            (&[("resource", "https://other.example/mcp")], &[], "invalid_target"),
            (&[("resource", "https://gw.example/mcp/")], &[], "invalid_target"),
            (&[("scope", "mcp root")], &[], "invalid_scope"),
            (&[("scope", "mcp  admin")], &[], "invalid_scope"),
        ];
        for (extra, without, error) in cases {
            let location = redirected(check(&query(extra, without), &client(), &config()).unwrap_err());
            assert!(location.starts_with("http://127.0.0.1:5555/cb?error="), "{location}");
            let params = Params::parse(location.split_once('?').unwrap().1.as_bytes()).unwrap();
            assert_eq!(params.get("error"), Some(*error), "{extra:?} {without:?}");
            assert_eq!(params.get("state"), Some("s1"));
            assert_eq!(params.get("iss"), Some("https://gw.example"));
        }
        let location = redirected(
            check(&query(&[("redirect_uri", "https://app.example/cb?x=1"), ("response_type", "token")], &["state"]), &client(), &config()).unwrap_err(),
        );
        assert!(location.starts_with("https://app.example/cb?x=1&error=unsupported_response_type&"), "{location}");
        assert!(!location.contains("state="));
        assert!(location.ends_with("&iss=https%3A%2F%2Fgw.example"));
    }

    #[test]
    fn resource_may_be_optional() {
        let mut config = config();
        config.require_resource = false;
        let p = check(&query(&[], &["resource"]), &client(), &config).unwrap();
        assert_eq!(p.resource, "https://gw.example/mcp", "missing: this server's resource");
        let refusal = check(&query(&[("resource", "https://other.example/mcp")], &[]), &client(), &config).unwrap_err();
        assert!(redirected(refusal).contains("error=invalid_target"), "named, it must still be this one");
    }

    #[test]
    fn a_declined_provider_leaves_its_scope_out() {
        let mut p = check(&query(&[("scope", "mcp admin")], &[]), &client(), &config()).unwrap();
        p.scope = "mcp upstream:tracker upstream:trackers".into();
        p.without_provider("tracker");
        assert_eq!(p.scope, "mcp upstream:trackers");
        p.without_provider("github");
        assert_eq!(p.scope, "mcp upstream:trackers");
        p.connect("corp".into());
        p.connect("tracker".into());
        p.connect("corp".into());
        assert_eq!(p.connected, ["corp", "tracker"], "each provider once");
    }

    #[test]
    fn code_redirects() {
        assert_eq!(
            code_location("http://127.0.0.1:9/cb", "c", Some("a b"), "https://gw.example"),
            "http://127.0.0.1:9/cb?code=c&state=a+b&iss=https%3A%2F%2Fgw.example"
        );
    }
}
