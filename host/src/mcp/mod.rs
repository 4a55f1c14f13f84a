//! MCP-aware authorization: the gateway reads each POSTed JSON-RPC message
//! of an MCP workload once ([`message`]), asks the workload's authorizers
//! about every call that needs a decision ([`authorize`]), and removes from
//! list responses what the caller may not use ([`lists`], [`filter`], with
//! [`sse`] for streamed responses). None of it knows the proxy: the one place
//! the request path calls into MCP is [`crate::proxy::mcp_stage`]. See
//! docs/authorization.md.

pub mod annotations;
pub mod audit;
pub mod authorize;
pub mod filter;
pub mod lists;
pub mod message;
pub mod server_stream;
pub mod sse;
