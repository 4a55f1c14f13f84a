//! What happens to a request, in order. Each stage can end the request with a
//! [`GatewayError`]; nothing reaches the upstream without an [`Allowed`] from
//! the inbound chain. The routes a workload's server declares ([`routes`])
//! are answered by it after admission and never forwarded.

use super::chain::Allowed;
use super::error::GatewayError;
use super::guard;
use super::headers::{normalise_framing, remove_hop_by_hop};
use super::mcp_stage::{self, Message, UpstreamBody};
use super::request_id;
use super::retry;
use super::routes;
use super::server::ConnectionInfo;
use super::target;
use super::workload::Workload;
use crate::body::ProxyBody;
use crate::runtime::bindings::mcp::McpCall;
use crate::runtime::request::RequestData;
use crate::runtime::verdict::Injection;
use crate::telemetry::trace::{FixedAttributes, InSpan, Span};
use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use opentelemetry::trace::SpanKind;
use std::sync::Arc;
use tracing::Instrument;

/// Handles one request on `workload` and counts its outcome. Everything logged
/// while it runs (by the gateway or by a component) carries its span: the
/// workload, the method and the request id, which also goes upstream and back
/// to the client as `X-Request-Id`. While exporting, the request has a span of
/// its own in the trace ([`crate::telemetry::request`]).
pub async fn handle(workload: &Workload, mut request: Request<Incoming>, conn: &ConnectionInfo) -> Response<ProxyBody> {
    let id = request_id::assign(request.headers_mut(), workload.trust_request_id);
    let span = tracing::info_span!("request", workload = %workload.name, method = %request.method(), request_id = %request_id::text(&id));
    let mut exported =
        crate::telemetry::request::start(&workload.span_attributes, request.method(), request_id::text(&id), request.headers(), workload.trust_trace_context);
    if let Some(exported) = &mut exported {
        // A path that a route of the workload's server declares (matched exactly).
        let path = request.uri().path();
        if workload.routes.as_ref().is_some_and(|routes| routes.find(path).is_some()) {
            exported.route(path);
        }
    }
    let carries_body = !hyper::body::Body::is_end_stream(request.body());
    let http1 = request.version() < http::Version::HTTP_2;
    let ran = InSpan::new(exported.as_ref().map(|e| e.span()), run(workload, request, conn)).instrument(span);
    let (mut response, outcome) = match ran.await {
        Ok((response, outcome)) => (response, outcome),
        Err(error) => {
            tracing::debug!(workload = %workload.name, reason = error.reason(), request_id = %request_id::text(&id), "request refused");
            // A refused body may be unread, or trickling in: whoever sends one
            // pays a new connection for the next, and keeps no slot.
            // HTTP/1.1 says so on the answer, so the client does not send its
            // next request on a connection that is closing (HTTP/2: GOAWAY).
            let reason = error.reason();
            let mut response = error.into_response();
            if carries_body {
                conn.close_after_response();
                if http1 {
                    response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                }
            }
            (response, reason)
        }
    };
    workload.metrics.request(outcome);
    if let Some(exported) = exported {
        exported.finish(&workload.name, conn.scheme, response.status(), outcome);
    }
    response.headers_mut().entry(request_id::HEADER).or_insert(id);
    response
}

/// The request path, as its stages in order. Each stage is a function below
/// that says why it stands where it does; the MCP stages ([`mcp_stage`]) do
/// nothing on a workload that is not MCP, so a reader of the plain proxy can
/// skip them. Gives the response and its outcome (`forwarded`, or `served`
/// by the workload's server).
async fn run(workload: &Workload, request: Request<Incoming>, conn: &ConnectionInfo) -> Result<(Response<ProxyBody>, &'static str), GatewayError> {
    let (mut parts, body) = request.into_parts();
    // 1. Admit, on the request head alone. The protected-resource metadata is
    //    public (clients read it to learn where to get a token): served before
    //    any credential header is looked at.
    let authority = admit(workload, &parts)?;
    // 1b. The workload's server's routes (an authorization server's token
    //     endpoint, ...): public too, answered by the server, never forwarded.
    //     Before the Origin check: a login is a cross-site navigation by
    //     nature (the client's redirect to `/authorize`, the identity
    //     provider's back to the callback), protected by OAuth's own `state`
    //     and PKCE; the Host check above still holds.
    if let Some((routes, route)) = workload.routes.as_ref().and_then(|routes| Some((routes, routes.find(parts.uri.path())?))) {
        // The path is one the server declared (matched exactly), not the client's text.
        let path = parts.uri.path();
        let mut exported = Span::child("server.route", SpanKind::Internal, FixedAttributes::none());
        if let Some(exported) = &mut exported {
            exported.set("route", path);
        }
        let request = Request::from_parts(parts, body);
        // Boxed, as the stages below that not every request takes: the request's
        // future stays small, and small futures are cheap to move.
        let answering = Box::pin(routes::answer(routes, route, request, conn, authority, &workload.headers, workload.body_pace));
        let answered = InSpan::new(exported.as_ref(), answering).await;
        if let Some(exported) = exported {
            exported.end();
        }
        return answered.map(|response| (response, "served"));
    }
    check_origin(workload, &parts)?;
    if let Some(resource) = workload.protected_resource.as_ref().filter(|r| r.serves(parts.uri.path())) {
        return Ok((resource.response(&parts.method), "forwarded"));
    }
    let carries_body = clean_headers(workload, &mut parts, &body)?;
    // 2. MCP read. The body waits for the chain, so a caller without
    //    credentials cannot hold a connection or memory with it; it is read
    //    first only for an authenticator that decides on the MCP calls.
    let mut message = Message::new(workload, &parts.method, body, carries_body);
    let (mcp_calls, held) = message.read_first(workload, &parts.headers, conn).await?;
    // 3. The inbound chain decides who is calling; the bytes read first
    //    count against the budgets (`held`) until it has.
    let view = Arc::new(view(&mut parts, conn, authority, mcp_calls));
    let allowed = workload.inbound.decide(&view).await?;
    drop(held);
    // 4. MCP authorize: each call of the admitted caller's message.
    let (view, body, answer) = mcp_stage::decide(workload, message, view, &allowed).await?;
    // 5. Outbound: consumed credentials out, the allow's edits and the injectors' in.
    let view = outbound(workload, view, &allowed).await?;
    // 6. Upstream: forwarded with the proof the chain allowed.
    let response = upstream(workload, parts, view, body, allowed, conn).await?;
    // 7. MCP respond: a list filtered, the server's own stream kept clean.
    mcp_stage::respond(answer, response).await.map(|response| (response, "forwarded"))
}

/// Admission: what is checked on the request line and `Host`, before
/// anything else reads the request (a component, the metadata route); gives
/// the authority the client used.
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
    Ok(authority)
}

/// A browser's Origin, when present, must be one we accept, and a
/// cross-site request (`Sec-Fetch-Site`) must carry one: a hostile page
/// cannot drive the MCP server with the user's browser.
fn check_origin(workload: &Workload, parts: &http::request::Parts) -> Result<(), GatewayError> {
    if !workload.guard.origin_allowed(&parts.headers) {
        return Err(GatewayError::OriginNotAllowed);
    }
    Ok(())
}

/// The headers as every component and the upstream will see them, cleaned
/// before the first component runs; says whether the request carries a body.
/// After the metadata route, which a credential header must not break.
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

/// The read-only view every component decides on. The headers are moved, not
/// copied, for the length of the chain; they go back into `parts` upstream.
fn view(parts: &mut http::request::Parts, conn: &ConnectionInfo, authority: String, mcp_calls: Vec<McpCall>) -> RequestData {
    RequestData {
        method: parts.method.clone(),
        scheme: conn.scheme,
        authority,
        uri: parts.uri.clone(),
        headers: std::mem::take(&mut parts.headers),
        remote: conn.remote,
        tls_client_identity: conn.tls_client_identity.clone(),
        mcp_calls,
        body: bytes::Bytes::new(),
        identity: None,
    }
}

/// After every decision on the caller: the credentials the chain consumed
/// go (whichever component allowed), then the allow's edits apply, then the
/// credential injectors run in order, each seeing the edits of those before
/// it. An injector's deny refuses the request.
async fn outbound(workload: &Workload, mut view: RequestData, allowed: &Allowed) -> Result<RequestData, GatewayError> {
    workload.headers.remove_consumed(&mut view.headers);
    allowed.edits.apply(&mut view.headers);
    if let Some(identity) = &allowed.identity {
        tracing::debug!(workload = %workload.name, subject = ?identity.subject, "request admitted");
    }
    // The injectors act for the caller the chain established (a user's own upstream token).
    if !workload.outbound.is_empty() {
        view.identity = allowed.identity.clone();
    }
    for plugin in &workload.outbound {
        let shared = Arc::new(view);
        let injection = plugin.inject(&shared).await;
        view = RequestData::unshare(shared);
        match injection.map_err(|fault| GatewayError::component_failed(&plugin.label.component, fault))? {
            Injection::Forward(edits) => edits.apply(&mut view.headers),
            Injection::Deny(deny) => return Err(GatewayError::Denied(Box::new(deny))),
        }
    }
    Ok(view)
}

/// Forwards the request, its body streamed and capped. The forwarder takes
/// the [`Allowed`] only the inbound chain makes, so no path reaches here
/// unchecked. An upstream that refuses an injected credential is handled by
/// the injectors that renew theirs ([`retry`]: once, never in a loop). An
/// upstream that refuses a logged-in credential gets the person an answer
/// that names the command to run, not the registry's bare 401.
async fn upstream(
    workload: &Workload,
    mut parts: http::request::Parts,
    mut view: RequestData,
    body: UpstreamBody,
    allowed: Allowed,
    conn: &ConnectionInfo,
) -> Result<Response<ProxyBody>, GatewayError> {
    parts.headers = std::mem::replace(&mut view.headers, HeaderMap::new());
    // Kept only where an injector may ask to send the request again.
    let again = retry::Again::keep(workload, &parts, body.again);
    let response = workload.upstream.send(Request::from_parts(parts, body.body), &allowed, conn, &view.authority).await?;
    let response = match again {
        Some(again) if response.status() == StatusCode::UNAUTHORIZED => Box::pin(retry::once(workload, again, view, response, &allowed, conn)).await?,
        _ => response,
    };
    if workload.outbound_logs_in && matches!(response.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(GatewayError::LoginRefused { status: response.status(), workload: workload.name.clone() });
    }
    Ok(response)
}
