//! The answer that sends the client to log in again: 401 with the
//! resource's metadata URL (RFC 9728 §5.1), as the verifier's own challenge,
//! so an MCP client starts the authorization server's login afresh.

use portcullis_plugin::{Deny, deny};

pub struct Challenge {
    origin: String,
    header: String,
    /// For a session without the provider: ask for its scope (RFC 6750 §3.1).
    connect: String,
}

impl Challenge {
    /// The challenges of the workload at `public_url`, for `provider`'s tokens.
    pub fn new(public_url: &str, provider: &str) -> Result<Challenge, String> {
        let url = url::Url::parse(public_url).map_err(|e| format!("the workload's public_url {public_url:?}: {e}"))?;
        let origin = url.origin().ascii_serialization();
        let metadata = portcullis_contract::resource_metadata::url(&origin, url.path());
        let header = format!("Bearer error=\"invalid_token\", error_description=\"log in again\", resource_metadata=\"{metadata}\"");
        let scope = portcullis_contract::sessions::provider_scope(provider);
        let connect = format!(
            "Bearer error=\"insufficient_scope\", scope=\"{scope}\", error_description=\"this call needs a login at {provider}\", resource_metadata=\"{metadata}\""
        );
        Ok(Challenge { origin, header, connect })
    }

    /// The workload's origin: the embedded authorization server's issuer.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn log_in_again(&self) -> Deny {
        deny(401).challenge(self.header.clone()).error("invalid_token", "the upstream credential of this session is gone or refused: log in again")
    }

    /// The session never logged in at the provider (it was not asked for,
    /// or declined): 403 naming its scope, so the client asks for it (step-up).
    pub fn connect(&self) -> Deny {
        deny(403).challenge(self.connect.clone()).error("insufficient_scope", "this call needs a login at an upstream provider this session has none of")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_metadata() {
        let challenge = Challenge::new("http://127.0.0.1:8080/mcp", "tracker").unwrap();
        assert_eq!(challenge.origin(), "http://127.0.0.1:8080");
        assert!(challenge.header.ends_with("resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\""), "{}", challenge.header);
        assert!(challenge.connect.starts_with("Bearer error=\"insufficient_scope\", scope=\"upstream:tracker\","), "{}", challenge.connect);
        assert!(challenge.connect.ends_with("resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\""), "{}", challenge.connect);
    }
}
