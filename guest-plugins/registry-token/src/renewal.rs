//! The OAuth access token for each request, renewed with the refresh token
//! when it is about to expire.
//!
//! The store, not an instance's memory, says whether there is a login: every
//! request reads the secret again, so a `portcullis logout` or a new `login`
//! (another process, which changes only the store) is seen at once. The
//! gateway serves that read from memory and compares it with the file at most
//! every 250 ms, so it costs no file access. While the stored token is good for
//! more than 30 s, a request costs nothing else. Past that, the instance takes the
//! lock named `token_key` (shared by every instance and every gateway process
//! on the same secret store) and reads the store again: if another instance
//! renewed meanwhile, it takes that token. Only the first one to get the lock
//! finds the stored token stale and renews it, so a burst of requests at expiry
//! makes one call to the token endpoint, and a rotated refresh token is never
//! spent twice. Nothing renews without the lock.
//!
//! The new tokens are stored before they are used, and only if the store still
//! holds the refresh token the renewal spent (a compare-and-set under the lock:
//! a `logout` or a `login` that could not wait for the lock may have changed it
//! meanwhile, and a renewal must not write a removed login back or overwrite a
//! new one). Only `invalid_grant` (OAuth's code for a dead refresh token, in a
//! 400 or 401) ends the login: the tokens are removed, and a person must log in
//! again. Anything else (another 4xx, such as a WAF's 403 or a CDN's 404, a
//! 5xx, a non-token answer, no answer) says nothing about the refresh token: it
//! is retried after a shared backoff (see `backoff`), and meanwhile the stored
//! token is served for as long as it has not expired.

use crate::backoff::{self, Backoff};
use crate::config::{Config, OAuth};
use crate::text::printable;
use crate::token::{Exchange, StoredToken};
use crate::{discovery, endpoint, now_ms, refusal, store};
use portcullis_plugin::secrets::{self, SecretError};
use portcullis_plugin::{Deny, log};
use std::cell::RefCell;
use std::time::Duration;

/// How long to wait for the lock. A renewal holds it for at most one token
/// endpoint call (3 s) plus discovery, so this covers the usual case; past it,
/// the request is answered with what the store has rather than kept waiting.
pub const LOCK_WAIT: Duration = Duration::from_secs(3);

/// The token this instance uses.
#[derive(Default)]
pub struct Tokens {
    current: RefCell<Option<StoredToken>>,
}

impl Tokens {
    /// Makes `token` the one this instance uses; returns its `Authorization` value.
    pub fn adopt(&self, token: StoredToken) -> String {
        let authorization = token.authorization();
        *self.current.borrow_mut() = Some(token);
        authorization
    }

    pub fn forget(&self) {
        self.current.borrow_mut().take();
    }

    /// The `Authorization` value for a request, or the refusal to send instead.
    pub fn authorization(&self, config: &Config, oauth: &OAuth) -> Result<String, Deny> {
        let key = &config.token_key;
        let now = now_ms();
        // The store first, on every request: see the module's comment.
        match store::read(key) {
            Ok(None) => {
                if self.current.borrow_mut().take().is_some() {
                    log::info(&format!("the registry tokens under `{key}` were removed (a logout); not sending them any more"));
                }
                return Err(refusal::auth_required(&config.workload));
            }
            Ok(Some(stored)) => {
                if stored.is_fresh(seconds(now)) {
                    return Ok(self.adopt(stored));
                }
                // Renewal is paused after a failure and the token still works: no
                // need to queue on the lock to learn that.
                if !stored.is_expired(seconds(now)) && backoff::load().is_some_and(|b| b.blocks(now)) {
                    return Ok(self.adopt(stored));
                }
            }
            // Unreadable for now (the gateway retries the store once a second):
            // the token this instance holds serves while it is fresh.
            Err(error) => {
                if let Some(current) = self.current.borrow().as_ref().filter(|t| t.is_fresh(seconds(now))) {
                    log::debug(&format!("cannot read the registry tokens under `{key}` ({error}); using the token in hand"));
                    return Ok(current.authorization());
                }
            }
        }
        let _lock = match secrets::lock(key, LOCK_WAIT) {
            Ok(lock) => lock,
            Err(error) => return self.without_lock(config, error),
        };
        // Read afresh under the lock: another instance or gateway may have renewed.
        let now = now_ms();
        let stored = match store::read(key) {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                self.forget();
                log::debug(&format!("no registry tokens are stored under `{key}`"));
                return Err(refusal::auth_required(&config.workload));
            }
            Err(error) => {
                log::warn(&format!("cannot read the registry tokens under `{key}`: {error}"));
                return Err(refusal::store_unreadable(error));
            }
        };
        if stored.is_fresh(seconds(now)) {
            log::debug(&format!("using the registry token stored under `{key}` (expires at {})", stored.expires_at));
            return Ok(self.adopt(stored));
        }
        let Some(refresh_token) = stored.refresh_token.clone() else {
            if !stored.is_expired(seconds(now)) {
                return Ok(self.adopt(stored));
            }
            self.forget();
            log::info(&format!("the registry token under `{key}` expired at {} and there is no refresh token; a new login is needed", stored.expires_at));
            return Err(refusal::auth_required(&config.workload));
        };
        if let Some(paused) = backoff::load().filter(|b| b.blocks(now)) {
            return self.serve_or_refuse(stored, &paused, now);
        }
        self.renew(config, oauth, stored, &refresh_token)
    }

    /// One call to the token endpoint, with the lock held.
    fn renew(&self, config: &Config, oauth: &OAuth, stored: StoredToken, refresh_token: &str) -> Result<String, Deny> {
        let key = &config.token_key;
        let endpoints = match discovery::endpoints(oauth) {
            Ok(endpoints) => endpoints,
            Err(why) => return self.failed(config, stored, format!("could not discover the token endpoint: {why}")),
        };
        let form = endpoint::refresh_form(oauth, refresh_token);
        let answer = after_refresh(endpoint::exchange(&endpoints.token, form, Some(refresh_token), seconds(now_ms())));
        // Compare and set: write (or delete) only if the store still holds the
        // refresh token this renewal spent. With the lock held, this read looks
        // at the file, not at the gateway's copy in memory.
        match store::read(key) {
            Ok(Some(now_stored)) if now_stored.refresh_token.as_deref() == Some(refresh_token) => {}
            Ok(now_stored) => return self.superseded(config, oauth, now_stored, answer),
            Err(error) => {
                log::warn(&format!("cannot read the registry tokens under `{key}` again after renewing them: {error}; the renewal is not stored"));
                return Err(refusal::store_unreadable(error));
            }
        }
        match answer {
            Refreshed::Renewed(token) => {
                // Stored before use: if the provider rotated the refresh token, the
                // old one is spent, and only the store can hand the new one on.
                if let Err(error) = store::write(key, &token) {
                    log::warn(&format!("renewed the registry token but could not store it under `{key}`: {error}; it is not used"));
                    return Err(refusal::store_unwritable(error));
                }
                backoff::clear();
                let refresh = if token.refresh_token.is_some() { "present" } else { "none" };
                log::debug(&format!("renewed the registry token under `{key}` (expires at {}, refresh token {refresh})", token.expires_at));
                Ok(self.adopt(token))
            }
            Refreshed::LoginEnded { status, error } => {
                log::warn(&format!(
                    "the identity provider refused the refresh token under `{key}` (HTTP {status}, error `{error}`); removing it, a new login is needed"
                ));
                if let Err(error) = store::delete(key) {
                    log::warn(&format!("could not remove the registry tokens under `{key}`: {error}"));
                }
                self.forget();
                backoff::clear();
                Err(refusal::auth_required(&config.workload))
            }
            Refreshed::Retry(cause) => self.failed(config, stored, cause),
        }
    }

    /// The store changed while the provider answered a renewal: a logout
    /// removed the login, or a new login replaced it. What the renewal got is
    /// dropped; the store stands.
    fn superseded(&self, config: &Config, oauth: &OAuth, now_stored: Option<StoredToken>, answer: Refreshed) -> Result<String, Deny> {
        let key = &config.token_key;
        backoff::clear();
        let Some(now_stored) = now_stored else {
            log::info(&format!("the registry login under `{key}` was removed while it was being renewed; the renewed tokens are dropped"));
            // A refresh token issued for a login that is gone is revoked rather
            // than left valid at the provider (best effort, as at logout).
            if let Refreshed::Renewed(StoredToken { refresh_token: Some(issued), .. }) = &answer {
                crate::revoke(oauth, issued);
            }
            self.forget();
            return Err(refusal::auth_required(&config.workload));
        };
        log::info(&format!("a new registry login was stored under `{key}` while the old one was being renewed; using the new one"));
        if now_stored.is_expired(seconds(now_ms())) {
            self.forget();
            return Err(refusal::auth_required(&config.workload));
        }
        Ok(self.adopt(now_stored))
    }

    /// A failure worth retrying: start or lengthen the shared backoff.
    fn failed(&self, config: &Config, stored: StoredToken, cause: String) -> Result<String, Deny> {
        let now = now_ms();
        let backoff = Backoff::after_failure(backoff::load().as_ref(), now, printable(&cause, 300));
        backoff::record(&backoff, now);
        log::warn(&format!(
            "could not renew the registry token under `{}`: {} ({} failure(s) in a row; next attempt in {} s)",
            config.token_key,
            backoff.cause,
            backoff.failures,
            backoff.retry_after_seconds(now)
        ));
        self.serve_or_refuse(stored, &backoff, now)
    }

    /// During a backoff: the stored token while it works, then a refusal that says why.
    fn serve_or_refuse(&self, stored: StoredToken, backoff: &Backoff, now: u64) -> Result<String, Deny> {
        if stored.is_expired(seconds(now)) {
            return Err(refusal::renewal_failed(&backoff.cause, backoff.retry_after_seconds(now)));
        }
        Ok(self.adopt(stored))
    }

    /// The lock could not be taken (another holder for longer than the wait,
    /// or not granted). Never renew without it; use what still works.
    fn without_lock(&self, config: &Config, error: SecretError) -> Result<String, Deny> {
        let key = &config.token_key;
        log::warn(&format!("could not take the lock `{key}` within {} s: {error}", LOCK_WAIT.as_secs()));
        let now = seconds(now_ms());
        match store::read(key) {
            Ok(Some(stored)) if !stored.is_expired(now) => return Ok(self.adopt(stored)),
            // Logged out meanwhile: the token in hand is not sent any more.
            Ok(None) => {
                self.forget();
                return Err(refusal::auth_required(&config.workload));
            }
            Ok(Some(_)) => {}
            // Unreadable: the token in hand serves while it is valid.
            Err(_) => {
                if let Some(current) = self.current.borrow().as_ref().filter(|t| !t.is_expired(now)) {
                    return Ok(current.authorization());
                }
            }
        }
        Err(match error {
            SecretError::Unavailable => refusal::renewal_busy(),
            other => refusal::store_unreadable(other),
        })
    }
}

fn seconds(ms: u64) -> u64 {
    ms / 1000
}

/// What the token endpoint's answer to a refresh means for the stored login.
#[derive(Debug, PartialEq, Eq)]
enum Refreshed {
    /// New tokens: store them, then use them.
    Renewed(StoredToken),
    /// The refresh token is dead: remove it; only a new login helps.
    LoginEnded { status: u16, error: String },
    /// Worth trying again after the backoff; the stored login stays.
    Retry(String),
}

fn after_refresh(exchange: Exchange) -> Refreshed {
    match exchange {
        Exchange::Issued(token) => Refreshed::Renewed(token),
        // RFC 6749 §5.2: `invalid_grant` is the provider saying the refresh
        // token is invalid, expired or revoked, in a 400 (or a 401).
        Exchange::Refused { status: status @ (400 | 401), error: Some(error) } if error == "invalid_grant" => Refreshed::LoginEnded { status, error },
        // Any other 4xx may come from something in front of the provider (a
        // WAF's 403, a CDN's 404) or be the provider's own trouble
        // (`invalid_client` after a misconfiguration): the refresh token may be
        // good, so it is kept and tried again after the backoff.
        Exchange::Refused { status, error: Some(error) } => Refreshed::Retry(format!("token endpoint answered HTTP {status}, error `{error}`")),
        Exchange::Refused { status, error: None } => Refreshed::Retry(format!("token endpoint answered HTTP {status}")),
        Exchange::Failed(cause) => Refreshed::Retry(cause),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::classify;

    fn refresh_answer(status: u16, body: &str) -> Refreshed {
        after_refresh(classify(status, body.as_bytes(), Some("rt"), 1_700_000_000))
    }

    #[test]
    fn only_invalid_grant_ends_the_login() {
        for (status, body) in [(400, r#"{"error":"invalid_grant"}"#), (401, r#"{"error":"invalid_grant","error_description":"expired"}"#)] {
            assert_eq!(refresh_answer(status, body), Refreshed::LoginEnded { status, error: "invalid_grant".into() }, "{status} {body}");
        }
        // A WAF's 403, a CDN's 404, a 400 or 401 without the OAuth code, or
        // another OAuth error: the refresh token may be good, so keep it and back off.
        for (status, body) in [
            (403, "<html>Forbidden</html>"),
            (404, "<html>Not Found</html>"),
            (403, r#"{"error":"invalid_grant"}"#),
            (404, r#"{"error":"invalid_grant"}"#),
            (400, "<html>Bad Request</html>"),
            (401, ""),
            (400, r#"{"error":"invalid_request"}"#),
            (401, r#"{"error":"invalid_client"}"#),
            (400, r#"{"error":"invalid_grant\u0000x"}"#),
            (410, r#"{"error":"invalid_grant"}"#),
        ] {
            match refresh_answer(status, body) {
                Refreshed::Retry(cause) => {
                    assert!(cause.contains(&status.to_string()), "{cause}");
                    assert!(!cause.contains('<'), "no provider prose: {cause}");
                }
                other => panic!("{status} {body}: {other:?}"),
            }
        }
        assert!(matches!(refresh_answer(500, ""), Refreshed::Retry(_)));
        assert!(matches!(refresh_answer(200, r#"{"access_token":"a","token_type":"Bearer"}"#), Refreshed::Renewed(_)));
    }
}
