//! The slow lane: guest work that has shown itself expensive runs on a few
//! threads of its own, at a low CPU priority (10 nice levels below the
//! process). The kernel then hands a core to well-behaved work the moment it
//! wants one, however much slow work there is, and the slow work gets what
//! is left.
//!
//! Four kinds of work run there:
//! - the calls of one caller of a chain entry for [`HEAVY_FOR`] after one
//!   of that caller's calls computed for [`SLOW_AFTER`] of CPU time, which no
//!   ordinary auth decision does (they take microseconds); a fast call in
//!   between does not end it, so a client cannot bring long calls back onto
//!   the gateway's workers by mixing in cheap ones. Only when [`SEVERAL`]
//!   callers' calls computed long within [`HEAVY_FOR`] do every caller's
//!   calls of the entry go: one caller who sends expensive input (a large
//!   `arguments`) sends only itself there, not its neighbours;
//! - a call whose own input is large ([`LANE_INPUT_BYTES`]), from its start;
//! - the calls of one caller of a chain entry whose last call faulted, until
//!   one succeeds or for at most [`FAULTED_FOR`] (every caller's once
//!   [`SEVERAL`] callers' faulted): a component that traps, overflows its
//!   stack or grows to its memory cap does so, and creates a new instance, on
//!   every request. A call the lane was too busy to run does not keep the
//!   mark, so a busy lane cannot hold a workload whose faults stopped;
//! - dropping an instance after a fault: giving back a grown memory or a deep
//!   stack is kernel work that would otherwise hold a worker for milliseconds.
//!
//! The first long call of a caller is noticed only while it runs, on a
//! gateway worker: it yields there at every tick until it ends. Work in the
//! lane still ends at its deadline, the wait for the lane's threads included,
//! and fails closed as before. The lane's queue depth, wait and occupancy are
//! in the metrics (`portcullis_slow_lane_*`).

use crate::admin::metrics::LaneMetrics;
use crate::task::AbortOnDrop;
use prometheus_client::metrics::gauge::Gauge;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// A call is slow once its thread has spent this much CPU time on it: half a
/// millisecond, some twenty times what a JWT check takes. CPU time, not
/// wall time: on a loaded machine the kernel may set a fast call aside for
/// milliseconds, and wall time (or epoch ticks) would then send a
/// well-behaved workload to the lane, to wait behind a hostile one. It is
/// measured from each resume after a tick's yield to the next tick (read
/// only then, so a call that ends before its first tick pays nothing), so
/// the call's first tick-length of computing goes uncounted. Being wrong
/// costs little: the caller's calls run in the lane for [`HEAVY_FOR`].
pub const SLOW_AFTER: Duration = Duration::from_micros(500);

/// The least a call computes after it resumes (from a yield, an HTTP answer,
/// or its start) before a tick counts or makes it yield again. A tick seen
/// sooner measures waiting, not computing; yielding on it would let a call
/// that waited in the run queue longer than a tick yield again at once, over
/// and over, without progress.
pub const MIN_SLICE: Duration = Duration::from_micros(25);

/// How long a caller's calls of a chain entry run in the lane after its last long one.
pub const HEAVY_FOR: Duration = Duration::from_secs(1);

/// How many distinct callers' long calls, within [`HEAVY_FOR`] of each other,
/// send every caller's calls of the entry to the lane: then the component is
/// slow for everyone, not only for what one caller sends it. Three, so that
/// one client with a second identity is not enough.
pub const SEVERAL: usize = 3;

/// The callers an entry remembers as slow at once; past this, the mark that
/// ends soonest is forgotten (a client that rotates through identities gets
/// the entry marked as a whole long before, at [`SEVERAL`]).
const REMEMBERED: usize = 16;

/// A call whose input (its MCP `arguments`, or every call's of the request for
/// a component that reads them) has at least this many bytes goes to the lane
/// from its start. Through the built-in Cedar authorizer, a call with 30 KiB
/// of arguments took about 2 ms more than a small one, and one with 7 KiB
/// 0.4 ms (docs/reliability.md): at 16 KiB a call is slow ([`SLOW_AFTER`]) by
/// its size alone, and without this its first call would run on a gateway
/// worker until it ended.
pub const LANE_INPUT_BYTES: usize = 16 * 1024;

/// How long an entry's calls run in the lane after its last fault. A
/// successful call ends it sooner; a call the lane was too busy to start
/// ends it at once, so that a busy lane cannot hold a workload whose faults
/// have stopped (the next call runs in place, and a fault marks it again).
pub const FAULTED_FOR: Duration = Duration::from_secs(1);

/// How much nicer than the process the lane's threads are: at 10 they get
/// a tenth of the CPU time of ordinary threads when they compete (at 19, a
/// seventieth, lane work missed its deadline on a loaded machine), and a woken
/// ordinary thread preempts them.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const NICER_BY: i32 = 10;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_nanos() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The CPU time this thread has used, in nanoseconds (at least 1, so that 0 can mean "unknown").
fn thread_cpu_nanos() -> u64 {
    #[cfg(unix)]
    let nanos = {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        u64::try_from(t.tv_sec).unwrap_or(0).saturating_mul(1_000_000_000).saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0))
    };
    #[cfg(windows)]
    let nanos = crate::platform::windows::thread_cpu_nanos();
    nanos.max(1)
}

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

/// A handle on the lane: its threads and its metrics. One per
/// [`super::Runtime`], so one per process in the gateway (reloads keep it),
/// and one per in-process gateway in the tests, which can then fill one
/// gateway's lane without touching another's.
#[derive(Clone)]
pub struct SlowLane {
    lane: Arc<Lane>,
}

struct Lane {
    /// `Some` until the lane is dropped.
    threads: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    count: usize,
    metrics: LaneMetrics,
}

impl Drop for Lane {
    fn drop(&mut self) {
        // The last handle may go on one of the lane's own threads (with the
        // last lane call of a dropped gateway), where a runtime cannot be
        // shut down: a thread of its own does it, without waiting.
        if let Some(threads) = self.threads.take() {
            let stopped = std::thread::Builder::new().name("portcullis-slow-stop".into()).spawn(move || threads.shutdown_background());
            if let Err(error) = stopped {
                tracing::warn!(%error, "could not stop the slow lane's threads");
            }
        }
    }
}

impl Default for SlowLane {
    fn default() -> Self {
        Self::new()
    }
}

impl SlowLane {
    /// A lane on half the cores, at least one.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads((cores / 2).max(1))
    }

    pub fn with_threads(count: usize) -> Self {
        let threads = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(count)
            .thread_name("portcullis-slow")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()
            .expect("starting the slow lane's threads");
        let metrics = LaneMetrics::default();
        metrics.threads.set(i64::try_from(count).unwrap_or(i64::MAX));
        SlowLane { lane: Arc::new(Lane { handle: threads.handle().clone(), threads: Some(threads), count, metrics }) }
    }

    /// How many threads the lane has.
    pub fn threads(&self) -> usize {
        self.lane.count
    }

    /// Its queue depth, wait, occupancy and calls.
    pub fn metrics(&self) -> &LaneMetrics {
        &self.lane.metrics
    }

    /// Runs `work` on the lane's threads and waits for it until `deadline`.
    /// Work not waited for any more (its request gone, or its deadline
    /// passed) is dropped on the lane.
    pub async fn run<T: Send + 'static>(&self, deadline: Instant, work: impl Future<Output = T> + Send + 'static) -> Result<T, Late> {
        let started = Arc::new(AtomicBool::new(false));
        let metrics = &self.lane.metrics;
        let (queued, running, wait, sent) = (Held::new(&metrics.queued), metrics.running.clone(), metrics.wait.clone(), Instant::now());
        let work = {
            let started = started.clone();
            async move {
                drop(queued);
                let _running = Held::new(&running);
                wait.observe(sent.elapsed().as_secs_f64());
                started.store(true, Ordering::Relaxed);
                work.await
            }
        };
        let mut task = AbortOnDrop(self.lane.handle.spawn(work));
        match tokio::time::timeout_at(deadline.into(), &mut task.0).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Ok(Err(_)) | Err(_) if started.load(Ordering::Relaxed) => Err(Late::Running),
            Ok(Err(_)) | Err(_) => {
                metrics.not_started.inc();
                Err(Late::NotStarted)
            }
        }
    }

    /// Drops `value` on the lane's threads.
    pub fn drop_later<T: Send + 'static>(&self, value: T) {
        let (queued, running) = (Held::new(&self.lane.metrics.queued), self.lane.metrics.running.clone());
        self.lane.handle.spawn(async move {
            drop(queued);
            let _running = Held::new(&running);
            drop(value)
        });
    }

    /// A store's place in the lane, held by its [`super::state::HostState`];
    /// `heavy` is shared by the instances of one chain entry.
    pub fn ticket(&self, heavy: &Arc<Marks>) -> LaneTicket {
        LaneTicket { heavy: heavy.clone(), caller: None, resumed: Arc::new(AtomicU64::new(now_nanos())), resumed_cpu: Arc::new(AtomicU64::new(0)) }
    }
}

/// One unit of a gauge, held until dropped (also when the task holding it
/// is aborted before it ever runs).
struct Held(Gauge);

impl Held {
    fn new(gauge: &Gauge) -> Held {
        gauge.inc();
        Held(gauge.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
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

/// Who a call is made for, as far as the lane tells callers apart: the
/// identity an authorizer is asked about, or else the client's address. A
/// keyed hash, so that neither the key nor a collision can be chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller(u64);

static CALLER_KEYS: LazyLock<std::collections::hash_map::RandomState> = LazyLock::new(Default::default);

impl Caller {
    pub fn of(who: impl Hash) -> Caller {
        Caller(CALLER_KEYS.hash_one(who))
    }
}

/// Which callers' calls of a chain entry run in the lane, and until when: a
/// caller's, for a while after one of its calls computed long
/// ([`Marks::heavy`]) or faulted ([`Marks::faulted`]); every caller's once
/// [`SEVERAL`] callers' did within that while. What one caller sends then
/// sends only that caller to the lane.
pub struct Marks {
    /// How long a mark lasts.
    lasts: Duration,
    /// The callers marked, each until when (nanoseconds since [`EPOCH`]), the soonest to end first.
    callers: Mutex<Vec<(Caller, u64)>>,
    /// The latest end of any caller's mark: before it, look in `callers`
    /// (most calls, of an entry never marked, read only this).
    any_until: AtomicU64,
    /// Every caller's calls run in the lane until then; 0: never.
    entry_until: AtomicU64,
}

/// Why a call runs in the lane, as far as [`Marks`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// This caller's calls were marked.
    Caller,
    /// Several callers' were: every caller's calls are.
    Entry,
}

impl Marks {
    /// Long computing: a caller's calls run in the lane until [`HEAVY_FOR`] after its last long one.
    pub fn heavy() -> Marks {
        Marks::lasting(HEAVY_FOR)
    }

    /// Faults: a caller's calls run in the lane until [`FAULTED_FOR`] after
    /// its last fault, or until one succeeds.
    pub fn faulted() -> Marks {
        Marks::lasting(FAULTED_FOR)
    }

    fn lasting(lasts: Duration) -> Marks {
        Marks { lasts, callers: Mutex::default(), any_until: AtomicU64::new(0), entry_until: AtomicU64::new(0) }
    }

    /// Whether `caller`'s next call should run in the lane, and why.
    pub fn for_caller(&self, caller: Caller) -> Option<Marked> {
        let now = now_nanos();
        if now < self.entry_until.load(Ordering::Relaxed) {
            return Some(Marked::Entry);
        }
        if now >= self.any_until.load(Ordering::Relaxed) {
            return None;
        }
        let callers = self.callers.lock().unwrap_or_else(|p| p.into_inner());
        callers.iter().any(|&(c, until)| c == caller && now < until).then_some(Marked::Caller)
    }

    /// Marks `caller`'s calls.
    pub fn mark(&self, caller: Caller) {
        let now = now_nanos();
        let until = now.saturating_add(nanos(self.lasts));
        let mut callers = self.callers.lock().unwrap_or_else(|p| p.into_inner());
        callers.retain(|&(c, end)| c != caller && now < end);
        if callers.len() >= REMEMBERED {
            callers.remove(0);
        }
        callers.push((caller, until));
        callers.sort_by_key(|&(_, end)| end);
        self.any_until.store(until, Ordering::Relaxed);
        if callers.len() >= SEVERAL {
            self.entry_until.store(until, Ordering::Relaxed);
        }
    }

    /// Ends `caller`'s mark, and the entry's: a call of `caller` went well
    /// (or could not run in the lane). Cheap when nothing is marked.
    pub fn clear(&self, caller: Caller) {
        if now_nanos() >= self.any_until.load(Ordering::Relaxed).max(self.entry_until.load(Ordering::Relaxed)) {
            return;
        }
        self.entry_until.store(0, Ordering::Relaxed);
        self.callers.lock().unwrap_or_else(|p| p.into_inner()).retain(|&(c, _)| c != caller);
    }
}

/// What one store's calls tell the lane.
pub struct LaneTicket {
    heavy: Arc<Marks>,
    /// Whom the call in flight is for; `None` during `init`, which is the
    /// component's own cost, the same for every caller, and marks nobody.
    pub(crate) caller: Option<Caller>,
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
        now_nanos().saturating_sub(self.resumed.load(Ordering::Relaxed)) < nanos(MIN_SLICE)
    }

    /// What a call does at an epoch tick: a slow one marks its caller of
    /// the entry heavy, and every call yields to the executor once.
    pub fn at_tick(&self, slow: bool) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        if let (true, Some(caller)) = (slow, self.caller) {
            self.heavy.mark(caller);
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
#[path = "slow_lane_tests.rs"]
mod tests;
