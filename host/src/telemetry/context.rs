//! W3C trace context (`traceparent`, `tracestate`): continued from a client
//! the workload trusts, and always sent on to the upstream while exporting.
//!
//! Why trust is a switch: a public client choosing the trace id could join
//! its requests to someone else's trace, or pin every request to "sampled"
//! and raise the export load at will. Behind a proxy or mesh that sets the
//! header, continuing it is what makes one trace of the whole path.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceState};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// Names made at compile time: a name given as text is parsed at each use.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The span the client's headers name, as a parent; a missing or malformed
/// `traceparent` gives an invalid one (a new trace).
pub fn from_client(headers: &HeaderMap) -> SpanContext {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers)).span().span_context().clone()
}

/// Puts `span` (the `upstream` span) on a request toward the upstream as
/// its parent, replacing whatever the client sent (trusted or not, the
/// upstream's parent is ours).
pub fn to_upstream(span: &SpanContext, headers: &mut HeaderMap) {
    headers.insert(TRACEPARENT, traceparent(span));
    let state = if *span.trace_state() == TraceState::NONE { None } else { Some(span.trace_state().header()) };
    // A trace state the SDK accepted is printable ASCII; one that is not is left out.
    match state.filter(|state| !state.is_empty()).and_then(|state| HeaderValue::try_from(state).ok()) {
        Some(state) => headers.insert(TRACESTATE, state),
        None => headers.remove(TRACESTATE),
    };
}

/// `traceparent` as W3C Trace Context's version 00 writes it:
/// `00-{trace id}-{span id}-{flags}` in lowercase hex. Written here from the
/// span itself, not by the SDK's propagator, which needs the span shared in
/// a context and formats through `fmt`: measured, a tenth of the export's
/// cost on the request's thread.
fn traceparent(span: &SpanContext) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
    let hex = |into: &mut [u8], bytes: &[u8]| {
        for (pair, byte) in into.chunks_exact_mut(2).zip(bytes) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0xf)];
        }
    };
    hex(&mut text[3..35], &span.trace_id().to_bytes());
    hex(&mut text[36..52], &span.span_id().to_bytes());
    if span.is_sampled() {
        text[54] = b'1';
    }
    HeaderValue::from_bytes(&text).expect("hex digits and dashes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId};

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
