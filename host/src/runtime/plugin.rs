//! One component in one chain position (or a workload's server): its
//! pre-linked instance, its instance strategy, its deadline and memory cap,
//! and the metrics of its calls. A server (`Role::Server`) declares its
//! routes once, at load, on the instance its `init` ran on, and then answers
//! requests on them ([`Plugin::serve`]) under the same rules as any call.
//!
//! Failure handling is the point of this module. A trap, a deadline hit, a
//! memory-cap hit or a malformed verdict becomes a [`PluginFault`] — never an
//! allow — and the instance involved is thrown away, so the next call starts
//! from a clean instance. Nothing a component does can take the process down.

use super::Runtime;
use super::bindings::authenticator::{Authenticator, AuthenticatorPre};
use super::bindings::authorizer::exports::portcullis::auth::authorize::Decision as AuthorizeDecision;
use super::bindings::authorizer::{Authorizer, AuthorizerPre};
use super::bindings::injector::{CredentialInjector, CredentialInjectorPre};
use super::bindings::mcp::McpCall;
use super::bindings::server::exports::portcullis::auth::serve::{Response as ServeResponse, Route};
use super::bindings::server::{AuthorizationServer, AuthorizationServerPre};
use super::bindings::session::{SessionInjector, SessionInjectorPre};
use super::bindings::types as wit;
use super::bindings::{AUTHENTICATE_EXPORT, AUTHORIZE_EXPORT, INJECT_EXPORT, RETRY_EXPORT, SERVE_EXPORT};
use super::capabilities::request::handle;
use super::capabilities::{Capabilities, PluginLabel};
pub use super::fault::{FaultKind, PluginFault};
use super::request::RequestData;
use super::slow_lane::{Caller, LANE_INPUT_BYTES, Late, Marked, Marks, SlowLane};
use super::state::HostState;
use super::verdict::{Decision, Injection, Manifest, Verdict};
use crate::admin::metrics::{LaneReason, PluginMetrics};
use crate::telemetry::trace::{FixedAttributes, Span};
use opentelemetry::KeyValue;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;
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
    /// Answers the routes it declares under the workload (`[workloads.server]`).
    Server,
}

impl Role {
    /// For logs (the `plugin.call` span).
    pub fn label(self) -> &'static str {
        match self {
            Role::Authenticator => "authenticator",
            Role::Injector => "injector",
            Role::Authorizer => "authorizer",
            Role::Server => "server",
        }
    }

    /// The WIT world a component of this role targets (exported spans).
    pub fn world(self) -> &'static str {
        match self {
            Role::Authenticator => "authenticator",
            Role::Injector => "credential-injector",
            Role::Authorizer => "authorizer",
            Role::Server => "authorization-server",
        }
    }
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

enum Pre {
    Authenticator(AuthenticatorPre<HostState>),
    Injector(CredentialInjectorPre<HostState>),
    /// An injector that also exports `retry` (world `session-injector`).
    SessionInjector(SessionInjectorPre<HostState>),
    Authorizer(AuthorizerPre<HostState>),
    Server(AuthorizationServerPre<HostState>),
}

enum Exports {
    Authenticator(Authenticator),
    Injector(CredentialInjector),
    SessionInjector(SessionInjector),
    Authorizer(Authorizer),
    Server(AuthorizationServer),
}

/// What a component is asked: borrowed from the request for a call made in
/// place, owned for one sent to the slow lane.
enum Question<'a> {
    Authenticate,
    Inject,
    /// The upstream refused the request an injector's edits went with.
    UpstreamRefused {
        retried: bool,
    },
    Authorize {
        identity: Option<Cow<'a, wit::Identity>>,
        call: Cow<'a, McpCall>,
    },
    /// A server's routes, asked once at load (no request).
    Routes,
    /// A request to one of a server's routes.
    Serve,
}

/// What a component answered, before the gateway checks it.
enum Answer {
    Verdict(wit::Verdict),
    Injection(wit::Injection),
    Decision(AuthorizeDecision),
    Routes(Vec<Route>),
    Response(ServeResponse),
}

impl Question<'_> {
    fn into_owned(self) -> Question<'static> {
        match self {
            Question::Authenticate => Question::Authenticate,
            Question::Inject => Question::Inject,
            Question::UpstreamRefused { retried } => Question::UpstreamRefused { retried },
            Question::Routes => Question::Routes,
            Question::Serve => Question::Serve,
            Question::Authorize { identity, call } => {
                Question::Authorize { identity: identity.map(|i| Cow::Owned(i.into_owned())), call: Cow::Owned(call.into_owned()) }
            }
        }
    }

    /// Whom the question is asked for: the identity an authorizer decides
    /// on, or else the client's address.
    fn caller(&self, request: &RequestData) -> Caller {
        match self {
            Question::Authorize { identity: Some(identity), .. } => Caller::of((identity.issuer.as_deref(), identity.subject.as_str())),
            _ => Caller::of(request.remote.ip()),
        }
    }

    /// The size of what the component reads that the client chose freely:
    /// the call's `arguments` (and annotations) for an authorizer, every
    /// call's for a component that reads the request's MCP calls.
    fn input_bytes(&self, request: &RequestData, reads_mcp_calls: bool) -> usize {
        let of = |call: &McpCall| call.arguments_json.as_ref().map_or(0, String::len) + call.annotations_json.as_ref().map_or(0, String::len);
        match self {
            Question::Authorize { call, .. } => of(call),
            Question::Authenticate | Question::Inject | Question::UpstreamRefused { .. } if reads_mcp_calls => request.mcp_calls.iter().map(of).sum(),
            Question::Authenticate | Question::Inject | Question::UpstreamRefused { .. } | Question::Routes => 0,
            // A route's body is the client's, read whole (at most 64 KiB).
            Question::Serve => request.body.len(),
        }
    }

    /// Calls the export that answers this question.
    async fn put(&self, instance: &mut Instance) -> wasmtime::Result<Answer> {
        match (&instance.exports, self) {
            (Exports::Authenticator(a), Question::Authenticate) => {
                a.portcullis_auth_authenticate().call_authenticate(&mut instance.store, handle()).await.map(Answer::Verdict)
            }
            (Exports::Injector(i), Question::Inject) => i.portcullis_auth_inject().call_inject(&mut instance.store, handle()).await.map(Answer::Injection),
            (Exports::SessionInjector(i), Question::Inject) => {
                i.portcullis_auth_inject().call_inject(&mut instance.store, handle()).await.map(Answer::Injection)
            }
            (Exports::SessionInjector(i), Question::UpstreamRefused { retried }) => {
                i.portcullis_auth_retry().call_upstream_refused(&mut instance.store, handle(), *retried).await.map(Answer::Injection)
            }
            (Exports::Authorizer(a), Question::Authorize { identity, call }) => {
                a.portcullis_auth_authorize().call_authorize(&mut instance.store, handle(), identity.as_deref(), call).await.map(Answer::Decision)
            }
            (Exports::Server(s), Question::Routes) => s.portcullis_auth_serve().call_routes(&mut instance.store).await.map(Answer::Routes),
            (Exports::Server(s), Question::Serve) => s.portcullis_auth_serve().call_handle(&mut instance.store, handle()).await.map(Answer::Response),
            _ => unreachable!("roles are checked at load"),
        }
    }
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
    /// A server's routes, as `serve.routes` declared them at load (unchecked:
    /// the policy checks them against the workload); empty for other roles.
    routes: Vec<Route>,
    /// It imports `request.mcp-calls`: an authenticator that may decide on the
    /// MCP message, which the gateway must then read before the chain.
    reads_mcp_calls: bool,
    limits: Limits,
    isolation: Isolation,
    caps: Arc<Capabilities>,
    /// The workload's bound on live instances (idle or busy), shared by its chain positions.
    instances: Arc<Semaphore>,
    idle: Mutex<Vec<Instance>>,
    max_idle: usize,
    metrics: PluginMetrics,
    slow_lane: SlowLane,
    /// Whose calls have lately computed long (shared by its instances'
    /// tickets): their next calls run in the slow lane.
    heavy: Arc<Marks>,
    /// Whose last call faulted (and its instance was dropped): their next
    /// calls, and the instances they need, run in the slow lane for a while.
    faulted: Marks,
    /// Its exported calls' attributes (component, role, world), encoded at load.
    span_attributes: FixedAttributes,
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
            Role::Server => (SERVE_EXPORT, "the workload's server (`[workloads.server]`)"),
        };
        if !has(expected) {
            return Err(SetupError::WrongWorld { expected, role: role_name });
        }
        let instance_pre = runtime.linker().instantiate_pre(&spec.component).map_err(|e| SetupError::Link(format!("{e:#}")))?;
        let pre = match spec.role {
            Role::Authenticator => Pre::Authenticator(AuthenticatorPre::new(instance_pre).map_err(|e| SetupError::Link(format!("{e:#}")))?),
            // An injector that exports `retry` is asked again when the upstream refuses its credential.
            Role::Injector if has(RETRY_EXPORT) => Pre::SessionInjector(SessionInjectorPre::new(instance_pre).map_err(|e| SetupError::Link(format!("{e:#}")))?),
            Role::Injector => Pre::Injector(CredentialInjectorPre::new(instance_pre).map_err(|e| SetupError::Link(format!("{e:#}")))?),
            Role::Authorizer => Pre::Authorizer(AuthorizerPre::new(instance_pre).map_err(|e| SetupError::Link(format!("{e:#}")))?),
            Role::Server => Pre::Server(AuthorizationServerPre::new(instance_pre).map_err(|e| SetupError::Link(format!("{e:#}")))?),
        };
        let reads_mcp_calls = imports_mcp_calls(engine, &spec.component);
        let span_attributes = FixedAttributes::new(&[
            KeyValue::new("component", spec.label.component.clone()),
            KeyValue::new("role", spec.role.label()),
            KeyValue::new("world", spec.role.world()),
        ]);
        let mut plugin = Plugin {
            reads_mcp_calls,
            settings: InitSettings { config_json: spec.config_json, workload: spec.label.workload.to_string(), public_url: spec.public_url },
            label: spec.label,
            role: spec.role,
            engine: engine.clone(),
            pre,
            manifest: Manifest::default(),
            routes: Vec::new(),
            limits: spec.limits,
            isolation: spec.isolation,
            caps: spec.caps,
            instances: spec.instances,
            idle: Mutex::new(Vec::new()),
            max_idle: spec.max_idle,
            metrics: spec.metrics,
            slow_lane: runtime.slow_lane().clone(),
            heavy: Arc::new(Marks::heavy()),
            faulted: Marks::faulted(),
            span_attributes,
        };
        let deadline = Instant::now() + plugin.limits.deadline;
        let (mut instance, manifest) = match plugin.instantiate(deadline).instrument(plugin.span(None)).await {
            Ok(started) => started,
            Err(Setup::Refused(message)) => return Err(SetupError::Config(message)),
            Err(Setup::Fault(fault)) => return Err(SetupError::Fault(fault)),
        };
        plugin.manifest = Manifest::parse(manifest).map_err(SetupError::Manifest)?;
        // A server's routes are asked once, on the instance `init` ran on, within the same deadline.
        if plugin.role == Role::Server {
            match plugin.put_in_time(&mut instance, &Question::Routes, None, deadline).instrument(plugin.span(None)).await {
                Ok(Answer::Routes(routes)) => plugin.routes = routes,
                Ok(_) => unreachable!("`routes` answers with routes"),
                Err(fault) => {
                    plugin.retire(instance);
                    return Err(SetupError::Fault(fault));
                }
            }
        }
        if plugin.isolation == Isolation::Pooled {
            plugin.idle.lock().unwrap_or_else(|p| p.into_inner()).push(instance);
        }
        Ok(Arc::new(plugin))
    }

    /// This chain position's cache namespace.
    pub fn cache_namespace(&self) -> &str {
        self.caps.cache.namespace()
    }

    /// The public keys of the signing keys this component was granted
    /// (`grants.signing_keys`), as a JWK set; `None` when it has none.
    pub fn signing_jwks(&self) -> Option<String> {
        self.caps.signing.as_ref().map(|keys| keys.jwks_json())
    }

    /// A server's routes as it declared them (empty for other roles).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The headers this component consumes and produces.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The config the component was given at `init`, as JSON.
    pub fn config_json(&self) -> &str {
        &self.settings.config_json
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the component can read the request's MCP calls: its type, not
    /// its word, says so (a component that does not import `mcp-calls` cannot
    /// call it), so the gateway reads a message before an authenticator
    /// decides only where the decision can depend on it.
    pub fn reads_mcp_calls(&self) -> bool {
        self.reads_mcp_calls
    }

    /// Asks an authenticator for its verdict on `request`.
    pub async fn authenticate(self: &Arc<Self>, request: &Arc<RequestData>) -> Result<Verdict, PluginFault> {
        let label = |verdict: &Verdict| match verdict {
            Verdict::Abstain => "abstain",
            Verdict::Allow { .. } => "allow",
            Verdict::Deny(_) => "deny",
        };
        self.call(request, Question::Authenticate, label, |answer| match answer {
            Answer::Verdict(verdict) => Verdict::check(verdict, &self.manifest),
            _ => unreachable!("an authenticator answers with a verdict"),
        })
        .await
    }

    /// Asks an injector for its header edits on `request`.
    pub async fn inject(self: &Arc<Self>, request: &Arc<RequestData>) -> Result<Injection, PluginFault> {
        let label = |injection: &Injection| match injection {
            Injection::Forward(_) => "forward",
            Injection::Deny(_) => "deny",
        };
        self.call(request, Question::Inject, label, |answer| match answer {
            Answer::Injection(injection) => Injection::check(injection, &self.manifest),
            _ => unreachable!("an injector answers with an injection"),
        })
        .await
    }

    /// Whether this injector wants to know when the upstream refuses its
    /// credential (it exports `retry`): the gateway then keeps the request's
    /// body and headers to send them again.
    pub fn retries(&self) -> bool {
        matches!(self.pre, Pre::SessionInjector(_))
    }

    /// Tells an injector that exports `retry` that the upstream answered 401
    /// to `request` (as sent); its answer is checked as an injection's.
    pub async fn upstream_refused(self: &Arc<Self>, request: &Arc<RequestData>, retried: bool) -> Result<Injection, PluginFault> {
        let label = |injection: &Injection| match injection {
            Injection::Forward(_) => "forward",
            Injection::Deny(_) => "deny",
        };
        self.call(request, Question::UpstreamRefused { retried }, label, |answer| match answer {
            Answer::Injection(injection) => Injection::check(injection, &self.manifest),
            _ => unreachable!("an injector answers with an injection"),
        })
        .await
    }

    /// Asks an authorizer about `call` (one call of the request, or an item of a list).
    pub async fn authorize(self: &Arc<Self>, request: &Arc<RequestData>, identity: Option<&wit::Identity>, call: &McpCall) -> Result<Decision, PluginFault> {
        let question = Question::Authorize { identity: identity.map(Cow::Borrowed), call: Cow::Borrowed(call) };
        let label = |decision: &Decision| match decision {
            Decision::Allow { .. } => "allow",
            Decision::Deny { .. } => "deny",
            Decision::StepUp(_) => "step-up",
        };
        self.call(request, question, label, |answer| match answer {
            Answer::Decision(decision) => Decision::check(decision),
            _ => unreachable!("an authorizer answers with a decision"),
        })
        .await
    }

    /// Asks a server to answer `request` (on one of its routes; the body read),
    /// and checks its response with `check`: a response that does not pass is
    /// the component's fault, as a malformed verdict is.
    pub async fn serve<R>(self: &Arc<Self>, request: &Arc<RequestData>, check: impl FnOnce(ServeResponse) -> Result<R, String>) -> Result<R, PluginFault> {
        self.call(
            request,
            Question::Serve,
            |_| "response",
            |answer| match answer {
                Answer::Response(response) => check(response),
                _ => unreachable!("a server answers with a response"),
            },
        )
        .await
    }

    /// The span of a call to this component, or of its `init` at load.
    fn span(&self, request: Option<&RequestData>) -> tracing::Span {
        let request_id = request.and_then(|r| r.headers.get("x-request-id")).and_then(|v| v.to_str().ok());
        call_span(&self.label, self.role.label(), self.role.world(), request_id)
    }

    /// Asks the component `question` within the deadline, in its `plugin.call`
    /// span; while exporting, in an exported span too, which gets the
    /// answer's `label` (its verdict) or the fault's kind.
    async fn call<R>(
        self: &Arc<Self>,
        request: &Arc<RequestData>,
        question: Question<'_>,
        label: impl FnOnce(&R) -> &'static str,
        check: impl FnOnce(Answer) -> Result<R, String>,
    ) -> Result<R, PluginFault> {
        let exported = self.exported_span();
        // Boxed: the call's future is kilobytes, and every future awaiting it
        // (the chain, the request's) would carry and copy it.
        let result = Box::pin(self.call_in_span(request, question, check)).instrument(self.span(Some(request))).await;
        if let Some(mut exported) = exported {
            match &result {
                Ok(answer) => exported.set("verdict", label(answer)),
                Err(fault) => {
                    exported.set("fault", fault.kind.label());
                    exported.set("blame", fault.kind.blame());
                }
            }
            exported.end();
        }
        result
    }

    /// The exported span of a call (`None` when not exporting): the
    /// component, its role and world. The workload and the request id are
    /// the parent request span's.
    fn exported_span(&self) -> Option<Span<'_>> {
        Span::child("plugin.call", opentelemetry::trace::SpanKind::Internal, &self.span_attributes)
    }

    /// Asks the component `question` within the deadline, in the slow lane if
    /// it should run there ([`Plugin::lane_for`]), and checks its answer with
    /// `check`, recording latency and faults.
    async fn call_in_span<R>(
        self: &Arc<Self>,
        request: &Arc<RequestData>,
        question: Question<'_>,
        check: impl FnOnce(Answer) -> Result<R, String>,
    ) -> Result<R, PluginFault> {
        let started = Instant::now();
        // One deadline for every step: the wait for an instance, its `init`, the call.
        let deadline = started + self.limits.deadline;
        let caller = question.caller(request);
        let mut lane_late = None;
        let asked = if let Some(reason) = self.lane_for(request, &question, caller) {
            self.slow_lane.metrics().call(reason);
            let (plugin, request, question) = (self.clone(), request.clone(), question.into_owned());
            // The lane's thread polls the call: the span goes with it.
            let work = async move { plugin.ask(&request, &question, caller, deadline).await }.instrument(tracing::Span::current());
            match self.slow_lane.run(deadline, work).await {
                Ok(asked) => asked,
                Err(late) => {
                    let fault = match late {
                        Late::Running => self.deadline_fault(),
                        // The busy machine's fault, not the component's: blamed on the host.
                        Late::NotStarted => PluginFault {
                            kind: FaultKind::Instantiate,
                            detail: format!(
                                "the slow lane, where this component's calls run after a fault, a long computation or with a large input, was too busy to start this call within {:?}",
                                self.limits.deadline
                            ),
                        },
                    };
                    lane_late = Some(late);
                    Err(fault)
                }
            }
        } else {
            self.ask(request, &question, caller, deadline).await
        };
        let result = asked.and_then(|(mut instance, answer)| match check(answer) {
            Ok(checked) => {
                instance.uses += 1;
                self.checkin(instance);
                Ok(checked)
            }
            // A malformed verdict is a bug in the component: its instance goes too.
            Err(detail) => {
                self.retire(instance);
                Err(PluginFault { kind: FaultKind::BadVerdict, detail })
            }
        });
        self.metrics.call_took(started.elapsed().as_secs_f64());
        if let Err(fault) = &result {
            self.record(fault);
        }
        match (&result, lane_late) {
            (Ok(_), _) => self.faulted.clear(caller),
            // A lane too busy to start the call says nothing of the component:
            // the mark goes, so that the next call runs in place rather than
            // wait for the lane again (a fault there marks it again).
            (Err(_), Some(Late::NotStarted)) => self.faulted.clear(caller),
            // Late while running: the component's slowness or the lane's
            // backlog, which cannot be told apart here; the mark is left to end.
            (Err(_), Some(Late::Running)) => {}
            // A busy instance bound (its faulted instances not yet given back,
            // say) is not a fault of the component's own: it changes nothing.
            (Err(fault), None) if fault.kind == FaultKind::Instantiate => {}
            (Err(_), None) => self.faulted.mark(caller),
        }
        result
    }

    /// Why this call should run in the slow lane, if it should: the entry's
    /// calls from this caller (or from several callers) lately faulted or
    /// computed long, or its own input is large (see [`super::slow_lane`]).
    fn lane_for(&self, request: &RequestData, question: &Question<'_>, caller: Caller) -> Option<LaneReason> {
        if self.faulted.for_caller(caller).is_some() {
            return Some(LaneReason::Faulted);
        }
        match self.heavy.for_caller(caller) {
            Some(Marked::Entry) => Some(LaneReason::Entry),
            Some(Marked::Caller) => Some(LaneReason::Caller),
            None => (question.input_bytes(request, self.reads_mcp_calls) >= LANE_INPUT_BYTES).then_some(LaneReason::Input),
        }
    }

    /// Puts `question` to an instance by `deadline`; the instance comes back
    /// with the answer, or is retired with the fault.
    async fn ask(&self, request: &Arc<RequestData>, question: &Question<'_>, caller: Caller, deadline: Instant) -> Result<(Instance, Answer), PluginFault> {
        let mut instance = match self.checkout() {
            Some(instance) => instance,
            None => self.replace_instance(deadline).await?,
        };
        if let Some(lane) = &mut instance.store.data_mut().lane {
            lane.caller = Some(caller);
        }
        match self.put_in_time(&mut instance, question, Some(request), deadline).await {
            Ok(answer) => Ok((instance, answer)),
            Err(fault) => {
                // After a fault the instance's state cannot be trusted: it goes.
                self.retire(instance);
                Err(fault)
            }
        }
    }

    /// Puts `question` to `instance` (about `request`, if any) by `deadline`;
    /// a trap, the deadline or the memory cap is a fault, and the caller
    /// then retires the instance.
    async fn put_in_time(
        &self,
        instance: &mut Instance,
        question: &Question<'_>,
        request: Option<&Arc<RequestData>>,
        deadline: Instant,
    ) -> Result<Answer, PluginFault> {
        let state = instance.store.data_mut();
        state.memory.hit = false;
        state.request = request.cloned();
        // From the next epoch tick on, guest code yields every tick and traps
        // past the deadline (see `yield_then_interrupt`); the timer also
        // covers time spent in host imports (an HTTP request the guest awaits).
        state.begin_call(deadline);
        instance.store.set_epoch_deadline(1);
        let outcome = tokio::time::timeout_at(deadline.into(), question.put(instance)).await;
        instance.store.data_mut().end_call();
        match outcome {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(classify(&error, &instance.store)),
            Err(_elapsed) => Err(self.deadline_fault()),
        }
    }

    fn deadline_fault(&self) -> PluginFault {
        PluginFault { kind: FaultKind::Deadline, detail: format!("no answer within {:?}", self.limits.deadline) }
    }

    /// Drops a failed instance in the slow lane: giving back what a runaway
    /// instance touched (a grown memory, a deep stack) is kernel work that
    /// would hold up every request queued behind it on a worker. Its place in
    /// the workload's instance bound is given back when it is gone, so a
    /// workload that keeps faulting waits for its own instances.
    fn retire(&self, instance: Instance) {
        self.slow_lane.drop_later(instance);
    }

    /// A new instance for a call that found none idle.
    async fn replace_instance(&self, deadline: Instant) -> Result<Instance, PluginFault> {
        self.instantiate(deadline).await.map(|(instance, _manifest)| instance).map_err(|e| match e {
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

    /// A new instance, initialised by `deadline`, and the manifest its `init` returned.
    async fn instantiate(&self, deadline: Instant) -> Result<(Instance, wit::Manifest), Setup> {
        // A burst on this workload waits here for one of its own instances
        // (within the deadline) rather than taking the whole process's pool.
        let slot = match tokio::time::timeout_at(deadline.into(), self.instances.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) | Err(_) => {
                return Err(Setup::Fault(PluginFault {
                    kind: FaultKind::Instantiate,
                    detail: format!(
                        "every instance this workload may hold is busy (limits.max_instances) until the call's deadline ({:?})",
                        self.limits.deadline
                    ),
                }));
            }
        };
        let mut store = Store::new(&self.engine, HostState::new(self.caps.clone(), self.limits.memory_bytes));
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_callback(yield_then_interrupt);
        store.data_mut().lane = Some(self.slow_lane.ticket(&self.heavy));
        store.data_mut().begin_call(deadline);
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
                Pre::SessionInjector(pre) => init!(pre, session, SessionInjector),
                Pre::Authorizer(pre) => init!(pre, authorizer, Authorizer),
                Pre::Server(pre) => init!(pre, server, Server),
            };
            match init {
                (exports, Ok(Ok(manifest))) => Ok((exports, manifest)),
                (_, Ok(Err(message))) => Err(Setup::Refused(message)),
                (_, Err(error)) => Err(Setup::Fault(classify(&error, &store))),
            }
        };
        let (exports, manifest) = match tokio::time::timeout_at(deadline.into(), work).await {
            Ok(Ok(started)) => started,
            failed => {
                // What the failed instance touched is given back in the slow lane
                // too, and its place in the workload's bound with it.
                self.slow_lane.drop_later((store, slot));
                return Err(match failed {
                    Ok(Err(setup)) => setup,
                    _ => Setup::Fault(PluginFault {
                        kind: FaultKind::Deadline,
                        detail: format!("instantiation and init took longer than {:?}", self.limits.deadline),
                    }),
                });
            }
        };
        store.data_mut().end_call();
        Ok((Instance { store, exports, uses: 0, _slot: slot }, manifest))
    }

    fn record(&self, fault: &PluginFault) {
        self.metrics.fault(fault.kind.label());
        tracing::error!(fault = fault.kind.label(), blame = fault.kind.blame(), detail = ?fault.detail, "component call failed; request refused");
    }
}

/// The `plugin.call` span: whatever is logged during a component call, by
/// the runtime or by a capability the component uses, carries the workload,
/// the component and its role, so no log line writes them out by hand. It
/// carries the request's id too (set by `proxy::request_id`): a JSON log
/// line shows only its innermost span.
///
/// At warn level: what is logged during a call is warnings and errors (a
/// refused grant, a store that failed), and those keep their component under
/// `RUST_LOG=warn`. An enabled span costs about 7 allocations per call (the
/// formatted fields), so a filter that keeps errors only (the allocation
/// test's, tests/alloc) opens none, and a fault logged then names no component.
pub(crate) fn call_span(label: &PluginLabel, role: &'static str, world: &'static str, request_id: Option<&str>) -> tracing::Span {
    tracing::warn_span!("plugin.call", workload = %label.workload, component = %label.component, role, world, request_id)
}

/// What guest code does at each epoch tick: give the executor back (so a
/// component that computes for long cannot starve other requests, other
/// workloads or the timers on this worker thread), then go on, until the
/// call's deadline, when it traps. A call still computing after a few ticks
/// sends its caller's next calls of the entry to the slow lane (see [`super::slow_lane`]).
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
    state.computed += lane.computed_since_resume();
    Ok(wasmtime::UpdateDeadline::YieldCustom(1, lane.at_tick(state.computed >= super::slow_lane::SLOW_AFTER)))
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

/// Whether `component` imports `request.mcp-calls` from the contract's `types`
/// interface (of any version). Components import only the functions they use.
fn imports_mcp_calls(engine: &Engine, component: &Component) -> bool {
    component.component_type().imports(engine).any(|(name, import)| {
        name.starts_with("portcullis:auth/types@")
            && matches!(&import.ty, ComponentItem::ComponentInstance(types) if types.get_export(engine, "[method]request.mcp-calls").is_some())
    })
}

#[cfg(test)]
#[path = "plugin_tests.rs"]
mod tests;
