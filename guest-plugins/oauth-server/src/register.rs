//! RFC 7591 dynamic client registration, public clients only: what a
//! registration (or a Client ID Metadata Document, which has the same
//! fields) may say. The route itself is in `lib.rs`.

use crate::redirect::{self, Kind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A client this server knows, whichever way: listed, registered, or described
/// by a metadata document (see `clients`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
}

/// `native` or `web` (OpenID Connect Dynamic Client Registration §2, which
/// the MCP revision 2026-07-28 asks clients to send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationType {
    Native,
    Web,
}

impl ApplicationType {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationType::Native => "native",
            ApplicationType::Web => "web",
        }
    }
}

/// Checks `uris` and that they suit `application_type`: a native app
/// redirects to loopback or a private-use scheme (RFC 8252), a web app to
/// https. Without a type, the URIs decide it, and must agree.
pub fn check_redirect_uris(uris: &[String], application_type: Option<&str>) -> Result<ApplicationType, String> {
    if uris.is_empty() {
        return Err("list at least one redirect URI".into());
    }
    if uris.len() > 20 {
        return Err("at most 20 redirect URIs".into());
    }
    let mut kinds = Vec::with_capacity(uris.len());
    for uri in uris {
        kinds.push(redirect::kind(uri).map_err(|e| format!("{uri:?}: {e}"))?);
    }
    let native = kinds.iter().all(|k| matches!(k, Kind::Loopback | Kind::CustomScheme));
    let web = kinds.iter().all(|k| *k == Kind::Https);
    match application_type {
        Some("native") if native => Ok(ApplicationType::Native),
        Some("native") => {
            Err("a native application's redirect URIs must be loopback (`http://127.0.0.1`, `http://[::1]`, `http://localhost`) or a private-use scheme".into())
        }
        Some("web") if web => Ok(ApplicationType::Web),
        Some("web") => Err("a web application's redirect URIs must be https".into()),
        Some(other) => Err(format!("application_type {other:?} is neither \"native\" nor \"web\"")),
        None if native => Ok(ApplicationType::Native),
        None if web => Ok(ApplicationType::Web),
        None => Err("the redirect URIs mix native and web kinds: send application_type".into()),
    }
}

/// Why client metadata is refused: RFC 7591 §3.2.2's error code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub error: &'static str,
    pub description: String,
}

fn refused(error: &'static str, description: impl Into<String>) -> Refused {
    Refused { error, description: description.into() }
}

/// Checks client metadata (a registration request, or a CIMD document) and
/// gives the client it describes, under `client_id`. Unknown fields are
/// ignored (RFC 7591 §2); the ones this server acts on must be right.
pub fn check_metadata(metadata: &Value, client_id: &str) -> Result<Client, Refused> {
    let object = metadata.as_object().ok_or_else(|| refused("invalid_client_metadata", "the metadata must be a JSON object"))?;
    let strings = |name: &str| -> Result<Option<Vec<String>>, Refused> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or_else(|| refused("invalid_client_metadata", format!("`{name}` must list strings"))))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(refused("invalid_client_metadata", format!("`{name}` must be an array of strings"))),
        }
    };
    let text = |name: &str| -> Result<Option<&str>, Refused> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(refused("invalid_client_metadata", format!("`{name}` must be a string"))),
        }
    };
    match text("token_endpoint_auth_method")? {
        None | Some("none") => {}
        Some(other) => {
            return Err(refused(
                "invalid_client_metadata",
                format!("token_endpoint_auth_method {other:?}: only public clients (\"none\", with PKCE) are registered"),
            ));
        }
    }
    if object.contains_key("client_secret") {
        return Err(refused("invalid_client_metadata", "a public client has no client_secret"));
    }
    if let Some(grants) = strings("grant_types")?
        && let Some(other) = grants.iter().find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(refused("invalid_client_metadata", format!("grant type {other:?} is not supported (authorization_code, refresh_token)")));
    }
    if let Some(types) = strings("response_types")?
        && let Some(other) = types.iter().find(|t| t.as_str() != "code")
    {
        return Err(refused("invalid_client_metadata", format!("response type {other:?} is not supported (code)")));
    }
    let redirect_uris = strings("redirect_uris")?.ok_or_else(|| refused("invalid_redirect_uri", "redirect_uris is required"))?;
    let application_type = check_redirect_uris(&redirect_uris, text("application_type")?).map_err(|e| refused("invalid_redirect_uri", e))?;
    let client_name = match text("client_name")? {
        Some(name) if name.chars().count() > 200 || name.chars().any(char::is_control) => {
            return Err(refused("invalid_client_metadata", "client_name: at most 200 characters, no control characters"));
        }
        name => name.map(str::to_owned),
    };
    Ok(Client { client_id: client_id.to_owned(), redirect_uris, application_type: Some(application_type.as_str().to_owned()), client_name })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn application_types_and_their_redirects() {
        let uris = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(check_redirect_uris(&uris(&["http://127.0.0.1/cb"]), Some("native")), Ok(ApplicationType::Native));
        assert_eq!(check_redirect_uris(&uris(&["com.example.app:/cb", "http://[::1]/cb"]), Some("native")), Ok(ApplicationType::Native));
        assert_eq!(check_redirect_uris(&uris(&["https://app.example/cb"]), Some("web")), Ok(ApplicationType::Web));
        assert!(check_redirect_uris(&uris(&["https://app.example/cb"]), Some("native")).is_err());
        assert!(check_redirect_uris(&uris(&["http://127.0.0.1/cb"]), Some("web")).is_err());
        assert!(check_redirect_uris(&uris(&["com.example.app:/cb"]), Some("web")).is_err());
        assert!(check_redirect_uris(&uris(&["http://127.0.0.1/cb"]), Some("desktop")).is_err());
        assert_eq!(check_redirect_uris(&uris(&["http://localhost:1/cb"]), None), Ok(ApplicationType::Native));
        assert_eq!(check_redirect_uris(&uris(&["https://app.example/cb"]), None), Ok(ApplicationType::Web));
        assert!(check_redirect_uris(&uris(&["https://app.example/cb", "http://127.0.0.1/cb"]), None).is_err());
        assert!(check_redirect_uris(&[], None).is_err());
        assert!(check_redirect_uris(&uris(&["http://evil.example/cb"]), None).is_err());
    }

    #[test]
    fn registration_metadata() {
        let good = json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"], "application_type": "native", "client_name": "Claude Code", "logo_uri": "ignored"});
        let c = check_metadata(&good, "id1").unwrap();
        assert_eq!((c.client_id.as_str(), c.client_name.as_deref(), c.application_type.as_deref()), ("id1", Some("Claude Code"), Some("native")));
        assert_eq!(c.redirect_uris, ["http://127.0.0.1/cb"]);
        assert!(check_metadata(&json!({"redirect_uris": ["https://a.example/cb"]}), "x").is_ok());

        let error = |v: Value| check_metadata(&v, "x").unwrap_err();
        assert_eq!(
            error(json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_basic"})).error,
            "invalid_client_metadata"
        );
        assert_eq!(error(json!({"redirect_uris": ["https://a.example/cb"], "client_secret": "s"})).error, "invalid_client_metadata");
        assert_eq!(error(json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]})).error, "invalid_client_metadata");
        assert_eq!(error(json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]})).error, "invalid_client_metadata");
        assert_eq!(error(json!({"redirect_uris": ["https://a.example/cb"], "application_type": "native"})).error, "invalid_redirect_uri");
        assert_eq!(error(json!({"redirect_uris": ["http://127.0.0.1/cb"], "application_type": "web"})).error, "invalid_redirect_uri");
        assert_eq!(error(json!({})).error, "invalid_redirect_uri");
        assert_eq!(error(json!({"redirect_uris": "https://a.example/cb"})).error, "invalid_client_metadata");
        assert_eq!(error(json!({"redirect_uris": [1]})).error, "invalid_client_metadata");
        assert_eq!(error(json!({"redirect_uris": ["https://a.example/cb"], "client_name": "a\nb"})).error, "invalid_client_metadata");
        assert_eq!(error(json!([])).error, "invalid_client_metadata");
    }
}
