//! The `config` table of a `builtin:token-exchange` entry.

use serde::Deserialize;

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The security token service's token endpoint.
    pub token_endpoint: String,
    /// This gateway's client id at the STS.
    pub client_id: String,
    /// `client_secret_basic` (the default), `client_secret_post` or `private_key_jwt`.
    #[serde(default = "default_auth")]
    pub client_auth: String,
    /// The secret holding the client secret (`client_secret_*`).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// What is exchanged: `incoming` (the client's bearer token, which the
    /// verifier must forward: `forward_token = true`) or `stored` (the
    /// session's upstream token that `builtin:oauth-server` stored for `provider`).
    #[serde(default = "default_subject")]
    pub subject: String,
    /// The `subject_token_type` sent (access token by default).
    #[serde(default)]
    pub subject_token_type: Option<String>,
    /// `subject = "stored"`: the provider whose stored token is exchanged.
    #[serde(default)]
    pub provider: Option<String>,
    /// The key the stored tokens are sealed with; also seals the exchanged
    /// tokens in a store (needed when the entry is granted a store).
    #[serde(default)]
    pub token_key_secret: Option<String>,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    /// The `requested_token_type` (access token by default); the answer's
    /// `issued_token_type` must be this.
    #[serde(default)]
    pub requested_token_type: Option<String>,
    /// The header the token goes in (`authorization` by default).
    #[serde(default = "default_header")]
    pub header: String,
    /// What goes before the token (`Bearer ` for `authorization`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Stop using a cached token this many seconds before it expires (30).
    #[serde(default = "default_renew_before")]
    pub renew_before_seconds: u64,
    /// How long the STS may take to answer, in milliseconds (3000). The
    /// entry's `limits.deadline_ms` must leave room for it.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// `subject = "stored"`: the issuer whose tokens carry the session
    /// (`sid`); the origin of the workload's `public_url` by default.
    #[serde(default)]
    pub issuer: Option<String>,
}

fn default_auth() -> String {
    "client_secret_basic".into()
}
fn default_subject() -> String {
    "incoming".into()
}
fn default_header() -> String {
    "authorization".into()
}
fn default_renew_before() -> u64 {
    30
}
fn default_timeout_ms() -> u64 {
    3000
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// The client secret in `Authorization: Basic` (RFC 6749 §2.3.1).
    Basic { secret: String },
    /// `client_id` and `client_secret` in the form.
    Post { secret: String },
    /// A JWT signed with the entry's signing key (RFC 7523 §2.2), `aud` = the token endpoint.
    PrivateKeyJwt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Incoming,
    Stored { provider: String },
}

/// The checked configuration.
#[derive(Debug)]
pub struct Checked {
    pub token_endpoint: String,
    pub client_id: String,
    /// The secret's name for `client_secret_*`; the value is read at use.
    pub client_auth: ClientAuth,
    pub subject: Subject,
    pub subject_token_type: String,
    pub token_key_secret: Option<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
    pub requested_token_type: String,
    pub header: String,
    pub prefix: Option<String>,
    pub renew_before_seconds: u64,
    pub timeout_ms: u64,
    pub issuer: Option<String>,
}

fn is_absolute_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// A URI such as `urn:ietf:params:oauth:token-type:jwt`: printable, no spaces.
fn is_uri(text: &str) -> bool {
    !text.is_empty() && text.len() <= 256 && text.contains(':') && text.bytes().all(|b| b.is_ascii_graphic())
}

impl Config {
    pub fn check(self) -> Result<Checked, String> {
        if !is_absolute_url(&self.token_endpoint) {
            return Err(format!("`token_endpoint`: {:?} is not an http(s) URL", self.token_endpoint));
        }
        if self.client_id.is_empty() || !self.client_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("`client_id`: printable text, no spaces".into());
        }
        let client_auth = match (self.client_auth.as_str(), self.client_secret) {
            ("client_secret_basic", Some(secret)) => ClientAuth::Basic { secret },
            ("client_secret_post", Some(secret)) => ClientAuth::Post { secret },
            ("client_secret_basic" | "client_secret_post", None) => {
                return Err(format!("`client_auth = \"{}\"` needs `client_secret` (a secret's name)", self.client_auth));
            }
            ("private_key_jwt", None) => ClientAuth::PrivateKeyJwt,
            ("private_key_jwt", Some(_)) => return Err("`client_auth = \"private_key_jwt\"` signs with the entry's `signing_keys`: no `client_secret`".into()),
            (other, _) => return Err(format!("`client_auth`: {other:?} is not one of client_secret_basic, client_secret_post, private_key_jwt")),
        };
        let subject = match (self.subject.as_str(), self.provider) {
            ("incoming", None) => Subject::Incoming,
            ("incoming", Some(_)) => return Err("`provider` is for `subject = \"stored\"`".into()),
            ("stored", Some(provider)) => {
                if !portcullis_contract::names::is_valid_name(&provider) {
                    return Err(format!("`provider`: {provider:?} is not a provider's name ({})", portcullis_contract::names::NAME_RULE));
                }
                Subject::Stored { provider }
            }
            ("stored", None) => return Err("`subject = \"stored\"` needs `provider` (whose stored token is exchanged)".into()),
            (other, _) => return Err(format!("`subject`: {other:?} is not `incoming` or `stored`")),
        };
        if matches!(subject, Subject::Stored { .. }) && self.token_key_secret.is_none() {
            return Err("`subject = \"stored\"` needs `token_key_secret` (the key the authorization server seals the tokens with)".into());
        }
        for (name, value) in [("subject_token_type", &self.subject_token_type), ("requested_token_type", &self.requested_token_type)] {
            if value.as_deref().is_some_and(|v| !is_uri(v)) {
                return Err(format!("`{name}`: a token type URI such as {ACCESS_TOKEN:?}"));
            }
        }
        if self.audience.is_none() && self.resource.is_none() {
            return Err("give `audience` or `resource`: the token the STS issues is for one upstream, not any".into());
        }
        if self.audience.as_deref().is_some_and(|a| a.is_empty() || !a.bytes().all(|b| b.is_ascii_graphic())) {
            return Err("`audience`: printable text, no spaces".into());
        }
        if self.resource.as_deref().is_some_and(|r| !is_absolute_url(r)) {
            return Err("`resource`: an absolute http(s) URI (RFC 8707)".into());
        }
        if self.scope.as_deref().is_some_and(|s| s.is_empty() || !s.bytes().all(|b| b == b' ' || b.is_ascii_graphic())) {
            return Err("`scope`: space-separated printable scope names".into());
        }
        let (header, prefix) = provider_tokens::placement::check(&self.header, self.prefix)?;
        if !(100..=9_000).contains(&self.timeout_ms) {
            return Err("`timeout_ms`: 100 to 9000 (a call's deadline is at most 10 s)".into());
        }
        Ok(Checked {
            token_endpoint: self.token_endpoint,
            client_id: self.client_id,
            client_auth,
            subject,
            subject_token_type: self.subject_token_type.unwrap_or_else(|| ACCESS_TOKEN.into()),
            token_key_secret: self.token_key_secret,
            audience: self.audience,
            resource: self.resource,
            scope: self.scope,
            requested_token_type: self.requested_token_type.unwrap_or_else(|| ACCESS_TOKEN.into()),
            header,
            prefix,
            renew_before_seconds: self.renew_before_seconds,
            timeout_ms: self.timeout_ms,
            issuer: self.issuer,
        })
    }
}

impl Checked {
    /// The client secret's name, for `client_secret_*`.
    pub fn secret_name(&self) -> Option<&str> {
        match &self.client_auth {
            ClientAuth::Basic { secret } | ClientAuth::Post { secret } => Some(secret),
            ClientAuth::PrivateKeyJwt => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub fn config(json: serde_json::Value) -> Result<Checked, String> {
        serde_json::from_value::<Config>(json).map_err(|e| e.to_string())?.check()
    }

    #[test]
    fn defaults() {
        let c = config(json!({"token_endpoint": "https://sts.example/token", "client_id": "gw", "client_secret": "sts:secret", "audience": "api"})).unwrap();
        assert_eq!(c.client_auth, ClientAuth::Basic { secret: "sts:secret".into() });
        assert_eq!(c.subject, Subject::Incoming);
        assert_eq!((c.subject_token_type.as_str(), c.requested_token_type.as_str()), (ACCESS_TOKEN, ACCESS_TOKEN));
        assert_eq!((c.header.as_str(), c.prefix.as_deref(), c.renew_before_seconds, c.timeout_ms), ("authorization", Some("Bearer "), 30, 3000));
        let stored = config(json!({"token_endpoint": "https://sts.example/token", "client_id": "gw", "client_auth": "private_key_jwt",
            "subject": "stored", "provider": "corp", "token_key_secret": "oauth:key", "resource": "https://api.example/", "header": "X-Api-Token"}))
        .unwrap();
        assert_eq!((stored.client_auth, stored.subject), (ClientAuth::PrivateKeyJwt, Subject::Stored { provider: "corp".into() }));
        assert_eq!((stored.header.as_str(), stored.prefix), ("x-api-token", None));
    }

    #[test]
    fn refusals() {
        let base = json!({"token_endpoint": "https://sts.example/token", "client_id": "gw", "client_secret": "s", "audience": "api"});
        let with = |k: &str, v: serde_json::Value| {
            let mut c = base.clone();
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v;
            }
            c
        };
        for bad in [
            with("token_endpoint", json!("sts.example/token")),
            with("client_id", json!("a b")),
            with("client_secret", serde_json::Value::Null),
            with("client_auth", json!("none")),
            with("client_auth", json!("private_key_jwt")),
            with("subject", json!("stored")),
            with("provider", json!("corp")),
            with("audience", serde_json::Value::Null),
            with("resource", json!("not a url")),
            with("scope", json!("")),
            with("requested_token_type", json!("jwt")),
            with("header", json!("bad header")),
            with("timeout_ms", json!(20000)),
            with("secret_value", json!("oops")),
        ] {
            assert!(config(bad.clone()).is_err(), "{bad}");
        }
        let stored_without_key = with("subject", json!("stored"));
        let mut stored_without_key = stored_without_key;
        stored_without_key["provider"] = json!("corp");
        assert!(config(stored_without_key).unwrap_err().contains("token_key_secret"));
    }
}
