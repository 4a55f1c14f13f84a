//! The caller's session at the embedded authorization server: the `sid` of
//! the access token the inbound chain verified. Only a token of that
//! server counts (its `iss`): another issuer the workload trusts could put
//! any `sid` in its tokens.

use portcullis_plugin::Request;
use serde::Deserialize;

pub struct Session {
    pub id: String,
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
            Some(id) if is_session_id(&id) => Ok(Session { id }),
            _ => Err("the caller's token names no session".into()),
        }
    }
}

/// The server's session ids: 43 base64url characters (256 random bits), so
/// one is safe in a store key.
fn is_session_id(text: &str) -> bool {
    text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        assert!(is_session_id(&"a".repeat(43)));
        for bad in ["", "short", &"a".repeat(44), &format!("{}:", "a".repeat(42))] {
            assert!(!is_session_id(bad), "{bad}");
        }
        let claims: Claims = serde_json::from_str(r#"{"sub":"alice","sid":"x","scope":"a b","aud":["r"]}"#).unwrap();
        assert_eq!(claims.sid.as_deref(), Some("x"));
    }
}
