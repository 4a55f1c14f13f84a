//! An exported span as the gateway records it: what [`super::otlp`]
//! encodes, made and ended by [`super::trace`].

use opentelemetry::trace::{SpanContext, SpanId, SpanKind};
use std::time::SystemTime;

pub struct Record<'a> {
    /// Its trace id, id, sampled flag and the trace state it carries.
    pub context: SpanContext,
    /// [`SpanId::INVALID`] for a trace's root.
    pub parent: SpanId,
    /// The parent is the client's (a trusted `traceparent`).
    pub parent_is_remote: bool,
    pub name: &'static str,
    pub kind: SpanKind,
    pub start: SystemTime,
    /// Set when it ends.
    pub end: SystemTime,
    /// The workload's or component's attributes, encoded at load
    /// (`otlp::FixedAttributes`).
    pub fixed: &'a [u8],
    /// The attributes of this span alone, encoded as they were set
    /// ([`super::otlp::attribute`]).
    pub attributes: Vec<u8>,
}
