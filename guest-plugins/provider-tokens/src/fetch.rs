//! One bounded request to a provider. The gateway caps every response at
//! 1 MiB; each step here has its own, smaller limit, checked before the body
//! is parsed.

use crate::text::printable;
use portcullis_plugin::http;
use std::time::Duration;

/// Discovery documents and key sets (real ones are a few KiB).
pub const DOCUMENT_LIMIT: usize = 256 * 1024;
/// Token responses and userinfo documents: small, and a token response is
/// sealed into one store value (256 KiB at most).
pub const RESPONSE_LIMIT: usize = 64 * 1024;
pub const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, when given.
    pub max_age: Option<u32>,
}

/// Sends `request`; `Err` says why there is no response (never a header or a
/// body: the request may carry a secret, the answer a token).
pub fn send(request: http::Request, limit: usize) -> Result<Fetched, String> {
    let response = request.timeout(TIMEOUT).send().map_err(|e| match e {
        http::HttpError::TooLarge => format!("the answer is larger than {} KiB", limit / 1024),
        other => printable(&other.to_string(), 200),
    })?;
    check_size(response.body.len(), limit)?;
    Ok(Fetched { status: response.status, max_age: max_age(&response.headers), body: response.body })
}

pub fn check_size(len: usize, limit: usize) -> Result<(), String> {
    if len > limit { Err(format!("the answer is larger than {} KiB", limit / 1024)) } else { Ok(()) }
}

/// The `max-age` of the `Cache-Control` headers.
pub fn max_age(headers: &[(String, String)]) -> Option<u32> {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("cache-control"))
        .flat_map(|(_, value)| value.split(','))
        .find_map(|d| d.trim().strip_prefix("max-age=").and_then(|v| v.parse::<u32>().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cache_control() {
        assert!(check_size(DOCUMENT_LIMIT, DOCUMENT_LIMIT).is_ok());
        assert_eq!(check_size(DOCUMENT_LIMIT + 1, DOCUMENT_LIMIT).unwrap_err(), "the answer is larger than 256 KiB");
        let headers = |v: &str| vec![("content-type".to_owned(), "application/json".to_owned()), ("cache-control".to_owned(), v.to_owned())];
        assert_eq!(max_age(&headers("public, max-age=600")), Some(600));
        assert_eq!(max_age(&headers("no-store")), None);
        assert_eq!(max_age(&headers("max-age=-1")), None);
    }
}
