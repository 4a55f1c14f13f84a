//! The request span: `proxy::pipeline::handle` starts it with what the
//! request line says, and finishes it with the answer.

use super::trace::{FixedAttributes, Span};
use http::{HeaderMap, Method, StatusCode};
use opentelemetry::trace::{SpanContext, SpanKind};
use std::sync::Arc;
use std::time::Instant;

/// A request being exported, from its start.
pub struct Exported<'a> {
    span: Span<'a>,
    started: Instant,
    method: Method,
}

/// Starts the export of a request (`None` when not exporting): a server
/// span, continuing the client's trace when `trust` (the workload's
/// `trust_trace_context`), a new trace otherwise. The request's stages run
/// in it ([`super::trace::InSpan`]), so that every child is in that trace.
/// `workload` is the workload's attributes (its name), encoded at load.
pub fn start<'a>(workload: &'a FixedAttributes, method: &Method, request_id: &str, headers: &HeaderMap, trust: bool) -> Option<Exported<'a>> {
    if !super::trace::exporting() {
        return None;
    }
    let parent = if trust { super::context::from_client(headers) } else { SpanContext::NONE };
    let mut span = Span::start("request", SpanKind::Server, &parent, workload)?;
    span.set("method", super::metrics::known_method(method).unwrap_or(method.as_str()));
    span.set("request_id", request_id);
    Some(Exported { span, started: Instant::now(), method: method.clone() })
}

impl<'a> Exported<'a> {
    pub fn span(&self) -> &Span<'a> {
        &self.span
    }

    /// The route of the workload's server that the path names.
    pub fn route(&mut self, path: &str) {
        self.span.set("route", path);
    }

    /// Ends the span with the answer, and records its duration in `http.server.request.duration`.
    pub fn finish(mut self, workload: &Arc<str>, scheme: &'static str, status: StatusCode, outcome: &'static str) {
        self.span.set("status", i64::from(status.as_u16()));
        self.span.set("outcome", outcome);
        self.span.end();
        super::metrics::request_duration(workload, &self.method, scheme, status, self.started.elapsed());
    }
}
