//! A workload's runtime form: everything the pipeline needs, built at policy load;
//! and its limits, in the file's form and resolved ([`WorkloadLimits::resolve`]:
//! the one place for their defaults and ranges).

use super::body_read::BodyPace;
use super::chain::InboundChain;
use super::guard::RequestGuard;
use super::headers::HeaderRules;
use super::resource_metadata::ProtectedResource;
use super::routes::Routes;
use super::server::ConnectionLimits;
use super::upstream::Upstream;
use crate::admin::metrics::WorkloadMetrics;
use crate::mcp::authorize::ArgumentLimits;
use crate::runtime::plugin::Plugin;
use crate::telemetry::trace::FixedAttributes;
use schemars::JsonSchema;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub struct Workload {
    pub name: Arc<str>,
    /// Request counters by outcome, resolved at load.
    pub metrics: WorkloadMetrics,
    pub listen: SocketAddr,
    pub public_url: url::Url,
    /// TLS for the listener; `None` serves plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub guard: RequestGuard,
    /// Which headers are stripped before the chain and removed after it.
    pub headers: HeaderRules,
    /// RFC 9728 metadata, for workloads with an OIDC verifier.
    pub protected_resource: Option<ProtectedResource>,
    /// The routes `[workloads.server]` answers, ahead of the inbound chain.
    pub routes: Option<Routes>,
    pub inbound: InboundChain,
    pub outbound: Vec<Arc<Plugin>>,
    /// An outbound injector's credential comes from `portcullis login`
    /// (it offers the `login` interface): upstream 401/403 say to log in again.
    pub outbound_logs_in: bool,
    /// MCP workloads (`mcp`): how POSTs are read, and who authorizes their calls.
    pub mcp: Option<McpSettings>,
    pub upstream: Upstream,
    pub max_body_bytes: u64,
    /// How fast a body that is read whole (an MCP message) must arrive.
    pub body_pace: BodyPace,
    pub connections: ConnectionLimits,
    /// Keep a client-sent `X-Request-Id` rather than minting one.
    pub trust_request_id: bool,
    /// Continue a client's W3C trace context (exported traces only).
    pub trust_trace_context: bool,
    /// Its exported spans' attributes (its name), encoded at load.
    pub span_attributes: FixedAttributes,
}

/// How an MCP workload reads and authorizes its messages.
pub struct McpSettings {
    /// The largest JSON-RPC message read (`limits.max_mcp_message_bytes`).
    pub max_message_bytes: usize,
    /// `[[workloads.authorize]]`; empty: calls are read (components see them) but not authorized.
    pub authorizers: crate::mcp::authorize::Authorizers,
    /// The server's tool annotations, learnt from the lists filtered since load.
    pub tools: Arc<crate::mcp::annotations::ToolAnnotations>,
    /// Message bytes that may be held, across the workload's connections,
    /// before the inbound chain has decided (`limits.max_pending_body_kib`).
    pub held_before_decision: tokio::sync::Semaphore,
}

/// `[workloads.limits]`: request size and time limits, as the policy writes them.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadLimitsFile {
    /// Largest request body accepted, in KiB (default 4096).
    pub max_request_body_kib: Option<u64>,
    /// Largest MCP message read on an MCP workload, in bytes (default 1048576);
    /// a larger POST is refused with 413.
    pub max_mcp_message_bytes: Option<u64>,
    /// Largest `arguments` of one MCP call an authorizer is asked about, in bytes of
    /// JSON (default 65536, at most `max_mcp_message_bytes`); a larger call is refused
    /// with 403 before any authorizer is asked.
    pub max_mcp_arguments_bytes: Option<u64>,
    /// Most JSON values (objects, arrays, strings, numbers, booleans and nulls, at any
    /// depth, the `arguments` object itself included) in one MCP call's `arguments`
    /// an authorizer is asked about (default 4096); more is refused with 403 before any
    /// authorizer is asked.
    pub max_mcp_arguments_elements: Option<u64>,
    /// Time allowed for the upstream to start its response, in milliseconds (default 30000).
    pub upstream_timeout_ms: Option<u64>,
    /// Time allowed for a client to send its request headers, in milliseconds (default 10000);
    /// also the time a new connection has to send its first request.
    pub header_timeout_ms: Option<u64>,
    /// A connection without a request in flight for this long is closed, in milliseconds (default 60000).
    pub idle_timeout_ms: Option<u64>,
    /// Time allowed for a body the gateway reads whole (an MCP message) to arrive, in
    /// milliseconds (default 10000), plus one second per `min_body_rate_kib` KiB received;
    /// a slower body is refused with 408.
    pub body_timeout_ms: Option<u64>,
    /// The slowest rate, in KiB per second, at which such a body may keep arriving past
    /// `body_timeout_ms` (default 16).
    pub min_body_rate_kib: Option<u64>,
    /// MCP message bytes the workload holds, across its connections, before its inbound
    /// chain has decided, in KiB (default 65536). Only a workload with an authenticator
    /// that reads MCP calls reads a message before deciding; past this, 503 at once.
    /// Each connection may hold one message (`max_mcp_message_bytes`) of it.
    pub max_pending_body_kib: Option<u64>,
    /// Open connections at most on this workload's listener (default 1024); more wait in the kernel's queue.
    pub max_connections: Option<u32>,
    /// Component instances this workload may hold at once, idle or busy, across its
    /// chains (default 64, at most 1000). A burst waits for an instance within the
    /// call's deadline instead of taking every instance of the process from its neighbours.
    pub max_instances: Option<u32>,
}

/// A workload's limits, each default filled in and each range checked.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadLimits {
    pub max_body_bytes: u64,
    pub max_mcp_message_bytes: usize,
    pub arguments: ArgumentLimits,
    pub upstream_timeout: Duration,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_pace: BodyPace,
    pub max_pending_body_bytes: u64,
    pub max_connections: usize,
    pub max_instances: usize,
}

/// A limit out of its range: its key under `limits`, and the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    pub field: &'static str,
    pub message: String,
}

/// The defaults, which the field docs of [`WorkloadLimitsFile`] (and so the
/// schema and docs/policy.md) state; a test holds them to it.
pub mod defaults {
    pub const MAX_REQUEST_BODY_KIB: u64 = 4096;
    pub const MAX_MCP_MESSAGE_BYTES: u64 = 1024 * 1024;
    pub const UPSTREAM_TIMEOUT_MS: u64 = 30_000;
    pub const HEADER_TIMEOUT_MS: u64 = 10_000;
    pub const IDLE_TIMEOUT_MS: u64 = 60_000;
    pub const BODY_TIMEOUT_MS: u64 = 10_000;
    pub const MIN_BODY_RATE_KIB: u64 = 16;
    pub const MAX_PENDING_BODY_KIB: u64 = 64 * 1024;
    pub const MAX_CONNECTIONS: u64 = 1024;
    pub const MAX_INSTANCES: u64 = 64;
}

impl WorkloadLimits {
    /// Checks each limit against its range (1 to its maximum), and fills in the defaults.
    pub fn resolve(file: &WorkloadLimitsFile) -> Result<WorkloadLimits, Vec<LimitError>> {
        const MIB: u64 = 1024 * 1024;
        let mut errors = Vec::new();
        let mut pick = |field: &'static str, value: Option<u64>, default: u64, max: u64, unit: &str| match value {
            Some(n) if n == 0 || n > max => {
                errors.push(LimitError { field, message: format!("must be between 1 and {max}{unit}") });
                default
            }
            Some(n) => n,
            None => default,
        };
        use defaults as d;
        let max_body_kib = pick("max_request_body_kib", file.max_request_body_kib, d::MAX_REQUEST_BODY_KIB, MIB, "");
        let max_connections = pick("max_connections", file.max_connections.map(u64::from), d::MAX_CONNECTIONS, 65_536, "");
        let pool = u64::from(crate::runtime::engine::POOL_INSTANCES);
        let max_instances = pick("max_instances", file.max_instances.map(u64::from), d::MAX_INSTANCES, pool, "");
        let min_body_rate_kib = pick("min_body_rate_kib", file.min_body_rate_kib, d::MIN_BODY_RATE_KIB, MIB, "");
        let max_pending_body_kib = pick("max_pending_body_kib", file.max_pending_body_kib, d::MAX_PENDING_BODY_KIB, 16 * MIB, "");
        let hour_ms = 3_600_000;
        let upstream_timeout = pick("upstream_timeout_ms", file.upstream_timeout_ms, d::UPSTREAM_TIMEOUT_MS, hour_ms, " ms");
        let header_timeout = pick("header_timeout_ms", file.header_timeout_ms, d::HEADER_TIMEOUT_MS, hour_ms, " ms");
        let idle_timeout = pick("idle_timeout_ms", file.idle_timeout_ms, d::IDLE_TIMEOUT_MS, hour_ms, " ms");
        let body_timeout = pick("body_timeout_ms", file.body_timeout_ms, d::BODY_TIMEOUT_MS, hour_ms, " ms");
        let max_mcp_message_bytes = pick("max_mcp_message_bytes", file.max_mcp_message_bytes, d::MAX_MCP_MESSAGE_BYTES, 64 * MIB, "");
        // The authorizers' own defaults (`ArgumentLimits`) apply when these are absent.
        let arguments_bytes = file.max_mcp_arguments_bytes.map(|n| pick("max_mcp_arguments_bytes", Some(n), 0, 64 * MIB, ""));
        let arguments_elements = file.max_mcp_arguments_elements.map(|n| pick("max_mcp_arguments_elements", Some(n), 0, 64 * MIB, ""));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(WorkloadLimits {
            max_body_bytes: max_body_kib * 1024,
            max_mcp_message_bytes: max_mcp_message_bytes as usize,
            arguments: ArgumentLimits::new(arguments_bytes, arguments_elements),
            upstream_timeout: Duration::from_millis(upstream_timeout),
            header_timeout: Duration::from_millis(header_timeout),
            idle_timeout: Duration::from_millis(idle_timeout),
            body_pace: BodyPace { timeout: Duration::from_millis(body_timeout), min_bytes_per_sec: min_body_rate_kib * 1024 },
            max_pending_body_bytes: max_pending_body_kib * 1024,
            max_connections: max_connections as usize,
            max_instances: max_instances as usize,
        })
    }
}
