//! A workload's runtime form: everything the pipeline needs, built at policy load.

use super::body_read::BodyPace;
use super::chain::InboundChain;
use super::guard::RequestGuard;
use super::headers::HeaderRules;
use super::resource_metadata::ProtectedResource;
use super::server::ConnectionLimits;
use super::upstream::Upstream;
use crate::admin::metrics::WorkloadMetrics;
use crate::runtime::plugin::Plugin;
use std::net::SocketAddr;
use std::sync::Arc;

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
