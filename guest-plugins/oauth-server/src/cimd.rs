//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document):
//! a client whose id is an https URL publishes its metadata there.
//!
//! The document is fetched through the gateway's HTTP import (its SSRF
//! rules: granted origins, no private addresses), never following a
//! redirect, at most 5 KiB, and must name itself (`client_id` equal to the
//! URL, character for character). It is cached in the store for its
//! `Cache-Control: max-age`, held within [60 s, 24 h]; `no-store` and
//! `no-cache` are honoured by not caching; a failure is cached for 30 s so
//! that a broken or hostile URL is not fetched on every request.

use crate::random;
use crate::register::Client;
use portcullis_plugin::store::{self, StoreError};
use portcullis_plugin::{http, log};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const MAX_DOCUMENT: usize = 5 * 1024;
pub const MIN_CACHE: u32 = 60;
pub const MAX_CACHE: u32 = 24 * 3600;
pub const FAILURE_CACHE: u32 = 30;

/// Whether `client_id` is a CIMD URL: https, a host, a path other than `/`,
/// no fragment, no user information, and already in the form the `url`
/// crate writes (no dot segments, lower-case host, no default port), so
/// the URL fetched is the id compared.
pub fn is_cimd_client_id(client_id: &str) -> bool {
    if !client_id.starts_with("https://") || client_id.len() > 2000 {
        return false;
    }
    let Ok(url) = url::Url::parse(client_id) else {
        return false;
    };
    url.as_str() == client_id
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.path() != "/"
        && url.fragment().is_none()
        && !portcullis_contract::net::has_user_info(url.username(), url.password())
}

/// How long to cache a good document, from its `Cache-Control`: `None` for
/// not at all (`no-store`, `no-cache`); `max-age` held within the bounds;
/// the lower bound when it is absent or unreadable.
pub fn cache_seconds(cache_control: Option<&str>) -> Option<u32> {
    let Some(value) = cache_control else {
        return Some(MIN_CACHE);
    };
    let mut max_age: Option<Option<u64>> = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, argument) = match directive.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return None;
        }
        if name.eq_ignore_ascii_case("max-age") {
            let parsed = argument.filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit())).map(|a| a.parse::<u64>().unwrap_or(u64::MAX));
            // Two max-age directives are a conflict: trust neither.
            max_age = Some(if max_age.is_some() { None } else { parsed });
        }
    }
    let seconds = max_age.flatten().unwrap_or(u64::from(MIN_CACHE));
    Some(seconds.clamp(u64::from(MIN_CACHE), u64::from(MAX_CACHE)) as u32)
}

/// The fetched response, judged: the client, or why not (a sentence for a
/// page, naming no document content).
pub fn check_document(client_id: &str, status: u16, body: &[u8]) -> Result<Client, String> {
    if (300..400).contains(&status) {
        return Err(format!("the client's metadata document answered a redirect ({status}), which is not followed"));
    }
    if status != 200 {
        return Err(format!("the client's metadata document answered {status}"));
    }
    if body.len() > MAX_DOCUMENT {
        return Err(format!("the client's metadata document is over {MAX_DOCUMENT} bytes"));
    }
    let document: serde_json::Value = serde_json::from_slice(body).map_err(|_| "the client's metadata document is not JSON".to_owned())?;
    if document.get("client_id").and_then(|v| v.as_str()) != Some(client_id) {
        return Err("the client's metadata document names another client_id".to_owned());
    }
    crate::register::check_metadata(&document, client_id).map_err(|refused| format!("the client's metadata document: {}", refused.description))
}

/// What is cached under `cimd:{hash of the URL}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Cached {
    Client(Client),
    Failed(String),
}

fn cache_key(client_id: &str) -> String {
    format!("cimd:{}", random::hash(client_id))
}

/// The client described at `client_id`, from the cache or fetched.
/// `Ok(None)` when the document is unusable (logged); `Err` when the store failed.
pub fn resolve(client_id: &str) -> Result<Option<Client>, StoreError> {
    let key = cache_key(client_id);
    if let Some(bytes) = store::get(&key)? {
        match serde_json::from_slice(&bytes) {
            Ok(Cached::Client(client)) => return Ok(Some(client)),
            Ok(Cached::Failed(_)) => return Ok(None),
            Err(_) => {}
        }
    }
    let (outcome, ttl) = match fetch(client_id) {
        Ok((client, ttl)) => (Cached::Client(client), ttl),
        Err(why) => {
            log::warn(&format!("client metadata document {client_id}: {why}"));
            (Cached::Failed(why), Some(FAILURE_CACHE))
        }
    };
    if let Some(ttl) = ttl
        && let Ok(bytes) = serde_json::to_vec(&outcome)
    {
        // A cache that could not be written costs a fetch next time, nothing more.
        if let Err(e) = store::put(&key, &bytes, ttl) {
            log::warn(&format!("client metadata document {client_id}: not cached: {e}"));
        }
    }
    Ok(match outcome {
        Cached::Client(client) => Some(client),
        Cached::Failed(_) => None,
    })
}

fn fetch(client_id: &str) -> Result<(Client, Option<u32>), String> {
    let response = http::Request::get(client_id).header("accept", "application/json").timeout(Duration::from_secs(5)).send().map_err(|e| match e {
        http::HttpError::TooLarge => format!("the client's metadata document is over {MAX_DOCUMENT} bytes"),
        other => format!("the client's metadata document could not be fetched: {other}"),
    })?;
    let client = check_document(client_id, response.status, &response.body)?;
    Ok((client, cache_seconds(response.header("cache-control"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "https://app.example/oauth/client.json";

    #[test]
    fn cimd_client_ids() {
        for good in [ID, "https://app.example/c", "https://app.example:8443/c", "https://app.example/c?v=1"] {
            assert!(is_cimd_client_id(good), "{good}");
        }
        for bad in [
            "http://app.example/client.json",
            "https://app.example",
            "https://app.example/",
            "https://app.example/c#f",
            "https://u@app.example/c",
            "https://APP.example/c",
            "https://app.example:443/c",
            "https://app.example/a/../c",
            "https://app.example/a b",
            "app-id",
            "HTTPS://app.example/c",
        ] {
            assert!(!is_cimd_client_id(bad), "{bad}");
        }
    }

    #[test]
    fn cache_control_within_bounds() {
        assert_eq!(cache_seconds(None), Some(60));
        assert_eq!(cache_seconds(Some("max-age=600")), Some(600));
        assert_eq!(cache_seconds(Some("public, Max-Age=\"900\"")), Some(900));
        assert_eq!(cache_seconds(Some("max-age=5")), Some(60));
        assert_eq!(cache_seconds(Some("max-age=0")), Some(60));
        assert_eq!(cache_seconds(Some("max-age=31536000")), Some(86400));
        assert_eq!(cache_seconds(Some("max-age=99999999999999999999999")), Some(86400));
        assert_eq!(cache_seconds(Some("no-store")), None);
        assert_eq!(cache_seconds(Some("max-age=600, no-store")), None);
        assert_eq!(cache_seconds(Some("No-Cache")), None);
        assert_eq!(cache_seconds(Some("max-age=abc")), Some(60));
        assert_eq!(cache_seconds(Some("max-age=-1")), Some(60));
        assert_eq!(cache_seconds(Some("max-age=600, max-age=7200")), Some(60), "conflicting: the floor");
        assert_eq!(cache_seconds(Some("private")), Some(60));
    }

    #[test]
    fn documents() {
        let body = |client_id: &str| format!(r#"{{"client_id": "{client_id}", "client_name": "App", "redirect_uris": ["http://127.0.0.1/cb"]}}"#).into_bytes();
        let client = check_document(ID, 200, &body(ID)).unwrap();
        assert_eq!(client.client_id, ID);
        assert_eq!(client.redirect_uris, ["http://127.0.0.1/cb"]);

        assert!(check_document(ID, 200, &body("https://other.example/c")).unwrap_err().contains("another client_id"));
        assert!(check_document(ID, 200, &body("https://app.example/oauth/client.json/")).is_err());
        assert!(check_document(ID, 302, &body(ID)).unwrap_err().contains("redirect"));
        assert!(check_document(ID, 404, &body(ID)).is_err());
        let mut big = body(ID);
        big.truncate(big.len() - 1);
        big.extend(std::iter::repeat_n(b' ', MAX_DOCUMENT));
        big.push(b'}');
        assert!(check_document(ID, 200, &big).unwrap_err().contains("5120"));
        assert!(check_document(ID, 200, b"not json").is_err());
        let no_redirects = format!(r#"{{"client_id": "{ID}"}}"#);
        assert!(check_document(ID, 200, no_redirects.as_bytes()).is_err());
        let confidential = format!(r#"{{"client_id": "{ID}", "redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}}"#);
        assert!(check_document(ID, 200, confidential.as_bytes()).is_err());
    }
}
