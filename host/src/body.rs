//! The body type that flows through the proxy in both directions: a boxed
//! stream, so upstream bodies pass through frame by frame without buffering.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// A complete in-memory body (for the gateway's own responses).
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A JSON response body.
pub fn json(value: &serde_json::Value) -> ProxyBody {
    full(serde_json::to_vec(value).expect("JSON values serialise"))
}
