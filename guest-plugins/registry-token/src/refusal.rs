//! What the client is told when no token can be injected. Always 503: the
//! client did nothing wrong; the gateway lacks a registry credential, and a
//! `code` says which remedy applies (RFC THV-0043's `registry_auth_required`).
//! Bodies are built with serde_json, so no text from outside can break them,
//! and they never hold a token.

use portcullis_plugin::secrets::SecretError;
use portcullis_plugin::{Deny, deny};

/// No usable login: a person must log in again.
pub fn auth_required(workload: &str) -> Deny {
    refuse(auth_required_body(workload))
}

fn auth_required_body(workload: &str) -> serde_json::Value {
    body("registry_auth_required", &format!("Registry authentication required. Run 'portcullis login {workload}' to authenticate."))
}

/// No static token and no OAuth login configured to fall back on.
pub fn no_static_token(token_secret: Option<&str>) -> Deny {
    let where_ = match token_secret {
        Some(name) => format!("set PORTCULLIS_REGISTRY_TOKEN, fill `token_file`, or store the secret '{name}'"),
        None => "set PORTCULLIS_REGISTRY_TOKEN or fill `token_file`".to_owned(),
    };
    refuse(body("registry_auth_required", &format!("Registry authentication required: no registry token is available. An operator should {where_}.")))
}

/// The static token cannot be sent as a header value.
pub fn static_token_unusable(source: &str) -> Deny {
    refuse(body(
        "registry_token_invalid",
        &format!("The registry token from {source} contains characters that cannot be sent in a header (spaces, control or non-ASCII characters)."),
    ))
}

/// A renewal that failed in a way worth retrying; `cause` holds no token.
pub fn renewal_failed(cause: &str, retry_after_seconds: u64) -> Deny {
    refuse(renewal_failed_body(cause)).header("retry-after", retry_after_seconds.to_string())
}

fn renewal_failed_body(cause: &str) -> serde_json::Value {
    let message = format!("The identity provider did not renew the registry token ({cause}). Retrying with backoff; no new login is needed.");
    body("registry_token_unavailable", &message)
}

/// The renewal lock stayed taken past our wait (another instance or gateway
/// is renewing, slowly), and no stored token still works.
pub fn renewal_busy() -> Deny {
    let message = "The registry token is being renewed elsewhere and the renewal did not finish in time. Retry shortly; no new login is needed.";
    refuse(body("registry_token_unavailable", message)).header("retry-after", "1")
}

/// The stored tokens could not be read.
pub fn store_unreadable(error: SecretError) -> Deny {
    refuse(body("registry_secret_store_unavailable", &format!("The registry token could not be read from the secret store ({error}).")))
}

/// A renewed token could not be stored, so it is not used: its refresh token
/// may replace one the provider has now spent, and an unstored rotation would
/// strand every other instance and gateway with the spent one.
pub fn store_unwritable(error: SecretError) -> Deny {
    let message = format!("The registry token was renewed, but the secret store could not be written ({error}), so the new token is not used.");
    refuse(body("registry_secret_store_unavailable", &message))
}

fn body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "code": code, "message": message })
}

fn refuse(body: serde_json::Value) -> Deny {
    // `json` also sets `content-type: application/json`.
    deny(503).json(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bodies() {
        assert_eq!(
            auth_required_body("demo").to_string(),
            r#"{"code":"registry_auth_required","message":"Registry authentication required. Run 'portcullis login demo' to authenticate."}"#
        );
        assert_eq!(
            renewal_failed_body("token endpoint answered HTTP 500").to_string(),
            r#"{"code":"registry_token_unavailable","message":"The identity provider did not renew the registry token (token endpoint answered HTTP 500). Retrying with backoff; no new login is needed."}"#
        );
    }

    #[test]
    fn text_from_outside_cannot_break_the_json() {
        let value = body("registry_token_unavailable", r#"x", "code": "forged"#);
        let parsed: serde_json::Value = serde_json::from_str(&value.to_string()).unwrap();
        assert_eq!(parsed["code"], "registry_token_unavailable");
        assert_eq!(parsed.as_object().unwrap().len(), 2);
    }
}
