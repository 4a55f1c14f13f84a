//! Renewing a session's token once, whichever replica and request find it due.
//!
//! The refresh token is spent by the provider on use (rotation): two
//! refreshes with the same one kill the session at most providers (reuse
//! detection, ToolHive #4122, #6194). So one request renews, under a lease in
//! the shared store (`renewing:{sid}:{provider}`, put-if-absent with a TTL:
//! a holder that dies frees it when the lease ends), and the others wait for
//! the record to change. The holder reads the record again under the lease
//! (another may have renewed between) and replaces it by a compare-and-swap
//! on the bytes it read: the new tokens are written before the old ones are
//! gone, and a failed refresh leaves them as they were.

use portcullis_plugin::events::{self, Event};
use portcullis_plugin::log;
use provider_tokens::exchange::{self, RefreshError};
use provider_tokens::tokens::{self, StoredTokens};
use serde_json::{Map, Value};
use std::rc::Rc;
use std::time::Duration;

/// A renewal's lease: longer than a refresh may take (the token endpoint's
/// timeout is 5 s), short enough that a crashed holder delays little.
const LEASE_SECONDS: u32 = 10;
/// How often a waiting request looks at the record.
const POLL: Duration = Duration::from_millis(25);

/// How a renewal ended.
#[derive(Debug)]
pub enum Outcome {
    Renewed(Rc<StoredTokens>),
    Failed(RefreshError),
    /// The record cannot be renewed (no refresh token, or stored before
    /// renewals were kept): the user logs in again when it expires.
    Cannot(String),
}

/// What renewing touches: the store, the provider, the clock.
pub trait Backend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn put_new(&self, key: &str, value: &[u8], ttl: u32) -> Result<bool, String>;
    fn delete(&self, key: &str) -> Result<(), String>;
    fn open(&self, sealed: &[u8]) -> Option<Rc<StoredTokens>>;
    fn replace(&self, previous: &[u8], next: &StoredTokens, now: u64) -> Result<bool, String>;
    fn refresh(&self, renewal: &tokens::Renewal, refresh_token: &str) -> Result<Map<String, Value>, RefreshError>;
    fn now_ms(&self) -> u64;
    fn sleep(&self, duration: Duration);
}

/// A record as stored (sealed) and opened.
pub type Loaded = (Vec<u8>, Rc<StoredTokens>);

/// The keys are made when used: a request whose token is fresh needs only the record's.
pub struct Renewer<'a, B: Backend = Gateway<'a>> {
    backend: B,
    session_id: &'a str,
    provider: &'a str,
    wait_ms: u64,
}

impl<'a> Renewer<'a> {
    /// `subject`: whose session it is, for the audit lines.
    pub fn new(session_id: &'a str, subject: &'a str, provider: &'a str, token_key: [u8; 32], wait_ms: u64) -> Renewer<'a> {
        Renewer::with(Gateway { session_id, subject, provider, token_key }, session_id, provider, wait_ms)
    }
}

impl<'a, B: Backend> Renewer<'a, B> {
    pub fn with(backend: B, session_id: &'a str, provider: &'a str, wait_ms: u64) -> Renewer<'a, B> {
        Renewer { backend, session_id, provider, wait_ms }
    }

    fn record(&self) -> String {
        tokens::record_key(self.session_id, self.provider)
    }

    /// The session's info (`portcullis_contract::sessions`).
    fn info(&self) -> String {
        portcullis_contract::sessions::info_key(self.session_id)
    }

    fn lease(&self) -> String {
        format!("renewing:{}:{}", self.session_id, self.provider)
    }

    /// The record as stored (sealed) and opened; `Ok(None)` when there is none.
    pub fn load(&self) -> Result<Option<Loaded>, String> {
        let Some(sealed) = self.backend.get(&self.record())? else { return Ok(None) };
        match self.backend.open(&sealed) {
            Some(tokens) => Ok(Some((sealed, tokens))),
            None => Err("the stored tokens do not open with the token key (was the key changed?)".into()),
        }
    }

    /// Renews `stored`, read as `sealed`: by this request under the lease,
    /// or by whoever holds it, whose result this request waits for.
    pub fn renew(&self, sealed: &[u8], stored: &StoredTokens) -> Outcome {
        let (Some(renewal), Some(_)) = (&stored.renewal, &stored.refresh_token) else {
            return Outcome::Cannot("the provider gave no refresh token for this session".into());
        };
        let give_up = self.backend.now_ms().saturating_add(self.wait_ms);
        let lease = self.lease();
        loop {
            match self.backend.put_new(&lease, b"1", LEASE_SECONDS) {
                Ok(true) => return self.renew_holding(sealed, renewal, &lease),
                Ok(false) => {}
                Err(why) => return Outcome::Failed(RefreshError::Failed(format!("the renewal's lease could not be taken: {why}"))),
            }
            // Another request renews: wait for the record to change.
            self.backend.sleep(POLL);
            match self.load() {
                Ok(Some((now_sealed, tokens))) if now_sealed != sealed => return Outcome::Renewed(tokens),
                Ok(Some(_)) => {}
                Ok(None) => return Outcome::Failed(RefreshError::Refused("the session's tokens were ended while waiting for their renewal".into())),
                Err(why) => return Outcome::Failed(RefreshError::Failed(why)),
            }
            if self.backend.now_ms() >= give_up {
                return Outcome::Failed(RefreshError::Failed(format!("another renewal of this session's token did not finish within {} ms", self.wait_ms)));
            }
        }
    }

    /// Under the lease: read again, refresh, swap, release.
    fn renew_holding(&self, sealed: &[u8], renewal: &tokens::Renewal, lease: &str) -> Outcome {
        let outcome = match self.load() {
            // Renewed by another since this request read it: nothing to do.
            Ok(Some((current, tokens))) if current != sealed => Outcome::Renewed(tokens),
            Ok(Some((current, tokens))) => match tokens.refresh_token.as_deref() {
                Some(refresh_token) => match self.backend.refresh(renewal, refresh_token) {
                    Ok(response) => {
                        let now = self.backend.now_ms() / 1000;
                        let next = tokens.renewed(response, now);
                        match self.backend.replace(&current, &next, now) {
                            Ok(true) => Outcome::Renewed(Rc::new(next)),
                            Ok(false) => match self.load() {
                                Ok(Some((_, stored))) => Outcome::Renewed(stored),
                                Ok(None) => Outcome::Failed(RefreshError::Refused("the session's tokens were ended during their renewal".into())),
                                Err(why) => Outcome::Failed(RefreshError::Failed(why)),
                            },
                            // The provider has rotated; the new tokens are lost. Say so plainly.
                            Err(why) => Outcome::Failed(RefreshError::Failed(format!("renewed, but the new tokens could not be stored: {why}"))),
                        }
                    }
                    Err(why) => Outcome::Failed(why),
                },
                None => Outcome::Cannot("the provider gave no refresh token for this session".into()),
            },
            Ok(None) => Outcome::Failed(RefreshError::Refused("the session's tokens were ended".into())),
            Err(why) => Outcome::Failed(RefreshError::Failed(why)),
        };
        // A lease not released ends with its TTL; the waiting requests then take it.
        if let Err(why) = self.backend.delete(lease) {
            log::warn(&format!("a renewal's lease could not be released (it ends in {LEASE_SECONDS} s): {why}"));
        }
        outcome
    }

    /// Ends the session's tokens from this provider, and the session itself
    /// when this is the provider its user logged in with (the first of its
    /// info's `providers`): the authorization server then refreshes nothing
    /// more for it, and the client logs in again at once.
    pub fn forget(&self) {
        if let Err(why) = self.backend.delete(&self.record()) {
            log::warn(&format!("the session's tokens could not be removed (they expire with the session): {why}"));
        }
        let info = self.info();
        let login_provider = match self.backend.get(&info) {
            Ok(Some(bytes)) => providers(&bytes).into_iter().next(),
            _ => None,
        };
        if login_provider.as_deref() == Some(self.provider)
            && let Err(why) = self.backend.delete(&info)
        {
            log::warn(&format!("the session could not be ended (it expires): {why}"));
        }
    }

    /// What the session's info says of this provider, when its record is
    /// missing: `None` when the session has ended, else whether its login
    /// went through the provider (if not, the client can ask for it).
    pub fn logged_in_there(&self) -> Result<Option<bool>, String> {
        Ok(self.backend.get(&self.info())?.map(|bytes| providers(&bytes).iter().any(|p| p == self.provider)))
    }
}

/// The info's `providers`, the login's own first (`portcullis_contract::sessions`).
fn providers(info: &[u8]) -> Vec<String> {
    let info: Value = serde_json::from_slice(info).unwrap_or_default();
    info["providers"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

/// The gateway's store, the provider over the `http` import, the real clock.
pub struct Gateway<'a> {
    session_id: &'a str,
    subject: &'a str,
    provider: &'a str,
    token_key: [u8; 32],
}

impl Backend for Gateway<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        portcullis_plugin::store::get(key).map_err(|e| e.to_string())
    }

    fn put_new(&self, key: &str, value: &[u8], ttl: u32) -> Result<bool, String> {
        portcullis_plugin::store::put_new(key, value, ttl).map_err(|e| e.to_string())
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        portcullis_plugin::store::delete(key).map_err(|e| e.to_string())
    }

    fn open(&self, sealed: &[u8]) -> Option<Rc<StoredTokens>> {
        opened::get_or_open(self.session_id, sealed, || tokens::open_record(sealed, self.session_id, self.provider, &self.token_key))
    }

    fn replace(&self, previous: &[u8], next: &StoredTokens, now: u64) -> Result<bool, String> {
        tokens::replace(self.session_id, self.provider, &self.token_key, previous, next, now)
    }

    fn refresh(&self, renewal: &tokens::Renewal, refresh_token: &str) -> Result<Map<String, Value>, RefreshError> {
        let secret = match &renewal.client_secret_secret {
            Some(name) => {
                Some(portcullis_plugin::secrets::get(name).map_err(|e| RefreshError::Failed(format!("the client secret {name:?} cannot be read: {e}")))?)
            }
            None => None,
        };
        let client = exchange::Client { client_id: &renewal.client_id, secret: secret.as_deref() };
        let refreshed = exchange::refresh(&renewal.token_endpoint, &client, refresh_token).map_err(|e| match e {
            RefreshError::Refused(why) => RefreshError::Refused(format!("the token endpoint {why}")),
            RefreshError::Failed(why) => RefreshError::Failed(format!("the token endpoint {why}")),
        });
        // The audit line and the metric of each refresh that reached the provider.
        let (subject, provider) = (self.subject, self.provider);
        match &refreshed {
            Ok(_) => {
                events::report(Event::TokenRenewed);
                log::info(&format!("audit: renewed the upstream token of `{subject}` from `{provider}`"));
            }
            Err(why) => {
                events::report(Event::TokenRenewalFailed);
                log::warn(&format!("audit: the upstream token of `{subject}` from `{provider}` could not be renewed: {why}"));
            }
        }
        refreshed
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// The record this instance opened last for each session, with its sealed
/// bytes: a request whose record has not changed since (the same bytes: the
/// store is read every time, so a renewal or a revocation is seen at once)
/// skips the decryption and the parse, most of the injector's cost.
/// Bounded: cleared when full.
mod opened {
    use provider_tokens::tokens::StoredTokens;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    const MAX: usize = 1024;

    thread_local! {
        static OPENED: RefCell<HashMap<String, super::Loaded>> = RefCell::new(HashMap::new());
    }

    pub fn get_or_open(session_id: &str, sealed: &[u8], open: impl FnOnce() -> Option<StoredTokens>) -> Option<Rc<StoredTokens>> {
        let known = OPENED.with(|opened| opened.borrow().get(session_id).filter(|(bytes, _)| same(bytes, sealed)).map(|(_, tokens)| tokens.clone()));
        if known.is_some() {
            return known;
        }
        let tokens = Rc::new(open()?);
        OPENED.with(|opened| {
            let mut opened = opened.borrow_mut();
            if opened.len() >= MAX {
                opened.clear();
            }
            opened.insert(session_id.to_owned(), (sealed.to_vec(), tokens.clone()));
        });
        Some(tokens)
    }

    /// `a == b`, eight bytes at a time: `==` on slices is a byte loop in
    /// WebAssembly (`memcmp` has no bulk instruction), and a sealed record is
    /// a few hundred bytes compared on every request.
    fn same(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
        let tails_equal = a_words.remainder() == b_words.remainder();
        tails_equal
            && a_words.zip(b_words).all(|(x, y)| u64::from_ne_bytes(x.try_into().unwrap_or_default()) == u64::from_ne_bytes(y.try_into().unwrap_or_default()))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn same_bytes() {
            let record: Vec<u8> = (0..=255).chain(0..=100).collect();
            assert!(super::same(&record, &record.clone()));
            for at in [0, 7, 8, 300, record.len() - 1] {
                let mut other = record.clone();
                other[at] ^= 1;
                assert!(!super::same(&record, &other), "{at}");
            }
            assert!(!super::same(&record, &record[..record.len() - 1]));
            assert!(super::same(b"", b"") && super::same(b"abc", b"abc") && !super::same(b"abc", b"abd"));
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// Unix seconds.
pub fn now() -> u64 {
    now_ms() / 1000
}

#[cfg(test)]
mod tests;
