//! Federation: where the users of this authorization server log in. The
//! server is an OAuth client of each upstream provider (OpenID Connect with
//! discovery, or OAuth 2 with explicit endpoints), with its own `state`,
//! PKCE S256 verifier and, for OpenID Connect, `nonce`; every provider
//! answers on the one `/oauth/callback`, which the `state` ties to its login.
//!
//! The provider's token response is sealed and stored before anything else
//! that can fail (ToolHive #6194: a rotated refresh token was lost when the
//! ID token's validation timed out); if the ID token (or the subject) then
//! fails, the stored tokens are removed and the login fails.

mod authorize;
mod callback;
mod config;
mod discovery;
mod flow;
mod gateway;
mod id_token;
pub mod jwks;
mod pending;
mod subject;

// The token endpoint, bounded requests and the sealed record: shared with `builtin:upstream-token`.
use config::Provider;
use gateway::Gateway;
use portcullis_plugin::log;
use provider_tokens::{exchange, fetch, text, tokens};
use serde_json::Value;

pub use config::check_url;
pub use tokens::StoredTokens;

/// One `[[workloads.server.config.upstreams]]` entry.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The provider's name in this server (`corp`): store keys, messages.
    pub name: String,
    /// OpenID Connect: the issuer, whose discovery document gives the rest.
    #[serde(default)]
    pub issuer: Option<String>,
    /// OAuth 2 (instead of `issuer`).
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// OAuth 2 (instead of `issuer`).
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// OAuth 2: where the subject is read (with the access token).
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// The claim path of the user's id (`sub` by default; `user.id` for a
    /// nested one): in the ID token (OpenID Connect), the userinfo document,
    /// or the token response (OAuth 2 without userinfo).
    #[serde(default)]
    pub subject_claim: Option<String>,
    pub client_id: String,
    /// The name of the client secret in the secret store; absent: a public client.
    #[serde(default)]
    pub client_secret_secret: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// The configured upstream providers, checked.
#[derive(Debug, Clone)]
pub struct Upstreams {
    providers: Vec<Provider>,
    session_ttl: u32,
}

/// A completed upstream login.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The user's id at the provider.
    pub subject: String,
    pub provider: String,
    /// The verified ID token's claims (OpenID Connect), the userinfo document
    /// (OAuth 2 with userinfo), or `{"sub": subject}`. Never a token.
    /// Not read yet: kept for the session listing of per-user upstream credentials (issue 25).
    #[allow(dead_code)]
    pub claims: Value,
}

/// Why `/oauth/callback` did not complete a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackError {
    /// No login of this server is waiting for this `state` (unknown, already
    /// used, expired), or the query cannot be attributed to one.
    ForeignState,
    /// The login was ours and failed: `pending_id` is the authorization
    /// request it was for (so the client can be told, RFC 6749 §4.1.2.1);
    /// `why` names the step and the provider, never a token.
    Upstream { pending_id: String, provider: String, why: String },
    /// The store could not be read: nothing was decided, try again.
    Unavailable(String),
}

impl CallbackError {
    /// Why the login failed, for a login of ours.
    #[cfg(test)]
    pub fn why(&self) -> Option<&str> {
        match self {
            CallbackError::Upstream { why, .. } => Some(why),
            _ => None,
        }
    }
}

/// The stored tokens' lifetime when [`Upstreams::with_session_ttl`] is not
/// called: the refresh token family's default lifetime (7 days).
const DEFAULT_SESSION_TTL: u32 = 7 * 24 * 3600;

impl Upstreams {
    pub fn from_config(list: Vec<UpstreamConfig>) -> Result<Upstreams, String> {
        Ok(Upstreams { providers: config::check_all(list)?, session_ttl: DEFAULT_SESSION_TTL })
    }

    /// How long the sealed upstream tokens are kept (seconds): the session's
    /// lifetime, i.e. the server's `refresh_token_ttl`.
    #[allow(dead_code, reason = "the routes call it with `refresh_token_ttl`; unused until they do")]
    pub fn with_session_ttl(mut self, seconds: u32) -> Upstreams {
        self.session_ttl = seconds.max(1);
        self
    }

    /// The first upstream's name: where users log in.
    pub fn identity_provider(&self) -> &str {
        &self.providers[0].name
    }

    /// The providers after the first that a login granting `scope`
    /// (space-separated) goes through, in the configured order: each one
    /// whose scope (`portcullis_contract::sessions::provider_scope`) it holds.
    pub fn further(&self, scope: &str) -> Vec<String> {
        let granted: Vec<&str> = scope.split(' ').collect();
        self.providers[1..]
            .iter()
            .filter(|p| granted.contains(&portcullis_contract::sessions::provider_scope(&p.name).as_str()))
            .map(|p| p.name.clone())
            .collect()
    }

    fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// Starts a login at `provider` for the authorize request `pending_id`:
    /// creates its own `state`, PKCE S256 verifier and (OpenID Connect)
    /// `nonce`, keeps them under `up:{state}` for 10 minutes, and gives the
    /// URL to send the browser to.
    pub fn begin(&self, provider: &str, pending_id: &str, callback_url: &str) -> Result<String, String> {
        flow::begin(&Gateway, self, provider, pending_id, callback_url)
    }

    /// Completes `/oauth/callback` (`query` without `?`): takes the login's
    /// `state` once, exchanges the code, seals and stores the whole token
    /// response under `session:{session_id}:{provider}`, then verifies the
    /// ID token (or reads the subject); on a failure after the store, the
    /// stored tokens are removed.
    pub fn finish(&self, query: &str, callback_url: &str, session_id: &str, token_key: &[u8; 32]) -> Result<Finished, CallbackError> {
        flow::finish(&Gateway, self, query, callback_url, session_id, token_key)
    }
}

/// The login a callback's `query` answers, without taking it: its `state`
/// and the authorization request it is for (`pending_id`), so that the
/// caller can check the browser before the code is redeemed. `Ok(None)` when
/// no login of this server waits for it (`finish` then says so).
pub fn waiting_login(query: &str) -> Result<Option<(String, String)>, String> {
    let Ok(callback) = callback::parse(query) else { return Ok(None) };
    if !crate::random::is_value(&callback.state) {
        return Ok(None);
    }
    let leg = portcullis_plugin::store::get(&pending::key(&callback.state)).map_err(|e| format!("the login's state could not be read: {e}"))?;
    Ok(leg.and_then(|bytes| pending::Leg::from_bytes(&bytes)).map(|leg| (callback.state, leg.pending_id)))
}

/// Ends the login waiting under `state` without completing it.
pub fn abandon(state: &str) {
    if let Err(e) = portcullis_plugin::store::delete(&pending::key(state)) {
        log::warn(&format!("an abandoned login's state could not be removed (it expires): {e}"));
    }
}

/// The session's sealed tokens from `provider`, opened; `Ok(None)` when none
/// are stored, `Err` when they cannot be read or do not open.
#[allow(dead_code, reason = "issue 25 (per-user upstream tokens) reads them")]
pub fn stored_tokens(session_id: &str, provider: &str, token_key: &[u8; 32]) -> Result<Option<StoredTokens>, String> {
    tokens::load(session_id, provider, token_key)
}

/// Removes the session's tokens from `provider` (logout, revocation, a
/// failed login). A failure is logged; the record still expires with its TTL.
#[allow(dead_code, reason = "for logout and revocation (H4a's routes, issue 25)")]
pub fn forget(session_id: &str, provider: &str) {
    if let Err(why) = tokens::forget(session_id, provider) {
        log::warn(&why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_shape() {
        let toml_like = serde_json::json!({"name": "corp", "issuer": "https://idp.example.com", "client_id": "portcullis",
            "client_secret_secret": "oauth:corp-client-secret", "scopes": ["openid", "email"]});
        let config: UpstreamConfig = serde_json::from_value(toml_like.clone()).unwrap();
        let upstreams = Upstreams::from_config(vec![config]).unwrap();
        assert_eq!(upstreams.identity_provider(), "corp");
        assert_eq!(upstreams.session_ttl, DEFAULT_SESSION_TTL);
        assert_eq!(upstreams.with_session_ttl(0).session_ttl, 1);
        let tracker = serde_json::json!({"name": "tracker", "issuer": "https://tracker.example", "client_id": "c"});
        let github = serde_json::json!({"name": "github", "issuer": "https://gh.example", "client_id": "c"});
        let three = Upstreams::from_config(vec![
            serde_json::from_value(toml_like.clone()).unwrap(),
            serde_json::from_value(tracker).unwrap(),
            serde_json::from_value(github).unwrap(),
        ])
        .unwrap();
        assert_eq!(three.further("mcp upstream:github upstream:tracker"), ["tracker", "github"], "in the configured order");
        assert_eq!(
            three.further("mcp upstream:corp upstream:trackers"),
            Vec::<String>::new(),
            "the login's own provider is always gone through; names match whole"
        );
        let unknown = serde_json::json!({"name": "corp", "issuer": "https://idp", "client_id": "c", "client_secret": "oops"});
        assert!(serde_json::from_value::<UpstreamConfig>(unknown).unwrap_err().to_string().contains("unknown field"));
    }
}
