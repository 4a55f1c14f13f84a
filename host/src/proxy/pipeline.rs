//! What happens to a request, in order. Each step can end the request with a
//! [`GatewayError`]; nothing reaches the upstream without an [`Allowed`] from
//! the inbound chain.
//!
//! [`Allowed`]: super::chain::Allowed

use super::body::{BoxError, ProxyBody};
use super::error::GatewayError;
use super::upstream::remove_hop_by_hop;
use super::view::{ConnectionInfo, apply_edits, request_view};
use super::workload::Workload;
use crate::admin::metrics::Metrics;
use crate::runtime::bindings::types::Injection;
use crate::runtime::plugin::FaultKind;
use http::request::Parts;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

/// Handles one request on `workload` and counts its outcome.
pub async fn handle(workload: &Workload, request: Request<Incoming>, conn: &ConnectionInfo, metrics: &Metrics) -> Response<ProxyBody> {
    match run(workload, request, conn).await {
        Ok(response) => {
            metrics.request(&workload.name, "forwarded");
            response
        }
        Err(error) => {
            metrics.request(&workload.name, error.reason());
            tracing::debug!(workload = %workload.name, reason = error.reason(), "request refused");
            error.into_response()
        }
    }
}

async fn run(workload: &Workload, request: Request<Incoming>, conn: &ConnectionInfo) -> Result<Response<ProxyBody>, GatewayError> {
    let (mut parts, body) = request.into_parts();

    // 1. The name the client used must be ours: this defeats DNS rebinding,
    //    where a hostile page reaches a loopback port under its own name.
    let authority = authority(&parts).ok_or(GatewayError::HostNotAllowed)?;
    if !workload.guard.host_allowed(&authority) {
        return Err(GatewayError::HostNotAllowed);
    }
    // 2. A browser's Origin, when present, must be one we accept.
    if !workload.guard.origin_allowed(&parts.headers) {
        return Err(GatewayError::OriginNotAllowed);
    }
    // 3. The protected-resource metadata is public (clients read it to learn
    //    where to get a token), so it is served before the chain.
    if let Some(resource) = workload.protected_resource.as_ref().filter(|r| r.serves(parts.uri.path())) {
        return Ok(resource.response(&parts.method));
    }
    // 4. A declared oversize body is refused before any component runs; an
    //    undeclared one is cut off by the `Limited` body below.
    if declared_length(&parts).is_some_and(|n| n > workload.max_body_bytes) {
        return Err(GatewayError::BodyTooLarge);
    }
    // 5. Hop-by-hop headers go now, so components see what the upstream will.
    remove_hop_by_hop(&mut parts.headers);

    // 6. The inbound chain decides. Its header edits (typically removing the
    //    credential the client presented) apply before anything else sees the request.
    let allowed = workload.inbound.decide(|| request_view(&workload.name, &parts, &authority, conn)).await?;
    apply_edits(&mut parts.headers, &allowed.edits).map_err(|_| bad_verdict(workload.inbound.plugins.first()))?;
    if let Some(identity) = &allowed.identity {
        tracing::debug!(workload = %workload.name, subject = %identity.subject, "request admitted");
    }

    // 7. Credential injectors, in order; each sees the edits of those before it.
    for plugin in &workload.outbound {
        let view = request_view(&workload.name, &parts, &authority, conn);
        let injection = plugin
            .inject(&view)
            .await
            .map_err(|fault| GatewayError::ComponentFailed { component: plugin.label.component.clone(), kind: fault.kind })?;
        match injection {
            Injection::Forward(edits) => apply_edits(&mut parts.headers, &edits).map_err(|_| bad_verdict(Some(plugin)))?,
            Injection::Deny(deny) => return Err(GatewayError::Denied(deny)),
        }
    }

    // 8. Forward, with the body streamed and capped.
    let body = Limited::new(body, workload.max_body_bytes as usize).map_err(|e| -> BoxError { e }).boxed();
    workload.upstream.forward(Request::from_parts(parts, body), allowed, conn, &authority).await
}

/// The request's authority: HTTP/2 `:authority` or HTTP/1.1 `Host`. Both present
/// and different is ambiguous and refused.
fn authority(parts: &Parts) -> Option<String> {
    let host = match parts.headers.get_all(header::HOST).iter().collect::<Vec<_>>().as_slice() {
        [] => None,
        [one] => Some(one.to_str().ok()?.to_owned()),
        _ => return None,
    };
    match (parts.uri.authority().map(|a| a.as_str().to_owned()), host) {
        (Some(uri), Some(host)) if !uri.eq_ignore_ascii_case(&host) => None,
        (Some(uri), _) => Some(uri),
        (None, host) => host,
    }
}

fn declared_length(parts: &Parts) -> Option<u64> {
    parts.headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The runtime checks every edit before returning a verdict, so this is only
/// reached if that check and `apply_edits` ever disagree: fail closed.
fn bad_verdict(plugin: Option<&std::sync::Arc<crate::runtime::plugin::Plugin>>) -> GatewayError {
    let component = plugin.map(|p| p.label.component.clone()).unwrap_or_else(|| "unknown".into());
    GatewayError::ComponentFailed { component, kind: FaultKind::BadVerdict }
}
