//! The slow lane: guest work that has shown itself expensive waits for one of
//! a few process-wide turns, so that however much of it there is, it holds at
//! most that many cores and the rest keep serving well-behaved workloads.
//!
//! Two kinds of work enter it:
//! - a call (or `init`) that is still computing after [`FAST_TICKS`] epoch
//!   ticks, which no ordinary auth decision does (they take microseconds);
//!   once a chain entry's calls have computed that long, its next calls wait
//!   for a turn before they start, until one of them finishes before a tick;
//! - creating an instance to replace one that faulted, and dropping the
//!   faulted one, which a component that traps, overflows its stack or grows
//!   to its memory cap asks for on every request.
//!
//! Ordinary calls never touch it. Work in the lane still ends at its deadline,
//! waiting included, and fails closed as before. The price: at most
//! [`SlowLane::turns`] long computations run at once, process-wide.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A call joins the slow lane once it has computed through more than
/// `FAST_TICKS` epoch ticks and started more than `SLOW_AFTER` ago: about a
/// millisecond of computing, some fifty times what a JWT check takes. Ticks
/// alone would misjudge a quick call while the ticks are short (see
/// [`super::engine::BUSY_TICK`]); time alone would count a call that mostly
/// waited for an HTTP answer (a wait sees at most one tick).
pub const FAST_TICKS: u32 = 2;
pub const SLOW_AFTER: Duration = Duration::from_millis(1);

/// The least a call computes after it resumes (from a yield, a turn, an HTTP
/// answer, or its start) before a tick counts or makes it yield again. A tick
/// seen sooner measures waiting, not computing; yielding on it would let a
/// call that waited in the run queue longer than a tick yield again at once,
/// over and over, without progress.
pub const MIN_SLICE: Duration = Duration::from_micros(25);

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_nanos() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The process-wide turns: half the cores, at least one.
#[derive(Clone)]
pub struct SlowLane {
    turns: Arc<Semaphore>,
    count: usize,
}

impl SlowLane {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let count = (cores / 2).max(1);
        SlowLane { turns: Arc::new(Semaphore::new(count)), count }
    }

    /// How many pieces of slow work may run at once.
    pub fn turns(&self) -> usize {
        self.count
    }

    /// Whether some slow work holds a turn (the epoch then ticks faster).
    pub fn in_use(&self) -> bool {
        self.turns.available_permits() < self.count
    }

    /// Waits for a turn; the turn ends when the permit is dropped.
    pub async fn enter(&self) -> OwnedSemaphorePermit {
        self.turns.clone().acquire_owned().await.expect("the slow lane's semaphore is never closed")
    }

    /// A store's place in the lane, held by its [`super::state::HostState`];
    /// `heavy` is shared by the instances of one chain entry.
    pub fn ticket(&self, heavy: &Arc<AtomicBool>) -> LaneTicket {
        LaneTicket { lane: self.clone(), heavy: heavy.clone(), turn: Arc::new(Mutex::new(None)), resumed: Arc::new(AtomicU64::new(now_nanos())) }
    }
}

impl Default for SlowLane {
    fn default() -> Self {
        Self::new()
    }
}

/// One store's turn in the lane, taken by its long call and given back when the call ends.
pub struct LaneTicket {
    lane: SlowLane,
    /// Calls of this chain entry have lately been slow: join at the first tick.
    heavy: Arc<AtomicBool>,
    turn: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    /// When the store's call last resumed, in nanoseconds since [`EPOCH`].
    resumed: Arc<AtomicU64>,
}

impl LaneTicket {
    /// Whether a call that `started` and has computed through `ticks` epoch ticks belongs in the lane.
    pub fn is_slow(&self, ticks: u32, started: Option<Instant>) -> bool {
        self.heavy.load(Ordering::Relaxed) || (ticks > FAST_TICKS && started.is_some_and(|at| at.elapsed() > SLOW_AFTER))
    }

    /// For a chain entry marked heavy, the wait for a turn before a call
    /// starts (so none of its computing happens outside the lane).
    pub fn turn_before_call(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        self.heavy.load(Ordering::Relaxed).then(|| self.at_tick())
    }

    /// The call resumed now: from its start, or an HTTP answer it awaited.
    pub fn resumed(&self) {
        self.resumed.store(now_nanos(), Ordering::Relaxed);
    }

    /// Whether the call resumed less than [`MIN_SLICE`] ago, so that a tick
    /// now measures waiting, not computing.
    pub fn just_resumed(&self) -> bool {
        now_nanos().saturating_sub(self.resumed.load(Ordering::Relaxed)) < MIN_SLICE.as_nanos() as u64
    }

    /// Yields to the executor once, noting when the call resumes.
    pub fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let resumed = self.resumed.clone();
        Box::pin(async move {
            tokio::task::yield_now().await;
            resumed.store(now_nanos(), Ordering::Relaxed);
        })
    }

    /// What a slow call does at an epoch tick: wait for a turn (and keep
    /// it), or, when it has one, only yield to the executor.
    pub fn at_tick(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        if self.turn.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            return self.yield_now();
        }
        if !self.heavy.load(Ordering::Relaxed) {
            self.heavy.store(true, Ordering::Relaxed);
        }
        let (lane, slot, resumed) = (self.lane.clone(), self.turn.clone(), self.resumed.clone());
        Box::pin(async move {
            let permit = lane.enter().await;
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(permit);
            resumed.store(now_nanos(), Ordering::Relaxed);
        })
    }

    /// Holds a turn taken for this store before its call (see `Plugin::replace_instance`).
    pub fn hold(&self, turn: OwnedSemaphorePermit) {
        *self.turn.lock().unwrap_or_else(|p| p.into_inner()) = Some(turn);
    }

    /// Ends a call that computed through `ticks` epoch ticks: gives its turn
    /// back, if it had one, and a call that finished before any tick clears the heavy mark.
    pub fn end_call(&self, ticks: u32) {
        if ticks == 0 && self.heavy.load(Ordering::Relaxed) {
            self.heavy.store(false, Ordering::Relaxed);
        }
        self.turn.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ticket_keeps_its_turn_until_it_leaves() {
        let lane = SlowLane { turns: Arc::new(Semaphore::new(1)), count: 1 };
        let heavy = Arc::new(AtomicBool::new(false));
        let (a, b) = (lane.ticket(&heavy), lane.ticket(&heavy));
        let long_ago = Some(Instant::now() - SLOW_AFTER * 2);
        assert!(!a.is_slow(FAST_TICKS, long_ago) && a.is_slow(FAST_TICKS + 1, long_ago));
        assert!(!a.is_slow(FAST_TICKS + 1, Some(Instant::now())), "many short ticks are not a slow call");
        a.at_tick().await;
        assert!(lane.in_use());
        assert!(b.is_slow(1, Some(Instant::now())), "once a call was slow, its entry's next calls join at the first tick");
        a.at_tick().await; // already holds it: does not wait for a second one
        let waiting = tokio::spawn(b.at_tick());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the second long call waits for the turn");
        a.end_call(FAST_TICKS + 1);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await.unwrap().unwrap();
        b.end_call(FAST_TICKS + 1);
        assert_eq!(lane.turns.available_permits(), 1);
        assert!(!lane.in_use());
        b.hold(lane.enter().await);
        assert!(lane.in_use());
        b.at_tick().await; // a held turn: no second one is awaited
        b.end_call(1);
        assert!(!lane.in_use(), "the held turn is given back at the end of the call");
        assert!(a.is_slow(1, Some(Instant::now())), "a call that saw a tick keeps the mark");
        a.end_call(0);
        assert!(!b.is_slow(1, Some(Instant::now())), "a call that finishes before any tick clears the mark");
    }
}
