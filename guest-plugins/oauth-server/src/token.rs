//! Codes, refresh-token families and access tokens: `/oauth/token`, the
//! code issued at the callback, and `/oauth/revoke`.
//!
//! Store keys (the host adds the workload's and component's namespace):
//! - `code:{hash}`: an authorization code, for `code_ttl`; once presented,
//!   the spent marker `spent:{family}` under the same key, for the family's
//!   lifetime, so that a replay revokes the family the code started
//!   (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3). A code that failed a check is
//!   spent too, with no family (`spent:`), for `code_ttl`;
//! - `family:{id}`: one login's grant (client, subject, session, scope), for
//!   the absolute refresh lifetime; deleting it revokes every refresh token of it;
//! - `rt:{hash}` → family: a refresh token; once used, `spent:{family}` under
//!   the same key for the family's lifetime, so that its reuse revokes the
//!   family (OAuth 2.1 §4.3.1).
//!
//! A code or refresh token is spent with one compare-and-swap (`Kv::swap`)
//! from the value that was read to the spent marker: of several requests that
//! present it at once, exactly one swaps; every other one then reads the
//! marker and revokes the family it names. The family is stored before the
//! marker that names it, so a replay that finds the marker always finds the
//! family to revoke.
//!
//! Codes and refresh tokens are stored only hashed. Access tokens are JWTs
//! (RFC 9068, `typ: at+jwt`) signed by the gateway; they are not stored, and
//! the workload's verifier does not consult the store, so an access token
//! lives until its `exp` (short: `access_token_ttl`) even after its family
//! is revoked.

use crate::authorize::Pending;
use crate::config::Config;
use crate::form::Params;
use crate::kv::Kv;
use crate::{pkce, random};
use portcullis_plugin::store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// RFC 8693 token exchange (`exchange.rs` answers it, as a method of [`Tokens`]).
pub const EXCHANGE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Whose keys verify a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource<'a> {
    /// This server's own key set (`signing::jwks`).
    Own,
    /// A trusted issuer's key set at this URL.
    Jwks(&'a str),
}

/// Verifies a signature: `(keys, alg, kid, signing input, signature)`;
/// `Ok(false)` for a wrong signature, `Err` when no key could be had.
pub type Verify<'a> = dyn Fn(KeySource<'_>, &str, Option<&str>, &str, &str) -> Result<bool, String> + 'a;

/// Why a token request failed.
#[derive(Debug)]
pub enum Failure {
    /// An OAuth error answer (RFC 6749 §5.2).
    OAuth { status: u16, error: &'static str, description: String },
    /// The store failed: 503.
    Store(StoreError),
    /// Signing or randomness failed: 500 (the message names no secret).
    Server(String),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error)
    }
}

pub(crate) fn oauth(error: &'static str, description: impl Into<String>) -> Failure {
    let status = if error == "invalid_client" { 401 } else { 400 };
    Failure::OAuth { status, error, description: description.into() }
}

/// A code's grant, under `code:{hash}`.
#[derive(Debug, Serialize, Deserialize)]
struct Code {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    scope: String,
    resource: String,
    sub: String,
    sid: String,
}

/// One login's grant, under `family:{id}`.
#[derive(Debug, Serialize, Deserialize)]
struct Family {
    client_id: String,
    sub: String,
    sid: String,
    scope: String,
    resource: String,
    /// Unix seconds: the refresh tokens' absolute end.
    expires_at: u64,
    /// The session has an info record (`session.rs`), without which it is
    /// ended; families from before sessions had one (`false`) are not checked.
    #[serde(default)]
    tracked: bool,
}

/// What the token logic needs from its surroundings.
pub struct Tokens<'a> {
    pub config: &'a Config,
    pub kv: &'a dyn Kv,
    /// Unix seconds.
    pub now: u64,
    /// Signs claims (JSON) as an `at+jwt`.
    pub sign: &'a dyn Fn(&str) -> Result<String, String>,
    /// Whether this server, configured as `config`, still trusts the client
    /// `client_id` (`clients::lookup`: listed in the policy, registered and
    /// not expired, or a CIMD client while `cimd` is on, whose document may
    /// be fetched, cached). `Err` when the store failed.
    pub client_known: fn(&Config, &str) -> Result<bool, StoreError>,
    /// Writes a warning (the gateway's log; nothing in tests).
    pub warn: fn(&str),
    /// Checks a presented token's signature (token exchange).
    pub verify: &'a Verify<'a>,
    /// Writes an audit line (the gateway's log at info).
    pub audit: fn(&str),
}

impl Tokens<'_> {
    /// Issues the code for a completed login (`pending`, as `sub`, bound to session `sid`).
    pub fn issue_code(&self, pending: &Pending, sub: &str, sid: &str) -> Result<String, Failure> {
        let code = random::value().map_err(Failure::Server)?;
        let record = Code {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            scope: pending.scope.clone(),
            resource: pending.resource.clone(),
            sub: sub.to_owned(),
            sid: sid.to_owned(),
        };
        self.kv.put(&format!("code:{}", random::hash(&code)), &to_json(&record), self.config.code_ttl)?;
        Ok(code)
    }

    /// `/oauth/token`: the JSON answer to a good request (RFC 6749 §5.1).
    pub fn grant(&self, params: &Params) -> Result<Value, Failure> {
        if params.get("client_secret").is_some() || params.get("client_assertion").is_some() {
            return Err(oauth("invalid_client", "this server's clients are public: no client authentication (token_endpoint_auth_method none)"));
        }
        match params.get("grant_type") {
            Some("authorization_code") => self.authorization_code(params),
            Some("refresh_token") => self.refresh(params),
            Some(EXCHANGE_GRANT_TYPE) => self.exchange(params),
            Some(_) => Err(oauth(
                "unsupported_grant_type",
                if self.config.exchange.is_some() {
                    "grant_type must be authorization_code, refresh_token or urn:ietf:params:oauth:grant-type:token-exchange"
                } else {
                    "grant_type must be authorization_code or refresh_token"
                },
            )),
            None => Err(oauth("invalid_request", "grant_type is required")),
        }
    }

    fn authorization_code(&self, params: &Params) -> Result<Value, Failure> {
        let code = params.require("code").map_err(|e| oauth("invalid_request", e.0))?;
        let client_id = params.require("client_id").map_err(|e| oauth("invalid_request", e.0))?;
        let redirect_uri = params.require("redirect_uri").map_err(|e| oauth("invalid_request", e.0))?;
        let verifier = params.require("code_verifier").map_err(|e| oauth("invalid_request", e.0))?;
        if let Some(resource) = params.get("resource")
            && !self.config.resource.is(resource)
        {
            return Err(oauth("invalid_target", "resource does not name this server's resource"));
        }
        let key = format!("code:{}", random::hash(code));
        let Some(bytes) = self.kv.get(&key)? else {
            return Err(oauth("invalid_grant", CODE_UNKNOWN));
        };
        if let Some(family_id) = spent_family(&bytes) {
            return Err(self.replayed(family_id, CODE_REPLAYED, CODE_UNKNOWN));
        }
        let record: Code = from_json(&bytes)?;
        let refused = if record.client_id != client_id {
            Some(oauth("invalid_grant", "the code was issued to another client"))
        } else if record.redirect_uri != redirect_uri {
            Some(oauth("invalid_grant", "redirect_uri differs from the authorization request's"))
        } else if !pkce::verify(verifier, &record.code_challenge) {
            Some(oauth("invalid_grant", "the code_verifier does not match the code_challenge"))
        } else if !(self.client_known)(self.config, &record.client_id)? {
            // A store failure above is a 503 and spends nothing: the client may retry.
            Some(oauth("invalid_grant", "the client is no longer known to this server"))
        } else {
            None
        };
        // Spent, whatever failed: a code is presented once.
        if let Some(refused) = refused {
            self.spend(&key, &bytes, "", self.config.code_ttl, CODE_REPLAYED, CODE_UNKNOWN)?;
            return Err(refused);
        }
        // The family first, then the marker that names it: a replay that finds
        // the marker always finds the family to revoke.
        let family_id = random::value().map_err(Failure::Server)?;
        let family = Family {
            client_id: record.client_id,
            sub: record.sub,
            sid: record.sid,
            scope: record.scope,
            resource: record.resource,
            expires_at: self.now + u64::from(self.config.refresh_token_ttl),
            tracked: true,
        };
        let family_key = format!("family:{family_id}");
        self.kv.put(&family_key, &to_json(&family), self.config.refresh_token_ttl)?;
        if let Err(failure) = self.spend(&key, &bytes, &family_id, self.config.refresh_token_ttl, CODE_REPLAYED, CODE_UNKNOWN) {
            // Another request spent the code first: this family issues nothing.
            // Best effort: without a refresh token it is inert, and expires.
            let _ = self.kv.delete(&family_key);
            return Err(failure);
        }
        let scope = family.scope.clone();
        self.answer(&family_id, &family, &scope)
    }

    fn refresh(&self, params: &Params) -> Result<Value, Failure> {
        let token = params.require("refresh_token").map_err(|e| oauth("invalid_request", e.0))?;
        let client_id = params.require("client_id").map_err(|e| oauth("invalid_request", e.0))?;
        if let Some(resource) = params.get("resource")
            && !self.config.resource.is(resource)
        {
            return Err(oauth("invalid_target", "resource does not name this server's resource"));
        }
        let key = format!("rt:{}", random::hash(token));
        let Some(value) = self.kv.get(&key)? else {
            return Err(oauth("invalid_grant", RT_UNKNOWN));
        };
        if let Some(family_id) = spent_family(&value) {
            return Err(self.replayed(family_id, RT_REPLAYED, RT_UNKNOWN));
        }
        let family_id = String::from_utf8_lossy(&value).into_owned();
        let Some(bytes) = self.kv.get(&format!("family:{family_id}"))? else {
            return Err(oauth("invalid_grant", "the refresh token was revoked"));
        };
        let family: Family = from_json(&bytes)?;
        let remaining = family.expires_at.saturating_sub(self.now);
        if remaining == 0 {
            return Err(oauth("invalid_grant", "the refresh token expired"));
        }
        // An operator ended the session (`portcullis sessions revoke`): so ends the login.
        if family.tracked && !crate::session::lives(self.kv, &family.sid)? {
            self.revoke_family(&family_id)?;
            return Err(oauth("invalid_grant", "the session was ended"));
        }
        // Removed from the policy, its registration expired, or CIMD switched
        // off: the login ends. Before the token is spent, so that a store
        // failure (503) leaves it usable for a retry.
        if !(self.client_known)(self.config, &family.client_id)? {
            self.revoke_family(&family_id)?;
            (self.warn)("a refresh token of a client this server no longer knows was presented: its family is revoked");
            return Err(oauth("invalid_grant", "the client is no longer known to this server"));
        }
        // Spent, whatever follows, and kept for the family's lifetime: a second
        // use of this token is theft or a bug, and revokes the family.
        self.spend(&key, &value, &family_id, ttl(remaining), RT_REPLAYED, RT_UNKNOWN)?;
        if family.client_id != client_id {
            return Err(oauth("invalid_grant", "the refresh token was issued to another client"));
        }
        let scope = match params.get("scope") {
            None => family.scope.clone(),
            Some(requested) => {
                let granted: Vec<&str> = family.scope.split(' ').collect();
                if requested.split(' ').any(|s| !granted.contains(&s)) {
                    return Err(oauth("invalid_scope", "a requested scope was not granted"));
                }
                requested.to_owned()
            }
        };
        self.answer(&family_id, &family, &scope)
    }

    /// Spends the one-time `key`, read as `current`: swaps it to the marker
    /// naming `family_id` (empty: none) for `ttl_seconds`. Of several requests
    /// that read `current`, exactly one swaps; each other one is a replay, and
    /// revokes the family the winner's marker names (`invalid_grant`).
    fn spend(&self, key: &str, current: &[u8], family_id: &str, ttl_seconds: u32, warning: &str, unknown: &'static str) -> Result<(), Failure> {
        if self.kv.swap(key, current, &spent(family_id), ttl_seconds)? {
            return Ok(());
        }
        // The only change a one-time key sees is to its marker (or it expired).
        match self.kv.get(key)? {
            Some(value) => match spent_family(&value) {
                Some(family_id) => Err(self.replayed(family_id, warning, unknown)),
                None => Err(oauth("invalid_grant", unknown)),
            },
            None => Err(oauth("invalid_grant", unknown)),
        }
    }

    /// A spent code or refresh token presented again: revokes `family_id`
    /// (when the marker names one) and gives the answer.
    fn replayed(&self, family_id: &str, warning: &str, unknown: &'static str) -> Failure {
        if !family_id.is_empty() {
            if let Err(failure) = self.revoke_family(family_id) {
                return failure;
            }
            (self.warn)(warning);
        }
        oauth("invalid_grant", unknown)
    }

    /// A new refresh token in `family_id`, an access token, and the answer.
    fn answer(&self, family_id: &str, family: &Family, scope: &str) -> Result<Value, Failure> {
        let remaining = family.expires_at.saturating_sub(self.now);
        let refresh_token = random::value().map_err(Failure::Server)?;
        self.kv.put(&format!("rt:{}", random::hash(&refresh_token)), family_id.as_bytes(), ttl(remaining))?;
        let access_ttl = self.config.access_token_ttl;
        let claims = json!({
            "iss": self.config.issuer,
            "sub": family.sub,
            "aud": family.resource,
            "client_id": family.client_id,
            "scope": scope,
            "iat": self.now,
            "exp": self.now + u64::from(access_ttl),
            "jti": random::value().map_err(Failure::Server)?,
            "sid": family.sid,
        });
        let access_token = (self.sign)(&claims.to_string()).map_err(Failure::Server)?;
        Ok(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": access_ttl,
            "refresh_token": refresh_token,
            "scope": scope,
        }))
    }

    /// `/oauth/revoke` (RFC 7009): a refresh token revokes its family. An
    /// unknown token, an access token (not stored: it lives until `exp`) or
    /// a token of another client changes nothing, and the answer is the same.
    pub fn revoke(&self, params: &Params) -> Result<(), Failure> {
        let token = params.require("token").map_err(|e| oauth("invalid_request", e.0))?;
        let Some(family_id) = self.kv.get(&format!("rt:{}", random::hash(token)))? else {
            return Ok(());
        };
        if spent_family(&family_id).is_some() {
            // A rotated token: already dead.
            return Ok(());
        }
        let family_id = String::from_utf8_lossy(&family_id).into_owned();
        if let Some(client_id) = params.get("client_id")
            && let Some(bytes) = self.kv.get(&format!("family:{family_id}"))?
            && from_json::<Family>(&bytes)?.client_id != client_id
        {
            return Ok(());
        }
        self.revoke_family(&family_id)
    }

    fn revoke_family(&self, family_id: &str) -> Result<(), Failure> {
        self.kv.delete(&format!("family:{family_id}"))?;
        Ok(())
    }
}

const CODE_UNKNOWN: &str = "the code is unknown, expired or already used";
const CODE_REPLAYED: &str = "a redeemed authorization code was presented again: the tokens it issued are revoked";
const RT_UNKNOWN: &str = "the refresh token is unknown, expired, revoked or already used";
const RT_REPLAYED: &str = "a rotated refresh token was presented again: its family is revoked";

/// The prefix of a spent code's or refresh token's value, before the family
/// it names. Neither a code's record (JSON) nor a family id (base64url) starts so.
const SPENT: &[u8] = b"spent:";

/// The spent marker naming `family_id`.
fn spent(family_id: &str) -> Vec<u8> {
    [SPENT, family_id.as_bytes()].concat()
}

/// The family a spent marker names (empty: none); `None` when `value` is not a marker.
fn spent_family(value: &[u8]) -> Option<&str> {
    value.strip_prefix(SPENT).map(|family_id| std::str::from_utf8(family_id).unwrap_or_default())
}

fn ttl(seconds: u64) -> u32 {
    u32::try_from(seconds).unwrap_or(u32::MAX).max(1)
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(bytes).map_err(|_| Failure::Server("a stored grant could not be read".into()))
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
