//! RFC 8414 authorization server metadata, and where it is served.

use crate::config::Config;
use crate::routes;
use serde_json::{Value, json};

/// The well-known path (RFC 8414 §3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

/// Where the document is served: the well-known path (the issuer has no
/// path), and the path-inserted form for the public URL's path, which MCP
/// clients try when they derive the server from the resource's URL.
pub fn paths(config: &Config) -> Vec<String> {
    let mut paths = vec![WELL_KNOWN.to_owned()];
    let inserted = format!("{WELL_KNOWN}{}", config.resource.path().trim_end_matches('/'));
    if inserted != WELL_KNOWN {
        paths.push(inserted);
    }
    paths
}

pub fn document(config: &Config) -> Value {
    let mut document = json!({
        "issuer": config.issuer,
        "authorization_endpoint": config.endpoint(routes::AUTHORIZE),
        "token_endpoint": config.endpoint(routes::TOKEN),
        "jwks_uri": config.endpoint(routes::JWKS),
        "revocation_endpoint": config.endpoint(routes::REVOKE),
        "scopes_supported": config.scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": config.cimd,
    });
    if config.exchange.is_some() {
        document["grant_types_supported"] = json!(["authorization_code", "refresh_token", crate::exchange::GRANT_TYPE]);
    }
    if config.registration {
        document["registration_endpoint"] = json!(config.endpoint(routes::REGISTER));
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::File;

    fn config(json: &str, public_url: &str) -> Config {
        let file: File = portcullis_plugin::parse_config(json).unwrap();
        Config::new(file, public_url).unwrap().0
    }

    #[test]
    fn the_document() {
        let c = config(r#"{"token_key_secret": "k", "scopes": ["mcp", "admin"]}"#, "https://gw.example/mcp");
        let d = document(&c);
        assert_eq!(d["issuer"], "https://gw.example");
        assert_eq!(d["authorization_endpoint"], "https://gw.example/oauth/authorize");
        assert_eq!(d["token_endpoint"], "https://gw.example/oauth/token");
        assert_eq!(d["jwks_uri"], "https://gw.example/oauth/jwks");
        assert_eq!(d["revocation_endpoint"], "https://gw.example/oauth/revoke");
        assert_eq!(d["registration_endpoint"], "https://gw.example/oauth/register");
        assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(d["client_id_metadata_document_supported"], true);
        assert_eq!(d["authorization_response_iss_parameter_supported"], true);
        assert_eq!(d["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
        assert_eq!(d["token_endpoint_auth_methods_supported"], json!(["none"]));
        assert_eq!(d["response_types_supported"], json!(["code"]));
        assert_eq!(d["scopes_supported"], json!(["mcp", "admin"]));
        assert_eq!(paths(&c), [WELL_KNOWN, "/.well-known/oauth-authorization-server/mcp"]);

        let c = config(r#"{"token_key_secret": "k", "registration": false, "cimd": false}"#, "http://127.0.0.1:8080");
        let d = document(&c);
        assert!(d.get("registration_endpoint").is_none(), "registration off: not advertised");
        assert_eq!(d["client_id_metadata_document_supported"], false);
        assert_eq!(d["issuer"], "http://127.0.0.1:8080");
        assert_eq!(paths(&c), [WELL_KNOWN]);
        assert_eq!(d["grant_types_supported"], json!(["authorization_code", "refresh_token"]), "token exchange off by default");

        let c = config(r#"{"token_key_secret": "k", "token_exchange": {"clients": ["agent"]}}"#, "https://gw.example/mcp");
        assert_eq!(document(&c)["grant_types_supported"], json!(["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"]));
    }
}
