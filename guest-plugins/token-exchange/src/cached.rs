//! The cache of exchanged tokens, per (subject token, audience, resource,
//! scope, requested type, client, STS): the key is a SHA-256 of them, so no
//! subject token is ever a key in clear. The value is the token and when it
//! stops being used (`renew_before_seconds` before it expires). It lives in
//! the instance cache (the gateway's memory) and, when the entry is granted
//! a store, there too, sealed with the token key (AES-256-GCM, bound to the key).

use crate::config::Checked;
use sha2::{Digest, Sha256};

/// The cache key of an exchange of `subject_token` under `config`.
pub fn key(config: &Checked, subject_token: &str) -> String {
    let mut hash = Sha256::new();
    // Every part is length-prefixed: no two different inputs join the same way.
    for part in [
        "token-exchange/v1",
        &config.token_endpoint,
        &config.client_id,
        &config.subject_token_type,
        subject_token,
        config.audience.as_deref().unwrap_or("\0"),
        config.resource.as_deref().unwrap_or("\0"),
        config.scope.as_deref().unwrap_or("\0"),
        &config.requested_token_type,
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut key = String::with_capacity(3 + 64);
    key.push_str("tx:");
    for byte in digest {
        key.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        key.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
    }
    key
}

/// A cached token: used until `until` (Unix seconds).
#[derive(Debug, PartialEq, Eq)]
pub struct Cached {
    pub until: u64,
    pub token: String,
}

impl Cached {
    /// `until` (8 bytes, big-endian), then the token.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.token.len());
        out.extend_from_slice(&self.until.to_be_bytes());
        out.extend_from_slice(self.token.as_bytes());
        out
    }

    /// The value, if it is one and still usable at `now`.
    pub fn decode(bytes: &[u8], now: u64) -> Option<Cached> {
        let (until, token) = bytes.split_at_checked(8)?;
        let until = u64::from_be_bytes(until.try_into().ok()?);
        let token = std::str::from_utf8(token).ok()?;
        (until > now && !token.is_empty()).then(|| Cached { until, token: token.to_owned() })
    }
}

/// How long an exchanged token is used: `renew_before` seconds less than it
/// lives, and never past the subject's own expiry (`subject_exp`) when it is
/// known; `None` (not cached) when the STS gave no lifetime or too short a one.
pub fn lifetime(expires_in: Option<u64>, renew_before: u64, now: u64, subject_exp: Option<u64>) -> Option<u64> {
    let mut seconds = expires_in?.checked_sub(renew_before).filter(|s| *s > 0)?;
    if let Some(exp) = subject_exp {
        seconds = seconds.min(exp.checked_sub(now).filter(|s| *s > 0)?);
    }
    Some(seconds.min(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(extra: serde_json::Value) -> Checked {
        let mut c =
            json!({"token_endpoint": "https://sts.example/token", "client_id": "gw", "client_secret": "s", "audience": "https://api.example", "scope": "read"});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value::<crate::config::Config>(c).unwrap().check().unwrap()
    }

    #[test]
    fn keys_hide_the_subject_and_separate_everything() {
        let base = config(json!({}));
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";
        let k = key(&base, token);
        assert_eq!(k.len(), 3 + 64);
        assert!(k.starts_with("tx:") && k[3..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(!k.contains("eyJ") && !k.contains("alice"), "{k}");
        assert_eq!(k, key(&config(json!({})), token), "stable");
        let others = [
            key(&base, "another-subject"),
            key(&config(json!({"audience": "https://other.example"})), token),
            key(&config(json!({"scope": "read write"})), token),
            key(&config(json!({"scope": null})), token),
            key(&config(json!({"resource": "https://api.example/"})), token),
            key(&config(json!({"requested_token_type": "urn:ietf:params:oauth:token-type:jwt"})), token),
            key(&config(json!({"client_id": "gw2"})), token),
            key(&config(json!({"token_endpoint": "https://sts2.example/token"})), token),
        ];
        for (i, other) in others.iter().enumerate() {
            assert_ne!(&k, other, "case {i}");
        }
        // Length prefixes: moving a character from one part to the next is another key.
        // (The subject token is followed by the audience.)
        assert_ne!(key(&config(json!({"audience": "ab"})), "t"), key(&config(json!({"audience": "b"})), "ta"));
    }

    #[test]
    fn values() {
        let cached = Cached { until: 1_000, token: "x-1".into() };
        assert_eq!(Cached::decode(&cached.encode(), 999), Some(Cached { until: 1_000, token: "x-1".into() }));
        assert_eq!(Cached::decode(&cached.encode(), 1_000), None, "due: not used");
        assert_eq!(Cached::decode(b"short", 0), None);
        assert_eq!(Cached::decode(&1_000u64.to_be_bytes(), 0), None, "no token");
    }

    #[test]
    fn lifetimes() {
        assert_eq!(lifetime(Some(300), 30, 0, None), Some(270));
        assert_eq!(lifetime(Some(30), 30, 0, None), None, "too short to cache");
        assert_eq!(lifetime(Some(10), 30, 0, None), None);
        assert_eq!(lifetime(None, 30, 0, None), None, "no lifetime: not cached");
        assert_eq!(lifetime(Some(300), 30, 1_000, Some(1_100)), Some(100), "never past the subject's expiry");
        assert_eq!(lifetime(Some(300), 30, 1_000, Some(1_000)), None);
        assert_eq!(lifetime(Some(10_000_000), 0, 0, None), Some(86_400));
    }
}
