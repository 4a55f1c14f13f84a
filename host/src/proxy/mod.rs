//! The data plane.
//!
//! - [`server`]: one listener per workload (plain or TLS; HTTP/1.1 and HTTP/2),
//!   with a bounded lingering close ([`linger`]),
//!   connection limits, graceful drain on shutdown.
//! - [`pipeline`]: what happens to a request, in order — read this first.
//! - [`mcp_stage`]: the one place MCP touches the path (skip it to read the plain proxy).
//! - [`body_read`]: reading a body whole (an MCP message), bounded in bytes,
//!   time and what is held before the inbound chain decides.
//! - [`guard`]: `Host`/`Origin` checks against DNS rebinding, and `Sec-Fetch-Site` against cross-site requests.
//! - [`chain`]: the inbound chain and its rule; the only place an [`chain::Allowed`] is made.
//! - [`target`]: which methods and paths are accepted (nothing escapes the upstream's base path).
//! - [`headers`]: the gateway's header rules — framing, hop-by-hop, the identity
//!   namespace stripped before the chain, consumed credentials removed after it.
//! - [`resource_metadata`]: RFC 9728 metadata for OIDC-guarded workloads.
//! - [`routes`]: the routes a `[workloads.server]` component declares, answered by it.
//! - [`upstream`]: the forwarder (pooled client, hop-by-hop removal, `X-Forwarded-*`).
//! - [`error`]: every refusal and failure, mapped to a response in one place.
//! - [`request_id`]: the `X-Request-Id` each request carries upstream, back, and in the logs.
//! - [`workload`]: a workload's compiled runtime form.

pub mod body_read;
pub mod chain;
pub mod error;
pub mod guard;
pub mod headers;
pub mod linger;
pub mod mcp_stage;
pub mod pipeline;
pub mod request_id;
pub mod resource_metadata;
pub mod retry;
pub mod routes;
pub mod server;
pub mod target;
pub mod tls;
pub mod upstream;
pub mod workload;
