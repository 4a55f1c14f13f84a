//! `builtin:shared-key`: admits requests that carry the workload's 256-bit key.
//!
//! The key lives in the gateway's secret store (created by `portcullis keys create`
//! or `config = { key = "auto" }`); this component reads it through the `secrets`
//! import on every request (the gateway keeps the store in memory), so a
//! rotation takes effect without a restart. After `portcullis keys rotate` the
//! previous key is kept under `<secret>:previous` together with the rotation
//! time, and stays valid for `grace`. Whether the policy grants the previous
//! key is learnt once, at `init`: without the grant, rotation has no grace and
//! no request asks for it.
//!
//! The manifest says the component consumes its header, so the gateway removes
//! the key from every request toward the upstream, whichever component allowed.
//!
//! Configuration (all optional):
//! - `secret`: the secret's name (default `workload:<workload>:shared-key`).
//! - `header`: where the key is presented (default `x-portcullis-key`).
//! - `scheme`: a scheme prefix in that header, e.g. `Bearer` with `header = "authorization"`.
//! - `grace`: how long the previous key stays valid after a rotation, in seconds
//!   or with a unit (`"10m"`, `"30s"`, `"1h"`; default 10 minutes).
//! - `key`: `"auto"` asks the gateway to create a missing key at start-up (the
//!   component itself ignores it).

mod config;

use config::Config;
use portcullis_plugin::prelude::*;
use portcullis_plugin::secrets::SecretError;

struct SharedKey {
    config: Config,
}

impl Authenticator for SharedKey {
    type Config = config::File;

    fn init(file: config::File, context: &Context) -> Result<Self, String> {
        let mut config = Config::new(file, &context.workload)?;
        // A refused grant is permanent for this configuration: ask once, not per request.
        config.grace_granted = !matches!(secrets::get(&config.previous_secret()), Err(SecretError::NotGranted));
        Ok(SharedKey { config })
    }

    fn manifest(&self) -> Manifest {
        Manifest::new().consumes(&self.config.header)
    }

    fn authenticate(&self, request: &Request) -> Verdict {
        check(&self.config, request)
    }
}

export_authenticator!(SharedKey);

fn check(config: &Config, request: &Request) -> Verdict {
    let presented = match presented_key(config, request) {
        Some(key) => key,
        None => return config.unauthorized("missing_key", "No key was presented."),
    };
    let current = match secrets::get(&config.secret) {
        // An empty key would match an empty presentation: never a valid key.
        Ok(key) if key.is_empty() => return key_unavailable(config, "the stored key is empty"),
        Ok(key) => key,
        Err(error) => return key_unavailable(config, &error.to_string()),
    };
    // `constant_time_eq` on different lengths returns false at once; the length
    // of a 32-byte key in base64url is public, so that leaks nothing secret.
    let mut matched = constant_time_eq(presented.as_bytes(), current.as_bytes());
    // The previous key is checked even when the current one matched, so the time
    // taken does not tell an attacker which of the two a guess was close to.
    if let Some(previous) = previous_key(config) {
        matched |= constant_time_eq(presented.as_bytes(), previous.as_bytes());
    }
    if !matched {
        return config.unauthorized("invalid_key", "The key presented is not this workload's key.");
    }
    // The gateway removes the key itself (the manifest says it is consumed).
    allow(format!("shared-key:{}", config.workload)).into()
}

/// The key from the configured header, with the scheme prefix stripped.
/// Several fields with the header's name are refused: which one counts would be ambiguous.
fn presented_key(config: &Config, request: &Request) -> Option<String> {
    let field = request.single_header(&config.header).ok()??;
    let value = field.trim();
    let key = match &config.scheme {
        None => value,
        Some(scheme) => {
            let (given, rest) = value.split_once(' ')?;
            if !given.eq_ignore_ascii_case(scheme) {
                return None;
            }
            rest.trim()
        }
    };
    (!key.is_empty()).then(|| key.to_owned())
}

/// The previous key while its grace period lasts, stored as the gateway's
/// `portcullis keys rotate` writes it ([`portcullis_contract::shared_key::previous_value`]).
fn previous_key(config: &Config) -> Option<String> {
    if !config.grace_granted {
        return None;
    }
    let stored = secrets::get(&config.previous_secret()).ok()?;
    let (rotated_at, key) = portcullis_contract::shared_key::parse_previous(&stored)?;
    (now_unix_seconds() < rotated_at.saturating_add(config.grace_seconds)).then(|| key.to_string())
}

fn key_unavailable(config: &Config, why: &str) -> Verdict {
    log::error(&format!("cannot read the key `{}`: {why}", config.secret));
    // Fail closed: without the key nothing is admitted. 503 says "the gateway is
    // not ready", which is the truth, and does not send clients into a retry with other keys.
    deny(503)
        .error(
            "key_unavailable",
            &format!(
                "The gateway cannot check keys for workload `{}` right now. An operator should run `portcullis keys create {}`.",
                config.workload, config.workload
            ),
        )
        .into()
}

/// Seconds since the Unix epoch, from WASI's wall clock.
fn now_unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
