//! W3C trace context (`traceparent`, `tracestate`): continued from a client
//! the workload trusts, and always sent on to the upstream while exporting.
//!
//! Why trust is a switch: a public client choosing the trace id could join
//! its requests to someone else's trace, or pin every request to "sampled"
//! and raise the export load at will. Behind a proxy or mesh that sets the
//! header, continuing it is what makes one trace of the whole path.

use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The span the client's headers name, as a parent; a missing or malformed
/// `traceparent` gives an invalid one (a new trace).
pub fn from_client(headers: &HeaderMap) -> SpanContext {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers)).span().span_context().clone()
}

/// Puts `span` (the `upstream` span) on a request toward the upstream as
/// its parent, replacing whatever the client sent (trusted or not, the
/// upstream's parent is ours).
pub fn to_upstream(span: &SpanContext, headers: &mut HeaderMap) {
    headers.remove(TRACESTATE);
    headers.insert(TRACEPARENT, traceparent(span));
    let state = span.trace_state().header();
    if !state.is_empty() {
        // A trace state the SDK accepted is printable ASCII; one that is not is left out.
        if let Ok(state) = HeaderValue::try_from(state) {
            headers.insert(TRACESTATE, state);
        }
    }
}

/// `traceparent` as W3C Trace Context's version 00 writes it:
/// `00-{trace id}-{span id}-{flags}` in lowercase hex. Written here from the
/// span itself, not by the SDK's propagator, which needs the span shared in
/// a context and formats through `fmt`: measured, a tenth of the export's
/// cost on the request's thread.
fn traceparent(span: &SpanContext) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = Vec::with_capacity(55);
    text.extend_from_slice(b"00-");
    let hex = |text: &mut Vec<u8>, bytes: &[u8]| text.extend(bytes.iter().flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]));
    hex(&mut text, &span.trace_id().to_bytes());
    text.push(b'-');
    hex(&mut text, &span.span_id().to_bytes());
    text.extend_from_slice(if span.is_sampled() { b"-01" } else { b"-00" });
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).expect("hex digits and dashes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    #[test]
    fn traceparent_is_written_as_the_w3c_example() {
        // The example of W3C Trace Context, section 3.2.
        let trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let span = SpanId::from_hex("00f067aa0ba902b7").unwrap();
        let sampled = SpanContext::new(trace, span, TraceFlags::SAMPLED, false, TraceState::default());
        assert_eq!(traceparent(&sampled), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let not = SpanContext::new(trace, span, TraceFlags::default(), false, TraceState::default());
        assert_eq!(traceparent(&not), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    }
}
