//! The caller's session at the workload's embedded authorization server: the
//! `sid` of the access token the inbound chain verified. Only a token of that
//! server counts (its `iss`): another issuer the workload trusts could put
//! any `sid` in its tokens. Both injectors that read a session's tokens
//! (`builtin:upstream-token`, `builtin:token-exchange`) ask here.

use portcullis_plugin::Identity;
use serde::Deserialize;

pub struct Session {
    pub id: String,
    /// The user (the token's `sub`), for the audit lines.
    pub subject: String,
}

/// The one claim read, and nothing else parsed.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sid: Option<String>,
}

impl Session {
    /// The session of `identity`, a token of `issuer` (the embedded server's).
    pub fn of(identity: &Identity, issuer: &str) -> Result<Session, String> {
        if identity.issuer.as_deref() != Some(issuer) {
            return Err("the caller's token is not one of this workload's authorization server".into());
        }
        let claims: Claims = serde_json::from_str(identity.claims_json.as_deref().unwrap_or("{}")).map_err(|_| "the caller's claims cannot be read")?;
        match claims.sid {
            Some(id) if portcullis_contract::sessions::is_session_id(&id) => Ok(Session { id, subject: identity.subject.clone() }),
            _ => Err("the caller's token names no session".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(issuer: &str, claims: &str) -> Identity {
        Identity { subject: "alice".into(), issuer: Some(issuer.into()), claims_json: Some(claims.into()) }
    }

    #[test]
    fn only_the_embedded_server_s_sid_counts() {
        let sid = "a".repeat(43);
        let good = format!(r#"{{"sub":"alice","sid":"{sid}","scope":"a b","aud":["r"]}}"#);
        let session = Session::of(&identity("https://gw", &good), "https://gw").unwrap();
        assert_eq!((session.id.as_str(), session.subject.as_str()), (sid.as_str(), "alice"));
        assert!(Session::of(&identity("https://other", &good), "https://gw").is_err(), "another issuer");
        for bad in [r#"{"sub":"alice"}"#, r#"{"sid":"short"}"#, r#"{"sid":7}"#, "not json"] {
            assert!(Session::of(&identity("https://gw", bad), "https://gw").is_err(), "{bad}");
        }
        let twice = format!(r#"{{"sid":"{sid}","sid":"{sid}"}}"#);
        assert!(Session::of(&identity("https://gw", &twice), "https://gw").is_err(), "a duplicate sid is not read either way");
    }
}
