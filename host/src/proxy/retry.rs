//! One more attempt when the upstream refuses an injected credential: the
//! injectors that export `retry` (a user's own upstream token,
//! `builtin:upstream-token`) are told of the 401 and may renew their
//! credential; the request is then sent once more with their edits. A
//! second 401 is told to them too, and the client gets their answer (a
//! challenge to log in again) or the upstream's 401. Never a third attempt.
//!
//! Only a request whose body can be sent again gets the second attempt: a
//! read MCP message, or none. A streamed body was given to the first
//! attempt; its 401 goes to the client as it is.

use super::chain::Allowed;
use super::error::GatewayError;
use super::server::ConnectionInfo;
use super::workload::Workload;
use crate::body::{ProxyBody, full};
use crate::runtime::request::RequestData;
use crate::runtime::verdict::{HeaderEdits, Injection};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use std::sync::Arc;

/// The request as it was sent, kept for a second attempt.
pub struct Again {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Again {
    /// Keeps what a second attempt needs, on a workload with an injector
    /// that exports `retry` and a body that can be sent again (`body`);
    /// `None` otherwise, at the cost of one check.
    pub fn keep(workload: &Workload, parts: &http::request::Parts, body: Option<Bytes>) -> Option<Again> {
        let body = body.filter(|_| workload.outbound.iter().any(|plugin| plugin.retries()))?;
        Some(Again { method: parts.method.clone(), uri: parts.uri.clone(), headers: parts.headers.clone(), body })
    }

    fn request(&self, headers: HeaderMap) -> Request<ProxyBody> {
        let mut request = Request::new(full(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = headers;
        request
    }
}

/// The upstream answered `refused` (401) to the request kept in `again`:
/// asks the injectors that renew their credential, and sends the request once
/// more with their edits. `view` is the request the injectors decided on.
pub async fn once(
    workload: &Workload,
    again: Again,
    mut view: RequestData,
    refused: Response<ProxyBody>,
    allowed: &Allowed,
    conn: &ConnectionInfo,
) -> Result<Response<ProxyBody>, GatewayError> {
    // The injectors see the request as it was sent: the credential the upstream refused.
    view.headers = again.headers.clone();
    let view = Arc::new(view);
    let Some(edits) = ask(workload, &view, false).await? else {
        return Ok(refused);
    };
    // The refused answer is not read: its connection is not reused.
    drop(refused);
    let mut headers = again.headers.clone();
    for renewed in &edits {
        renewed.apply(&mut headers);
    }
    tracing::debug!(workload = %workload.name, "the upstream refused an injected credential; sending the request once more with a renewed one");
    let response = workload.upstream.send(again.request(headers.clone()), allowed, conn, &view.authority).await?;
    if response.status() != StatusCode::UNAUTHORIZED {
        return Ok(response);
    }
    let mut view = RequestData::unshare(view);
    view.headers = headers;
    ask(workload, &Arc::new(view), true).await.map(|_| response)
}

/// Asks each injector that exports `retry`, in order: their edits for the
/// next attempt, `None` when none asked for one (nothing renewed), or the
/// first refusal.
async fn ask(workload: &Workload, view: &Arc<RequestData>, retried: bool) -> Result<Option<Vec<HeaderEdits>>, GatewayError> {
    let mut edits = Vec::new();
    for plugin in workload.outbound.iter().filter(|plugin| plugin.retries()) {
        match plugin.upstream_refused(view, retried).await.map_err(|fault| GatewayError::component_failed(&plugin.label.component, fault))? {
            Injection::Forward(renewed) if !renewed.is_empty() => edits.push(renewed),
            Injection::Forward(_) => {}
            Injection::Deny(deny) => return Err(GatewayError::Denied(Box::new(deny))),
        }
    }
    Ok((!edits.is_empty()).then_some(edits))
}
