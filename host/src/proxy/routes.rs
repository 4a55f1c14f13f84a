//! The routes a `serve` component (`[workloads.server]`) declares, answered
//! by it: a generic mechanism, nothing here knows what the routes are for
//! (the embedded OAuth authorization server's metadata, token, ... routes).
//!
//! Why it stands where it does: the routes are public, like the
//! protected-resource metadata (a client uses them to get a token), so the
//! pipeline answers them right after admission, before the inbound chain,
//! and nothing they answer reaches the upstream.
//!
//! What the gateway keeps to itself:
//! - the paths: exact matches on what the component declared at load,
//!   checked there ([`Routes::new`]: one path once, no query, never the
//!   RFC 9728 metadata path the gateway serves nor the resource's own path);
//! - the methods: another gets 405 with `Allow`, before the component runs;
//! - the body: read whole for the component, at most [`MAX_ROUTE_BODY_BYTES`]
//!   (a declared larger one is refused with 413 before a byte is read), at the
//!   workload's body pace, and counted against the bytes the workload and the
//!   connection may hold before anyone is authenticated ([`super::body_read`]);
//! - the response's framing: its status must be a final one, the headers the
//!   gateway owns (hop-by-hop, `content-length`) are dropped, and it is not
//!   cached unless the component says how ([`check_response`]).

use super::body_read::{self, BodyPace, Budgets, Held, ReadError};
use super::error::GatewayError;
use super::headers::{HeaderRules, normalise_framing, remove_hop_by_hop};
use super::server::ConnectionInfo;
use crate::body::{ProxyBody, full};
use crate::runtime::bindings::server::exports::portcullis::auth::serve::{Response as ServeResponse, Route};
use crate::runtime::plugin::Plugin;
use crate::runtime::request::RequestData;
use crate::runtime::verdict::gateway_managed;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use hyper::body::Incoming;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The largest request body a route reads (64 KiB): an authorization
/// server's forms and JSON documents are a few KiB.
pub const MAX_ROUTE_BODY_BYTES: usize = 64 * 1024;

/// The most routes one server may declare.
const MAX_ROUTES: usize = 64;

/// A workload's server and the routes it answers.
pub struct Routes {
    server: Arc<Plugin>,
    mounted: HashMap<String, Mounted>,
    /// Route body bytes the workload holds across its connections
    /// (`limits.max_pending_body_kib`): nobody on a route is authenticated.
    held: Semaphore,
}

/// One route: its methods, and the `Allow` header that lists them.
#[derive(Debug)]
pub struct Mounted {
    methods: Vec<Method>,
    allow: HeaderValue,
}

impl Routes {
    /// Mounts the routes `server` declared, refusing (with why) a path that
    /// is not a plain absolute path, is declared twice or is `reserved` (which
    /// says whose it is), and a method that is not an upper-case token.
    pub fn new(server: Arc<Plugin>, reserved: impl Fn(&str) -> Option<&'static str>, held_bytes: usize) -> Result<Routes, String> {
        let mounted = mount(server.routes(), reserved)?;
        Ok(Routes { server, mounted, held: Semaphore::new(held_bytes.min(Semaphore::MAX_PERMITS)) })
    }

    /// The route mounted at exactly `path`, if any.
    pub fn find(&self, path: &str) -> Option<&Mounted> {
        self.mounted.get(path)
    }

    /// The server's component name (for errors and metrics).
    pub fn component(&self) -> &Arc<str> {
        &self.server.label.component
    }
}

/// The declared routes, checked, by path.
fn mount(declared: &[Route], reserved: impl Fn(&str) -> Option<&'static str>) -> Result<HashMap<String, Mounted>, String> {
    if declared.is_empty() {
        return Err("`serve.routes` declares no route".into());
    }
    if declared.len() > MAX_ROUTES {
        return Err(format!("`serve.routes` declares {} routes (at most {MAX_ROUTES})", declared.len()));
    }
    let mut mounted = HashMap::with_capacity(declared.len());
    for route in declared {
        let path = route.path.as_str();
        let plain = path.starts_with('/')
            && path.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'%' | b'\\'))
            && !path.split('/').any(|segment| segment == "." || segment == "..");
        if !plain {
            return Err(format!("the route {path:?} is not a plain absolute path (it starts with `/`; no query, fragment, escapes or dot segments)"));
        }
        if let Some(whose) = reserved(path) {
            return Err(format!("the route {path:?} is {whose}"));
        }
        if route.methods.is_empty() {
            return Err(format!("the route {path:?} declares no method"));
        }
        let mut methods: Vec<Method> = Vec::with_capacity(route.methods.len());
        for name in &route.methods {
            let method = Method::from_bytes(name.as_bytes())
                .ok()
                .filter(|_| name.bytes().all(|b| b.is_ascii_uppercase() || b == b'-'))
                .filter(|m| *m != Method::CONNECT && *m != Method::TRACE)
                .ok_or_else(|| format!("the route {path:?} declares the method {name:?} (use upper-case names such as `GET`, `POST`)"))?;
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
        let allow = HeaderValue::from_str(&methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")).expect("method names are header text");
        if mounted.insert(path.to_owned(), Mounted { methods, allow }).is_some() {
            return Err(format!("the route {path:?} is declared twice"));
        }
    }
    Ok(mounted)
}

/// Answers a request to `route`: the method checked, the body read within
/// its bounds (the workload's `pace`), the headers cleaned by the
/// workload's `rules`, the server asked, and its response checked.
pub async fn answer(
    routes: &Routes,
    route: &Mounted,
    request: http::Request<Incoming>,
    conn: &ConnectionInfo,
    authority: String,
    rules: &HeaderRules,
    pace: BodyPace,
) -> Result<Response<ProxyBody>, GatewayError> {
    let (mut parts, body) = request.into_parts();
    if !route.methods.contains(&parts.method) {
        return Err(GatewayError::RouteMethodNotAllowed(route.allow.clone()));
    }
    // The framing read once, as for any request; a declared oversize body
    // is refused before a byte of it is read or the component runs.
    let declared = normalise_framing(&mut parts.headers)?;
    if declared.is_some_and(|n| n > MAX_ROUTE_BODY_BYTES as u64) {
        return Err(GatewayError::BodyTooLarge);
    }
    remove_hop_by_hop(&mut parts.headers);
    // The client's proxy headers and identity headers mean nothing here either.
    rules.strip_untrusted(&mut parts.headers);
    let carries_body = declared.is_some_and(|n| n > 0) || !hyper::body::Body::is_end_stream(&body);
    // Held until the component has answered: the body is in its hands until then.
    let mut held = Held::new(Budgets { workload: &routes.held, connection: &conn.held_before_decision });
    let body = match carries_body {
        true => body_read::read_whole(body, MAX_ROUTE_BODY_BYTES, pace, Some(&mut held)).await.map_err(|e| match e {
            ReadError::TooLarge => GatewayError::BodyTooLarge,
            ReadError::TimedOut => GatewayError::BodyTimeout,
            ReadError::Busy => GatewayError::BodyBudgetSpent,
            ReadError::Broken => GatewayError::BadRequest("the body could not be read"),
        })?,
        false => Bytes::new(),
    };
    let view = Arc::new(RequestData {
        method: parts.method,
        scheme: conn.scheme,
        authority,
        uri: parts.uri,
        headers: parts.headers,
        remote: conn.remote,
        tls_client_identity: conn.tls_client_identity.clone(),
        mcp_calls: Vec::new(),
        body,
        identity: None,
    });
    let response = routes.server.serve(&view, check_response).await.map_err(|fault| GatewayError::component_failed(routes.component(), fault))?;
    drop(held);
    Ok(response)
}

/// A server's response, checked: a final status (200-599: a 1xx is not an
/// answer), valid headers, the ones the gateway owns dropped (hop-by-hop,
/// `content-length`, `x-request-id`), and `cache-control: no-store` unless it
/// set a `cache-control`. An error is the component's fault (answered 500).
pub fn check_response(response: ServeResponse) -> Result<Response<ProxyBody>, String> {
    if !(200..=599).contains(&response.status) {
        return Err(format!("a response with status {} (a route answers 200-599)", response.status));
    }
    let status = StatusCode::from_u16(response.status).map_err(|_| format!("a response with status {}", response.status))?;
    let mut headers = HeaderMap::with_capacity(response.headers.len() + 1);
    for h in response.headers {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| format!("a response with an invalid header name {:?}", h.name))?;
        let value = HeaderValue::from_str(&h.value).map_err(|_| format!("a response with an invalid value for header `{name}`"))?;
        if gateway_managed(&name) || name == super::request_id::HEADER {
            continue;
        }
        headers.append(name, value);
    }
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    let mut answer = Response::new(full(response.body));
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
