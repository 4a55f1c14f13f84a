//! The provider's tokens for one session, sealed ([`crate::seal`]) under
//! `session:{session_id}:{provider}`, with that key as the associated data.
//! Nothing but the sealed record reaches the store.

use crate::seal;
use portcullis_plugin::store;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The provider's token response, as kept. Unknown fields of the response
/// are kept in `other`, so that the whole response is persisted.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTokens {
    pub access_token: String,
    /// As the provider sent it (`Bearer` when it sent none).
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Unix seconds, from `expires_in`; `None` when the provider did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Unix seconds: when the response arrived.
    pub obtained_at: u64,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub other: Map<String, Value>,
    /// How to renew the access token, written at login; absent in records
    /// from before it was kept, which are used until they expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal: Option<Renewal>,
    /// Unix seconds: when the session ends (the record's TTL). A renewal keeps it.
    #[serde(default)]
    pub session_expires_at: u64,
}

/// Where and as whom the access token is renewed (RFC 6749 §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Renewal {
    pub token_endpoint: String,
    pub client_id: String,
    /// The client secret's name in the secret store (a confidential client);
    /// the component that renews must be granted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_secret: Option<String>,
}

/// Never prints a token, so that `{:?}` in a log line or a panic cannot leak one.
impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("token_type", &self.token_type)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token", &self.id_token.is_some())
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("obtained_at", &self.obtained_at)
            .field("renewal", &self.renewal)
            .field("session_expires_at", &self.session_expires_at)
            .finish_non_exhaustive()
    }
}

impl StoredTokens {
    /// A token response (already checked to hold an `access_token`), received at `now`.
    pub fn from_response(mut response: Map<String, Value>, now: u64) -> StoredTokens {
        let mut text = |name: &str| match response.remove(name) {
            Some(Value::String(value)) if !value.is_empty() => Some(value),
            Some(Value::String(_)) | Some(Value::Null) | None => None,
            Some(other) => {
                response.insert(name.to_owned(), other);
                None
            }
        };
        let access_token = text("access_token").unwrap_or_default();
        let token_type = text("token_type").unwrap_or_else(|| "Bearer".into());
        let (refresh_token, id_token, scope) = (text("refresh_token"), text("id_token"), text("scope"));
        let expires_at = response.get("expires_in").and_then(seconds).map(|s| now.saturating_add(s));
        StoredTokens {
            access_token,
            token_type,
            refresh_token,
            id_token,
            scope,
            expires_at,
            obtained_at: now,
            other: response,
            renewal: None,
            session_expires_at: 0,
        }
    }

    /// The record after a refresh answered `response` at `now`: the new
    /// tokens, the old refresh token when the provider sent none (RFC 6749
    /// §6 lets it keep the old one valid), and the same renewal and session end.
    pub fn renewed(&self, response: Map<String, Value>, now: u64) -> StoredTokens {
        let mut next = StoredTokens::from_response(response, now);
        if next.refresh_token.is_none() {
            next.refresh_token = self.refresh_token.clone();
        }
        if next.id_token.is_none() {
            next.id_token = self.id_token.clone();
        }
        next.renewal = self.renewal.clone();
        next.session_expires_at = self.session_expires_at;
        next
    }

    /// Whether the access token is due for renewal `ahead` seconds before it
    /// expires (one whose lifetime the provider did not say never is).
    pub fn due(&self, now: u64, ahead: u64) -> bool {
        self.expires_at.is_some_and(|expires| now.saturating_add(ahead) >= expires)
    }

    /// Seconds the record should still be kept: until the session's end (at least 1).
    pub fn ttl(&self, now: u64) -> u32 {
        u32::try_from(self.session_expires_at.saturating_sub(now)).unwrap_or(u32::MAX).max(1)
    }
}

/// `expires_in` as whole seconds: a non-negative number, or a text of digits
/// (some providers send `"3599"`).
fn seconds(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64)),
        Value::String(s) if !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    }
}

/// The store key, which is also the associated data of the sealed record.
pub fn record_key(session_id: &str, provider: &str) -> String {
    portcullis_contract::sessions::record_key(session_id, provider)
}

/// The sealed record of `tokens`.
pub fn seal_record(tokens: &StoredTokens, session_id: &str, provider: &str, token_key: &[u8; 32]) -> Vec<u8> {
    // Serialising strings, numbers and a JSON map cannot fail.
    let plaintext = serde_json::to_vec(tokens).unwrap_or_default();
    seal::seal(token_key, &record_key(session_id, provider), &plaintext)
}

/// The tokens in a sealed record; `None` when it does not open (another key,
/// another session's record, damage) or is not ours.
pub fn open_record(sealed: &[u8], session_id: &str, provider: &str, token_key: &[u8; 32]) -> Option<StoredTokens> {
    let plaintext = seal::open(token_key, &record_key(session_id, provider), sealed)?;
    serde_json::from_slice(&plaintext).ok()
}

/// The session's tokens from `provider`, if stored.
pub fn load(session_id: &str, provider: &str, token_key: &[u8; 32]) -> Result<Option<StoredTokens>, String> {
    let Some(sealed) = store::get(&record_key(session_id, provider)).map_err(|e| format!("the tokens of `{provider}` could not be read: {e}"))? else {
        return Ok(None);
    };
    open_record(&sealed, session_id, provider, token_key)
        .map(Some)
        .ok_or_else(|| format!("the stored tokens of `{provider}` do not open with the token key (was the key changed?)"))
}

/// The sealed record as stored, and the tokens in it: what a renewal
/// replaces with a compare-and-swap.
pub fn load_sealed(session_id: &str, provider: &str, token_key: &[u8; 32]) -> Result<Option<(Vec<u8>, StoredTokens)>, String> {
    let Some(sealed) = store::get(&record_key(session_id, provider)).map_err(|e| format!("the tokens of `{provider}` could not be read: {e}"))? else {
        return Ok(None);
    };
    match open_record(&sealed, session_id, provider, token_key) {
        Some(tokens) => Ok(Some((sealed, tokens))),
        None => Err(format!("the stored tokens of `{provider}` do not open with the token key (was the key changed?)")),
    }
}

/// Replaces the record `previous` (sealed, as read) with `next`, in one
/// atomic step: the new tokens are written before the old ones are gone,
/// and a record that changed meanwhile (another replica renewed it) is left
/// as it is (`Ok(false)`).
pub fn replace(session_id: &str, provider: &str, token_key: &[u8; 32], previous: &[u8], next: &StoredTokens, now: u64) -> Result<bool, String> {
    let sealed = seal_record(next, session_id, provider, token_key);
    store::swap(&record_key(session_id, provider), previous, &sealed, next.ttl(now))
        .map_err(|e| format!("the renewed tokens of `{provider}` could not be stored: {e}"))
}

/// Removes the session's tokens from `provider`.
pub fn forget(session_id: &str, provider: &str) -> Result<(), String> {
    store::delete(&record_key(session_id, provider)).map_err(|e| format!("the tokens of `{provider}` could not be removed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: [u8; 32] = [9; 32];

    fn response() -> Map<String, Value> {
        json!({"access_token": "at-secret", "token_type": "Bearer", "expires_in": "3599", "refresh_token": "rt-secret",
            "id_token": "h.p.s", "scope": "openid email", "x_vendor": {"tenant": "a"}, "refresh_expires_in": 7200})
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn the_whole_response_is_kept() {
        let tokens = StoredTokens::from_response(response(), 1000);
        assert_eq!(tokens.access_token, "at-secret");
        assert_eq!(tokens.refresh_token.as_deref(), Some("rt-secret"));
        assert_eq!(tokens.id_token.as_deref(), Some("h.p.s"));
        assert_eq!(tokens.expires_at, Some(4599));
        assert_eq!(tokens.other, json!({"expires_in": "3599", "x_vendor": {"tenant": "a"}, "refresh_expires_in": 7200}).as_object().unwrap().clone());
        let minimal = StoredTokens::from_response(json!({"access_token": "at", "expires_in": -3}).as_object().unwrap().clone(), 1000);
        assert_eq!((minimal.token_type.as_str(), minimal.expires_at, minimal.refresh_token), ("Bearer", None, None));
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("secret") && !debug.contains("h.p.s"), "{debug}");
    }

    #[test]
    fn sealed_records() {
        let tokens = StoredTokens::from_response(response(), 1000);
        let sealed = seal_record(&tokens, "sid-1", "corp", &KEY);
        assert!(!sealed.windows(9).any(|w| w == b"at-secret" || w == b"rt-secret"), "no token in the stored bytes");
        assert_eq!(open_record(&sealed, "sid-1", "corp", &KEY), Some(tokens));
        assert_eq!(open_record(&sealed, "sid-2", "corp", &KEY), None, "another session's key");
        assert_eq!(open_record(&sealed, "sid-1", "other", &KEY), None, "another provider's key");
        assert_eq!(open_record(&sealed, "sid-1", "corp", &[1; 32]), None, "another token key");
        assert_eq!(record_key("sid-1", "corp"), "session:sid-1:corp");
    }
}
