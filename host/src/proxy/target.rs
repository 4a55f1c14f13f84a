//! The request target: which methods and paths reach a workload at all.
//!
//! The upstream is a base URL, possibly with a path (`http://host/api/team-a`),
//! and a client must never reach outside it: the path rule ([`crate::paths`],
//! shared with MCP resource URIs) refuses every path that a server could
//! resolve to somewhere else, so what a component sees is exactly what the
//! upstream gets, below the base path.

use super::error::GatewayError;
use crate::paths::path_problem;
use http::Method;
use http::request::Parts;

/// Refuses methods no MCP server or registry needs and that proxies get wrong,
/// and targets that are not a path.
pub fn check(parts: &Parts) -> Result<(), GatewayError> {
    // TRACE echoes the request (credentials included) back; CONNECT opens a tunnel.
    if parts.method == Method::TRACE || parts.method == Method::CONNECT {
        return Err(GatewayError::MethodNotAllowed);
    }
    let path = parts.uri.path();
    // Origin form (`/path`), or absolute form whose path is the same (HTTP/2
    // always gives an absolute URI). Asterisk form (`OPTIONS *`, whose path is
    // `*`) and authority form (empty path) are refused.
    if !path.starts_with('/') {
        return Err(GatewayError::BadTarget("the request target must be a path starting with `/`"));
    }
    if let Some(why) = path_problem(path) {
        return Err(GatewayError::BadTarget(why));
    }
    Ok(())
}
