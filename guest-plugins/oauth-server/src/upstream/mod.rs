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
mod exchange;
mod fetch;
mod id_token;
mod jwks;
mod pending;
mod subject;
mod text;
mod tokens;

use config::{Kind, Provider};
use portcullis_plugin::{crypto, log, secrets, store};
use serde_json::{Map, Value};

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
    /// The authorize request in flight that this login completes.
    pub pending_id: String,
    /// The user's id at the provider.
    pub subject: String,
    pub provider: String,
    /// The verified ID token's claims (OpenID Connect), the userinfo document
    /// (OAuth 2 with userinfo), or `{"sub": subject}`. Never a token.
    pub claims: Value,
}

/// Why `/oauth/callback` did not complete a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackError {
    /// No login of this server is waiting for this `state` (unknown, already
    /// used, expired), or the query cannot be attributed to one.
    ForeignState,
    /// The login was ours and failed; the sentence names the step and the
    /// provider, never a token.
    Upstream(String),
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

    fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// Starts a login at `provider` for the authorize request `pending_id`;
    /// the URL to send the browser to.
    pub fn begin(&self, provider: &str, pending_id: &str, callback_url: &str) -> Result<String, String> {
        let provider = self.provider(provider).ok_or_else(|| format!("there is no upstream named {:?}", text::printable(provider, 64)))?;
        let (authorization_endpoint, nonce) = match &provider.kind {
            Kind::Oidc { issuer, issuer_is_local, .. } => {
                let metadata = discovery::metadata(issuer, *issuer_is_local).map_err(|why| format!("the discovery of `{}` failed: {why}", provider.name))?;
                (metadata.authorization_endpoint, Some(text::random_value()?))
            }
            Kind::OAuth2 { authorization_endpoint, .. } => (authorization_endpoint.clone(), None),
        };
        let state = text::random_value()?;
        let leg = pending::Leg {
            pending_id: pending_id.to_owned(),
            provider: provider.name.clone(),
            verifier: text::random_value()?,
            nonce,
            redirect_uri: callback_url.to_owned(),
        };
        match store::put_new(&pending::key(&state), &leg.to_bytes(), pending::TTL) {
            Ok(true) => {}
            Ok(false) => return Err("a fresh random `state` is already in use; the random source is broken".into()),
            Err(e) => return Err(format!("the login at `{}` could not be recorded: {e}", provider.name)),
        }
        let challenge = text::pkce_challenge(&leg.verifier);
        Ok(authorize::url(
            &authorization_endpoint,
            &authorize::Request {
                client_id: &provider.client_id,
                redirect_uri: callback_url,
                scopes: &provider.scopes,
                state: &state,
                challenge: &challenge,
                nonce: leg.nonce.as_deref(),
            },
        ))
    }

    /// Completes `/oauth/callback` (`query` without `?`).
    pub fn finish(&self, query: &str, callback_url: &str, session_id: &str, token_key: &[u8; 32]) -> Result<Finished, CallbackError> {
        let callback = callback::parse(query).map_err(|why| {
            log::debug(&format!("a callback was refused: {why}"));
            CallbackError::ForeignState
        })?;
        if !text::is_random_value(&callback.state) {
            return Err(CallbackError::ForeignState);
        }
        let leg = match store::take(&pending::key(&callback.state)) {
            Ok(Some(bytes)) => pending::Leg::from_bytes(&bytes).ok_or(CallbackError::ForeignState)?,
            Ok(None) => return Err(CallbackError::ForeignState),
            Err(e) => return Err(CallbackError::Upstream(format!("the login's state could not be read: {e}"))),
        };
        let fail = |why: String| {
            log::warn(&format!("the login at `{}` failed: {why}", leg.provider));
            CallbackError::Upstream(why)
        };
        let Some(provider) = self.provider(&leg.provider) else {
            return Err(fail(format!("the login began at the upstream `{}`, which is no longer configured", leg.provider)));
        };
        self.complete(provider, &leg, callback, callback_url, session_id, token_key).map_err(fail)
    }

    fn complete(
        &self,
        provider: &Provider,
        leg: &pending::Leg,
        callback: callback::Callback,
        callback_url: &str,
        session_id: &str,
        token_key: &[u8; 32],
    ) -> Result<Finished, String> {
        let name = &provider.name;
        let code = match callback.outcome {
            callback::Outcome::Code(code) => code,
            callback::Outcome::Error(error) => return Err(format!("`{name}` refused the login: {error}")),
            callback::Outcome::Nothing => return Err(format!("the callback from `{name}` has neither a code nor an error")),
        };
        if leg.redirect_uri != callback_url {
            return Err(format!("the login at `{name}` began with another callback URL (are the replicas' public_url the same?)"));
        }
        if session_id.is_empty() {
            return Err("no session id to keep the tokens under".into());
        }
        let metadata = match &provider.kind {
            Kind::Oidc { issuer, issuer_is_local, .. } => {
                let metadata = discovery::metadata(issuer, *issuer_is_local).map_err(|why| format!("the discovery of `{name}` failed: {why}"))?;
                check_iss(callback.iss.as_deref(), issuer, metadata.iss_parameter).map_err(|why| format!("the callback from `{name}` {why}"))?;
                Some(metadata)
            }
            Kind::OAuth2 { .. } => None,
        };
        let token_endpoint = match (&provider.kind, &metadata) {
            (_, Some(metadata)) => metadata.token_endpoint.clone(),
            (Kind::OAuth2 { token_endpoint, .. }, None) => token_endpoint.clone(),
            (Kind::Oidc { .. }, None) => unreachable!("OpenID Connect providers have metadata"),
        };
        let secret = match &provider.client_secret_secret {
            Some(secret_name) => Some(secrets::get(secret_name).map_err(|e| format!("the client secret `{secret_name}` of `{name}` cannot be read: {e}"))?),
            None => None,
        };
        let client = exchange::Client { client_id: &provider.client_id, secret: secret.as_deref() };
        let response = exchange::exchange(&token_endpoint, &client, &code, &leg.redirect_uri, &leg.verifier)
            .map_err(|why| format!("the token endpoint of `{name}` {why}"))?;

        // #6194: persist first. Nothing between the answer and this line can fail.
        let now = now();
        let stored = StoredTokens::from_response(response.clone(), now);
        tokens::save(&stored, session_id, name, token_key, self.session_ttl)?;

        let identified = identify(provider, metadata.as_ref(), leg, &stored, &response, now);
        match identified {
            Ok((subject, claims)) => Ok(Finished { pending_id: leg.pending_id.clone(), subject, provider: name.clone(), claims }),
            Err(why) => {
                forget(session_id, name);
                Err(why)
            }
        }
    }
}

/// RFC 9207 against mix-up: an `iss` in the callback must be the provider's
/// issuer, and is required when the provider says it always sends it.
fn check_iss(iss: Option<&str>, issuer: &str, required: bool) -> Result<(), String> {
    match iss {
        Some(iss) if iss == issuer => Ok(()),
        Some(iss) => Err(format!("names the issuer {:?}, not {issuer:?}", text::printable(iss, 200))),
        None if required => Err("has no `iss`, which the provider says it always sends (RFC 9207)".into()),
        None => Ok(()),
    }
}

/// The subject and the claims, from the verified ID token (OpenID Connect),
/// the userinfo document, or the token response.
fn identify(
    provider: &Provider,
    metadata: Option<&discovery::Metadata>,
    leg: &pending::Leg,
    stored: &StoredTokens,
    response: &Map<String, Value>,
    now: u64,
) -> Result<(String, Value), String> {
    let name = &provider.name;
    match (&provider.kind, metadata) {
        (Kind::Oidc { issuer, subject_claim, .. }, Some(metadata)) => {
            let id_token = stored.id_token.as_deref().ok_or_else(|| format!("the token response of `{name}` has no ID token"))?;
            let nonce = leg.nonce.as_deref().ok_or_else(|| format!("the login at `{name}` has no nonce"))?;
            let parsed = id_token::parse(id_token, metadata.id_token_algs.as_deref()).map_err(|why| format!("`{name}`: {why}"))?;
            let jwk = jwks::key(&metadata.jwks_uri, &parsed.alg, parsed.kid.as_deref()).map_err(|why| format!("`{name}`: {why}"))?;
            match crypto::verify_jws(&parsed.alg, &jwk, parsed.signing_input, parsed.signature) {
                Ok(true) => {}
                Ok(false) => {
                    // The provider may have moved its keys elsewhere: rediscover next time.
                    discovery::forget(issuer);
                    return Err(format!("`{name}`: the ID token's signature does not verify"));
                }
                Err(e) => return Err(format!("`{name}`: the ID token's signature cannot be checked: {e}")),
            }
            let expected = id_token::Expected { issuer, client_id: &provider.client_id, nonce, now };
            id_token::check_claims(&parsed.claims, &expected).map_err(|why| format!("`{name}`: {why}"))?;
            let subject =
                subject::at_path(&parsed.claims, subject_claim).ok_or_else(|| format!("`{name}`: the ID token has no usable `{}`", subject_claim.join(".")))?;
            Ok((subject, Value::Object(parsed.claims)))
        }
        (Kind::OAuth2 { userinfo_endpoint: Some(endpoint), subject_claim, .. }, _) => {
            let doc = subject::userinfo(endpoint, &stored.access_token).map_err(|why| format!("the userinfo endpoint of `{name}` {why}"))?;
            let subject =
                subject::at_path(&doc, subject_claim).ok_or_else(|| format!("the userinfo of `{name}` has no usable `{}`", subject_claim.join(".")))?;
            Ok((subject, Value::Object(doc)))
        }
        (Kind::OAuth2 { userinfo_endpoint: None, subject_claim, .. }, _) => {
            let subject = subject::at_path(response, subject_claim)
                .ok_or_else(|| format!("the token response of `{name}` has no usable `{}`", subject_claim.join(".")))?;
            Ok((subject.clone(), serde_json::json!({ "sub": subject })))
        }
        (Kind::Oidc { .. }, None) => Err(format!("`{name}` has no discovery metadata")),
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
pub fn forget(session_id: &str, provider: &str) {
    if let Err(why) = tokens::forget(session_id, provider) {
        log::warn(&why);
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_9207_iss() {
        assert_eq!(check_iss(Some("https://idp"), "https://idp", true), Ok(()));
        assert_eq!(check_iss(None, "https://idp", false), Ok(()));
        assert!(check_iss(None, "https://idp", true).unwrap_err().contains("RFC 9207"));
        assert!(check_iss(Some("https://evil"), "https://idp", false).unwrap_err().contains("evil"));
        assert!(check_iss(Some("https://idp/"), "https://idp", false).is_err());
    }

    #[test]
    fn the_config_shape() {
        let toml_like = serde_json::json!({"name": "corp", "issuer": "https://idp.example.com", "client_id": "portcullis",
            "client_secret_secret": "oauth:corp-client-secret", "scopes": ["openid", "email"]});
        let config: UpstreamConfig = serde_json::from_value(toml_like).unwrap();
        let upstreams = Upstreams::from_config(vec![config]).unwrap();
        assert_eq!(upstreams.identity_provider(), "corp");
        assert_eq!(upstreams.session_ttl, DEFAULT_SESSION_TTL);
        assert_eq!(upstreams.with_session_ttl(0).session_ttl, 1);
        let unknown = serde_json::json!({"name": "corp", "issuer": "https://idp", "client_id": "c", "client_secret": "oops"});
        assert!(serde_json::from_value::<UpstreamConfig>(unknown).unwrap_err().to_string().contains("unknown field"));
    }
}
