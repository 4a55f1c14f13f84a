//! The component's configuration, validated once in `init`.

use crate::uri;
use serde::Deserialize;

/// The policy's `config` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    issuer: Option<String>,
    client_id: Option<String>,
    scopes: Option<Vec<String>>,
    audience: Option<String>,
    resource: Option<String>,
    /// The port of the login command's loopback listener: the gateway's
    /// business, accepted here so the table validates.
    #[allow(dead_code)]
    callback_port: Option<u16>,
    /// Read by the gateway, which serves the file's content as the secret
    /// `portcullis:static-token`; only its presence matters here.
    token_file: Option<String>,
    token_secret: Option<String>,
    token_key: Option<String>,
}

/// The checked configuration.
#[derive(Debug)]
pub struct Config {
    pub workload: String,
    /// `None`: only a static token is used.
    pub oauth: Option<OAuth>,
    /// The secret holding a static bearer token, if configured.
    pub token_secret: Option<String>,
    /// The secret holding the OAuth tokens (also the name of the lock that
    /// guards their renewal).
    pub token_key: String,
}

/// The OAuth client settings.
#[derive(Debug)]
pub struct OAuth {
    /// Exactly as configured: the discovery document must name the same string.
    pub issuer: String,
    /// The issuer is `http://` on a loopback host (a provider for development);
    /// its endpoints may then be plain http on loopback too.
    pub issuer_is_local: bool,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// The IdP-specific `audience` parameter (Auth0, Okta custom servers).
    pub audience: Option<String>,
    /// The RFC 8707 resource indicator.
    pub resource: Option<String>,
}

/// The secret the gateway fills from `PORTCULLIS_REGISTRY_TOKEN` or `token_file`.
pub const STATIC_TOKEN_SECRET: &str = portcullis_contract::secrets::STATIC_TOKEN;

/// `openid` makes OIDC providers accept the request; `offline_access` asks for
/// the refresh token that lets the gateway renew without a person.
const DEFAULT_SCOPES: [&str; 2] = ["openid", "offline_access"];

impl Config {
    pub fn new(file: File, workload: &str) -> Result<Config, String> {
        let token_key = non_empty("token_key", file.token_key)?
            .ok_or("`token_key` is required: the name of the secret that keeps the OAuth tokens (the gateway sets it for the built-in)")?;
        let token_secret = non_empty("token_secret", file.token_secret)?;
        let token_file = non_empty("token_file", file.token_file)?;
        let oauth = match non_empty("issuer", file.issuer)? {
            Some(issuer) => Some(oauth(issuer, file.client_id, file.scopes, file.audience, file.resource)?),
            None => {
                // Without an issuer these settings would be silently ignored.
                for (key, set) in [
                    ("client_id", file.client_id.is_some()),
                    ("scopes", file.scopes.is_some()),
                    ("audience", file.audience.is_some()),
                    ("resource", file.resource.is_some()),
                ] {
                    if set {
                        return Err(format!("`{key}` is an OAuth setting and needs `issuer`"));
                    }
                }
                if token_secret.is_none() && token_file.is_none() {
                    return Err("configure `issuer` (with `client_id`) for an OAuth login, or `token_secret` (or `token_file`) for a static token".into());
                }
                None
            }
        };
        Ok(Config { workload: workload.to_owned(), oauth, token_secret, token_key })
    }
}

fn oauth(issuer: String, client_id: Option<String>, scopes: Option<Vec<String>>, audience: Option<String>, resource: Option<String>) -> Result<OAuth, String> {
    let parts = uri::parts(&issuer).ok_or_else(|| format!("`issuer` {issuer:?} is not an http(s) URL"))?;
    if parts.scheme != uri::Scheme::Https && !parts.is_local_http() {
        return Err(format!("`issuer` must use https (plain http only on localhost, 127.0.0.0/8 or [::1]): {issuer:?}"));
    }
    if parts.has_query || parts.has_fragment {
        return Err(format!("`issuer` may not have a query or a fragment: {issuer:?}"));
    }
    let client_id = non_empty("client_id", client_id)?.ok_or("`client_id` is required with `issuer`")?;
    let scopes = scopes.unwrap_or_else(|| DEFAULT_SCOPES.map(String::from).to_vec());
    if let Some(bad) = scopes.iter().find(|s| !is_scope_token(s)) {
        return Err(format!("`scopes`: {bad:?} is not a scope (an empty entry, or one with spaces, quotes or backslashes)"));
    }
    let audience = non_empty("audience", audience)?;
    let resource = non_empty("resource", resource)?;
    if let Some(resource) = &resource
        && !uri::is_absolute_uri(resource)
    {
        return Err(format!("`resource` must be an absolute URI without a fragment (RFC 8707): {resource:?}"));
    }
    Ok(OAuth { issuer_is_local: parts.is_local_http(), issuer, client_id, scopes, audience, resource })
}

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). Scopes are
/// sent joined by spaces, so a space inside one would split it.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// An optional string that, when given, is not empty.
fn non_empty(key: &str, value: Option<String>) -> Result<Option<String>, String> {
    match value {
        Some(v) if v.trim().is_empty() => Err(format!("`{key}` is empty")),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<Config, String> {
        let file: File = portcullis_plugin::parse_config(json)?;
        Config::new(file, "demo")
    }

    const KEY: &str = r#""token_key": "REGISTRY_OAUTH_1a2b3c4d""#;

    #[test]
    fn oauth_defaults() {
        let c = config(&format!(r#"{{"issuer": "https://idp.example.com/", "client_id": "cli", {KEY}}}"#)).unwrap();
        let oauth = c.oauth.unwrap();
        assert_eq!(oauth.issuer, "https://idp.example.com/", "the trailing slash is kept: discovery compares exactly");
        assert_eq!(oauth.scopes, ["openid", "offline_access"]);
        assert!(!oauth.issuer_is_local && oauth.audience.is_none() && oauth.resource.is_none());
        assert_eq!(c.token_key, "REGISTRY_OAUTH_1a2b3c4d");
        assert!(c.token_secret.is_none());
    }

    #[test]
    fn every_key_is_accepted() {
        let c = config(&format!(
            r#"{{"issuer": "http://127.0.0.1:9000/realms/x", "client_id": "cli", "scopes": ["openid", "api://reg/.default"],
                "audience": "api://my-registry", "resource": "https://registry.example.com/api", "callback_port": 9999,
                "token_file": "/run/token", "token_secret": "REGISTRY_TOKEN", {KEY}}}"#
        ))
        .unwrap();
        let oauth = c.oauth.unwrap();
        assert!(oauth.issuer_is_local);
        assert_eq!(oauth.scopes, ["openid", "api://reg/.default"]);
        assert_eq!(oauth.audience.as_deref(), Some("api://my-registry"));
        assert_eq!(oauth.resource.as_deref(), Some("https://registry.example.com/api"));
        assert_eq!(c.token_secret.as_deref(), Some("REGISTRY_TOKEN"));
        // An empty list sends no `scope` at all (the provider's default).
        assert!(config(&format!(r#"{{"issuer": "https://idp", "client_id": "c", "scopes": [], {KEY}}}"#)).unwrap().oauth.unwrap().scopes.is_empty());
    }

    #[test]
    fn static_token_only() {
        let c = config(&format!(r#"{{"token_secret": "REGISTRY_TOKEN", {KEY}}}"#)).unwrap();
        assert!(c.oauth.is_none());
        assert!(config(&format!(r#"{{"token_file": "/run/token", {KEY}}}"#)).unwrap().oauth.is_none());
    }

    #[test]
    fn refusals_name_the_key() {
        let cases = [
            (format!("{{{KEY}}}"), "`issuer`"),
            (format!("{{{KEY}}}"), "`token_secret`"),
            (r#"{"issuer": "https://idp", "client_id": "c"}"#.to_owned(), "`token_key` is required"),
            (format!(r#"{{"issuer": "https://idp", {KEY}}}"#), "`client_id` is required"),
            (format!(r#"{{"issuer": "https://idp", "client_id": " ", {KEY}}}"#), "`client_id` is empty"),
            (format!(r#"{{"issuer": "http://idp.example.com", "client_id": "c", {KEY}}}"#), "must use https"),
            (format!(r#"{{"issuer": "http://127.0.0.1.nip.io", "client_id": "c", {KEY}}}"#), "must use https"),
            (format!(r#"{{"issuer": "ftp://idp", "client_id": "c", {KEY}}}"#), "not an http(s) URL"),
            (format!(r#"{{"issuer": "idp.example.com", "client_id": "c", {KEY}}}"#), "not an http(s) URL"),
            (format!(r#"{{"issuer": "https://idp/?tenant=1", "client_id": "c", {KEY}}}"#), "query or a fragment"),
            (format!(r#"{{"issuer": "https://idp/#x", "client_id": "c", {KEY}}}"#), "query or a fragment"),
            (format!(r#"{{"issuer": "https://idp", "client_id": "c", "scopes": ["openid", ""], {KEY}}}"#), "`scopes`"),
            (format!(r#"{{"issuer": "https://idp", "client_id": "c", "scopes": ["a b"], {KEY}}}"#), "`scopes`"),
            (format!(r#"{{"issuer": "https://idp", "client_id": "c", "resource": "registry", {KEY}}}"#), "`resource`"),
            (format!(r#"{{"issuer": "https://idp", "client_id": "c", "resource": "https://r/#f", {KEY}}}"#), "`resource`"),
            (format!(r#"{{"token_secret": "T", "client_id": "c", {KEY}}}"#), "`client_id` is an OAuth setting"),
            (format!(r#"{{"token_secret": "T", "audience": "a", {KEY}}}"#), "`audience` is an OAuth setting"),
            (format!(r#"{{"token_secret": "", {KEY}}}"#), "`token_secret` is empty"),
            (r#"{"token_secret": "T", "token_key": ""}"#.to_owned(), "`token_key` is empty"),
            (format!(r#"{{"token_secret": "T", "callback_port": 70000, {KEY}}}"#), "config.callback_port"),
            (format!(r#"{{"token_secret": "T", "isuer": "https://idp", {KEY}}}"#), "unknown field `isuer`"),
        ];
        for (json, expected) in cases {
            let error = config(&json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
