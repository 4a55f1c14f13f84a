//! Backing off a component that faults on every call: after [`STREAK`]
//! faults in a row, its chain entry is called at most once every [`PAUSE`]
//! (a probe), and the requests in between are refused at once with the fault
//! it keeps making, until a call succeeds.
//!
//! Every such call needs a new instance, and mapping one and giving its
//! memory back is kernel work that interrupts every core, so a broken
//! component under load would otherwise slow the workloads beside it (see
//! docs/reliability.md). The requests it refuses would have failed anyway;
//! a component that faults now and then never reaches the streak.

use super::fault::FaultKind;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Faults in a row before the entry backs off.
pub const STREAK: u32 = 5;

/// How often a backed-off entry is called.
pub const PAUSE: Duration = Duration::from_millis(10);

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_nanos() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// One chain entry's recent faults.
#[derive(Default)]
pub struct Backoff {
    /// Its own faults in a row (a busy instance bound is not one of them).
    streak: AtomicU32,
    /// The last of them, as an index into [`FaultKind::ALL`].
    last: AtomicU8,
    /// When the next probe may go, in nanoseconds since [`EPOCH`].
    next_probe: AtomicU64,
}

impl Backoff {
    /// Whether the last call faulted.
    pub fn faulted(&self) -> bool {
        self.streak.load(Ordering::Relaxed) > 0
    }

    /// `Ok` when the entry may be called now; otherwise the fault it keeps
    /// making and how many in a row, to answer with instead.
    pub fn admit(&self) -> Result<(), (FaultKind, u32)> {
        let streak = self.streak.load(Ordering::Relaxed);
        if streak < STREAK {
            return Ok(());
        }
        let (now, next) = (now_nanos(), self.next_probe.load(Ordering::Relaxed));
        // One caller wins each probe.
        if now >= next && self.next_probe.compare_exchange(next, now + PAUSE.as_nanos() as u64, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            return Ok(());
        }
        Err((FaultKind::ALL[usize::from(self.last.load(Ordering::Relaxed))], streak))
    }

    /// Notes how a call ended (`None`: it succeeded); `true` when this fault
    /// starts the back-off.
    pub fn record(&self, fault: Option<FaultKind>) -> bool {
        match fault {
            None => {
                if self.streak.load(Ordering::Relaxed) != 0 {
                    self.streak.store(0, Ordering::Relaxed);
                }
                false
            }
            Some(FaultKind::Instantiate) => false,
            Some(kind) => {
                let index = FaultKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
                self.last.store(index as u8, Ordering::Relaxed);
                let starts = self.streak.fetch_add(1, Ordering::Relaxed) + 1 == STREAK;
                if starts {
                    self.next_probe.store(now_nanos() + PAUSE.as_nanos() as u64, Ordering::Relaxed);
                }
                starts
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_of_faults_backs_off_until_a_call_succeeds() {
        let backoff = Backoff::default();
        for _ in 0..STREAK - 1 {
            assert!(!backoff.record(Some(FaultKind::Trap)));
            assert!(backoff.admit().is_ok(), "a few faults change nothing");
        }
        backoff.record(Some(FaultKind::Instantiate));
        assert!(backoff.admit().is_ok(), "a busy instance bound is not the component's fault");
        assert!(backoff.record(Some(FaultKind::MemoryLimit)), "the fifth fault in a row starts the back-off");
        assert_eq!(backoff.admit(), Err((FaultKind::MemoryLimit, STREAK)), "refused with the last fault");
        std::thread::sleep(PAUSE);
        assert!(backoff.admit().is_ok(), "a probe goes through after the pause");
        assert!(backoff.admit().is_err(), "one probe per pause");
        assert!(!backoff.record(Some(FaultKind::MemoryLimit)), "and only the fifth");
        backoff.record(None);
        assert!(!backoff.faulted());
        assert!(backoff.admit().is_ok() && backoff.admit().is_ok(), "a success ends the back-off");
    }
}
