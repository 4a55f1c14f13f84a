//! The admin listener's routes: liveness, readiness and Prometheus metrics.

pub mod metrics;

use crate::body::{ProxyBody, full};
use http::{Response, StatusCode, header};
use metrics::Metrics;

/// The admin route for `path` (the listener checked `Host` and `Origin`).
pub fn respond(path: &str, ready: bool, metrics: &Metrics) -> Response<ProxyBody> {
    let (status, content_type, body) = match path {
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/readyz" if ready => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n".to_owned()),
        "/metrics" => (StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", metrics.encode()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found\n".to_owned()),
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}
