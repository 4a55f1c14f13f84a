//! The answer that sends the client to log in again: 401 with the
//! resource's metadata URL (RFC 9728 §5.1), as the verifier's own challenge,
//! so an MCP client starts the authorization server's login afresh.

use portcullis_plugin::{Deny, deny};

pub struct Challenge {
    origin: String,
    header: String,
}

impl Challenge {
    pub fn new(public_url: &str) -> Result<Challenge, String> {
        let url = url::Url::parse(public_url).map_err(|e| format!("the workload's public_url {public_url:?}: {e}"))?;
        let origin = url.origin().ascii_serialization();
        let metadata = portcullis_contract::resource_metadata::url(&origin, url.path());
        let header = format!("Bearer error=\"invalid_token\", error_description=\"log in again\", resource_metadata=\"{metadata}\"");
        Ok(Challenge { origin, header })
    }

    /// The workload's origin: the embedded authorization server's issuer.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn log_in_again(&self) -> Deny {
        deny(401).challenge(self.header.clone()).error("invalid_token", "the upstream credential of this session is gone or refused: log in again")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_metadata() {
        let challenge = Challenge::new("http://127.0.0.1:8080/mcp").unwrap();
        assert_eq!(challenge.origin(), "http://127.0.0.1:8080");
        assert!(challenge.header.ends_with("resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\""), "{}", challenge.header);
    }
}
