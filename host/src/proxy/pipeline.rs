//! What happens to a request, in order. Each step can end the request with a
//! [`GatewayError`]; nothing reaches the upstream without an [`Allowed`] from
//! the inbound chain.
//!
//! [`Allowed`]: super::chain::Allowed

use super::error::GatewayError;
use super::guard;
use super::headers::{normalise_framing, remove_hop_by_hop};
use super::request_id;
use super::server::ConnectionInfo;
use super::target;
use super::workload::Workload;
use crate::body::ProxyBody;
use crate::mcp::stage::{self as mcp_stage, Answer, Message};
use crate::runtime::request::RequestData;
use crate::runtime::verdict::Injection;
use http::{HeaderMap, Request, Response, StatusCode};
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
    let carries_body = !hyper::body::Body::is_end_stream(request.body());
    let mut response = match run(workload, request, conn).instrument(span).await {
        Ok(response) => {
            workload.metrics.request("forwarded");
            response
        }
        Err(error) => {
            workload.metrics.request(error.reason());
            tracing::debug!(workload = %workload.name, reason = error.reason(), request_id = %request_id::text(&id), "request refused");
            // A refused body may be unread, or trickling in: whoever sends one
            // pays a new connection for the next, and keeps no slot.
            if carries_body {
                conn.close_after_response();
            }
            error.into_response()
        }
    };
    response.headers_mut().entry(request_id::HEADER).or_insert(id);
    response
}

async fn run(workload: &Workload, request: Request<Incoming>, conn: &ConnectionInfo) -> Result<Response<ProxyBody>, GatewayError> {
    let (mut parts, body) = request.into_parts();
    // 1. Admission on the request head alone: target, Host, Origin (`admit`).
    let authority = admit(workload, &parts)?;
    // 2. The protected-resource metadata is public (clients read it to learn
    //    where to get a token), so it is served before the chain.
    if let Some(resource) = workload.protected_resource.as_ref().filter(|r| r.serves(parts.uri.path())) {
        return Ok(resource.response(&parts.method));
    }
    // 3. One reading of the framing, and the headers the client may not set
    //    removed, so that components see exactly what the upstream will.
    let carries_body = clean_headers(workload, &mut parts, &body)?;
    // 4. The body is not read before the chain decides, so a caller without
    //    credentials cannot hold a connection or memory with it. The one
    //    exception: an MCP message, when an authenticator reads its calls.
    let mut message = Message::new(workload, &parts.method, body, carries_body);
    let (mcp_calls, held) = match workload.inbound.reads_mcp_calls() {
        true => message.read_first(workload, &parts.headers, conn).await?,
        false => (Vec::new(), None),
    };
    // 5. The inbound chain decides on a read-only view that holds the headers
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
    drop(held);
    // 6. MCP: the admitted caller's message, each of its calls decided by the authorizers.
    let (mut view, body, answer) = match &workload.mcp {
        Some(mcp) => mcp_stage::decide(workload, mcp, message, view, &allowed).await?,
        None => (RequestData::unshare(view), message.into_body(workload.max_body_bytes)?, Answer::Pass),
    };
    // 7. Consumed credentials go, whichever component allowed; then the allow's edits.
    workload.headers.remove_consumed(&mut view.headers);
    allowed.edits.apply(&mut view.headers);
    if let Some(identity) = &allowed.identity {
        tracing::debug!(workload = %workload.name, subject = ?identity.subject, "request admitted");
    }
    // 8. Credential injectors, in order; each sees the edits of those before it.
    for plugin in &workload.outbound {
        let shared = Arc::new(view);
        let injection = plugin.inject(&shared).await;
        view = RequestData::unshare(shared);
        match injection.map_err(|fault| GatewayError::ComponentFailed { component: plugin.label.component.clone(), kind: fault.kind })? {
            Injection::Forward(edits) => edits.apply(&mut view.headers),
            Injection::Deny(deny) => return Err(GatewayError::Denied(Box::new(deny))),
        }
    }
    // 9. Forward, with the body streamed and capped.
    parts.headers = std::mem::replace(&mut view.headers, HeaderMap::new());
    let response = workload.upstream.forward(Request::from_parts(parts, body), allowed, conn, &view.authority).await?;
    // 10. An upstream that refuses a logged-in credential gets the person an
    //     answer that names the command to run, not the registry's bare 401.
    if workload.outbound_logs_in && matches!(response.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(GatewayError::LoginRefused { status: response.status(), workload: workload.name.clone() });
    }
    // 11. MCP: a list comes back with only what the caller may use, and the
    //     server's own stream with no answer on it.
    mcp_stage::respond(answer, response).await
}

/// What is checked on the request line and `Host`/`Origin`, before anything
/// else reads the request; gives the authority the client used.
fn admit(workload: &Workload, parts: &http::request::Parts) -> Result<String, GatewayError> {
    // The method and target: a path that cannot leave the upstream's base
    // path, checked before anything reads it (components, the metadata route).
    target::check(parts)?;
    // The name the client used must be ours: this defeats DNS rebinding,
    // where a hostile page reaches a loopback port under its own name.
    let authority = guard::authority(parts).ok_or(GatewayError::HostNotAllowed)?;
    if !workload.guard.host_allowed(&authority) {
        return Err(GatewayError::HostNotAllowed);
    }
    // A browser's Origin, when present, must be one we accept, and a
    // cross-site request (`Sec-Fetch-Site`) must carry one.
    if !workload.guard.origin_allowed(&parts.headers) {
        return Err(GatewayError::OriginNotAllowed);
    }
    Ok(authority)
}

/// The headers as every component and the upstream will see them; says
/// whether the request carries a body.
fn clean_headers(workload: &Workload, parts: &mut http::request::Parts, body: &Incoming) -> Result<bool, GatewayError> {
    // One reading of the body's framing for everyone; a declared oversize
    // body is refused before any component runs, an undeclared one is cut
    // off by the capped body.
    let declared = normalise_framing(&mut parts.headers)?;
    if declared.is_some_and(|n| n > workload.max_body_bytes) {
        return Err(GatewayError::BodyTooLarge);
    }
    // Hop-by-hop headers, and the identity namespace (proxy headers,
    // whatever an inbound component produces).
    remove_hop_by_hop(&mut parts.headers);
    workload.headers.strip_untrusted(&mut parts.headers);
    workload.headers.check_credentials(&parts.headers)?;
    // HTTP/2 may send a body with neither header: ask the body itself.
    Ok(declared.is_some_and(|n| n > 0) || !hyper::body::Body::is_end_stream(body))
}
