//! The component's configuration, parsed once in `init`.

use portcullis_contract::shared_key;
use portcullis_plugin::{Verdict, deny};
use serde::Deserialize;

/// The policy's `config` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    secret: Option<String>,
    header: Option<String>,
    scheme: Option<String>,
    grace: Option<serde_json::Value>,
    // Handled by the gateway at start-up; accepted here so the table validates.
    #[allow(dead_code)]
    key: Option<String>,
}

#[derive(Debug)]
pub struct Config {
    pub workload: String,
    pub secret: String,
    /// Lower-case header name.
    pub header: String,
    pub scheme: Option<String>,
    pub grace_seconds: u64,
    /// Whether the policy grants reading `<secret>:previous` (learnt at `init`).
    pub grace_granted: bool,
}

impl Config {
    pub fn new(file: File, workload: &str) -> Result<Config, String> {
        if let Some(key) = &file.key
            && key != "auto"
        {
            return Err(format!("`key` may only be \"auto\" (got {key:?}); keys are never written in the policy"));
        }
        let header = file.header.unwrap_or_else(|| shared_key::DEFAULT_HEADER.to_string()).to_ascii_lowercase();
        if header.is_empty() || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(format!("`header` {header:?} is not a valid header name"));
        }
        let grace_seconds = match file.grace {
            None => shared_key::DEFAULT_GRACE_SECONDS,
            Some(value) => parse_duration(&value)?,
        };
        Ok(Config {
            workload: workload.to_string(),
            secret: file.secret.unwrap_or_else(|| shared_key::default_secret(workload)),
            header,
            scheme: file.scheme.filter(|s| !s.is_empty()),
            grace_seconds,
            grace_granted: false,
        })
    }

    pub fn previous_secret(&self) -> String {
        shared_key::previous_secret(&self.secret)
    }

    /// 401 that tells a person what to send and where to find the key. It
    /// deliberately carries no `WWW-Authenticate: Bearer resource_metadata=…`
    /// challenge: that would start an OAuth discovery MCP clients cannot finish.
    pub fn unauthorized(&self, error: &str, what: &str) -> Verdict {
        let how = match &self.scheme {
            Some(scheme) => format!("`{}: {scheme} <key>`", self.header),
            None => format!("`{}: <key>`", self.header),
        };
        let message = format!(
            "{what} Send the workload's key as {how}; `portcullis keys show {}` prints it, and `portcullis bridge {}` adds it for stdio clients.",
            self.workload, self.workload
        );
        deny(401).json(&serde_json::json!({ "error": error, "message": message, "header": self.header })).into()
    }
}

/// Seconds as a number, or a string with an `s`, `m` or `h` suffix.
fn parse_duration(value: &serde_json::Value) -> Result<u64, String> {
    let bad = || format!("`grace` must be seconds or a duration like \"10m\" (got {value})");
    match value {
        serde_json::Value::Number(n) => n.as_u64().ok_or_else(bad),
        serde_json::Value::String(s) => {
            let s = s.trim();
            let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
            let n: u64 = digits.parse().map_err(|_| bad())?;
            let factor = match unit {
                "" | "s" => 1,
                "m" => 60,
                "h" => 3600,
                _ => return Err(bad()),
            };
            n.checked_mul(factor).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<Config, String> {
        let file: File = portcullis_plugin::parse_config(json)?;
        Config::new(file, "demo")
    }

    #[test]
    fn defaults_follow_the_workload() {
        let c = config("{}").unwrap();
        assert_eq!(c.secret, "workload:demo:shared-key");
        assert_eq!(c.previous_secret(), "workload:demo:shared-key:previous");
        assert_eq!(c.header, "x-portcullis-key");
        assert_eq!(c.grace_seconds, 600);
        assert!(c.scheme.is_none() && !c.grace_granted);
    }

    #[test]
    fn settings_are_checked() {
        let c = config(r#"{"header": "Authorization", "scheme": "Bearer", "grace": "2m", "key": "auto"}"#).unwrap();
        assert_eq!((c.header.as_str(), c.scheme.as_deref(), c.grace_seconds), ("authorization", Some("Bearer"), 120));
        assert_eq!(config(r#"{"grace": 30}"#).unwrap().grace_seconds, 30);
        assert_eq!(config(r#"{"grace": "1h"}"#).unwrap().grace_seconds, 3600);
        for bad in [r#"{"grace": "10d"}"#, r#"{"grace": -1}"#, r#"{"grace": "m"}"#, r#"{"grace": true}"#] {
            assert!(config(bad).unwrap_err().contains("grace"), "{bad}");
        }
        assert!(config(r#"{"key": "s3cret"}"#).unwrap_err().contains("never written in the policy"));
        assert!(config(r#"{"header": "x key"}"#).unwrap_err().contains("not a valid header name"));
        assert!(config(r#"{"header": ""}"#).is_err());
        assert!(config(r#"{"colour": "red"}"#).unwrap_err().contains("unknown field `colour`"));
        assert!(config(r#"{"grace": "99999999999999999999h"}"#).is_err(), "overflow is an error, not a wrap");
    }
}
