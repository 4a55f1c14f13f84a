//! Shared keys for `builtin:shared-key` workloads: creation, rotation with a
//! grace period, deletion. Keys are 32 bytes from the OS CSPRNG, base64url
//! without padding, kept in the secret store.
//!
//! The current key is stored under the workload's secret name (default
//! `workload:<name>:shared-key`); after a rotation the previous one is stored
//! under `<name>:previous` as `<rotated-at-unix-seconds> <key>`, which the
//! component accepts until the grace period (its `grace` setting) ends.

use crate::policy::Policy;
use crate::secrets::{SecretStore, SecretStoreError, SecretString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_contract::shared_key::{DEFAULT_HEADER, default_secret, previous_secret, previous_value};
use secrecy::ExposeSecret;

pub const COMPONENT: &str = "builtin:shared-key";

/// A new key: 32 bytes from the OS CSPRNG, base64url without padding.
pub fn generate() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut bytes).expect("the OS random number generator is available");
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

/// How one workload's key is configured in a policy.
#[derive(Debug, Clone)]
pub struct KeySettings {
    pub workload: String,
    pub secret: String,
    /// Lower-case header name.
    pub header: String,
    pub scheme: Option<String>,
    /// `config = { key = "auto" }`: create a missing key at start-up.
    pub auto: bool,
}

impl KeySettings {
    /// The defaults, for a workload not described by a policy.
    pub fn default_for(workload: &str) -> Self {
        KeySettings { workload: workload.to_owned(), secret: default_secret(workload), header: DEFAULT_HEADER.into(), scheme: None, auto: false }
    }

    /// The header value a client sends.
    pub fn header_value(&self, key: &str) -> String {
        match &self.scheme {
            Some(scheme) => format!("{scheme} {key}"),
            None => key.to_owned(),
        }
    }
}

/// The shared-key settings of every workload in `policy` that uses the component.
pub fn settings_in(policy: &Policy) -> Vec<KeySettings> {
    let mut out = Vec::new();
    for workload in &policy.file.workloads {
        for entry in workload.inbound.iter().filter(|e| e.component == COMPONENT) {
            let text = |k: &str| entry.config.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            out.push(KeySettings {
                workload: workload.name.clone(),
                secret: text("secret").unwrap_or_else(|| default_secret(&workload.name)),
                header: text("header").unwrap_or_else(|| DEFAULT_HEADER.into()).to_ascii_lowercase(),
                scheme: text("scheme").filter(|s| !s.is_empty()),
                auto: text("key").as_deref() == Some("auto"),
            });
        }
    }
    out
}

/// The settings of `workload` in `policy`, or an error that says what is wrong.
pub fn settings_for(policy: Option<&Policy>, workload: &str) -> anyhow::Result<KeySettings> {
    let Some(policy) = policy else {
        return Ok(KeySettings::default_for(workload));
    };
    settings_in(policy)
        .into_iter()
        .find(|s| s.workload == workload)
        .ok_or_else(|| anyhow::anyhow!("workload `{workload}` in {} has no `{COMPONENT}` authenticator", policy.path.display()))
}

/// Creates the key if it does not exist. Returns whether it created one.
pub fn ensure(store: &SecretStore, settings: &KeySettings) -> Result<bool, SecretStoreError> {
    store.update(|entries| {
        if entries.contains_key(&settings.secret) {
            return false;
        }
        entries.insert(settings.secret.clone(), generate());
        true
    })
}

/// Creates keys for every `key = "auto"` workload that has none yet.
pub fn ensure_auto(store: &SecretStore, policy: &Policy) -> Result<(), SecretStoreError> {
    for settings in settings_in(policy).into_iter().filter(|s| s.auto) {
        if ensure(store, &settings)? {
            tracing::info!(workload = %settings.workload, secret = %settings.secret,
                "created a shared key (show it with `portcullis keys show {}`)", settings.workload);
        }
    }
    Ok(())
}

/// Replaces the key, keeping the old one as the previous key from now on.
pub fn rotate(store: &SecretStore, settings: &KeySettings, now_unix: u64) -> anyhow::Result<()> {
    let mut missing = false;
    store.update(|entries| {
        let Some(old) = entries.get(&settings.secret).map(|k| k.expose_secret().to_owned()) else {
            missing = true;
            return false;
        };
        entries.insert(previous_secret(&settings.secret), SecretString::from(previous_value(now_unix, &old)));
        entries.insert(settings.secret.clone(), generate());
        true
    })?;
    if missing {
        anyhow::bail!("workload `{}` has no key to rotate; create one with `portcullis keys create {}`", settings.workload, settings.workload);
    }
    Ok(())
}

/// Deletes the key and any previous key. Returns whether there was a key.
pub fn delete(store: &SecretStore, settings: &KeySettings) -> Result<bool, SecretStoreError> {
    store.update(|entries| {
        let had = entries.remove(&settings.secret).is_some();
        let had_previous = entries.remove(&previous_secret(&settings.secret)).is_some();
        had || had_previous
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_32_random_bytes_in_base64url() {
        let a = generate();
        let b = generate();
        assert_eq!(a.expose_secret().len(), 43);
        assert!(a.expose_secret().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn rotate_keeps_the_previous_key_with_its_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path(), Some(SecretString::from("pw".to_owned())));
        let settings = KeySettings::default_for("w");
        assert!(rotate(&store, &settings, 1).is_err(), "nothing to rotate");
        assert!(ensure(&store, &settings).unwrap());
        assert!(!ensure(&store, &settings).unwrap(), "an existing key is kept");
        let old = store.get(&settings.secret).unwrap().unwrap().expose_secret().to_owned();
        rotate(&store, &settings, 1234).unwrap();
        let new = store.get(&settings.secret).unwrap().unwrap().expose_secret().to_owned();
        assert_ne!(old, new);
        let previous = store.get("workload:w:shared-key:previous").unwrap().unwrap();
        assert_eq!(previous.expose_secret(), &format!("1234 {old}"));
        assert!(delete(&store, &settings).unwrap());
        assert!(store.list().unwrap().is_empty());
    }
}
