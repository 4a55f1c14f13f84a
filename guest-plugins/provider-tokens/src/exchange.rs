//! The provider's token endpoint: the code exchange (RFC 6749 §4.1.3 with
//! the PKCE verifier, RFC 7636 §4.5) and the refresh (§6), with
//! `client_secret_basic` when a client secret is configured, otherwise a
//! public client identified by `client_id` in the form. Errors name the status and the provider's OAuth error code,
//! never the body (it may hold a token) or the provider's prose.

use crate::fetch::{self, RESPONSE_LIMIT};
use crate::text::{printable, strict_object};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_plugin::http;
use serde_json::{Map, Value};

/// The client's credentials toward the provider.
pub struct Client<'a> {
    pub client_id: &'a str,
    /// The client secret's value, when the client is confidential.
    pub secret: Option<&'a str>,
}

/// Exchanges `code`; the whole token response. `Err` is a sentence that
/// follows "the token endpoint of `corp` ".
pub fn exchange(token_endpoint: &str, client: &Client, code: &str, redirect_uri: &str, verifier: &str) -> Result<Map<String, Value>, String> {
    let mut request = http::Request::post(token_endpoint).header("accept", "application/json").form(&form(
        client.client_id,
        client.secret.is_none(),
        code,
        redirect_uri,
        verifier,
    ));
    if let Some(secret) = client.secret {
        request = request.header("authorization", &basic_authorization(client.client_id, secret));
    }
    let fetched = fetch::send(request, RESPONSE_LIMIT).map_err(|why| format!("could not be reached: {why}"))?;
    classify(fetched.status, &fetched.body)
}

/// Why a refresh gave no tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant`: revoked,
    /// expired, replayed): the session's tokens from it are dead.
    Refused(String),
    /// No answer, or one that is not a token response (a 5xx, a timeout, a
    /// body without `access_token`): the stored tokens stay as they are.
    Failed(String),
}

impl std::fmt::Display for RefreshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefreshError::Refused(why) | RefreshError::Failed(why) => f.write_str(why),
        }
    }
}

/// Renews with `refresh_token`; the whole token response. No `scope`: the
/// provider grants what the login was granted (RFC 6749 §6).
pub fn refresh(token_endpoint: &str, client: &Client, refresh_token: &str) -> Result<Map<String, Value>, RefreshError> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "refresh_token").append_pair("refresh_token", refresh_token);
    if client.secret.is_none() {
        form.append_pair("client_id", client.client_id);
    }
    let mut request = http::Request::post(token_endpoint).header("accept", "application/json").form(&form.finish());
    if let Some(secret) = client.secret {
        request = request.header("authorization", &basic_authorization(client.client_id, secret));
    }
    let fetched = fetch::send(request, RESPONSE_LIMIT).map_err(|why| RefreshError::Failed(format!("could not be reached: {why}")))?;
    classify(fetched.status, &fetched.body).map_err(|why| match oauth_error(&fetched.body).as_deref() {
        Some("invalid_grant") => RefreshError::Refused(why),
        _ => RefreshError::Failed(why),
    })
}

/// The `error` code of an OAuth error response, when the body is one.
fn oauth_error(body: &[u8]) -> Option<String> {
    strict_object(body).ok()?.get("error")?.as_str().map(str::to_owned)
}

/// The form body. A confidential client authenticates in the header and
/// does not repeat its `client_id` (RFC 6749 §2.3.1: one method per request).
pub fn form(client_id: &str, public: bool, code: &str, redirect_uri: &str, verifier: &str) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier);
    if public {
        form.append_pair("client_id", client_id);
    }
    form.finish()
}

/// RFC 6749 §2.3.1: the id and the secret are form-encoded before they are
/// joined and base64-encoded (a `:` or `%` in either must survive).
pub fn basic_authorization(client_id: &str, secret: &str) -> String {
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", encode(client_id), encode(secret))))
}

/// The token response (RFC 6749 §5.1), or why there is none. A response with
/// an `error` is an error whatever its status (some providers answer 200).
pub fn classify(status: u16, body: &[u8]) -> Result<Map<String, Value>, String> {
    let parsed = strict_object(body);
    let error = parsed.as_ref().ok().and_then(|doc| doc.get("error")).map(|e| printable(e.as_str().unwrap_or("a non-text error"), 64));
    match (status, error) {
        (200..=299, None) => {}
        (_, Some(error)) => return Err(format!("answered {status} {error}")),
        (_, None) => return Err(format!("answered HTTP {status}")),
    }
    let response = parsed.map_err(|why| format!("answered with a body that is {why}"))?;
    match response.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) => Ok(response),
        _ => Err("answered without a usable `access_token`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form() {
        assert_eq!(
            form("port cullis", true, "c+1", "https://gw.example.com/oauth/callback", "v"),
            "grant_type=authorization_code&code=c%2B1&redirect_uri=https%3A%2F%2Fgw.example.com%2Foauth%2Fcallback&code_verifier=v&client_id=port+cullis"
        );
        assert!(!form("portcullis", false, "c", "r", "v").contains("client_id"));
    }

    #[test]
    fn basic_authentication() {
        assert_eq!(basic_authorization("portcullis", "s3cret"), format!("Basic {}", STANDARD.encode("portcullis:s3cret")));
        assert_eq!(basic_authorization("a:b", "c%d e"), format!("Basic {}", STANDARD.encode("a%3Ab:c%25d+e")));
    }

    #[test]
    fn token_responses() {
        let body = br#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1","id_token":"x.y.z"}"#;
        assert_eq!(classify(200, body).unwrap()["refresh_token"], "rt-1");
        assert!(classify(201, br#"{"access_token":"at"}"#).is_ok());
        for bad in [&br#"{"access_token":""}"#[..], br#"{"access_token":"a b"}"#, br#"{"access_token":42}"#, br#"{"token_type":"Bearer"}"#] {
            assert_eq!(classify(200, bad).unwrap_err(), "answered without a usable `access_token`");
        }
        assert!(classify(200, b"<html>").unwrap_err().starts_with("answered with a body that is not valid JSON"));
        assert!(classify(200, br#"{"access_token":"a","access_token":"b"}"#).unwrap_err().contains("duplicate"));
    }

    #[test]
    fn refresh_errors() {
        let is_refused = |body: &[u8]| oauth_error(body).as_deref() == Some("invalid_grant");
        assert!(is_refused(br#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#));
        assert!(!is_refused(br#"{"error":"server_error"}"#));
        assert!(!is_refused(b"<html>Internal Server Error</html>"));
        assert!(!is_refused(br#"{"error":"invalid_grant","error":"x"}"#), "a duplicate key is not read either way");
    }

    #[test]
    fn errors_name_the_code_never_the_body() {
        let body = br#"{"error":"invalid_grant","error_description":"code at-secret-123 was used"}"#;
        assert_eq!(classify(400, body).unwrap_err(), "answered 400 invalid_grant");
        assert_eq!(classify(200, br#"{"error":"bad_verification_code","access_token":"at-secret"}"#).unwrap_err(), "answered 200 bad_verification_code");
        assert_eq!(classify(401, br#"{"error":"invalid_client\r\nforged"}"#).unwrap_err(), "answered 401 invalid_clientforged");
        assert_eq!(classify(400, br#"{"error":7}"#).unwrap_err(), "answered 400 a non-text error");
        assert_eq!(classify(502, b"<html>at-secret</html>").unwrap_err(), "answered HTTP 502");
        assert_eq!(classify(302, b"").unwrap_err(), "answered HTTP 302");
    }
}
