//! Every way the gateway refuses or fails a request, and the response for each.
//!
//! One exhaustive match turns an error into a response, and `reason` gives the
//! metric label. Clients get a short, safe message; details (a component's trap
//! message, an upstream's socket error) go to the log only.

use crate::body::{ProxyBody, full, json};
use crate::runtime::plugin::{FaultKind, PluginFault};
use crate::runtime::verdict::Denial;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;
use std::sync::Arc;

#[derive(Debug)]
pub enum GatewayError {
    /// The `Host` is not one of the workload's (DNS-rebinding protection).
    HostNotAllowed,
    /// A browser `Origin` that is not allowed for this workload.
    OriginNotAllowed,
    /// `TRACE` or `CONNECT`.
    MethodNotAllowed,
    /// A method a server's route does not answer; the `Allow` value lists those it does.
    RouteMethodNotAllowed(HeaderValue),
    /// A request target that could leave the upstream's base path, or is not a path.
    BadTarget(&'static str),
    /// Malformed framing or credential headers.
    BadRequest(&'static str),
    /// The request body is over the workload's limit.
    BodyTooLarge,
    /// No component of the inbound chain admitted the request.
    Unauthenticated,
    /// A component refused the request with its own (checked) response.
    Denied(Box<Denial>),
    /// A component failed; the request is refused, never allowed. Made by
    /// [`GatewayError::component_failed`] alone.
    ComponentFailed { component: Arc<str>, kind: FaultKind },
    /// The upstream could not be reached or broke the connection.
    UpstreamUnavailable,
    /// The upstream did not start its response in time.
    UpstreamTimeout,
    /// The workload was removed by a reload while this listener drains.
    WorkloadGone,
    /// The upstream refused (401/403) the credential a login-based injector
    /// sent: the person must log in again.
    LoginRefused { status: StatusCode, workload: Arc<str> },
    /// A POST to an MCP workload that is not a usable JSON-RPC message, or
    /// whose `Mcp-Method`/`Mcp-Name` headers disagree with it.
    BadMcpMessage(&'static str),
    /// An MCP message over `limits.max_mcp_message_bytes`.
    McpMessageTooLarge,
    /// The body did not arrive within `limits.body_timeout_ms` at `limits.min_body_rate_kib`.
    BodyTimeout,
    /// The workload's budget for message bytes held before the inbound chain decides is spent.
    BodyBudgetSpent,
    /// An authorizer refused an MCP call: a JSON-RPC error for the client.
    Forbidden { id: Option<String>, reason: String },
    /// An authorizer wants more scopes (OAuth step-up).
    InsufficientScope { scopes: Vec<String>, resource_metadata: Option<String> },
    /// A list response that could not be filtered (too large, unreadable, or
    /// without the response to the list request) is not passed on unfiltered.
    ListUnfilterable,
}

impl GatewayError {
    /// Every label [`GatewayError::reason`] gives, `forwarded`, and `served`
    /// (answered by the workload's server on one of its routes): the request outcomes.
    pub const OUTCOMES: [&'static str; 22] = [
        "forwarded",
        "served",
        "host_not_allowed",
        "origin_not_allowed",
        "method_not_allowed",
        "bad_target",
        "bad_request",
        "body_too_large",
        "unauthenticated",
        "denied",
        "component_failed",
        "upstream_unavailable",
        "upstream_timeout",
        "workload_gone",
        "login_refused",
        "bad_mcp_message",
        "mcp_message_too_large",
        "body_timeout",
        "body_budget_spent",
        "forbidden",
        "insufficient_scope",
        "list_unfilterable",
    ];

    /// The one mapping from a component's failed call to the request's
    /// answer, whichever stage made the call (inbound chain, authorizers,
    /// injectors): refused with 500 or 503 by [`FaultKind`], naming the
    /// component. The fault's detail was logged where it happened (the
    /// `plugin.call` span) and never reaches the client.
    pub fn component_failed(component: &Arc<str>, fault: PluginFault) -> GatewayError {
        GatewayError::ComponentFailed { component: component.clone(), kind: fault.kind }
    }

    /// A fixed label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            GatewayError::HostNotAllowed => "host_not_allowed",
            GatewayError::OriginNotAllowed => "origin_not_allowed",
            GatewayError::MethodNotAllowed | GatewayError::RouteMethodNotAllowed(_) => "method_not_allowed",
            GatewayError::BadTarget(_) => "bad_target",
            GatewayError::BadRequest(_) => "bad_request",
            GatewayError::BodyTooLarge => "body_too_large",
            GatewayError::Unauthenticated => "unauthenticated",
            GatewayError::Denied(_) => "denied",
            GatewayError::ComponentFailed { .. } => "component_failed",
            GatewayError::UpstreamUnavailable => "upstream_unavailable",
            GatewayError::UpstreamTimeout => "upstream_timeout",
            GatewayError::WorkloadGone => "workload_gone",
            GatewayError::LoginRefused { .. } => "login_refused",
            GatewayError::BadMcpMessage(_) => "bad_mcp_message",
            GatewayError::McpMessageTooLarge => "mcp_message_too_large",
            GatewayError::BodyTimeout => "body_timeout",
            GatewayError::BodyBudgetSpent => "body_budget_spent",
            GatewayError::Forbidden { .. } => "forbidden",
            GatewayError::InsufficientScope { .. } => "insufficient_scope",
            GatewayError::ListUnfilterable => "list_unfilterable",
        }
    }

    pub fn into_response(self) -> Response<ProxyBody> {
        let code = self.reason();
        let (status, message) = match self {
            GatewayError::HostNotAllowed => (StatusCode::FORBIDDEN, "The Host header does not name this server.".to_owned()),
            GatewayError::OriginNotAllowed => (StatusCode::FORBIDDEN, "Requests from this Origin are not allowed.".to_owned()),
            GatewayError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "This method is not served.".to_owned()),
            GatewayError::RouteMethodNotAllowed(allow) => {
                let body = json!({ "error": code, "message": "This method is not served on this path." });
                let mut response = respond(StatusCode::METHOD_NOT_ALLOWED, json(&body));
                response.headers_mut().insert(header::ALLOW, allow);
                return response;
            }
            GatewayError::BadTarget(why) => (StatusCode::BAD_REQUEST, format!("The request path is not accepted: {why}.")),
            GatewayError::BadRequest(why) => (StatusCode::BAD_REQUEST, format!("The request is malformed: {why}.")),
            GatewayError::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "The request body is too large.".to_owned()),
            GatewayError::Unauthenticated => (StatusCode::UNAUTHORIZED, "No credential this server accepts was presented.".to_owned()),
            GatewayError::Denied(deny) => return denied(*deny),
            GatewayError::ComponentFailed { component, kind } => {
                let status = match kind {
                    FaultKind::Deadline | FaultKind::MemoryLimit | FaultKind::Instantiate => StatusCode::SERVICE_UNAVAILABLE,
                    FaultKind::Trap | FaultKind::BadVerdict => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let body = json!({
                    "error": "component_failed",
                    "component": &*component,
                    "reason": kind.label(),
                    "message": format!("The auth component `{component}` failed ({}); the request was refused.", kind.label()),
                });
                return respond(status, json(&body));
            }
            GatewayError::UpstreamUnavailable => (StatusCode::BAD_GATEWAY, "The upstream server could not be reached.".to_owned()),
            GatewayError::UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, "The upstream server did not answer in time.".to_owned()),
            GatewayError::WorkloadGone => (StatusCode::SERVICE_UNAVAILABLE, "This workload is no longer served.".to_owned()),
            GatewayError::LoginRefused { status, workload } => (
                status,
                format!("The upstream refused the gateway's credentials (HTTP {}). Run 'portcullis login {workload}' to authenticate again.", status.as_u16()),
            ),
            GatewayError::BadMcpMessage(why) => (StatusCode::BAD_REQUEST, format!("The MCP message is not accepted: {why}.")),
            GatewayError::McpMessageTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "The MCP message is larger than this workload reads.".to_owned()),
            GatewayError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "The request body did not arrive in time.".to_owned()),
            GatewayError::BodyBudgetSpent => (StatusCode::SERVICE_UNAVAILABLE, "Too many requests are being read; try again shortly.".to_owned()),
            GatewayError::Forbidden { id, reason } => return forbidden(id, &reason),
            GatewayError::InsufficientScope { scopes, resource_metadata } => return insufficient_scope(&scopes, resource_metadata.as_deref()),
            GatewayError::ListUnfilterable => (
                StatusCode::BAD_GATEWAY,
                "The server's answer to the list could not be filtered (too large, unreadable, or not the list's response), so it is not passed on.".to_owned(),
            ),
        };
        respond(status, json(&json!({ "error": code, "message": message })))
    }
}

/// JSON-RPC error code of a call an authorizer refused (MCP leaves server
/// errors in -32000..-32099 to implementations).
pub const FORBIDDEN_CODE: i64 = -32003;

/// 403 with a JSON-RPC error answering the refused call, so an MCP client shows `reason`.
fn forbidden(id: Option<String>, reason: &str) -> Response<ProxyBody> {
    let id: serde_json::Value = id.and_then(|id| serde_json::from_str(&id).ok()).unwrap_or(serde_json::Value::Null);
    let body = json!({ "jsonrpc": "2.0", "id": id, "error": { "code": FORBIDDEN_CODE, "message": reason } });
    respond(StatusCode::FORBIDDEN, json(&body))
}

/// 403 `insufficient_scope` (RFC 6750, MCP authorization SEP-835): the
/// client asks for `scopes` and retries. The scopes were checked to be scope
/// tokens, so they cannot break out of the quoted string.
fn insufficient_scope(scopes: &[String], resource_metadata: Option<&str>) -> Response<ProxyBody> {
    let scope = scopes.join(" ");
    let mut challenge = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
    if let Some(url) = resource_metadata {
        challenge.push_str(&format!(", resource_metadata=\"{url}\""));
    }
    let body = json!({ "error": "insufficient_scope", "message": format!("This call needs the scope(s) {scope}."), "scope": scope });
    let mut response = respond(StatusCode::FORBIDDEN, json(&body));
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn respond(status: StatusCode, body: ProxyBody) -> Response<ProxyBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A component's deny, already checked by the runtime (status 400-599, valid headers).
fn denied(deny: Denial) -> Response<ProxyBody> {
    let mut response = Response::new(full(deny.body));
    *response.status_mut() = deny.status;
    *response.headers_mut() = deny.headers;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_a_counted_outcome() {
        let all = [
            GatewayError::HostNotAllowed,
            GatewayError::OriginNotAllowed,
            GatewayError::MethodNotAllowed,
            GatewayError::RouteMethodNotAllowed(HeaderValue::from_static("GET")),
            GatewayError::BadTarget(""),
            GatewayError::BadRequest(""),
            GatewayError::BodyTooLarge,
            GatewayError::Unauthenticated,
            GatewayError::ComponentFailed { component: "c".into(), kind: FaultKind::Trap },
            GatewayError::UpstreamUnavailable,
            GatewayError::UpstreamTimeout,
            GatewayError::WorkloadGone,
            GatewayError::LoginRefused { status: StatusCode::UNAUTHORIZED, workload: "w".into() },
            GatewayError::BadMcpMessage(""),
            GatewayError::McpMessageTooLarge,
            GatewayError::BodyTimeout,
            GatewayError::BodyBudgetSpent,
            GatewayError::Forbidden { id: None, reason: String::new() },
            GatewayError::InsufficientScope { scopes: Vec::new(), resource_metadata: None },
            GatewayError::ListUnfilterable,
        ];
        for error in &all {
            assert!(GatewayError::OUTCOMES.contains(&error.reason()), "{}", error.reason());
        }
        assert!(GatewayError::OUTCOMES.contains(&"denied"));
    }
}
