//! The slow lane: guest work that has shown itself expensive runs on a few
//! threads of its own, at a low CPU priority (10 nice levels below the
//! process). The kernel then hands a core to well-behaved work the moment it
//! wants one, however much slow work there is, and the slow work gets what
//! is left.
//!
//! Three kinds of work run there:
//! - the calls of a chain entry for [`HEAVY_FOR`] after one of its calls
//!   computed for [`SLOW_AFTER`] of CPU time, which no ordinary auth
//!   decision does (they take microseconds); a fast call in between does not
//!   end it, so a client cannot bring long calls back onto the gateway's
//!   workers by mixing in cheap ones;
//! - the calls of a chain entry whose last call faulted: a component that
//!   traps, overflows its stack or grows to its memory cap does so, and
//!   creates a new instance, on every request;
//! - dropping an instance after a fault: giving back a grown memory or a deep
//!   stack is kernel work that would otherwise hold a worker for milliseconds.
//!
//! The first long call of an entry is noticed only while it runs, on a
//! gateway worker: it yields there at every tick until it ends. Work in the
//! lane still ends at its deadline, the wait for the lane's threads included,
//! and fails closed as before.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A call is slow once its thread has spent this much CPU time on it: half a
/// millisecond, some twenty times what a JWT check takes. CPU time, not
/// wall time: on a loaded machine the kernel may set a fast call aside for
/// milliseconds, and wall time (or epoch ticks) would then send a
/// well-behaved workload to the lane, to wait behind a hostile one. It is
/// measured from each resume after a tick's yield to the next tick (read
/// only then, so a call that ends before its first tick pays nothing), so
/// the call's first tick-length of computing goes uncounted. Being wrong
/// costs little: the entry's calls run in the lane for [`HEAVY_FOR`].
pub const SLOW_AFTER: Duration = Duration::from_micros(500);

/// The least a call computes after it resumes (from a yield, an HTTP answer,
/// or its start) before a tick counts or makes it yield again. A tick seen
/// sooner measures waiting, not computing; yielding on it would let a call
/// that waited in the run queue longer than a tick yield again at once, over
/// and over, without progress.
pub const MIN_SLICE: Duration = Duration::from_micros(25);

/// How long a chain entry's calls run in the lane after its last long one.
pub const HEAVY_FOR: Duration = Duration::from_secs(1);

/// How much nicer than the process the lane's threads are: at 10 they get
/// a tenth of the CPU time of ordinary threads when they compete (at 19, a
/// seventieth, lane work missed its deadline on a loaded machine), and a woken
/// ordinary thread preempts them.
const NICER_BY: i32 = 10;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_nanos() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The CPU time this thread has used, in nanoseconds (at least 1, so that 0 can mean "unknown").
fn thread_cpu_nanos() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (u64::try_from(t.tv_sec).unwrap_or(0).saturating_mul(1_000_000_000)).saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0)).max(1)
}

/// The lane's threads: half the cores, at least one, process-wide. The
/// runtime is never dropped (a tokio runtime cannot be dropped from async code).
static THREADS: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads((cores / 2).max(1))
        .thread_name("portcullis-slow")
        .on_thread_start(lower_priority)
        .enable_all()
        .build()
        .expect("starting the slow lane's threads")
});

/// Lowers the calling thread's priority by [`NICER_BY`], to at most 19.
/// Only Linux sets a nice value per thread; elsewhere the lane's threads keep
/// the process's priority and are only threads of their own.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let thread = Some(rustix::thread::gettid());
        let lowered = rustix::process::getpriority_process(thread).and_then(|nice| rustix::process::setpriority_process(thread, (nice + NICER_BY).min(19)));
        if let Err(error) = lowered {
            tracing::warn!(%error, "could not lower the slow lane's priority");
        }
    }
}

/// A handle on the lane's threads.
#[derive(Clone, Default)]
pub struct SlowLane;

impl SlowLane {
    pub fn new() -> Self {
        LazyLock::force(&THREADS);
        SlowLane
    }

    /// Runs `work` on the lane's threads and waits for it until `deadline`.
    /// Work not waited for any more (its request gone, or its deadline
    /// passed) is dropped on the lane.
    pub async fn run<T: Send + 'static>(&self, deadline: Instant, work: impl Future<Output = T> + Send + 'static) -> Result<T, Late> {
        let started = Arc::new(AtomicBool::new(false));
        let work = {
            let started = started.clone();
            async move {
                started.store(true, Ordering::Relaxed);
                work.await
            }
        };
        let mut task = AbortOnDrop(THREADS.spawn(work));
        match tokio::time::timeout_at(deadline.into(), &mut task.0).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Ok(Err(_)) | Err(_) if started.load(Ordering::Relaxed) => Err(Late::Running),
            Ok(Err(_)) | Err(_) => Err(Late::NotStarted),
        }
    }

    /// Drops `value` on the lane's threads.
    pub fn drop_later<T: Send + 'static>(&self, value: T) {
        THREADS.spawn(async move { drop(value) });
    }

    /// A store's place in the lane, held by its [`super::state::HostState`];
    /// `heavy` is shared by the instances of one chain entry.
    pub fn ticket(&self, heavy: &Arc<Heavy>) -> LaneTicket {
        LaneTicket { heavy: heavy.clone(), resumed: Arc::new(AtomicU64::new(now_nanos())), resumed_cpu: Arc::new(AtomicU64::new(0)) }
    }
}

/// Why lane work had no result by its deadline.
#[derive(Debug, PartialEq, Eq)]
pub enum Late {
    /// The lane's threads were busy and never started it: the machine's fault, not the work's.
    NotStarted,
    /// It started and was still running.
    Running,
}

/// A spawned task that is aborted when its handle is dropped.
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether a chain entry's calls have lately computed long, so that its
/// next ones run in the lane: until [`HEAVY_FOR`] after the last long one.
#[derive(Default)]
pub struct Heavy {
    /// In nanoseconds since [`EPOCH`]; 0: never.
    until: AtomicU64,
}

impl Heavy {
    pub fn is_set(&self) -> bool {
        now_nanos() < self.until.load(Ordering::Relaxed)
    }

    fn mark(&self) {
        self.until.store(now_nanos() + HEAVY_FOR.as_nanos() as u64, Ordering::Relaxed);
    }
}

/// What one store's calls tell the lane.
pub struct LaneTicket {
    heavy: Arc<Heavy>,
    /// When the store's call last resumed, in nanoseconds since [`EPOCH`].
    resumed: Arc<AtomicU64>,
    /// The thread's CPU time when the call resumed from a tick's yield
    /// ([`thread_cpu_nanos`]); 0 when unknown (its start, an HTTP answer).
    resumed_cpu: Arc<AtomicU64>,
}

impl LaneTicket {
    /// The call resumed now: from its start, or an HTTP answer it awaited.
    pub fn resumed(&self) {
        self.resumed.store(now_nanos(), Ordering::Relaxed);
        self.resumed_cpu.store(0, Ordering::Relaxed);
    }

    /// The CPU time the call has computed since it resumed from the last
    /// tick's yield (zero when that is unknown), at a tick.
    pub fn computed_since_resume(&self) -> Duration {
        match self.resumed_cpu.swap(0, Ordering::Relaxed) {
            0 => Duration::ZERO,
            at => Duration::from_nanos(thread_cpu_nanos().saturating_sub(at)),
        }
    }

    /// Whether the call resumed less than [`MIN_SLICE`] ago, so that a tick
    /// now measures waiting, not computing.
    pub fn just_resumed(&self) -> bool {
        now_nanos().saturating_sub(self.resumed.load(Ordering::Relaxed)) < MIN_SLICE.as_nanos() as u64
    }

    /// What a call does at an epoch tick: a slow one marks its entry heavy,
    /// and every call yields to the executor once.
    pub fn at_tick(&self, slow: bool) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        if slow {
            self.heavy.mark();
        }
        let (resumed, resumed_cpu) = (self.resumed.clone(), self.resumed_cpu.clone());
        Box::pin(async move {
            tokio::task::yield_now().await;
            // On the thread that goes on running the guest.
            resumed.store(now_nanos(), Ordering::Relaxed);
            resumed_cpu.store(thread_cpu_nanos(), Ordering::Relaxed);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_call_marks_its_entry_for_a_while() {
        let heavy = Arc::new(Heavy::default());
        let ticket = SlowLane.ticket(&heavy);
        assert_eq!(ticket.computed_since_resume(), Duration::ZERO, "unknown from the call's start");
        // Computing counts; waiting (the kernel setting the thread aside, here a sleep) does not.
        // Spin until this thread's own clock has moved (not the wall clock:
        // on a loaded machine 1 ms of wall time may hold less computing).
        let from = thread_cpu_nanos();
        ticket.resumed_cpu.store(from, Ordering::Relaxed);
        let give_up = Instant::now() + Duration::from_secs(10);
        while thread_cpu_nanos() - from < 2 * SLOW_AFTER.as_nanos() as u64 && Instant::now() < give_up {
            std::hint::black_box(Instant::now());
        }
        assert!(ticket.computed_since_resume() >= SLOW_AFTER, "computing counts");
        ticket.resumed_cpu.store(thread_cpu_nanos(), Ordering::Relaxed);
        std::thread::sleep(SLOW_AFTER * 4);
        assert!(ticket.computed_since_resume() < SLOW_AFTER, "waiting is not computing");
        ticket.resumed_cpu.store(thread_cpu_nanos(), Ordering::Relaxed);
        ticket.resumed();
        assert_eq!(ticket.computed_since_resume(), Duration::ZERO, "an HTTP answer starts an unknown slice");
        drop(ticket.at_tick(false));
        assert!(!heavy.is_set());
        drop(ticket.at_tick(true));
        assert!(heavy.is_set());
        heavy.until.store(now_nanos() + 1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1));
        assert!(!heavy.is_set(), "the mark ends on its own");
    }

    #[tokio::test]
    async fn lane_work_runs_at_a_lower_priority_and_ends_at_its_deadline() {
        let lane = SlowLane::new();
        let nice = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let (lane_nice, name) =
            lane.run(Instant::now() + Duration::from_secs(5), async move { (nice(), std::thread::current().name().map(str::to_owned)) }).await.unwrap();
        assert_eq!((lane_nice, name.as_deref()), ((nice() + NICER_BY).min(19), Some("portcullis-slow")));
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let never = lane.run(Instant::now() + Duration::from_millis(20), async move {
            let _tell_when_dropped = dropped_tx;
            std::future::pending::<()>().await
        });
        assert_eq!(never.await, Err(Late::Running));
        // The abandoned work was dropped (its sender with it).
        tokio::time::timeout(Duration::from_secs(5), dropped_rx).await.unwrap().unwrap_err();
    }
}
