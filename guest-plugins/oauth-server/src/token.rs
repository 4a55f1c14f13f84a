//! Codes, refresh-token families and access tokens: `/oauth/token`, the
//! code issued at the callback, and `/oauth/revoke`.
//!
//! Store keys (the host adds the workload's and component's namespace):
//! - `code:{hash}`: an authorization code (single use: redeemed with `take`);
//! - `used:{hash}`: a redeemed code → the family it started, so that a replay
//!   revokes that family (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3);
//! - `family:{id}`: one login's grant (client, subject, session, scope), for
//!   the absolute refresh lifetime; deleting it revokes every refresh token of it;
//! - `rt:{hash}` → family: the current refresh token (rotated on each use with `take`);
//! - `rt-used:{hash}` → family: a rotated refresh token, kept for the family's
//!   lifetime, so that its reuse revokes the family (OAuth 2.1 §4.3.1).
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

fn oauth(error: &'static str, description: impl Into<String>) -> Failure {
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
}

/// What the token logic needs from its surroundings.
pub struct Tokens<'a> {
    pub config: &'a Config,
    pub kv: &'a dyn Kv,
    /// Unix seconds.
    pub now: u64,
    /// Signs claims (JSON) as an `at+jwt`.
    pub sign: &'a dyn Fn(&str) -> Result<String, String>,
    /// Writes a warning (the gateway's log; nothing in tests).
    pub warn: fn(&str),
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
            Some(_) => Err(oauth("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")),
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
        let hash = random::hash(code);
        // Taken, whatever follows: a code that failed a check is spent too.
        let Some(bytes) = self.kv.take(&format!("code:{hash}"))? else {
            if let Some(family) = self.kv.get(&format!("used:{hash}"))? {
                self.revoke_family(&String::from_utf8_lossy(&family))?;
                (self.warn)("a redeemed authorization code was presented again: the tokens it issued are revoked");
            }
            return Err(oauth("invalid_grant", "the code is unknown, expired or already used"));
        };
        let record: Code = from_json(&bytes)?;
        if record.client_id != client_id {
            return Err(oauth("invalid_grant", "the code was issued to another client"));
        }
        if record.redirect_uri != redirect_uri {
            return Err(oauth("invalid_grant", "redirect_uri differs from the authorization request's"));
        }
        if !pkce::verify(verifier, &record.code_challenge) {
            return Err(oauth("invalid_grant", "the code_verifier does not match the code_challenge"));
        }
        let family_id = random::value().map_err(Failure::Server)?;
        let family = Family {
            client_id: record.client_id,
            sub: record.sub,
            sid: record.sid,
            scope: record.scope,
            resource: record.resource,
            expires_at: self.now + u64::from(self.config.refresh_token_ttl),
        };
        self.kv.put(&format!("family:{family_id}"), &to_json(&family), self.config.refresh_token_ttl)?;
        // The replay marker, before anything is issued and after the family
        // exists: a replay that finds the marker always finds a family to revoke.
        self.kv.put(&format!("used:{hash}"), family_id.as_bytes(), self.config.refresh_token_ttl)?;
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
        let hash = random::hash(token);
        let Some(family_id) = self.kv.take(&format!("rt:{hash}"))? else {
            if let Some(family_id) = self.kv.get(&format!("rt-used:{hash}"))? {
                self.revoke_family(&String::from_utf8_lossy(&family_id))?;
                (self.warn)("a rotated refresh token was presented again: its family is revoked");
            }
            return Err(oauth("invalid_grant", "the refresh token is unknown, expired, revoked or already used"));
        };
        let family_id = String::from_utf8_lossy(&family_id).into_owned();
        let Some(bytes) = self.kv.get(&format!("family:{family_id}"))? else {
            return Err(oauth("invalid_grant", "the refresh token was revoked"));
        };
        let family: Family = from_json(&bytes)?;
        let remaining = family.expires_at.saturating_sub(self.now);
        if remaining == 0 {
            return Err(oauth("invalid_grant", "the refresh token expired"));
        }
        // Kept for the family's lifetime: a second use of this token is theft or a bug, and revokes the family.
        self.kv.put(&format!("rt-used:{hash}"), family_id.as_bytes(), ttl(remaining))?;
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
