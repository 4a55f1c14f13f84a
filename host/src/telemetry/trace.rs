//! The exported spans: `request` (the root, or a trusted client's span's
//! child), and below it `plugin.call`, `upstream` and `server.route` (whose
//! component calls are its own children).
//!
//! Why recorded here and not with the SDK's tracer: first through the log's
//! `tracing` spans and a bridge layer, then with the SDK's `Span`, each
//! exported span cost more than the 10 % of a request's work that export
//! may take (docs/benchmarks.md, "Telemetry overhead"). The SDK's span is a
//! builder, a sampler's verdict with its own attributes and trace state, a
//! span shared in a context behind a lock, and a 400-byte record moved to
//! the processor. Here a span is its ids, two clock reads and the
//! attributes the request already holds, encoded where it ends
//! ([`super::span_export`]). What the SDK defines is kept: its id generator,
//! its W3C propagator ([`super::context`]), and its ratio sampler's rule
//! ([`Sampling`]).
//!
//! A child finds its parent as the current span: the future that runs below
//! a span is wrapped in [`InSpan`], which makes the span's context current
//! at each poll, as `tracing`'s `instrument` does for the log's spans.

pub use super::otlp::{AttributeValue, FixedAttributes};
use super::record::Record;
use super::span_export::SpanBatches;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::SystemTime;

static EXPORT: OnceLock<Exporting> = OnceLock::new();

/// Room for a span's own attributes, encoded: a request's method, id,
/// route, status and outcome take about 130 bytes.
const ATTRIBUTES: usize = 160;

struct Exporting {
    spans: Arc<SpanBatches>,
    sampling: Sampling,
}

/// Turns span export on (once, at start).
pub(super) fn install(spans: Arc<SpanBatches>, sampling_ratio: f64) {
    let _ = EXPORT.set(Exporting { spans, sampling: Sampling::ratio(sampling_ratio) });
}

/// Whether spans are exported: for work done before a span starts (reading
/// the client's trace context), which is skipped when not.
pub fn exporting() -> bool {
    EXPORT.get().is_some()
}

thread_local! {
    /// The context of the span whose work this thread is polling ([`InSpan`]).
    static CURRENT: RefCell<Option<SpanContext>> = const { RefCell::new(None) };
}

/// A span being exported. It ends, and is exported if sampled, when dropped:
/// at [`Span::end`], or with a request whose client went away. Unsampled, it
/// still has ids, which go upstream in `traceparent` with the flag unset.
pub struct Span<'a> {
    record: Record<'a>,
}

impl<'a> Span<'a> {
    /// Starts a span below `parent` (an invalid context: a new trace) with
    /// the `fixed` attributes of the workload or component it is about;
    /// `None` when not exporting. Its own attributes are [`Span::set`].
    pub fn start(name: &'static str, kind: SpanKind, parent: &SpanContext, fixed: &'a FixedAttributes) -> Option<Span<'a>> {
        let export = EXPORT.get()?;
        let ids = RandomIdGenerator::default();
        let (context, parent_id) = if parent.is_valid() {
            (SpanContext::new(parent.trace_id(), ids.new_span_id(), parent.trace_flags(), false, parent.trace_state().clone()), parent.span_id())
        } else {
            let trace_id = ids.new_trace_id();
            let flags = if export.sampling.samples(trace_id) { TraceFlags::SAMPLED } else { TraceFlags::default() };
            (SpanContext::new(trace_id, ids.new_span_id(), flags, false, TraceState::NONE), SpanId::INVALID)
        };
        // An unsampled span is never exported: its ids go upstream, nothing else is kept.
        let sampled = context.is_sampled();
        let now = if sampled { SystemTime::now() } else { SystemTime::UNIX_EPOCH };
        Some(Span {
            record: Record {
                context,
                parent: parent_id,
                parent_is_remote: parent.is_remote(),
                name,
                kind,
                start: now,
                end: now,
                fixed: fixed.encoded(),
                attributes: if sampled { Vec::with_capacity(ATTRIBUTES) } else { Vec::new() },
            },
        })
    }

    /// Starts a span below the current one ([`InSpan`]).
    pub fn child(name: &'static str, kind: SpanKind, fixed: &'a FixedAttributes) -> Option<Span<'a>> {
        EXPORT.get()?;
        CURRENT.with_borrow(|current| Span::start(name, kind, current.as_ref().unwrap_or(&SpanContext::NONE), fixed))
    }

    /// Adds an attribute, encoded now (if sampled): the value is borrowed, not kept.
    pub fn set<'v>(&mut self, key: &'static str, value: impl Into<AttributeValue<'v>>) {
        if self.record.context.is_sampled() {
            super::otlp::attribute(&mut self.record.attributes, key, value.into());
        }
    }

    /// Its trace id, id and sampled flag, for the upstream's `traceparent`.
    pub fn span_context(&self) -> &SpanContext {
        &self.record.context
    }

    pub fn end(self) {}
}

impl Drop for Span<'_> {
    fn drop(&mut self) {
        if !self.record.context.is_sampled() {
            return;
        }
        if let Some(export) = EXPORT.get() {
            self.record.end = SystemTime::now();
            export.spans.end(&self.record);
        }
    }
}

/// Which new traces are sampled: those whose trace id's lower 63 bits fall
/// under the ratio's share, the rule of the SDK's `TraceIdRatioBased` (so a
/// trace sampled by another service at the same ratio is sampled here too).
/// A span with a parent follows the parent's flag.
struct Sampling {
    /// Sampled when the id's bits are below; `None`: always.
    below: Option<u64>,
}

impl Sampling {
    fn ratio(ratio: f64) -> Sampling {
        Sampling { below: (ratio < 1.0).then(|| (ratio.max(0.0) * (1u64 << 63) as f64) as u64) }
    }

    fn samples(&self, trace_id: TraceId) -> bool {
        let Some(below) = self.below else { return true };
        let low = u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().expect("8 bytes"));
        (low >> 1) < below
    }
}

pin_project_lite::pin_project! {
    /// `inner`, polled with `span`'s context current; without a span (not
    /// exporting) only `inner`, at the cost of one branch per poll.
    pub struct InSpan<F> {
        #[pin]
        inner: F,
        cx: Option<SpanContext>,
    }
}

impl<F> InSpan<F> {
    pub fn new(span: Option<&Span<'_>>, inner: F) -> Self {
        InSpan { inner, cx: span.map(|span| span.record.context.clone()) }
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.cx.is_none() {
            return this.inner.poll(task);
        }
        // The span's context moves in for the poll and back out after it,
        // even if `inner` panics; spans nest, so the one before comes back.
        struct Restore<'a> {
            cx: &'a mut Option<SpanContext>,
            before: Option<SpanContext>,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                *self.cx = CURRENT.replace(self.before.take());
            }
        }
        let before = CURRENT.replace(this.cx.take());
        let _restore = Restore { cx: this.cx, before };
        this.inner.poll(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_samples_its_share_of_new_traces_as_the_sdk_rule_says() {
        let ids = RandomIdGenerator::default();
        let share = |ratio: f64| {
            let sampling = Sampling::ratio(ratio);
            (0..20_000).filter(|_| sampling.samples(ids.new_trace_id())).count() as f64 / 20_000.0
        };
        assert_eq!(share(1.0), 1.0);
        assert_eq!(share(0.0), 0.0);
        let tenth = share(0.1);
        assert!((0.08..0.12).contains(&tenth), "{tenth}");
        // The rule itself: the lower 63 bits against the ratio's share of 2^63.
        let half = Sampling::ratio(0.5);
        assert!(half.samples(TraceId::from(u128::from(u64::MAX >> 2) << 1)));
        assert!(!half.samples(TraceId::from(u128::from(u64::MAX >> 1) << 1)));
        assert!(half.samples(TraceId::from(u128::MAX << 64)), "the upper bits do not count");
    }
}
