//! Where a grant's signing keys come from, and the checks on each.
//!
//! `signing_keys = ["file:PATH", "secret:NAME"]`, in signing order. A file
//! (relative to the policy file) is read at every policy load, and refused if
//! group- or world-readable; a secret holds the PEM text and is read when the
//! capabilities are built. `ephemeral_keys = true`, with no listed key, signs
//! with one P-256 key made per process and chain entry: kept across reloads
//! ([`EphemeralKeys`] lives in the process-wide services), lost with the process.

use super::GrantProblem;
use super::secrets::Pattern;
use crate::secrets::{ExposeSecret, SecretStore};
use crate::signing::key::{CONVERT_HINT, KeyError, SigningKey};
use crate::signing::key_ring::KeyRing;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The policy key the sources are listed under (for located errors).
const FIELD: &str = "signing_keys";

/// A key file larger than this is not a PEM private key (an RSA 8192 PKCS#8 is ~6.5 KiB).
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// One listed key.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `file:PATH`, not read yet (relative to the policy file until
    /// [`SigningGrant::load_files`] resolves and reads it).
    File(PathBuf),
    /// A file read at policy load.
    Loaded { path: PathBuf, key: Arc<SigningKey> },
    /// `secret:NAME`: the PEM text in the secret store.
    Secret(String),
}

/// A chain entry's signing grant, parsed from the policy.
#[derive(Debug, Clone, Default)]
pub struct SigningGrant {
    /// In signing order: the first signs, every one is published.
    pub sources: Vec<KeySource>,
    /// `ephemeral_keys = true` (only without `sources`).
    pub ephemeral: bool,
}

fn problem(index: usize, message: String, hint: Option<String>) -> GrantProblem {
    GrantProblem { field: FIELD, index, message, hint, warning: false }
}

impl SigningGrant {
    /// Parses `signing_keys` and `ephemeral_keys`. `reachable` are the secret
    /// names the same entry may read or write through the `secrets` import: a
    /// key the component could read (or replace with one it knows) is refused.
    /// `None` when something is wrong (each problem is in `problems`).
    pub fn parse(keys: &[String], ephemeral: bool, reachable: &[Pattern], problems: &mut Vec<GrantProblem>) -> Option<SigningGrant> {
        let before = problems.len();
        if ephemeral && !keys.is_empty() {
            problems.push(problem(
                0,
                "`signing_keys` and `ephemeral_keys = true` are both set".into(),
                Some("list the keys, or set `ephemeral_keys = true` alone for a key that lives as long as the process".into()),
            ));
        }
        let mut sources = Vec::with_capacity(keys.len());
        for (index, text) in keys.iter().enumerate() {
            if let Some(path) = text.strip_prefix("file:").filter(|p| !p.is_empty()) {
                sources.push(KeySource::File(PathBuf::from(path)));
            } else if let Some(name) = text.strip_prefix("secret:").filter(|n| !n.is_empty()) {
                if reachable.iter().any(|p| matches(p, name)) {
                    problems.push(problem(
                        index,
                        format!("the secret `{name}` is a signing key, and `secrets` or `secrets_write` lets the component read or replace it"),
                        Some("keep signing keys under names the `secrets` and `secrets_write` patterns do not match (e.g. `signing:...`)".into()),
                    ));
                }
                sources.push(KeySource::Secret(name.to_owned()));
            } else {
                problems.push(problem(index, format!("{text:?} is not a key source"), Some("write `file:PATH` or `secret:NAME`".into())));
            }
        }
        (problems.len() == before).then_some(SigningGrant { sources, ephemeral })
    }

    /// Whether the grant gives any key (listed or ephemeral).
    pub fn granted(&self) -> bool {
        self.ephemeral || !self.sources.is_empty()
    }

    /// Reads the listed files, each resolved against `dir` (the policy
    /// file's) when relative; the problems are located at their index.
    pub fn load_files(&mut self, dir: &Path) -> Vec<GrantProblem> {
        let mut problems = Vec::new();
        for (index, source) in self.sources.iter_mut().enumerate() {
            let KeySource::File(path) = source else { continue };
            let path = if path.is_relative() { dir.join(&*path) } else { path.clone() };
            match read_key_file(&path) {
                Ok(key) => *source = KeySource::Loaded { path, key: Arc::new(key) },
                Err((message, hint)) => problems.push(problem(index, message, Some(hint))),
            }
        }
        problems
    }

    /// The key ring this grant gives `workload`'s `component` (`None`: no
    /// signing granted). Files not read at load are read now (as written).
    pub fn key_ring(&self, secrets: &SecretStore, ephemeral: &EphemeralKeys, workload: &str, component: &str) -> Result<Option<Arc<KeyRing>>, GrantProblem> {
        if self.ephemeral {
            let key = ephemeral.key(workload, component).map_err(|e| problem(0, e.0, None))?;
            tracing::warn!(
                workload,
                component,
                kid = key.kid(),
                "signing with an ephemeral key (`ephemeral_keys = true`): the tokens it signs stop verifying when this process exits"
            );
            return Ok(Some(Arc::new(KeyRing::new(vec![key]).map_err(|_| problem(0, "no ephemeral key".into(), None))?)));
        }
        if self.sources.is_empty() {
            return Ok(None);
        }
        let mut keys = Vec::with_capacity(self.sources.len());
        for (index, source) in self.sources.iter().enumerate() {
            let key = match source {
                KeySource::Loaded { key, .. } => key.clone(),
                KeySource::File(path) => Arc::new(read_key_file(path).map_err(|(message, hint)| problem(index, message, Some(hint)))?),
                KeySource::Secret(name) => Arc::new(read_key_secret(secrets, name).map_err(|(message, hint)| problem(index, message, Some(hint)))?),
            };
            keys.push(key);
        }
        let ring = KeyRing::new(keys).map_err(|twice| {
            let index = twice.unwrap_or(0);
            problem(index, "this key is listed twice (the same public key as an earlier entry)".into(), Some("list each key once".into()))
        })?;
        Ok(Some(Arc::new(ring)))
    }
}

/// `Pattern::matches`, which is private to the secrets capability.
fn matches(pattern: &Pattern, name: &str) -> bool {
    match pattern {
        Pattern::Exact(n) => n == name,
        Pattern::Prefix(p) => name.starts_with(p.as_str()),
    }
}

/// A problem's message and hint; neither contains key material.
type LoadError = (String, String);

/// Reads a PEM key file that only its owner can read.
fn read_key_file(path: &Path) -> Result<SigningKey, LoadError> {
    let shown = path.display();
    let mut file =
        std::fs::File::open(path).map_err(|e| (format!("cannot read the key file {shown}: {e}"), "the path is relative to the policy file".into()))?;
    // The open file's metadata: the file checked is the file read.
    let metadata = file.metadata().map_err(|e| (format!("cannot read the key file {shown}: {e}"), "the path is relative to the policy file".into()))?;
    if !metadata.is_file() {
        return Err((format!("{shown} is not a file"), "name a PEM private key file".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err((
                format!("the key file {shown} is readable by other users than its owner (mode {mode:04o})"),
                format!("`chmod 600 {shown}`; a private key should be readable by its owner only"),
            ));
        }
    }
    // Windows: the DACL is the mode; any read right outside the user, SYSTEM and
    // Administrators (Users, Everyone, Authenticated Users...) is `mode & 0o077`.
    #[cfg(windows)]
    {
        let readable_by_others = crate::platform::windows::current_user()
            .and_then(|user| crate::platform::windows::security(&file).map(|security| security.others_rights(user) & crate::platform::acl::READ != 0))
            .map_err(|e| (format!("cannot read the permissions of the key file {shown}: {e}"), "the path is relative to the policy file".into()))?;
        if readable_by_others {
            return Err((
                format!("the key file {shown} is readable by other users than its owner (its ACL grants read access to others)"),
                format!("`icacls {shown} /inheritance:r /grant:r %USERNAME%:F`; a private key should be readable by its owner only"),
            ));
        }
    }
    let mut pem = Vec::new();
    file.by_ref()
        .take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(|e| (format!("cannot read the key file {shown}: {e}"), "the path is relative to the policy file".into()))?;
    if pem.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err((format!("{shown} is larger than a PEM private key"), CONVERT_HINT.into()));
    }
    SigningKey::from_pem(&pem).map_err(|KeyError(why)| (format!("{shown}: {why}"), CONVERT_HINT.into()))
}

/// Reads a PEM key from the secret store.
fn read_key_secret(secrets: &SecretStore, name: &str) -> Result<SigningKey, LoadError> {
    match secrets.get(name) {
        Ok(Some(pem)) => {
            SigningKey::from_pem(pem.expose_secret().as_bytes()).map_err(|KeyError(why)| (format!("the secret `{name}`: {why}"), CONVERT_HINT.into()))
        }
        Ok(None) => Err((format!("the secret store has no `{name}`"), format!("`portcullis secrets set {name} < KEY.pem`"))),
        Err(e) => Err((format!("the secret store is unavailable: {e}"), "see `portcullis secrets list`".into())),
    }
}

/// The ephemeral keys of this process, one per workload and component: a
/// reload keeps them, so the tokens they signed keep verifying until exit.
#[derive(Default)]
pub struct EphemeralKeys {
    keys: Mutex<HashMap<(String, String), Arc<SigningKey>>>,
}

impl EphemeralKeys {
    /// The key of `workload`'s `component`, made on first use.
    pub fn key(&self, workload: &str, component: &str) -> Result<Arc<SigningKey>, KeyError> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = keys.get(&(workload.to_owned(), component.to_owned())) {
            return Ok(key.clone());
        }
        let key = Arc::new(SigningKey::generate()?);
        keys.insert((workload.to_owned(), component.to_owned()), key.clone());
        Ok(key)
    }
}

#[cfg(test)]
#[path = "signing_grant_tests.rs"]
mod tests;
