//! Compact JWS parsing: three base64url parts, a strict JSON header and claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

pub struct Token<'a> {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    /// `header.payload`, what the signature covers.
    pub signing_input: &'a str,
    pub signature: &'a str,
}

pub fn parse(token: &str) -> Result<Token<'_>, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("not a compact JWS (three dot-separated parts)".into());
    };
    let signing_input = &token[..token.len() - signature.len() - 1];
    let header_bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| "the header is not base64url")?;
    let payload_bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| "the payload is not base64url")?;
    let header = portcullis_plugin::strict_json::object(&header_bytes).map_err(|e| format!("bad header: {e}"))?;
    let claims = portcullis_plugin::strict_json::object(&payload_bytes).map_err(|e| format!("bad claims: {e}"))?;
    Ok(Token { header, claims, signing_input, signature })
}
