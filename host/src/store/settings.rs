//! `[store]` parsed, once, at policy load (so `portcullis check` reports the
//! same errors, located by the loader).

use schemars::JsonSchema;
use serde::Deserialize;

/// `[store]`: the key-value store behind the `store` import, one per gateway.
/// Keys are `{prefix}:{workload}:{component}:{key}`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    /// `memory` (the default: this process only, lost when it stops) or
    /// `redis` (Redis or Valkey: shared by replicas, kept across restarts).
    #[serde(default)]
    pub backend: StoreBackend,
    /// The Redis server: `redis://host:port/db`, or `rediss://` for TLS.
    /// Without credentials: they come from the secret store.
    pub url: Option<String>,
    /// The name of the secret (in the secret store) holding the Redis ACL username.
    pub username_secret: Option<String>,
    /// The name of the secret (in the secret store) holding the Redis password.
    pub password_secret: Option<String>,
    /// The first part of every key (default `portcullis`): letters, digits, `-`, `_`, `.`.
    pub prefix: Option<String>,
}

/// `[store] backend`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    #[default]
    Memory,
    Redis,
}

/// The key prefix when `[store] prefix` is absent.
pub const DEFAULT_PREFIX: &str = "portcullis";

/// Where values live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis {
        /// `redis://` or `rediss://`, without credentials, query or fragment.
        url: url::Url,
        /// Names in the secret store, never values.
        username_secret: Option<String>,
        password_secret: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub backend: Backend,
    /// Every key starts with `{prefix}:` (then the workload and the component).
    pub prefix: String,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings { backend: Backend::Memory, prefix: DEFAULT_PREFIX.into() }
    }
}

/// Something wrong with (or worth a warning about) one `[store]` key, for the loader to locate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsProblem {
    /// The key under `[store]`.
    pub field: &'static str,
    pub message: String,
    pub hint: Option<String>,
    pub warning: bool,
}

impl StoreSettings {
    /// Parses `[store]` (absent: the memory store). The settings are `Some`
    /// exactly when no problem is an error.
    pub fn parse(file: Option<&StoreFile>) -> (Option<StoreSettings>, Vec<SettingsProblem>) {
        let mut problems = Vec::new();
        let Some(file) = file else { return (Some(StoreSettings::default()), problems) };
        let mut error = |field, message: String, hint: Option<&str>| {
            problems.push(SettingsProblem { field, message, hint: hint.map(str::to_owned), warning: false });
        };
        let prefix = file.prefix.clone().unwrap_or_else(|| DEFAULT_PREFIX.into());
        if !valid_prefix(&prefix) {
            error("prefix", format!("{prefix:?} is not a key prefix"), Some("1-64 letters, digits, `-`, `_` or `.` (no `:`: it separates the key's parts)"));
        }
        for (field, name) in [("username_secret", &file.username_secret), ("password_secret", &file.password_secret)] {
            if name.as_ref().is_some_and(|n| n.trim().is_empty()) {
                error(field, "the secret name is empty".into(), Some("the name of a secret in the secret store (`portcullis secret set NAME`)"));
            }
        }
        let backend = match file.backend {
            StoreBackend::Memory => {
                for (field, set) in
                    [("url", file.url.is_some()), ("username_secret", file.username_secret.is_some()), ("password_secret", file.password_secret.is_some())]
                {
                    if set {
                        error(field, format!("`{field}` is for the Redis store, and the backend is `memory`"), Some("set `backend = \"redis\"`, or remove it"));
                    }
                }
                Some(Backend::Memory)
            }
            StoreBackend::Redis => {
                if file.username_secret.is_some() && file.password_secret.is_none() {
                    error("password_secret", "a username needs a password".into(), Some("name the secret holding the Redis user's password"));
                }
                match &file.url {
                    None => {
                        error("url", "the Redis store needs a `url`".into(), Some("e.g. `url = \"redis://127.0.0.1:6379/0\"`"));
                        None
                    }
                    Some(text) => redis_url(text, &mut problems),
                }
                .map(|url| Backend::Redis {
                    url,
                    username_secret: file.username_secret.clone(),
                    password_secret: file.password_secret.clone(),
                })
            }
        };
        let ok = !problems.iter().any(|p| !p.warning);
        (backend.filter(|_| ok).map(|backend| StoreSettings { backend, prefix }), problems)
    }
}

fn valid_prefix(prefix: &str) -> bool {
    (1..=64).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A `redis://` or `rediss://` URL with a host, an optional database number,
/// and nothing else; `redis://` beyond loopback is a warning (the password and
/// every value cross the network in clear).
fn redis_url(text: &str, problems: &mut Vec<SettingsProblem>) -> Option<url::Url> {
    let mut error = |message: String, hint: &str| {
        problems.push(SettingsProblem { field: "url", message, hint: Some(hint.into()), warning: false });
        None
    };
    let example = "e.g. `redis://127.0.0.1:6379/0` or `rediss://redis.internal:6380/0`";
    let Ok(url) = url::Url::parse(text) else { return error(format!("{text:?} is not a URL"), example) };
    if !matches!(url.scheme(), "redis" | "rediss") || url.host_str().is_none_or(str::is_empty) {
        return error(format!("{text:?} is not a redis:// or rediss:// URL with a host"), example);
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: it holds a credential.
        return error(
            "the URL holds credentials".into(),
            "put the username and password in the secret store and name them with `username_secret` and `password_secret`",
        );
    }
    // `#insecure` would turn certificate checks off; query parameters change the protocol.
    if url.query().is_some() || url.fragment().is_some() {
        return error("the URL must not have a query or fragment".into(), example);
    }
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u16>().is_err() {
        return error(format!("{:?} is not a database number", url.path()), "the path is the database number, e.g. `/0`");
    }
    if url.scheme() == "redis" && !portcullis_contract::net::is_loopback_authority(url.host_str().unwrap_or_default()) {
        problems.push(SettingsProblem {
            field: "url",
            message: format!("the store's values and the Redis password cross the network to {} in clear", url.host_str().unwrap_or_default()),
            hint: Some("use rediss:// (TLS) unless the network to Redis is trusted".into()),
            warning: true,
        });
    }
    Some(url)
}
