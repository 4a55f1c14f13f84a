//! The request id: one per request, in the logs (the request's span), toward
//! the upstream and back to the client as `X-Request-Id`.
//!
//! A client-sent id is replaced by a fresh one unless the workload trusts it
//! (`trust_request_id = true`, for a gateway behind a proxy that sets it), and
//! even then only a short printable one is kept: the id is logged, so a client
//! must not be able to put anything it likes into the log.

use http::{HeaderMap, HeaderName, HeaderValue};

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-sent id that is kept.
const MAX_LEN: usize = 128;

/// Sets the request's `X-Request-Id` (kept or minted) and returns it.
pub fn assign(headers: &mut HeaderMap, trust_client: bool) -> HeaderValue {
    let kept = trust_client.then(|| single(headers)).flatten().filter(|one| acceptable(one)).cloned();
    let id = kept.unwrap_or_else(mint);
    headers.insert(HEADER, id.clone());
    id
}

/// The id as text for logs (always ASCII: minted or checked).
pub fn text(id: &HeaderValue) -> &str {
    id.to_str().unwrap_or("-")
}

/// The one `X-Request-Id` the client sent, if it sent exactly one.
fn single(headers: &HeaderMap) -> Option<&HeaderValue> {
    let mut sent = headers.get_all(&HEADER).iter();
    let first = sent.next()?;
    sent.next().is_none().then_some(first)
}

fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// 128 random bits in hex.
fn mint() -> HeaderValue {
    let mut id = [0u8; 32];
    hex::encode_to_slice(rand::random::<u128>().to_be_bytes(), &mut id).expect("32 hex digits for 16 bytes");
    HeaderValue::from_bytes(&id).expect("hex is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_kept_only_when_trusted_and_printable() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(assign(&mut headers.clone(), true), "abc-123");
        let minted = assign(&mut headers, false);
        assert_ne!(minted, "abc-123");
        assert_eq!(minted.len(), 32);
        assert_eq!(headers.get_all(&HEADER).iter().count(), 1, "the client's is replaced");
        for bad in ["has space", &"x".repeat(129)] {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER, HeaderValue::from_str(bad).unwrap());
            assert_ne!(assign(&mut headers, true), bad);
        }
        let mut two = HeaderMap::new();
        two.append(HEADER, HeaderValue::from_static("a"));
        two.append(HEADER, HeaderValue::from_static("b"));
        let id = assign(&mut two, true);
        assert!(id != "a" && id != "b", "two ids: neither is trusted");
    }
}
