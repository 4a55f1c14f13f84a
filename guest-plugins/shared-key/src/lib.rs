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
use std::cell::RefCell;
use subtle::ConstantTimeEq;

wit_bindgen::generate!({
    path: "../../wit",
    world: "portcullis:auth/authenticator",
});

use exports::portcullis::auth::authenticate::Guest as Authenticate;
use exports::portcullis::auth::lifecycle::{Guest as Lifecycle, Settings};
use portcullis::auth::log::{Level, log};
use portcullis::auth::secrets::{self, SecretError};
use portcullis::auth::types::{Allow, Deny, Header, Identity, Manifest, Request, Verdict};

thread_local! {
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
}

struct SharedKey;

impl Lifecycle for SharedKey {
    fn init(settings: Settings) -> Result<Manifest, String> {
        let mut config = Config::parse(&settings.config_json, &settings.workload)?;
        // A refused grant is permanent for this configuration: ask once, not per request.
        config.grace_granted = !matches!(secrets::get(&config.previous_secret()), Err(SecretError::NotGranted));
        let manifest = Manifest { consumes: vec![config.header.clone()], forwards: Vec::new(), produces: Vec::new() };
        CONFIG.with(|c| *c.borrow_mut() = Some(config));
        Ok(manifest)
    }
}

impl Authenticate for SharedKey {
    fn authenticate(request: &Request) -> Verdict {
        CONFIG.with(|c| match c.borrow().as_ref() {
            Some(config) => check(config, request),
            // The host always calls `init` first; refuse rather than guess.
            None => deny(500, "not_configured", "The shared-key component was not initialised.", None),
        })
    }
}

fn check(config: &Config, request: &Request) -> Verdict {
    let presented = match presented_key(config, request) {
        Some(key) => key,
        None => return config.unauthorized("missing_key", "No key was presented."),
    };
    let current = match secrets::get(&config.secret) {
        // An empty key would match an empty presentation: never a valid key.
        Ok(key) if key.is_empty() => return key_unavailable(config, "the stored key is empty"),
        Ok(key) => key,
        Err(error) => return secret_unavailable(config, error),
    };
    let mut matched = ct_eq(&presented, &current);
    // The previous key is checked even when the current one matched, so the time
    // taken does not tell an attacker which of the two a guess was close to.
    if let Some(previous) = previous_key(config) {
        matched |= ct_eq(&presented, &previous);
    }
    if !matched {
        return config.unauthorized("invalid_key", "The key presented is not this workload's key.");
    }
    Verdict::Allow(Allow {
        identity: Identity { subject: format!("shared-key:{}", config.workload), issuer: None, claims_json: None },
        // The gateway removes the key itself (the manifest says it is consumed).
        edits: Vec::new(),
    })
}

/// The key from the configured header, with the scheme prefix stripped.
/// Several fields with the header's name are refused: which one counts would be ambiguous.
fn presented_key(config: &Config, request: &Request) -> Option<String> {
    let [field] = request.header(&config.header).try_into().ok()?;
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

/// The previous key while its grace period lasts. Stored as `<rotated-at-unix-seconds> <key>`.
fn previous_key(config: &Config) -> Option<String> {
    if !config.grace_granted {
        return None;
    }
    let stored = secrets::get(&config.previous_secret()).ok()?;
    let (rotated_at, key) = stored.split_once(' ')?;
    let rotated_at: u64 = rotated_at.parse().ok()?;
    let now = now_unix_seconds();
    (!key.is_empty() && now < rotated_at.saturating_add(config.grace_seconds)).then(|| key.to_string())
}

fn ct_eq(presented: &str, expected: &str) -> bool {
    // `ct_eq` on slices of different lengths returns false early; the length of a
    // 32-byte key in base64url is public, so that leaks nothing secret.
    bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

fn secret_unavailable(config: &Config, error: SecretError) -> Verdict {
    let why = match error {
        SecretError::NotGranted => "the policy does not grant this component the key's secret",
        SecretError::NotFound => "no key exists yet for this workload",
        SecretError::Unavailable => "the secret store could not be opened",
    };
    key_unavailable(config, why)
}

fn key_unavailable(config: &Config, why: &str) -> Verdict {
    log(Level::Error, &format!("cannot read the key `{}`: {why}", config.secret));
    // Fail closed: without the key nothing is admitted. 503 says "the gateway is
    // not ready", which is the truth, and does not send clients into a retry with other keys.
    deny(
        503,
        "key_unavailable",
        &format!(
            "The gateway cannot check keys for workload `{}` right now. An operator should run `portcullis keys create {}`.",
            config.workload, config.workload
        ),
        None,
    )
}

pub(crate) fn deny(status: u16, error: &str, message: &str, header_hint: Option<&str>) -> Verdict {
    let mut body = serde_json::json!({ "error": error, "message": message });
    if let Some(header) = header_hint {
        body["header"] = serde_json::Value::String(header.to_string());
    }
    Verdict::Deny(Deny { status, headers: vec![Header { name: "content-type".into(), value: "application/json".into() }], body: body.to_string() })
}

/// Seconds since the Unix epoch, from WASI's wall clock.
fn now_unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

export!(SharedKey);
