//! The OAuth tokens: what is kept under `token_key`, and what a token
//! endpoint's answer means.
//!
//! Both tokens live in ONE secret, written with one `secrets.set`, so that a
//! rotated refresh token is always stored together with the access token it
//! came with: there is no moment at which the store holds a spent refresh token
//! beside a new access token.

use crate::text::printable;
use serde::{Deserialize, Serialize};

/// A token is renewed once it is this close to its expiry (seconds), so that it
/// does not expire on its way to the registry.
pub const RENEW_BEFORE: u64 = 30;

/// The lifetime assumed when a token response has no `expires_in` (seconds):
/// short, so that a token of unknown lifetime is renewed early rather than late.
pub const DEFAULT_LIFETIME: u64 = 300;

/// The secret's JSON: `{"access_token", "refresh_token"?, "expires_at", "token_type"}`.
/// Unknown fields are ignored, so a later version may add some.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix seconds.
    pub expires_at: u64,
    #[serde(default = "bearer")]
    pub token_type: String,
}

fn bearer() -> String {
    "Bearer".into()
}

/// Never prints a token value, so that `{:?}` in a log line or a panic message cannot leak one.
impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken").field("expires_at", &self.expires_at).field("refresh_token", &self.refresh_token.is_some()).finish_non_exhaustive()
    }
}

impl StoredToken {
    /// The stored secret, or `None` when it is not a token of ours.
    pub fn parse(text: &str) -> Option<StoredToken> {
        let token: StoredToken = serde_json::from_str(text).ok()?;
        let refresh_ok = token.refresh_token.as_deref().is_none_or(|r| !r.is_empty());
        (is_header_safe(&token.access_token) && token.token_type.eq_ignore_ascii_case("bearer") && refresh_ok).then_some(token)
    }

    /// The secret's value. (Serialising strings and numbers cannot fail.)
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Good for more than [`RENEW_BEFORE`] seconds: use it without asking anyone.
    pub fn is_fresh(&self, now: u64) -> bool {
        self.expires_at > now.saturating_add(RENEW_BEFORE)
    }

    /// Past its expiry: the registry would refuse it.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// The `Authorization` value toward the registry.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.access_token)
    }
}

/// What a token endpoint's answer (to a code exchange or a refresh) means.
#[derive(Debug, PartialEq, Eq)]
pub enum Exchange {
    /// A token: store it, then use it.
    Issued(StoredToken),
    /// The provider refused the grant (4xx): the refresh token or code is no
    /// good, and only a new login helps. `error` is the OAuth error code,
    /// sanitised, when the body had one.
    Refused { status: u16, error: Option<String> },
    /// No usable answer (5xx, a non-token body, a network failure): worth
    /// retrying later. The cause is for a person and holds no token.
    Failed(String),
}

/// A token response (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// An error response (RFC 6749 §5.2): only the code is kept. The description
/// is prose from the provider and stays out of logs and messages.
#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

/// Classifies a token endpoint's answer. A response without a refresh token
/// keeps `previous_refresh` (RFC 6749 §6: the provider may keep the old one).
pub fn classify(status: u16, body: &[u8], previous_refresh: Option<&str>, now: u64) -> Exchange {
    match status {
        200..=299 => match parse_token(body, previous_refresh, now) {
            Some(token) => Exchange::Issued(token),
            None => Exchange::Failed("token endpoint answered with something other than a token".into()),
        },
        // Throttling and a slow request say nothing about the grant: retry later
        // rather than throw away a refresh token that may be good.
        408 | 429 => Exchange::Failed(format!("token endpoint answered HTTP {status}")),
        400..=499 => Exchange::Refused { status, error: error_code(body) },
        _ => Exchange::Failed(format!("token endpoint answered HTTP {status}")),
    }
}

/// The OAuth error code of an error response, sanitised; `None` when the body
/// is not one (or the code is empty).
pub fn error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorResponse>(body).ok().map(|e| printable(&e.error, 64)).filter(|e| !e.is_empty())
}

fn parse_token(body: &[u8], previous_refresh: Option<&str>, now: u64) -> Option<StoredToken> {
    let response: TokenResponse = serde_json::from_slice(body).ok()?;
    if !is_header_safe(&response.access_token) || !response.token_type.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let lifetime = match &response.expires_in {
        None | Some(serde_json::Value::Null) => DEFAULT_LIFETIME,
        Some(value) => seconds(value)?,
    };
    let refresh_token = response.refresh_token.filter(|r| !r.is_empty()).or_else(|| previous_refresh.map(str::to_owned));
    Some(StoredToken { access_token: response.access_token, refresh_token, expires_at: now.saturating_add(lifetime), token_type: bearer() })
}

/// `expires_in` (or RFC 8628's `interval`) as whole seconds: a non-negative
/// number, or a string of digits (some older providers send `"3599"`).
pub fn seconds(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) if !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    }
}

/// A token that can be sent as `Bearer <token>`: not empty, visible ASCII only
/// (RFC 6750's b64token is a subset), so that it cannot break the header.
pub fn is_header_safe(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn issued(exchange: Exchange) -> StoredToken {
        match exchange {
            Exchange::Issued(token) => token,
            other => panic!("not issued: {other:?}"),
        }
    }

    #[test]
    fn a_token_response() {
        let body = br#"{"access_token":"at-1","token_type":"bearer","expires_in":3600,"refresh_token":"rt-2","scope":"openid","id_token":"x.y.z"}"#;
        let token = issued(classify(200, body, Some("rt-1"), NOW));
        assert_eq!(token.access_token, "at-1");
        assert_eq!(token.refresh_token.as_deref(), Some("rt-2"), "a rotated refresh token replaces the old one");
        assert_eq!(token.expires_at, NOW + 3600);
        assert_eq!(token.authorization(), "Bearer at-1");
    }

    #[test]
    fn the_old_refresh_token_stays_when_none_is_sent() {
        let token = issued(classify(200, br#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#, Some("rt-1"), NOW));
        assert_eq!(token.refresh_token.as_deref(), Some("rt-1"));
        let token = issued(classify(200, br#"{"access_token":"at","token_type":"Bearer","refresh_token":""}"#, Some("rt-1"), NOW));
        assert_eq!(token.refresh_token.as_deref(), Some("rt-1"));
        let token = issued(classify(201, br#"{"access_token":"at","token_type":"Bearer"}"#, None, NOW));
        assert_eq!(token.refresh_token, None);
    }

    #[test]
    fn expires_in() {
        let at = |expires_in: &str| {
            let body = format!(r#"{{"access_token":"at","token_type":"Bearer"{expires_in}}}"#);
            match classify(200, body.as_bytes(), None, NOW) {
                Exchange::Issued(token) => Some(token.expires_at - NOW),
                _ => None,
            }
        };
        assert_eq!(at(""), Some(DEFAULT_LIFETIME));
        assert_eq!(at(r#","expires_in":null"#), Some(DEFAULT_LIFETIME));
        assert_eq!(at(r#","expires_in":120"#), Some(120));
        assert_eq!(at(r#","expires_in":120.7"#), Some(120));
        assert_eq!(at(r#","expires_in":"3599""#), Some(3599));
        assert_eq!(at(r#","expires_in":-5"#), None);
        assert_eq!(at(r#","expires_in":"soon""#), None);
        assert_eq!(at(r#","expires_in":true"#), None);
    }

    #[test]
    fn what_is_not_a_token() {
        let not_a_token = Exchange::Failed("token endpoint answered with something other than a token".into());
        for body in [
            &b"<html><body>Service temporarily unavailable</body></html>"[..],
            b"",
            br#"{"access_token":"","token_type":"Bearer"}"#,
            br#"{"access_token":"at","token_type":"mac"}"#,
            br#"{"access_token":"at"}"#,
            br#"{"token_type":"Bearer"}"#,
            br#"{"access_token":"at\r\nx-evil: 1","token_type":"Bearer"}"#,
            br#"{"access_token":"a t","token_type":"Bearer"}"#,
            br#"{"access_token":42,"token_type":"Bearer"}"#,
        ] {
            assert_eq!(classify(200, body, Some("rt"), NOW), not_a_token, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn refusals_and_failures() {
        assert_eq!(
            classify(400, br#"{"error":"invalid_grant","error_description":"Token is not active: at-1"}"#, Some("rt"), NOW),
            Exchange::Refused { status: 400, error: Some("invalid_grant".into()) }
        );
        assert_eq!(classify(401, br#"{"error":"invalid_client\r\n"}"#, None, NOW), Exchange::Refused { status: 401, error: Some("invalid_client".into()) });
        assert_eq!(classify(403, b"<html>Forbidden</html>", None, NOW), Exchange::Refused { status: 403, error: None });
        assert_eq!(classify(500, br#"{"error":"server_error"}"#, None, NOW), Exchange::Failed("token endpoint answered HTTP 500".into()));
        assert_eq!(classify(503, b"", None, NOW), Exchange::Failed("token endpoint answered HTTP 503".into()));
        assert_eq!(classify(429, b"", None, NOW), Exchange::Failed("token endpoint answered HTTP 429".into()));
        assert_eq!(classify(302, b"", None, NOW), Exchange::Failed("token endpoint answered HTTP 302".into()));
    }

    #[test]
    fn the_renewal_window() {
        let token = StoredToken { access_token: "at".into(), refresh_token: None, expires_at: NOW + 100, token_type: bearer() };
        assert!(token.is_fresh(NOW) && token.is_fresh(NOW + 69));
        assert!(!token.is_fresh(NOW + 70), "30 s before expiry it is renewed");
        assert!(!token.is_expired(NOW + 99));
        assert!(token.is_expired(NOW + 100));
        assert!(!token.is_fresh(u64::MAX) && token.is_expired(u64::MAX));
    }

    #[test]
    fn stored_form_round_trips_and_never_prints_tokens() {
        let token = StoredToken { access_token: "at-secret".into(), refresh_token: Some("rt-secret".into()), expires_at: NOW, token_type: bearer() };
        let json = token.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value, serde_json::json!({"access_token": "at-secret", "refresh_token": "rt-secret", "expires_at": NOW, "token_type": "Bearer"}));
        assert_eq!(StoredToken::parse(&json), Some(token.clone()));
        let debug = format!("{token:?}");
        assert!(!debug.contains("secret"), "{debug}");

        let without = StoredToken { refresh_token: None, ..token };
        assert!(!without.to_json().contains("refresh_token"));
        assert_eq!(StoredToken::parse(&without.to_json()), Some(without));
        for bad in
            ["", "not json", r#"{"access_token":"","expires_at":1}"#, r#"{"access_token":"a"}"#, r#"{"access_token":"a","expires_at":1,"token_type":"mac"}"#]
        {
            assert_eq!(StoredToken::parse(bad), None, "{bad}");
        }
        assert!(StoredToken::parse(r#"{"access_token":"a","expires_at":1,"extra":true}"#).is_some());
    }
}
