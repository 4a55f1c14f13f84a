//! What happens to a request, in order. Each step can end the request with a
//! [`GatewayError`]; nothing reaches the upstream without an [`Allowed`] from
//! the inbound chain.
//!
//! [`Allowed`]: super::chain::Allowed

use super::body::ProxyBody;
use super::body::full;
use super::error::GatewayError;
use super::guard;
use super::headers::{normalise_framing, remove_hop_by_hop};
use super::request_id;
use super::server::ConnectionInfo;
use super::target;
use super::workload::Workload;
use crate::mcp::authorize::Refusal;
use crate::mcp::filter::ListFilter;
use crate::mcp::lists::ListRequest;
use crate::mcp::message;
use crate::runtime::request::RequestData;
use crate::runtime::verdict::Injection;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::sync::Arc;
use tracing::Instrument;

/// Handles one request on `workload` and counts its outcome. Everything logged
/// while it runs (by the gateway or by a component) carries its span: the
/// workload, the method and the request id, which also goes upstream and back
/// to the client as `X-Request-Id`.
pub async fn handle(workload: &Workload, mut request: Request<Incoming>, conn: &ConnectionInfo) -> Response<ProxyBody> {
    let id = request_id::assign(request.headers_mut(), workload.trust_request_id);
    let span = tracing::info_span!("request", workload = %workload.name, method = %request.method(), request_id = %request_id::text(&id));
    let mut response = match run(workload, request, conn).instrument(span).await {
        Ok(response) => {
            workload.metrics.request("forwarded");
            response
        }
        Err(error) => {
            workload.metrics.request(error.reason());
            tracing::debug!(workload = %workload.name, reason = error.reason(), request_id = %request_id::text(&id), "request refused");
            error.into_response()
        }
    };
    response.headers_mut().entry(request_id::HEADER).or_insert(id);
    response
}

async fn run(workload: &Workload, request: Request<Incoming>, conn: &ConnectionInfo) -> Result<Response<ProxyBody>, GatewayError> {
    let (mut parts, body) = request.into_parts();

    // 1. The method and target: a path that cannot leave the upstream's base
    //    path, checked before anything reads it (components, the metadata route).
    target::check(&parts)?;
    // 2. The name the client used must be ours: this defeats DNS rebinding,
    //    where a hostile page reaches a loopback port under its own name.
    let authority = guard::authority(&parts).ok_or(GatewayError::HostNotAllowed)?;
    if !workload.guard.host_allowed(&authority) {
        return Err(GatewayError::HostNotAllowed);
    }
    // 3. A browser's Origin, when present, must be one we accept.
    if !workload.guard.origin_allowed(&parts.headers) {
        return Err(GatewayError::OriginNotAllowed);
    }
    // 4. The protected-resource metadata is public (clients read it to learn
    //    where to get a token), so it is served before the chain.
    if let Some(resource) = workload.protected_resource.as_ref().filter(|r| r.serves(parts.uri.path())) {
        return Ok(resource.response(&parts.method));
    }
    // 5. One reading of the body's framing for everyone; a declared oversize
    //    body is refused before any component runs, an undeclared one is cut
    //    off by the `Limited` body below.
    let declared = normalise_framing(&mut parts.headers)?;
    if declared.is_some_and(|n| n > workload.max_body_bytes) {
        return Err(GatewayError::BodyTooLarge);
    }
    // HTTP/2 may send a body with neither header: ask the body itself.
    let carries_body = declared.is_some_and(|n| n > 0) || !hyper::body::Body::is_end_stream(&body);
    // 6. Headers the client may not set: hop-by-hop ones, and the identity
    //    namespace (proxy headers, whatever an inbound component produces).
    //    Components then see exactly what the upstream will.
    remove_hop_by_hop(&mut parts.headers);
    workload.headers.strip_untrusted(&mut parts.headers);
    workload.headers.check_credentials(&parts.headers)?;
    // 7. An MCP workload reads each POSTed JSON-RPC message once, bounded,
    //    before any component runs: components see its calls, authorizers
    //    decide them, and the headers that name them must agree with it. A
    //    message that fails these checks is refused after the inbound chain,
    //    so a caller without credentials learns nothing but 401.
    let (body, mcp_calls, bad_message) = match &workload.mcp {
        Some(mcp) if parts.method == Method::POST => {
            let limit = mcp.max_message_bytes.min(workload.max_body_bytes as usize);
            match read_message(body, limit).await.and_then(|bytes| {
                let mut calls = message::parse(&bytes).map_err(|e| GatewayError::BadMcpMessage(e.describe()))?;
                message::check_headers(&parts.headers, &calls).map_err(|e| GatewayError::BadMcpMessage(e.describe()))?;
                mcp.tools.fill(&mut calls);
                Ok((bytes, calls))
            }) {
                Ok((bytes, calls)) => (full(bytes), calls, None),
                Err(error) => (full(bytes::Bytes::new()), Vec::new(), Some(error)),
            }
        }
        // A message in a GET or DELETE body would reach the server unread.
        Some(_) if carries_body => (full(bytes::Bytes::new()), Vec::new(), Some(GatewayError::BadMcpMessage("only a POST may carry an MCP message"))),
        _ => (Limited::new(body, workload.max_body_bytes as usize).boxed(), Vec::new(), None),
    };

    // 8. The inbound chain decides on a read-only view that holds the headers
    //    (moved, not copied) for the length of the chain.
    let view = Arc::new(RequestData {
        method: parts.method.clone(),
        scheme: conn.scheme,
        authority,
        uri: parts.uri.clone(),
        headers: std::mem::take(&mut parts.headers),
        remote: conn.remote,
        tls_client_identity: conn.tls_client_identity.clone(),
        mcp_calls,
    });
    let allowed = workload.inbound.decide(&view).await?;
    if let Some(error) = bad_message {
        return Err(error);
    }
    // 9. The authorizers decide each MCP call as the caller the chain
    //    established; a list's response will be filtered the same way.
    let mut list_filter = None;
    if let Some(mcp) = workload.mcp.as_ref().filter(|m| !m.authorizers.is_empty()) {
        // A list in a batch could not be told from the batch's other answers.
        if view.mcp_calls.len() > 1 && view.mcp_calls.iter().any(|c| crate::mcp::lists::ListKind::of(&c.method).is_some()) {
            return Err(GatewayError::BadMcpMessage("a list method cannot be sent in a batch on this workload"));
        }
        mcp.authorizers.decide(&view, allowed.identity.as_ref(), &workload.name).await.map_err(|refusal| refused(workload, refusal))?;
        list_filter = ListRequest::of(&view.mcp_calls).map(|list| ListFilter {
            list,
            authorizers: mcp.authorizers.clone(),
            request: view.clone(),
            identity: allowed.identity.clone(),
            workload: workload.name.clone(),
            tools: mcp.tools.clone(),
        });
    }
    let mut view = take_back(view);
    if workload.mcp.as_ref().is_some_and(|m| !m.authorizers.is_empty()) {
        // A resumed stream (`Last-Event-ID`) would replay answers, lists
        // included, that were never filtered; a compressed list cannot be read.
        view.headers.remove("last-event-id");
        if list_filter.is_some() {
            view.headers.remove(http::header::ACCEPT_ENCODING);
        }
    }
    // 10. Consumed credentials go, whichever component allowed; then the allow's edits.
    workload.headers.remove_consumed(&mut view.headers);
    allowed.edits.apply(&mut view.headers);
    if let Some(identity) = &allowed.identity {
        tracing::debug!(workload = %workload.name, subject = ?identity.subject, "request admitted");
    }

    // 11. Credential injectors, in order; each sees the edits of those before it.
    for plugin in &workload.outbound {
        let shared = Arc::new(view);
        let injection = plugin.inject(&shared).await;
        view = take_back(shared);
        match injection.map_err(|fault| GatewayError::ComponentFailed { component: plugin.label.component.clone(), kind: fault.kind })? {
            Injection::Forward(edits) => edits.apply(&mut view.headers),
            Injection::Deny(deny) => return Err(GatewayError::Denied(Box::new(deny))),
        }
    }

    // 12. Forward, with the body streamed and capped.
    parts.headers = std::mem::replace(&mut view.headers, HeaderMap::new());
    let response = workload.upstream.forward(Request::from_parts(parts, body), allowed, conn, &view.authority).await?;
    // 13. An upstream that refuses a logged-in credential gets the person an
    //     answer that names the command to run, not the registry's bare 401.
    if workload.outbound_logs_in && matches!(response.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(GatewayError::LoginRefused { status: response.status(), workload: workload.name.clone() });
    }
    // 14. A list comes back with only what the caller may use.
    match list_filter {
        Some(filter) => filter.apply(response).await.map_err(|_| GatewayError::ListUnfilterable),
        None => Ok(response),
    }
}

/// Reads a whole MCP message of at most `limit` bytes.
async fn read_message(mut body: Incoming, limit: usize) -> Result<bytes::Bytes, GatewayError> {
    let mut message = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| GatewayError::BadRequest("the body could not be read"))?;
        if let Ok(data) = frame.into_data() {
            if message.len() + data.len() > limit {
                return Err(GatewayError::McpMessageTooLarge);
            }
            message.extend_from_slice(&data);
        }
    }
    Ok(message.freeze())
}

/// An authorizer's refusal as the client's answer.
fn refused(workload: &Workload, refusal: Refusal) -> GatewayError {
    match refusal {
        Refusal::Denied { id, reason } => GatewayError::Forbidden { id, reason },
        Refusal::StepUp { scopes } => {
            GatewayError::InsufficientScope { scopes, resource_metadata: workload.protected_resource.as_ref().map(|r| r.url.clone()) }
        }
        Refusal::Failed { component, kind } => GatewayError::ComponentFailed { component, kind },
    }
}

/// The view back from the components. Each call drops its reference before it
/// returns, so this does not copy; should one ever linger, the headers are cloned.
fn take_back(view: Arc<RequestData>) -> RequestData {
    Arc::unwrap_or_clone(view)
}
