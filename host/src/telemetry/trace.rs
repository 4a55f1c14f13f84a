//! The exported spans, built with the OpenTelemetry SDK directly: `request`
//! (the root, or a trusted client's span's child), and below it
//! `plugin.call`, `upstream` and `server.route` (whose component calls are
//! its own children).
//!
//! Why not the log's `tracing` spans through a bridge layer, as at first:
//! every span then went through the subscriber's registry, the bridge's
//! callbacks and a visitor that formatted each field, whatever the log
//! level; exporting cost a third of the proxy's throughput. Built here from
//! what the request already holds (names as shared strings, fixed labels),
//! a span is a few allocations (docs/benchmarks.md, "Telemetry overhead").
//! The log keeps its own spans, untouched by export.
//!
//! A child finds its parent as OpenTelemetry's current context: the future
//! that runs below a span is wrapped in [`InSpan`], which makes the span's
//! context current at each poll, as `tracing`'s `instrument` does for the
//! log's spans.

use opentelemetry::trace::{Span as _, SpanContext, SpanKind, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::SdkTracer;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::Poll;

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Turns span export on (once, at start).
pub(super) fn install(tracer: SdkTracer) {
    let _ = TRACER.set(tracer);
}

/// Whether spans are exported: for work done before a span starts (reading
/// the client's trace context), which is skipped when not.
pub fn exporting() -> bool {
    TRACER.get().is_some()
}

/// A span being exported that has children (`request`, `server.route`), in
/// the context they start in. It ends at [`Span::end`], or when dropped (a
/// request whose client went away).
pub struct Span {
    cx: Context,
}

impl Span {
    /// Starts a span below `parent`; `None` when not exporting, and then
    /// `attributes` is not called.
    pub fn start(name: &'static str, kind: SpanKind, parent: &Context, attributes: impl FnOnce() -> Vec<KeyValue>) -> Option<Span> {
        let tracer = TRACER.get()?;
        let span = tracer.span_builder(name).with_kind(kind).with_attributes(attributes()).start_with_context(tracer, parent);
        Some(Span { cx: parent.with_span(span) })
    }

    /// Starts a span below the current one ([`InSpan`]).
    pub fn child(name: &'static str, kind: SpanKind, attributes: impl FnOnce() -> Vec<KeyValue>) -> Option<Span> {
        TRACER.get()?;
        Context::map_current(|parent| Span::start(name, kind, parent, attributes))
    }

    pub fn set(&self, key: &'static str, value: impl Into<Value>) {
        self.cx.span().set_attribute(KeyValue::new(key, value));
    }

    pub fn end(self) {
        self.cx.span().end();
    }
}

/// A span without children (`plugin.call`, `upstream`): the SDK's span
/// alone, not shared through a context (one allocation and a lock fewer).
pub struct Leaf(opentelemetry_sdk::trace::Span);

impl Leaf {
    /// Starts a span below the current one ([`InSpan`]); `None` when not
    /// exporting, and then `attributes` is not called. `attributes` has room
    /// for the ones [`Leaf::set`] adds at the end.
    pub fn child(name: &'static str, kind: SpanKind, attributes: impl FnOnce() -> Vec<KeyValue>) -> Option<Leaf> {
        let tracer = TRACER.get()?;
        let builder = tracer.span_builder(name).with_kind(kind).with_attributes(attributes());
        Some(Leaf(Context::map_current(|parent| tracer.build_with_context(builder, parent))))
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        self.0.set_attribute(KeyValue::new(key, value));
    }

    /// Its trace id, id and sampled flag, for the upstream's `traceparent`.
    pub fn span_context(&self) -> &SpanContext {
        self.0.span_context()
    }

    pub fn end(mut self) {
        self.0.end();
    }
}

/// Sets an attribute on the current span (a request's `route`, known only
/// once a stage has matched it).
pub fn set_on_current(key: &'static str, value: impl Into<Value>) {
    Context::map_current(|cx| cx.span().set_attribute(KeyValue::new(key, value)));
}

pin_project_lite::pin_project! {
    /// `inner`, polled with `span`'s context current; without a span (not
    /// exporting) only `inner`, at the cost of one branch per poll.
    pub struct InSpan<F> {
        #[pin]
        inner: F,
        cx: Option<Context>,
    }
}

impl<F> InSpan<F> {
    pub fn new(span: Option<&Span>, inner: F) -> Self {
        InSpan { inner, cx: span.map(|span| span.cx.clone()) }
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _current = this.cx.as_ref().map(|cx| cx.clone().attach());
        this.inner.poll(task)
    }
}
