//! The `config` table of a `builtin:upstream-token` entry.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The upstream provider's name in the authorization server's
    /// `upstreams` (`github`): whose tokens are injected.
    pub provider: String,
    /// The secret holding the key the server seals the tokens with (its own `token_key_secret`).
    pub token_key_secret: String,
    /// The header the token goes in (`authorization` by default).
    #[serde(default = "default_header")]
    pub header: String,
    /// What goes before the token (`Bearer ` for `authorization`, nothing for
    /// another header unless set).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Renew this many seconds before the token expires (30 by default).
    #[serde(default = "default_renew_before")]
    pub renew_before_seconds: u64,
    /// How long a request waits for another replica's renewal of the same
    /// session's token, in milliseconds (3000 by default). The entry's
    /// `limits.deadline_ms` must leave room for it and the refresh itself.
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u64,
    /// The issuer whose access tokens carry the session (`sid`): the
    /// workload's embedded authorization server, i.e. the origin of its
    /// `public_url` (the default). A token from any other issuer has no session here.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The tools whose calls need this provider's token (MCP `tools/call`
    /// by name). Absent: every request needs it. With several providers per
    /// workload, each entry names its own, and a session without one
    /// provider still serves the calls of the others.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
}

fn default_header() -> String {
    "authorization".into()
}

fn default_renew_before() -> u64 {
    30
}

fn default_wait_ms() -> u64 {
    3000
}

/// The checked configuration.
#[derive(Debug)]
pub struct Checked {
    pub provider: String,
    pub token_key_secret: String,
    pub header: String,
    pub prefix: Option<String>,
    pub renew_before_seconds: u64,
    pub wait_ms: u64,
    /// `None`: the origin of the workload's `public_url`, filled at init.
    pub issuer: Option<String>,
    /// `None`: every request.
    pub tools: Option<Vec<String>>,
}

impl Config {
    pub fn check(self) -> Result<Checked, String> {
        if !portcullis_contract::names::is_valid_name(&self.provider) {
            return Err(format!("`provider`: {:?} is not a provider's name ({})", self.provider, portcullis_contract::names::NAME_RULE));
        }
        let (header, prefix) = provider_tokens::placement::check(&self.header, self.prefix)?;
        if self.wait_ms > 9_000 {
            return Err("`wait_ms`: at most 9000 (a call's deadline is at most 10 s)".into());
        }
        if let Some(tools) = &self.tools
            && (tools.is_empty() || tools.iter().any(String::is_empty))
        {
            return Err("`tools`: list the tools that need this provider's token, or leave it out for every request".into());
        }
        Ok(Checked {
            provider: self.provider,
            token_key_secret: self.token_key_secret,
            header,
            prefix,
            renew_before_seconds: self.renew_before_seconds,
            wait_ms: self.wait_ms,
            issuer: self.issuer,
            tools: self.tools,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> Result<Checked, String> {
        serde_json::from_value::<Config>(json).map_err(|e| e.to_string())?.check()
    }

    #[test]
    fn defaults_and_refusals() {
        let checked = config(serde_json::json!({"provider": "github", "token_key_secret": "oauth:token-key"})).unwrap();
        assert_eq!(
            (checked.header.as_str(), checked.prefix.as_deref(), checked.renew_before_seconds, checked.wait_ms),
            ("authorization", Some("Bearer "), 30, 3000)
        );
        let other = config(serde_json::json!({"provider": "gh", "token_key_secret": "k", "header": "X-GitHub-Token"})).unwrap();
        assert_eq!((other.header.as_str(), other.prefix), ("x-github-token", None));
        for bad in [
            serde_json::json!({"provider": "", "token_key_secret": "k"}),
            serde_json::json!({"provider": "a:b", "token_key_secret": "k"}),
            serde_json::json!({"provider": "gh", "token_key_secret": "k", "header": "bad header"}),
            serde_json::json!({"provider": "gh", "token_key_secret": "k", "wait_ms": 20000}),
            serde_json::json!({"provider": "gh", "token_key_secret": "k", "token": "oops"}),
            serde_json::json!({"provider": "gh", "token_key_secret": "k", "tools": []}),
            serde_json::json!({"provider": "gh", "token_key_secret": "k", "tools": [""]}),
            serde_json::json!({"provider": "GitHub", "token_key_secret": "k"}),
        ] {
            assert!(config(bad.clone()).is_err(), "{bad}");
        }
    }
}
