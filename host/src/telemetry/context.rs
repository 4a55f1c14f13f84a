//! W3C trace context (`traceparent`, `tracestate`): continued from a client
//! the workload trusts, and always sent on to the upstream while exporting.
//!
//! Why trust is a switch: a public client choosing the trace id could join
//! its requests to someone else's trace, or pin every request to "sampled"
//! and raise the export load at will. Behind a proxy or mesh that sets the
//! header, continuing it is what makes one trace of the whole path.

use http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// Makes `span` (a new request's, not yet entered) continue the trace the
/// client's headers name. A missing or malformed `traceparent` leaves it a
/// new trace.
pub fn continue_from_client(span: &tracing::Span, headers: &HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    // An error here only says the span is not exported: nothing to continue.
    let _ = span.set_parent(parent);
}

/// Puts `span`'s trace context on a request toward the upstream, replacing
/// whatever the client sent (trusted or not, the upstream's parent is ours).
pub fn to_upstream(span: &tracing::Span, headers: &mut HeaderMap) {
    headers.remove(TRACEPARENT);
    headers.remove(TRACESTATE);
    TraceContextPropagator::new().inject_context(&span.context(), &mut HeaderInjector(headers));
}
