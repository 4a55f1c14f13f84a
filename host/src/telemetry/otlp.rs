//! Spans to OTLP/protobuf (`ExportTraceServiceRequest`), written straight
//! from the gateway's span records ([`Record`]).
//!
//! Why not opentelemetry-otlp's encoding: it first builds the generated
//! protobuf structs (a `String` per attribute key and value, a `Vec` per
//! list, a hash map to group spans by scope), then encodes and frees them.
//! On one core that was most of the exporting thread's cost, about 4 µs a
//! request (docs/benchmarks.md, "Telemetry overhead"). Here each field is
//! written once, as the span ends ([`super::span_export`]). The field
//! numbers are those of opentelemetry-proto's `trace/v1/trace.proto` and
//! `common/v1/common.proto`; the unit tests decode the result with
//! opentelemetry-proto and compare it with that crate's own encoding.

use super::record::Record;
use bytes::Bytes;
use opentelemetry::trace::{SpanId, SpanKind, TraceState};
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::Resource;
use std::time::{SystemTime, UNIX_EPOCH};

/// The instrumentation scope of every span (with the gateway's version).
pub const SCOPE: &str = "portcullis";

/// The OTLP span flag saying the parent's remoteness is known (bit 8), and
/// that it is remote (bit 9).
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// What every request starts with: the `ResourceSpans`' resource and the
/// gateway's one `InstrumentationScope`, encoded once when export starts.
pub struct Head {
    resource: Vec<u8>,
    scope: Vec<u8>,
}

impl Head {
    pub fn new(resource: &Resource) -> Head {
        let mut attributes = Vec::new();
        for (key, value) in resource.iter() {
            key_value(&mut attributes, 1, key.as_str(), value);
        }
        let mut encoded = Vec::with_capacity(attributes.len() + 8);
        message(&mut encoded, 1, &attributes);
        if let Some(schema) = resource.schema_url() {
            string(&mut encoded, 3, schema);
        }
        // `InstrumentationScope`: name 1, version 2.
        let mut scope = Vec::new();
        string(&mut scope, 1, SCOPE);
        string(&mut scope, 2, env!("CARGO_PKG_VERSION"));
        let mut head = Vec::with_capacity(scope.len() + 2);
        message(&mut head, 1, &scope);
        Head { resource: encoded, scope: head }
    }

    /// The room a batch leaves before its spans, for [`Head::request`] to
    /// write the head in.
    pub fn room(&self) -> usize {
        self.resource.len() + self.scope.len() + 2 * (1 + MAX_VARINT)
    }

    /// One `ExportTraceServiceRequest` of `batch`: its first [`Head::room`]
    /// bytes are room, then its spans ([`append_span`]). A `ResourceSpans`
    /// with the resource, then a `ScopeSpans` with the scope and the spans;
    /// the head is written into the room, so no span is copied again.
    pub fn request(&self, mut batch: Vec<u8>) -> Bytes {
        let room = self.room();
        let scope_spans_len = self.scope.len() + batch.len() - room;
        let resource_spans_len = self.resource.len() + field_len(scope_spans_len);
        let mut head = Vec::with_capacity(room);
        tag(&mut head, 1, LEN);
        varint(&mut head, resource_spans_len as u64);
        head.extend_from_slice(&self.resource);
        // `ScopeSpans`, field 2 of `ResourceSpans`: its scope, then its spans.
        tag(&mut head, 2, LEN);
        varint(&mut head, scope_spans_len as u64);
        head.extend_from_slice(&self.scope);
        let start = room - head.len();
        batch[start..room].copy_from_slice(&head);
        Bytes::from(batch).slice(start..)
    }
}

/// Attributes known when a workload or component is loaded, encoded then
/// (as a span's field 9): a span carrying them copies bytes, without the
/// values' clones, drops and encoding on each request.
#[derive(Debug, Default)]
pub struct FixedAttributes(Vec<u8>);

static NONE: FixedAttributes = FixedAttributes(Vec::new());

impl FixedAttributes {
    pub fn new(attributes: &[KeyValue]) -> FixedAttributes {
        let mut encoded = Vec::new();
        for attribute in attributes {
            key_value(&mut encoded, 9, attribute.key.as_str(), &attribute.value);
        }
        FixedAttributes(encoded)
    }

    pub fn none() -> &'static FixedAttributes {
        &NONE
    }

    /// As a span's fields ([`Record::fixed`]).
    pub fn encoded(&self) -> &[u8] {
        &self.0
    }
}

/// A value of a span's own attribute ([`attribute`]): text or a number,
/// borrowed, as the request holds it.
#[derive(Clone, Copy)]
pub enum AttributeValue<'v> {
    Text(&'v str),
    Int(i64),
}

impl<'v> From<&'v str> for AttributeValue<'v> {
    fn from(text: &'v str) -> Self {
        AttributeValue::Text(text)
    }
}

impl From<i64> for AttributeValue<'_> {
    fn from(number: i64) -> Self {
        AttributeValue::Int(number)
    }
}

/// A span's attribute (its field 9, a `KeyValue`), into `out`: a span's
/// own attributes are encoded as they are set.
pub fn attribute(out: &mut Vec<u8>, key: &str, value: AttributeValue<'_>) {
    // The `AnyValue`: string 1 or int 3.
    let any_len = match value {
        AttributeValue::Text(text) => field_len(text.len()),
        AttributeValue::Int(number) => 1 + varint_len(number as u64),
    };
    tag(out, 9, LEN);
    varint(out, (field_len(key.len()) + field_len(any_len)) as u64);
    string(out, 1, key);
    tag(out, 2, LEN);
    varint(out, any_len as u64);
    match value {
        AttributeValue::Text(text) => string(out, 1, text),
        AttributeValue::Int(number) => {
            tag(out, 3, VARINT);
            varint(out, number as u64);
        }
    }
}

/// Appends a span to a scope's list of spans (the `ScopeSpans`' field 2).
/// Its size is counted first, so that it is written once, in place.
pub fn append_span(out: &mut Vec<u8>, span: &Record<'_>) {
    let context = &span.context;
    // A trace state arrives only from a trusted client.
    let state = if *context.trace_state() == TraceState::NONE { String::new() } else { context.trace_state().header() };
    let optional = |len: usize| if len == 0 { 0 } else { field_len(len) };
    let parent: &[u8] = &span.parent.to_bytes();
    let parent = if span.parent == SpanId::INVALID { &[] } else { parent };
    let len = field_len(16)
        + field_len(8)
        + optional(state.len())
        + optional(parent.len())
        + field_len(span.name.len())
        + 2 // kind
        + 2 * 9 // start and end times
        + span.fixed.len()
        + span.attributes.len()
        + 2 // status
        + 6; // flags
    tag(out, 2, LEN);
    varint(out, len as u64);
    let start = out.len();
    bytes(out, 1, &context.trace_id().to_bytes());
    bytes(out, 2, &context.span_id().to_bytes());
    if !state.is_empty() {
        string(out, 3, &state);
    }
    if !parent.is_empty() {
        bytes(out, 4, parent);
    }
    string(out, 5, span.name);
    let kind = match span.kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    };
    tag(out, 6, VARINT);
    varint(out, kind);
    fixed64(out, 7, nanos(span.start));
    fixed64(out, 8, nanos(span.end));
    out.extend_from_slice(span.fixed);
    out.extend_from_slice(&span.attributes);
    // `Status` (15), all fields unset: an empty message, as the SDK's exporter writes.
    message(out, 15, &[]);
    fixed32(out, 16, flags(span.parent_is_remote, context.trace_flags().to_u8()));
    debug_assert_eq!(out.len() - start, len, "the span's size as counted");
}

/// A span's `flags`: the W3C trace flags, and whether the parent is remote.
fn flags(remote: bool, trace_flags: u8) -> u32 {
    u32::from(trace_flags) | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A `KeyValue` message as field `field`.
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    let value_len = any_len(value);
    tag(out, field, LEN);
    varint(out, (field_len(key.len()) + field_len(value_len)) as u64);
    string(out, 1, key);
    tag(out, 2, LEN);
    varint(out, value_len as u64);
    any_value(out, value);
}

/// The size of a length-delimited field of `len` bytes (field number below 16).
#[inline]
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// The size of `value` as an `AnyValue`, without writing it (but for
/// arrays, which no span of the gateway has).
fn any_len(value: &Value) -> usize {
    match value {
        Value::String(text) => field_len(text.as_str().len()),
        Value::Bool(_) => 2,
        Value::I64(number) => 1 + varint_len(*number as u64),
        Value::F64(_) => 9,
        other => {
            let mut encoded = Vec::new();
            any_value(&mut encoded, other);
            encoded.len()
        }
    }
}

/// An `AnyValue`'s one field: string 1, bool 2, int 3, double 4, array 5.
fn any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(text) => string(out, 1, text.as_str()),
        Value::Bool(flag) => {
            tag(out, 2, VARINT);
            varint(out, u64::from(*flag));
        }
        Value::I64(number) => {
            tag(out, 3, VARINT);
            varint(out, *number as u64);
        }
        Value::F64(number) => fixed64_bits(out, 4, number.to_bits()),
        Value::Array(array) => {
            // `ArrayValue`: its values, each an `AnyValue` as field 1.
            let mut values = Vec::new();
            let mut item = Vec::new();
            let mut push = |value: Value| {
                item.clear();
                any_value(&mut item, &value);
                message(&mut values, 1, &item);
            };
            match array {
                Array::Bool(items) => items.iter().for_each(|v| push(Value::Bool(*v))),
                Array::I64(items) => items.iter().for_each(|v| push(Value::I64(*v))),
                Array::F64(items) => items.iter().for_each(|v| push(Value::F64(*v))),
                Array::String(items) => items.iter().for_each(|v| push(Value::String(v.clone()))),
                // A kind of array added after this code: its text, not nothing.
                other => push(Value::String(other.to_string().into())),
            }
            message(out, 5, &values);
        }
        // A kind of value added after this code: its text, not nothing.
        other => string(out, 1, &other.as_str()),
    }
}

/// The most bytes a varint takes (a `u64`).
const MAX_VARINT: usize = 10;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

#[inline]
fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire)));
}

#[inline]
fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[inline]
fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    fixed64_bits(out, field, value);
}

#[inline]
fn fixed64_bits(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&value.to_le_bytes());
}

#[inline]
fn fixed32(out: &mut Vec<u8>, field: u32, value: u32) {
    tag(out, field, FIXED32);
    out.extend_from_slice(&value.to_le_bytes());
}

#[inline]
fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    tag(out, field, LEN);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

#[inline]
fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    bytes(out, field, value.as_bytes());
}

/// An embedded message, already encoded, as field `field`.
#[inline]
fn message(out: &mut Vec<u8>, field: u32, encoded: &[u8]) {
    bytes(out, field, encoded);
}

#[cfg(test)]
#[path = "otlp_tests.rs"]
mod tests;
