//! The `secrets` import: named secrets, only those the policy grants.

use super::{Capabilities, GrantProblem, HostState, Mode};
use crate::runtime::bindings::host::portcullis::auth::secrets::{Host, SecretError};
use crate::secrets::{ExposeSecret, SecretStore, SecretStoreError, SecretString};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A granted name, or a prefix when the pattern ends in `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    /// A name, or a prefix followed by one `*` at the end (`*` alone grants every name).
    pub fn parse(s: &str) -> Result<Self, String> {
        let pattern = match s.strip_suffix('*') {
            Some(prefix) => Pattern::Prefix(prefix.to_owned()),
            None => Pattern::Exact(s.to_owned()),
        };
        match &pattern {
            Pattern::Exact(name) | Pattern::Prefix(name) if name.contains('*') => Err(format!("bad secret pattern {s:?}")),
            Pattern::Exact(name) if name.is_empty() => Err(format!("bad secret pattern {s:?}")),
            _ => Ok(pattern),
        }
    }

    /// Parses the patterns of `grants.<field>`; `None` when one is bad (each
    /// problem is in `problems`, with a warning for a `*` that grants every secret).
    pub(super) fn parse_all(field: &'static str, patterns: &[String], problems: &mut Vec<GrantProblem>) -> Option<Vec<Pattern>> {
        let mut parsed = Vec::with_capacity(patterns.len());
        let mut ok = true;
        for (index, text) in patterns.iter().enumerate() {
            let problem = |message: String, hint: &str, warning| GrantProblem { field, index, message, hint: Some(hint.to_owned()), warning };
            match Pattern::parse(text) {
                Ok(pattern) => {
                    if pattern == Pattern::Prefix(String::new()) {
                        problems.push(problem("`*` grants every secret in the store".into(), "grant only the names the component needs", true));
                    }
                    parsed.push(pattern);
                }
                Err(message) => {
                    problems.push(problem(message, "a name, or a prefix followed by one `*` at the end", false));
                    ok = false;
                }
            }
        }
        ok.then_some(parsed)
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Exact(n) => n == name,
            Pattern::Prefix(p) => name.starts_with(p.as_str()),
        }
    }
}

pub struct SecretGrants {
    read: Vec<Pattern>,
    write: Vec<Pattern>,
    store: Arc<SecretStore>,
    mode: Mode,
    /// Values the host gives this entry itself, under reserved names (a
    /// registry token's static bearer token): served without a grant.
    provided: Vec<(String, SecretString)>,
    /// Names already reported as refused: a refusal is a policy fact, worth
    /// one warning, not one per request (or per new instance).
    refused: Mutex<HashSet<String>>,
}

/// Distinct refused names remembered per chain entry (later ones log at debug level).
const MAX_REFUSED_NAMES: usize = 64;

impl SecretGrants {
    pub fn new(read: Vec<Pattern>, write: Vec<Pattern>, store: Arc<SecretStore>, mode: Mode) -> Self {
        SecretGrants { read, write, store, mode, provided: Vec::new(), refused: Mutex::new(HashSet::new()) }
    }

    /// Serves `value` under `name` to this entry (see `provided`).
    pub fn provide(&mut self, name: &str, value: SecretString) {
        self.provided.push((name.to_owned(), value));
    }

    /// Whether a refusal of `name` is news (and remembers it).
    fn first_refusal(&self, name: &str) -> bool {
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        refused.len() < MAX_REFUSED_NAMES && refused.insert(name.to_owned())
    }

    fn may_read(&self, name: &str) -> bool {
        self.read.iter().any(|p| p.matches(name))
    }

    fn may_write(&self, name: &str) -> bool {
        self.write.iter().any(|p| p.matches(name))
    }
}

impl Host for HostState {
    fn get(&mut self, name: String) -> Result<String, SecretError> {
        let caps = &self.caps;
        if let Some(trial) = &caps.trial {
            return trial.secret_get(&name);
        }
        if let Some((_, value)) = caps.secrets.provided.iter().find(|(provided, _)| *provided == name) {
            return Ok(value.expose_secret().to_owned());
        }
        // The host's own names are never looked up in the store: absent here
        // means the host has no value for this entry, which is not a refusal.
        if name.starts_with(HOST_PROVIDED_PREFIX) {
            return Err(SecretError::NotFound);
        }
        if !caps.secrets.may_read(&name) {
            // `?name`: the name comes from the component; Debug escapes control characters.
            if caps.secrets.first_refusal(&name) {
                tracing::warn!(secret = ?name,
                    "refused a secret read: the policy does not grant this name to this component (reported once)");
            } else {
                tracing::debug!(secret = ?name, "refused a secret read");
            }
            return Err(SecretError::NotGranted);
        }
        // A call that holds a lock reads the file, not the copy in memory: its
        // read-modify-write (a renewal's compare-and-set) must see what another
        // process wrote a moment ago. It costs a `stat`.
        if !self.locks.is_empty() {
            caps.secrets.store.recheck();
        }
        match caps.secrets.store.get(&name) {
            Ok(Some(value)) => Ok(value.expose_secret().to_owned()),
            Ok(None) => Err(SecretError::NotFound),
            Err(error) => {
                tracing::error!(secret = ?name,
                    %error, "the secret store is unavailable");
                Err(SecretError::Unavailable)
            }
        }
    }

    async fn set(&mut self, name: String, value: String) -> Result<(), SecretError> {
        if let Some(trial) = &self.caps.trial {
            return trial.secret_set(&name, value);
        }
        self.may_write(&name, "write")?;
        let value = SecretString::from(value);
        write_off_worker(self.caps.clone(), self.deadline, name, move |store, name, until| store.set_within(name, value, until).map(|()| true)).await
    }

    async fn delete(&mut self, name: String) -> Result<(), SecretError> {
        if let Some(trial) = &self.caps.trial {
            return trial.secret_delete(&name);
        }
        self.may_write(&name, "delete")?;
        write_off_worker(self.caps.clone(), self.deadline, name, |store, name, until| store.delete_within(name, until)).await
    }

    async fn lock(&mut self, name: String, timeout_ms: u32) -> Result<(), SecretError> {
        let caps = self.caps.clone();
        if let Some(trial) = &caps.trial {
            return trial.secret_lock(&name);
        }
        self.may_write(&name, "lock")?;
        if self.locks.iter().any(|(held, _)| *held == name) {
            return Ok(());
        }
        // Polled rather than a blocking `flock`: waiting must not hold a
        // worker thread, and it must end with the call's deadline.
        let mut until = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        if let Some(deadline) = self.deadline {
            until = until.min(deadline);
        }
        loop {
            match caps.secrets.store.try_lock(&name) {
                Ok(Some(lock)) => {
                    self.locks.push((name, lock));
                    return Ok(());
                }
                Ok(None) if Instant::now() < until => tokio::time::sleep(LOCK_POLL).await,
                Ok(None) => {
                    tracing::warn!(lock = ?name,
                        "a secret lock stayed taken for the whole wait");
                    return Err(SecretError::Unavailable);
                }
                Err(error) => {
                    tracing::error!(lock = ?name,
                        %error, "could not take a secret lock");
                    return Err(SecretError::Unavailable);
                }
            }
        }
    }

    fn unlock(&mut self, name: String) {
        self.locks.retain(|(held, _)| *held != name);
    }
}

/// Secret names the host provides itself (e.g. `portcullis:static-token`).
pub const HOST_PROVIDED_PREFIX: &str = "portcullis:";

/// How often a taken lock is tried again.
const LOCK_POLL: Duration = Duration::from_millis(5);

/// How long a write may wait for the store's writers' lock in a call without
/// a deadline (a login's calls have one; this is a bound, not the usual case).
const WRITE_WAIT: Duration = Duration::from_secs(10);

/// Runs a write of the store on a blocking thread: it may derive a key
/// (Argon2id, tens of milliseconds), ask the OS keychain, and wait for the
/// writers' lock, which another process may hold; none of that may hold a
/// gateway worker. The lock is waited for until the call's `deadline` at most,
/// and a call whose deadline passes is answered at its deadline while the
/// write, once under way, completes or fails on its own thread.
async fn write_off_worker(
    caps: Arc<Capabilities>,
    deadline: Option<Instant>,
    name: String,
    write: impl FnOnce(&SecretStore, &str, Instant) -> Result<bool, SecretStoreError> + Send + 'static,
) -> Result<(), SecretError> {
    let until = deadline.unwrap_or_else(|| Instant::now() + WRITE_WAIT);
    let store = caps.secrets.store.clone();
    let owned = name.clone();
    let outcome = tokio::task::spawn_blocking(move || write(&store, &owned, until)).await;
    let error = match outcome {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(error)) => error.to_string(),
        Err(join) => format!("the write's thread failed: {join}"),
    };
    tracing::error!(secret = ?name,
        %error, "could not write to the secret store");
    Err(SecretError::Unavailable)
}

impl HostState {
    /// Refuses (and logs) a write, delete or lock of `name` that the policy does
    /// not grant in `grants.secrets_write`, or that `portcullis check` would make.
    fn may_write(&self, name: &str, what: &str) -> Result<(), SecretError> {
        let caps = &self.caps;
        if !caps.secrets.may_write(name) || name.starts_with(HOST_PROVIDED_PREFIX) {
            tracing::warn!(secret = ?name,
                "refused a secret {what}: the policy does not grant this name (grants.secrets_write)");
            return Err(SecretError::NotGranted);
        }
        if caps.secrets.mode == Mode::Check {
            tracing::warn!(secret = ?name,
                "refused a secret {what}: not available during `portcullis check`, which changes nothing");
            return Err(SecretError::Unavailable);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    #[test]
    fn patterns() {
        let parse = |s: &str| Pattern::parse(s).unwrap();
        assert!(parse("a:b").matches("a:b"));
        assert!(!parse("a:b").matches("a:bc"));
        assert!(parse("a:*").matches("a:bc"));
        assert!(!parse("a:*").matches("b:a"));
        assert!(parse("*").matches("anything"));
        for bad in ["", "a*b", "**", "*a*", "a**"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
