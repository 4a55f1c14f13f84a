//! The request a component decides on (WIT `types.request`); the host side of
//! the resource is in [`super::capabilities::request`].
//!
//! The pipeline moves the request's headers into a [`RequestData`] behind an
//! `Arc` for the length of the chain, so a call hands the component a handle,
//! not a copy: a component that reads one header pays for one string. The
//! store holds the request of the call in flight in one slot
//! ([`super::state::HostState`]), and the handle the component gets is a
//! borrow that ends with the call.

use super::bindings::mcp::McpCall;
use super::bindings::types::Identity;
use http::{HeaderMap, Method, Uri};
use std::net::SocketAddr;
use std::sync::Arc;

/// What a component may read of a request.
#[derive(Debug, Clone)]
pub struct RequestData {
    pub method: Method,
    /// `http` or `https`.
    pub scheme: &'static str,
    pub authority: String,
    /// The request target; its path starts with `/` (the pipeline refuses other forms).
    pub uri: Uri,
    pub headers: HeaderMap,
    pub remote: SocketAddr,
    pub tls_client_identity: Option<String>,
    /// The calls of the request's JSON-RPC message (MCP workloads, POST);
    /// empty otherwise.
    pub mcp_calls: Vec<McpCall>,
    /// The body, read whole for a route a `serve` component declared; empty otherwise.
    pub body: bytes::Bytes,
    /// Who the inbound chain established, for the credential injectors'
    /// calls (`None` before the chain decided, and on an anonymous workload).
    pub identity: Option<Identity>,
}

impl RequestData {
    /// The view back from the components. Each call drops its reference
    /// before it returns, so this does not copy; should one ever linger, the
    /// headers are cloned.
    pub fn unshare(view: Arc<RequestData>) -> RequestData {
        Arc::unwrap_or_clone(view)
    }
}
