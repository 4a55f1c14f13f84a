//! The request span's export: what `proxy::pipeline::handle` adds to its
//! `request` span while exporting, at the start and at the end.

use http::{HeaderMap, Method, StatusCode};
use std::time::Instant;

/// A request being exported, from its start.
pub struct Exported {
    started: Instant,
    method: Method,
}

/// Starts the export of a request (`None` when not exporting): the span
/// becomes a server span, continuing the client's trace when `trust` (the
/// workload's `trust_trace_context`). Call it before the span is entered,
/// so that every child is in that trace.
pub fn start(span: &tracing::Span, headers: &HeaderMap, method: &Method, trust: bool) -> Option<Exported> {
    if !super::enabled() {
        return None;
    }
    span.record("otel.kind", "server");
    if trust {
        super::context::continue_from_client(span, headers);
    }
    Some(Exported { started: Instant::now(), method: method.clone() })
}

impl Exported {
    /// Records the answer on the span, and its duration in `http.server.request.duration`.
    /// Only while exporting: in the log the fields would cost a formatting each and say nothing new.
    pub fn finish(self, span: &tracing::Span, workload: &str, scheme: &'static str, status: StatusCode, outcome: &'static str) {
        span.record("status", i64::from(status.as_u16())).record("outcome", outcome);
        super::metrics::request_duration(workload, &self.method, scheme, status, self.started.elapsed());
    }
}
