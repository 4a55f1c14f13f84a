//! One component in one chain position: its pre-linked instance, its instance
//! strategy, its deadline and memory cap, and the metrics of its calls.
//!
//! Failure handling is the point of this module. A trap, a deadline hit, a
//! memory-cap hit or a malformed verdict becomes a [`PluginFault`] — never an
//! allow — and the instance involved is thrown away, so the next call starts
//! from a clean instance. Nothing a component does can take the process down.

use super::Runtime;
use super::bindings::authenticator::{Authenticator, AuthenticatorPre};
use super::bindings::authorizer::{Authorizer, AuthorizerPre};
use super::bindings::injector::{CredentialInjector, CredentialInjectorPre};
use super::bindings::mcp::McpCall;
use super::bindings::types as wit;
use super::bindings::{AUTHENTICATE_EXPORT, AUTHORIZE_EXPORT, INJECT_EXPORT};
use super::capabilities::request::handle;
use super::capabilities::{Capabilities, PluginLabel};
use super::request::RequestData;
use super::slow_lane::SlowLane;
use super::state::HostState;
use super::verdict::{Decision, Injection, Manifest, Verdict};
use crate::admin::metrics::PluginMetrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::Component;
use wasmtime::{Engine, Store, Trap};

/// How component instances are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Instances are reused (a few µs per call, see docs/benchmarks.md); recycled after `max_uses` calls and after any fault.
    Pooled,
    /// A fresh instance for every request (about 35 µs per call): nothing survives between requests.
    PerRequest,
}

/// Which world a chain position needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Authenticator,
    Injector,
    Authorizer,
}

/// The longest deadline a component call may be given (`limits.deadline_ms`), in milliseconds.
pub const MAX_DEADLINE_MS: u64 = 10_000;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub deadline: Duration,
    pub memory_bytes: usize,
    pub max_uses: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { deadline: Duration::from_millis(100), memory_bytes: 16 * 1024 * 1024, max_uses: 10_000 }
    }
}

/// Why a call produced no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The component trapped (a panic, an unreachable, a failed `init`).
    Trap,
    /// The call ran past its deadline.
    Deadline,
    /// The component tried to grow past its memory cap.
    MemoryLimit,
    /// The component returned something the gateway cannot use (e.g. status 200 in a deny).
    BadVerdict,
    /// The gateway could not create an instance (e.g. the instance pool is exhausted).
    Instantiate,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [FaultKind::Trap, FaultKind::Deadline, FaultKind::MemoryLimit, FaultKind::BadVerdict, FaultKind::Instantiate];

    /// (label, blame) of every kind, for the metrics.
    pub fn labels() -> [(&'static str, &'static str); 5] {
        FaultKind::ALL.map(|k| (k.label(), k.blame()))
    }

    /// Metric and log label.
    pub fn label(self) -> &'static str {
        match self {
            FaultKind::Trap => "trap",
            FaultKind::Deadline => "deadline",
            FaultKind::MemoryLimit => "memory_limit",
            FaultKind::BadVerdict => "bad_verdict",
            FaultKind::Instantiate => "instantiate",
        }
    }

    /// Whose fault it is: the component's (`guest`) or the gateway's (`host`).
    pub fn blame(self) -> &'static str {
        match self {
            FaultKind::Instantiate => "host",
            FaultKind::Trap | FaultKind::Deadline | FaultKind::MemoryLimit | FaultKind::BadVerdict => "guest",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PluginFault {
    pub kind: FaultKind,
    /// For the log only: may contain the component's panic message, never sent to clients.
    pub detail: String,
}

enum Pre {
    Authenticator(AuthenticatorPre<HostState>),
    Injector(CredentialInjectorPre<HostState>),
    Authorizer(AuthorizerPre<HostState>),
}

enum Exports {
    Authenticator(Authenticator),
    Injector(CredentialInjector),
    Authorizer(Authorizer),
}

struct Instance {
    store: Store<HostState>,
    exports: Exports,
    uses: u32,
    /// Its place in the workload's instance bound, given back when it is dropped.
    _slot: OwnedSemaphorePermit,
}

/// What `init` receives, kept as strings to build either world's record.
struct InitSettings {
    config_json: String,
    workload: String,
    public_url: String,
}

pub struct Plugin {
    pub label: PluginLabel,
    role: Role,
    engine: Engine,
    pre: Pre,
    settings: InitSettings,
    /// What the component declared at `init` (from its first instance, at load).
    manifest: Manifest,
    limits: Limits,
    isolation: Isolation,
    caps: Arc<Capabilities>,
    /// The workload's bound on live instances (idle or busy), shared by its chain positions.
    instances: Arc<Semaphore>,
    idle: Mutex<Vec<Instance>>,
    max_idle: usize,
    metrics: PluginMetrics,
    slow_lane: SlowLane,
    /// Its calls have lately computed long (shared by its instances' tickets).
    heavy: Arc<AtomicBool>,
    /// The last call faulted (and its instance was dropped): the next new
    /// instance is made in the slow lane.
    faulted: AtomicBool,
}

/// Everything needed to set up one chain position.
pub struct PluginSpec {
    pub label: PluginLabel,
    pub role: Role,
    pub component: Component,
    pub config_json: String,
    pub public_url: String,
    pub limits: Limits,
    pub isolation: Isolation,
    pub caps: Arc<Capabilities>,
    pub metrics: PluginMetrics,
    /// The workload's bound on live instances.
    pub instances: Arc<Semaphore>,
    /// Idle instances kept (pooled isolation): this position's share of the
    /// bound, so idle instances of one position never starve another.
    pub max_idle: usize,
}

/// Why a component could not be set up; shown against its policy entry.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("this component does not export `{expected}`; it cannot be used as {role}")]
    WrongWorld { expected: &'static str, role: &'static str },
    #[error("the component cannot be linked: {0}")]
    Link(String),
    #[error("the component refused its configuration: {0}")]
    Config(String),
    #[error("the component is not usable: {0}")]
    Manifest(String),
    #[error("the component failed while starting ({kind}): {detail}", kind = .0.kind.label(), detail = .0.detail)]
    Fault(PluginFault),
}

impl Plugin {
    /// Links the component, and creates and initialises one instance to check
    /// its configuration now rather than on the first request.
    pub async fn new(runtime: &Runtime, spec: PluginSpec) -> Result<Arc<Plugin>, SetupError> {
        let engine = runtime.engine();
        let exports = spec.component.component_type();
        let has = |name: &str| exports.exports(engine).any(|(n, _)| n == name);
        let (expected, role_name) = match spec.role {
            Role::Authenticator => (AUTHENTICATE_EXPORT, "an inbound authenticator"),
            Role::Injector => (INJECT_EXPORT, "an outbound credential injector"),
            Role::Authorizer => (AUTHORIZE_EXPORT, "an authorizer"),
        };
        if !has(expected) {
            return Err(SetupError::WrongWorld { expected, role: role_name });
        }
        let instance_pre = runtime.linker().instantiate_pre(&spec.component).map_err(|e| SetupError::Link(format!("{e:#}")))?;
        let pre = match spec.role {
            Role::Authenticator => Pre::Authenticator(AuthenticatorPre::new(instance_pre).map_err(|e| SetupError::Link(format!("{e:#}")))?),
            Role::Injector => Pre::Injector(CredentialInjectorPre::new(instance_pre).map_err(|e| SetupError::Link(format!("{e:#}")))?),
            Role::Authorizer => Pre::Authorizer(AuthorizerPre::new(instance_pre).map_err(|e| SetupError::Link(format!("{e:#}")))?),
        };
        let mut plugin = Plugin {
            settings: InitSettings { config_json: spec.config_json, workload: spec.label.workload.to_string(), public_url: spec.public_url },
            label: spec.label,
            role: spec.role,
            engine: engine.clone(),
            pre,
            manifest: Manifest::default(),
            limits: spec.limits,
            isolation: spec.isolation,
            caps: spec.caps,
            instances: spec.instances,
            idle: Mutex::new(Vec::new()),
            max_idle: spec.max_idle,
            metrics: spec.metrics,
            slow_lane: runtime.slow_lane().clone(),
            heavy: Arc::default(),
            faulted: AtomicBool::new(false),
        };
        let (instance, manifest) = match plugin.instantiate().await {
            Ok(started) => started,
            Err(Setup::Refused(message)) => return Err(SetupError::Config(message)),
            Err(Setup::Fault(fault)) => return Err(SetupError::Fault(fault)),
        };
        plugin.manifest = Manifest::parse(manifest).map_err(SetupError::Manifest)?;
        if plugin.isolation == Isolation::Pooled {
            plugin.idle.lock().unwrap_or_else(|p| p.into_inner()).push(instance);
        }
        Ok(Arc::new(plugin))
    }

    /// This chain position's cache namespace.
    pub fn cache_namespace(&self) -> &str {
        self.caps.cache.namespace()
    }

    /// The headers this component consumes and produces.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Asks an authenticator for its verdict on `request`.
    pub async fn authenticate(&self, request: &Arc<RequestData>) -> Result<Verdict, PluginFault> {
        self.call(
            request,
            async |instance: &mut Instance| match &instance.exports {
                Exports::Authenticator(a) => a.portcullis_auth_authenticate().call_authenticate(&mut instance.store, handle()).await,
                _ => unreachable!("roles are checked at load"),
            },
            |verdict| Verdict::check(verdict, &self.manifest),
        )
        .await
    }

    /// Asks an injector for its header edits on `request`.
    pub async fn inject(&self, request: &Arc<RequestData>) -> Result<Injection, PluginFault> {
        self.call(
            request,
            async |instance: &mut Instance| match &instance.exports {
                Exports::Injector(i) => i.portcullis_auth_inject().call_inject(&mut instance.store, handle()).await,
                _ => unreachable!("roles are checked at load"),
            },
            |injection| Injection::check(injection, &self.manifest),
        )
        .await
    }

    /// Asks an authorizer about `call` (one call of the request, or an item of a list).
    pub async fn authorize(&self, request: &Arc<RequestData>, identity: Option<&wit::Identity>, call: &McpCall) -> Result<Decision, PluginFault> {
        self.call(
            request,
            async |instance: &mut Instance| match &instance.exports {
                Exports::Authorizer(a) => a.portcullis_auth_authorize().call_authorize(&mut instance.store, handle(), identity, call).await,
                _ => unreachable!("roles are checked at load"),
            },
            Decision::check,
        )
        .await
    }

    /// Runs `f` on an instance within the deadline and checks its result with
    /// `check`, recording latency and faults.
    async fn call<W, R>(
        &self,
        request: &Arc<RequestData>,
        f: impl AsyncFnOnce(&mut Instance) -> wasmtime::Result<W>,
        check: impl FnOnce(W) -> Result<R, String>,
    ) -> Result<R, PluginFault> {
        let started = Instant::now();
        let result = self.call_inner(request, f, check).await;
        self.metrics.latency.observe(started.elapsed().as_secs_f64());
        if let Err(fault) = &result {
            self.record(fault);
        }
        // Only a fault of the component's own counts: a busy instance bound is not one.
        let faulted = result.as_ref().is_err_and(|fault| fault.kind != FaultKind::Instantiate);
        if faulted != self.faulted.load(Ordering::Relaxed) {
            self.faulted.store(faulted, Ordering::Relaxed);
        }
        result
    }

    async fn call_inner<W, R>(
        &self,
        request: &Arc<RequestData>,
        f: impl AsyncFnOnce(&mut Instance) -> wasmtime::Result<W>,
        check: impl FnOnce(W) -> Result<R, String>,
    ) -> Result<R, PluginFault> {
        let mut instance = match self.checkout() {
            Some(instance) => instance,
            None => self.replace_instance().await?,
        };
        let state = instance.store.data_mut();
        state.memory.hit = false;
        state.request = Some(request.clone());
        state.begin_call(self.limits.deadline);
        // A chain entry whose calls lately computed long waits for its turn in
        // the slow lane before it starts, not after its first tick.
        let turn = instance.store.data().lane.as_ref().and_then(|lane| lane.turn_before_call());
        let outcome = tokio::time::timeout(self.limits.deadline, async {
            if let Some(turn) = turn {
                turn.await;
            }
            // From the next epoch tick on, guest code yields every tick and traps
            // past the deadline (see `yield_then_interrupt`); the timer also
            // covers time spent in host imports (an HTTP request the guest awaits).
            // Set after the wait, which is not the guest's computing.
            let state = instance.store.data_mut();
            state.started = Some(Instant::now());
            state.resume();
            instance.store.set_epoch_deadline(1);
            f(&mut instance).await
        })
        .await;
        instance.store.data_mut().end_call();
        let fault = match outcome {
            Ok(Ok(value)) => match check(value) {
                Ok(checked) => {
                    instance.uses += 1;
                    self.checkin(instance);
                    return Ok(checked);
                }
                // A malformed verdict is a bug in the component: its instance goes too.
                Err(detail) => PluginFault { kind: FaultKind::BadVerdict, detail },
            },
            Ok(Err(error)) => classify(&error, &instance.store),
            Err(_elapsed) => PluginFault { kind: FaultKind::Deadline, detail: format!("no answer within {:?}", self.limits.deadline) },
        };
        // After a fault the instance's state cannot be trusted: it goes.
        self.retire(instance);
        Err(fault)
    }

    /// Drops a failed instance in the slow lane, after the answer has gone:
    /// giving back what a runaway instance touched (a grown memory, a deep
    /// stack) is work for the kernel that interrupts every core, and a
    /// component that faults on every request would otherwise do it on all of
    /// them at once. Its place in the workload's instance bound is given back
    /// when it is gone, so a workload that keeps faulting waits for its own instances.
    fn retire(&self, instance: Instance) {
        let lane = self.slow_lane.clone();
        tokio::spawn(async move {
            let turn = lane.enter().await;
            // Unmapping cannot yield: on a worker thread it would hold up
            // every request queued behind it for milliseconds.
            tokio::task::spawn_blocking(move || {
                drop(instance);
                drop(turn);
            });
        });
    }

    /// A new instance for a call that found none idle. After a fault, it is
    /// made in the slow lane: a component that faults on every request would
    /// otherwise keep the cores busy re-creating instances.
    async fn replace_instance(&self) -> Result<Instance, PluginFault> {
        self.instantiate_with(self.faulted.load(Ordering::Relaxed)).await.map(|(instance, _manifest)| instance).map_err(|e| match e {
            Setup::Fault(fault) => fault,
            // The configuration was accepted at load; refusing it now is the component's bug.
            Setup::Refused(message) => PluginFault { kind: FaultKind::Trap, detail: format!("init refused its configuration: {message}") },
        })
    }

    fn checkout(&self) -> Option<Instance> {
        match self.isolation {
            Isolation::Pooled => self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop(),
            Isolation::PerRequest => None,
        }
    }

    fn checkin(&self, instance: Instance) {
        if self.isolation == Isolation::PerRequest || instance.uses >= self.limits.max_uses {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(instance);
        }
    }

    /// A new instance, initialised, and the manifest its `init` returned.
    async fn instantiate(&self) -> Result<(Instance, wit::Manifest), Setup> {
        self.instantiate_with(false).await
    }

    /// Like [`Self::instantiate`]; `in_lane`: with a turn in the slow lane,
    /// taken after the instance slot (the other order could hold the only
    /// turn while waiting for a slot only the lane frees) and held until `init` ends.
    async fn instantiate_with(&self, in_lane: bool) -> Result<(Instance, wit::Manifest), Setup> {
        // A burst on this workload waits here for one of its own instances
        // (within the deadline) rather than taking the whole process's pool.
        let slot = match tokio::time::timeout(self.limits.deadline, self.instances.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) | Err(_) => {
                return Err(Setup::Fault(PluginFault {
                    kind: FaultKind::Instantiate,
                    detail: format!("every instance this workload may hold is busy (limits.max_instances); waited {:?}", self.limits.deadline),
                }));
            }
        };
        let turn = if in_lane {
            let waited = tokio::time::timeout(self.limits.deadline, self.slow_lane.enter()).await;
            Some(waited.map_err(|_| {
                Setup::Fault(PluginFault {
                    kind: FaultKind::Deadline,
                    detail: format!("its last call faulted, and its next instance waited {:?} for a turn in the slow lane", self.limits.deadline),
                })
            })?)
        } else {
            None
        };
        let mut store = Store::new(&self.engine, HostState::new(self.caps.clone(), self.limits.memory_bytes));
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_callback(yield_then_interrupt);
        let ticket = self.slow_lane.ticket(&self.heavy);
        if let Some(turn) = turn {
            // `init` computing past a tick must not wait for a second turn behind this one.
            ticket.hold(turn);
        }
        store.data_mut().lane = Some(ticket);
        store.data_mut().begin_call(self.limits.deadline);
        store.set_epoch_deadline(1);
        let work = async {
            // Each world has its own `Settings` type, and the same `init`.
            macro_rules! init {
                ($pre:expr, $world:ident, $exports:ident) => {{
                    let bindings = $pre.instantiate_async(&mut store).await.map_err(|e| instantiate_fault(&e, &store))?;
                    let settings = super::bindings::$world::exports::portcullis::auth::lifecycle::Settings {
                        config_json: self.settings.config_json.clone(),
                        workload: self.settings.workload.clone(),
                        public_url: self.settings.public_url.clone(),
                    };
                    let result = bindings.portcullis_auth_lifecycle().call_init(&mut store, &settings).await;
                    (Exports::$exports(bindings), result)
                }};
            }
            let init = match &self.pre {
                Pre::Authenticator(pre) => init!(pre, authenticator, Authenticator),
                Pre::Injector(pre) => init!(pre, injector, Injector),
                Pre::Authorizer(pre) => init!(pre, authorizer, Authorizer),
            };
            match init {
                (exports, Ok(Ok(manifest))) => Ok((exports, manifest)),
                (_, Ok(Err(message))) => Err(Setup::Refused(message)),
                (_, Err(error)) => Err(Setup::Fault(classify(&error, &store))),
            }
        };
        let (exports, manifest) = match tokio::time::timeout(self.limits.deadline, work).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(Setup::Fault(PluginFault {
                    kind: FaultKind::Deadline,
                    detail: format!("instantiation and init took longer than {:?}", self.limits.deadline),
                }));
            }
        };
        store.data_mut().end_call();
        Ok((Instance { store, exports, uses: 0, _slot: slot }, manifest))
    }

    fn record(&self, fault: &PluginFault) {
        self.metrics.fault(fault.kind.label());
        tracing::error!(workload = %self.label.workload, component = %self.label.component, fault = fault.kind.label(),
            blame = fault.kind.blame(), detail = ?fault.detail, "component call failed; request refused");
    }
}

/// What guest code does at each epoch tick: give the executor back (so a
/// component that computes for long cannot starve other requests, other
/// workloads or the timers on this worker thread), then go on, until the
/// call's deadline, when it traps. A call still computing after
/// ticks also waits for a turn in the slow lane (see [`super::slow_lane`]).
/// Without a deadline (between calls) it only yields.
pub(crate) fn yield_then_interrupt(mut store: wasmtime::StoreContextMut<'_, HostState>) -> wasmtime::Result<wasmtime::UpdateDeadline> {
    let state = store.data_mut();
    if state.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
        return Ok(wasmtime::UpdateDeadline::Interrupt);
    }
    let Some(lane) = &state.lane else {
        // tokio's own yield: a plain self-wake would be polled again at once, ahead of other tasks.
        return Ok(wasmtime::UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())));
    };
    if lane.just_resumed() {
        return Ok(wasmtime::UpdateDeadline::Continue(1));
    }
    state.ticks = state.ticks.saturating_add(1);
    let next = if lane.is_slow(state.ticks, state.started) { lane.at_tick() } else { lane.yield_now() };
    Ok(wasmtime::UpdateDeadline::YieldCustom(1, next))
}

/// The outcome of creating an instance when it does not succeed.
enum Setup {
    /// `init` returned an error: the configuration is not acceptable.
    Refused(String),
    Fault(PluginFault),
}

fn instantiate_fault(error: &wasmtime::Error, store: &Store<HostState>) -> Setup {
    let fault = classify(error, store);
    // Pool exhaustion and similar resource errors are the host's, not a trap.
    if fault.kind == FaultKind::Trap && error.downcast_ref::<Trap>().is_none() {
        return Setup::Fault(PluginFault { kind: FaultKind::Instantiate, detail: fault.detail });
    }
    Setup::Fault(fault)
}

fn classify(error: &wasmtime::Error, store: &Store<HostState>) -> PluginFault {
    let detail = format!("{error:#}");
    let kind = if store.data().memory.hit {
        FaultKind::MemoryLimit
    } else if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        FaultKind::Deadline
    } else {
        FaultKind::Trap
    };
    PluginFault { kind, detail }
}
