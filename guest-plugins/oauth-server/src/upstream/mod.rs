//! STUB, replaced at merge by H4b's federation (`src/upstream/`): the
//! signatures the rest of the component calls, refusing every login. It lets
//! the component build and its metadata, registration, token and revocation
//! routes run before federation lands.

use serde::Deserialize;

/// One `[[upstreams]]` entry (the plan's shape; the real module owns it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UpstreamConfig {
    pub name: String,
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub subject_claim: Option<String>,
    pub client_id: String,
    pub client_secret_secret: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

pub struct Upstreams {
    identity: String,
}

/// A completed upstream login.
#[allow(dead_code)]
pub struct Finished {
    pub pending_id: String,
    pub subject: String,
    pub provider: String,
    pub claims: serde_json::Value,
}

/// Why `/oauth/callback` could not complete.
#[allow(dead_code)]
pub enum CallbackError {
    /// Unknown or already used `state`: not ours to answer with a redirect.
    ForeignState,
    /// The provider refused, or its answer did not verify (no secret inside).
    Upstream(String),
}

impl Upstreams {
    pub fn from_config(list: Vec<UpstreamConfig>) -> Result<Upstreams, String> {
        let first = list.first().ok_or("`upstreams`: list at least one identity provider (the first is where users log in)")?;
        Ok(Upstreams { identity: first.name.clone() })
    }

    /// The first upstream's name: where users log in.
    pub fn identity_provider(&self) -> &str {
        &self.identity
    }

    /// Stores the upstream leg under `up:{state}`, bound to `pending_id`; the URL to send the browser to.
    pub fn begin(&self, _provider: &str, _pending_id: &str, _callback_url: &str) -> Result<String, String> {
        Err("federation is not built into this component yet (stub)".to_owned())
    }

    /// Completes `/oauth/callback` (`query` without `?`); stores the provider's tokens sealed for `session_id`.
    pub fn finish(&self, _query: &str, _callback_url: &str, _session_id: &str, _token_key: &[u8; 32]) -> Result<Finished, CallbackError> {
        Err(CallbackError::Upstream("federation is not built into this component yet (stub)".to_owned()))
    }
}
