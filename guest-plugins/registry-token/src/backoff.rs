//! The pause after a renewal that failed for a reason worth retrying (the
//! provider answered 5xx or nonsense, or could not be reached).
//!
//! It lives in the host cache, which every instance of this component in the
//! workload shares, so that a provider in trouble sees one attempt per pause,
//! not one per instance or per request. The entry is the time of the next
//! attempt (Unix milliseconds), how many attempts in a row failed, and why the
//! last one did (no token in it), so that refusals during the pause can say why.
//! The pause starts at 1 s and doubles up to 30 s; a renewal that works, a
//! refusal that ends the login, and a new login clear it.

use portcullis_plugin::cache;
use serde::{Deserialize, Serialize};
use std::time::Duration;

const KEY: &str = "refresh-backoff";
const FIRST_PAUSE_MS: u64 = 1_000;
const LONGEST_PAUSE_MS: u64 = 30_000;
/// How long an entry outlives its pause: long enough for the next failure to
/// find it and double the pause; after that, a failure starts over at 1 s.
const KEEP_AFTER_PAUSE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub next_attempt_ms: u64,
    pub failures: u32,
    pub cause: String,
}

impl Backoff {
    /// The backoff after one more failure, following `previous`.
    pub fn after_failure(previous: Option<&Backoff>, now_ms: u64, cause: String) -> Backoff {
        let failures = previous.map_or(0, |b| b.failures).saturating_add(1);
        Backoff { next_attempt_ms: now_ms.saturating_add(pause_ms(failures)), failures, cause }
    }

    /// Whether an attempt must wait.
    pub fn blocks(&self, now_ms: u64) -> bool {
        now_ms < self.next_attempt_ms
    }

    /// Whole seconds until the next attempt, at least 1 (for `Retry-After`).
    pub fn retry_after_seconds(&self, now_ms: u64) -> u64 {
        self.next_attempt_ms.saturating_sub(now_ms).div_ceil(1000).max(1)
    }
}

/// The pause after `failures` failures in a row: 1 s, 2 s, 4 s, ... up to 30 s.
pub fn pause_ms(failures: u32) -> u64 {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST_PAUSE_MS << doublings).min(LONGEST_PAUSE_MS)
}

/// The current entry, if any (an unreadable entry counts as none).
pub fn load() -> Option<Backoff> {
    cache::get(KEY).and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// Stores `backoff` for its pause and a while after. If the cache refuses it
/// (it only refuses entries over its size limits, and this one is small),
/// the next request simply tries again.
pub fn record(backoff: &Backoff, now_ms: u64) {
    let pause = Duration::from_millis(backoff.next_attempt_ms.saturating_sub(now_ms));
    let value = serde_json::to_vec(backoff).unwrap_or_default();
    cache::set(KEY, &value, pause + KEEP_AFTER_PAUSE);
}

pub fn clear() {
    cache::delete(KEY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_thirty_seconds() {
        let pauses: Vec<u64> = (1..=8).map(pause_ms).collect();
        assert_eq!(pauses, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
        assert_eq!(pause_ms(0), 1_000);
        assert_eq!(pause_ms(u32::MAX), 30_000);
    }

    #[test]
    fn failures_in_a_row_lengthen_the_pause() {
        let now = 1_700_000_000_000;
        let first = Backoff::after_failure(None, now, "token endpoint answered HTTP 500".into());
        assert_eq!((first.failures, first.next_attempt_ms), (1, now + 1_000));
        assert!(first.blocks(now) && first.blocks(now + 999) && !first.blocks(now + 1_000));
        assert_eq!(first.retry_after_seconds(now), 1);
        assert_eq!(first.retry_after_seconds(now + 5_000), 1, "never 0");

        let second = Backoff::after_failure(Some(&first), now + 1_000, "timeout".into());
        assert_eq!((second.failures, second.next_attempt_ms, second.cause.as_str()), (2, now + 3_000, "timeout"));
        assert_eq!(second.retry_after_seconds(now + 1_000), 2);
        assert_eq!(second.retry_after_seconds(now + 1_001), 2, "rounded up");

        let far = Backoff { next_attempt_ms: u64::MAX, failures: u32::MAX, cause: String::new() };
        let next = Backoff::after_failure(Some(&far), u64::MAX - 5, String::new());
        assert_eq!((next.failures, next.next_attempt_ms), (u32::MAX, u64::MAX), "saturates, never wraps");
    }

    #[test]
    fn the_entry_round_trips() {
        let b = Backoff { next_attempt_ms: 5, failures: 2, cause: "x".into() };
        let bytes = serde_json::to_vec(&b).unwrap();
        assert_eq!(serde_json::from_slice::<Backoff>(&bytes).unwrap(), b);
    }
}
