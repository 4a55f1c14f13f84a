//! Requests to the provider's token, revocation and device authorization
//! endpoints: the form bodies (pure, tested) and the calls (through the
//! gateway's HTTP client).
//!
//! This is a public client (no client secret, RFC 6749 §2.1): `client_id`
//! goes in the body of every request. `resource` (RFC 8707) and the
//! provider-specific `audience` go with every grant, so that a renewed token
//! is for the same registry as the first one.

use crate::config::OAuth;
use crate::text::printable;
use crate::token::{Exchange, classify};
use portcullis_plugin::http::{self, HttpError};
use std::time::Duration;

/// Short: a renewal holds the lock while it waits, and requests wait behind it.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The refresh request (RFC 6749 §6). No `scope`: the provider then grants
/// what the login granted, which is what is wanted.
pub fn refresh_form(oauth: &OAuth, refresh_token: &str) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "refresh_token").append_pair("refresh_token", refresh_token).append_pair("client_id", &oauth.client_id);
    with_target(&mut form, oauth);
    form.finish()
}

/// The code exchange (RFC 6749 §4.1.3, RFC 7636 §4.5).
pub fn code_form(oauth: &OAuth, code: &str, redirect_uri: &str, verifier: &str) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("client_id", &oauth.client_id)
        .append_pair("code_verifier", verifier);
    with_target(&mut form, oauth);
    form.finish()
}

/// The device authorization request (RFC 8628 §3.1): the same `scope` as the
/// browser login's authorization request.
pub fn device_authorization_form(oauth: &OAuth) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("client_id", &oauth.client_id);
    if !oauth.scopes.is_empty() {
        form.append_pair("scope", &oauth.scopes.join(" "));
    }
    with_target(&mut form, oauth);
    form.finish()
}

/// The device access token request (RFC 8628 §3.4).
pub fn device_code_form(oauth: &OAuth, device_code: &str) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", DEVICE_CODE_GRANT).append_pair("device_code", device_code).append_pair("client_id", &oauth.client_id);
    with_target(&mut form, oauth);
    form.finish()
}

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The revocation request for a refresh token (RFC 7009 §2.1).
pub fn revocation_form(oauth: &OAuth, refresh_token: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("token", refresh_token)
        .append_pair("token_type_hint", "refresh_token")
        .append_pair("client_id", &oauth.client_id)
        .finish()
}

fn with_target(form: &mut form_urlencoded::Serializer<'_, String>, oauth: &OAuth) {
    if let Some(resource) = &oauth.resource {
        form.append_pair("resource", resource);
    }
    if let Some(audience) = &oauth.audience {
        form.append_pair("audience", audience);
    }
}

/// POSTs `form` to the token endpoint and classifies the answer.
pub fn exchange(token_endpoint: &str, form: String, previous_refresh: Option<&str>, now: u64) -> Exchange {
    match post(token_endpoint, form) {
        Ok(response) => classify(response.status, &response.body, previous_refresh, now),
        Err(error) => Exchange::Failed(format!("could not reach the token endpoint: {}", describe(&error))),
    }
}

/// POSTs a revocation; `Err` says why it did not work (no token in it).
pub fn revoke(revocation_endpoint: &str, form: String) -> Result<(), String> {
    match post(revocation_endpoint, form) {
        // RFC 7009 §2.2: 200 also for a token that was already invalid.
        Ok(response) if response.status == 200 => Ok(()),
        Ok(response) => Err(format!("the revocation endpoint answered HTTP {}", response.status)),
        Err(error) => Err(format!("could not reach the revocation endpoint: {}", describe(&error))),
    }
}

/// POSTs a device authorization request: the status and body, or why there is
/// no answer.
pub fn authorize_device(device_authorization_endpoint: &str, form: String) -> Result<(u16, Vec<u8>), String> {
    match post(device_authorization_endpoint, form) {
        Ok(response) => Ok((response.status, response.body)),
        Err(error) => Err(format!("could not reach the device authorization endpoint: {}", describe(&error))),
    }
}

fn post(url: &str, form: String) -> Result<http::Response, HttpError> {
    http::Request::post(url).header("accept", "application/json").form(&form).timeout(TIMEOUT).send()
}

/// A short cause for messages. The gateway's texts hold no token (the token
/// is in the body, which it does not quote), but they are trimmed anyway.
fn describe(error: &HttpError) -> String {
    match error {
        HttpError::Timeout => "timeout".into(),
        other => printable(&other.to_string(), 200),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth() -> OAuth {
        OAuth { issuer: "https://idp".into(), issuer_is_local: false, client_id: "cli".into(), scopes: vec!["openid".into()], audience: None, resource: None }
    }

    #[test]
    fn refresh() {
        assert_eq!(refresh_form(&oauth(), "rt/+=&x"), "grant_type=refresh_token&refresh_token=rt%2F%2B%3D%26x&client_id=cli");
        let mut oauth = oauth();
        oauth.resource = Some("https://registry.example.com/api".into());
        oauth.audience = Some("api://my registry".into());
        assert_eq!(
            refresh_form(&oauth, "rt"),
            "grant_type=refresh_token&refresh_token=rt&client_id=cli&resource=https%3A%2F%2Fregistry.example.com%2Fapi&audience=api%3A%2F%2Fmy+registry"
        );
    }

    #[test]
    fn code_exchange() {
        assert_eq!(
            code_form(&oauth(), "c&1", "http://127.0.0.1:8666/callback", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "grant_type=authorization_code&code=c%261&redirect_uri=http%3A%2F%2F127.0.0.1%3A8666%2Fcallback&client_id=cli\
             &code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
        let mut oauth = oauth();
        oauth.audience = Some("aud".into());
        assert!(code_form(&oauth, "c", "http://localhost/cb", "v").ends_with("&code_verifier=v&audience=aud"));
    }

    #[test]
    fn device_authorization() {
        let mut oauth = oauth();
        oauth.scopes.push("offline_access".into());
        assert_eq!(device_authorization_form(&oauth), "client_id=cli&scope=openid+offline_access");
        oauth.resource = Some("http://127.0.0.1/registry".into());
        oauth.audience = Some("aud".into());
        assert_eq!(device_authorization_form(&oauth), "client_id=cli&scope=openid+offline_access&resource=http%3A%2F%2F127.0.0.1%2Fregistry&audience=aud");
        oauth.scopes.clear();
        assert_eq!(device_authorization_form(&oauth), "client_id=cli&resource=http%3A%2F%2F127.0.0.1%2Fregistry&audience=aud", "no scopes: no `scope`");
    }

    #[test]
    fn device_code() {
        assert_eq!(
            device_code_form(&oauth(), "dc/+&1"),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=dc%2F%2B%261&client_id=cli"
        );
        let mut oauth = oauth();
        oauth.resource = Some("https://registry.example.com/api".into());
        assert!(device_code_form(&oauth, "dc").ends_with("&client_id=cli&resource=https%3A%2F%2Fregistry.example.com%2Fapi"));
    }

    #[test]
    fn revocation() {
        assert_eq!(revocation_form(&oauth(), "rt"), "token=rt&token_type_hint=refresh_token&client_id=cli");
    }

    #[test]
    fn network_causes() {
        assert_eq!(describe(&HttpError::Timeout), "timeout");
        assert!(describe(&HttpError::Connection("refused\r\n".into())).ends_with("refused"));
    }
}
