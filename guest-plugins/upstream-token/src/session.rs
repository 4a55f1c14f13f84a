//! The caller's session at the embedded authorization server: the `sid` of
//! the access token the inbound chain verified. Only a token of that
//! server counts (its `iss`): another issuer the workload trusts could put
//! any `sid` in its tokens.

use portcullis_plugin::Request;
use serde::Deserialize;

pub struct Session {
    pub id: String,
    /// The user (the token's `sub`), for the audit lines.
    pub subject: String,
}

/// The two claims read, and nothing else parsed.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sid: Option<String>,
}

impl Session {
    pub fn of(request: &Request, issuer: &str) -> Result<Session, String> {
        let identity = request.identity().ok_or("the request has no verified caller (is an authenticator in front of this injector?)")?;
        if identity.issuer.as_deref() != Some(issuer) {
            return Err("the caller's token is not one of this workload's authorization server".into());
        }
        let claims: Claims = serde_json::from_str(identity.claims_json.as_deref().unwrap_or("{}")).map_err(|_| "the caller's claims cannot be read")?;
        match claims.sid {
            Some(id) if portcullis_contract::sessions::is_session_id(&id) => Ok(Session { id, subject: identity.subject }),
            _ => Err("the caller's token names no session".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sid_is_read() {
        let claims: Claims = serde_json::from_str(r#"{"sub":"alice","sid":"x","scope":"a b","aud":["r"]}"#).unwrap();
        assert_eq!(claims.sid.as_deref(), Some("x"));
    }
}
