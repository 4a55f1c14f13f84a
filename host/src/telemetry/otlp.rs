//! Spans to OTLP/protobuf (`ExportTraceServiceRequest`), written straight
//! from the SDK's span data.
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

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use std::time::{SystemTime, UNIX_EPOCH};

/// The OTLP span flag saying the parent's remoteness is known (bit 8), and
/// that it is remote (bit 9).
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// Appends a span's body ([`span`]) to a scope's list of spans, as the
/// `ScopeSpans`' field 2.
pub fn append_span(spans: &mut Vec<u8>, body: &[u8]) {
    message(spans, 2, body);
}

/// One `ExportTraceServiceRequest`: a `ResourceSpans` starting with
/// `resource` ([`resource`]), then a `ScopeSpans` per scope with its spans
/// ([`append_span`]), each span copied once, into the request.
pub fn request(resource: &[u8], scopes: &[(&InstrumentationScope, &[u8])]) -> Vec<u8> {
    let heads: Vec<Vec<u8>> = scopes.iter().map(|(scope, _)| scope_head(scope)).collect();
    let scope_len = |head: &[u8], spans: &[u8]| head.len() + spans.len();
    let resource_spans_len = resource.len() + heads.iter().zip(scopes).map(|(head, (_, spans))| field_len(scope_len(head, spans))).sum::<usize>();
    let mut request = Vec::with_capacity(field_len(resource_spans_len));
    tag(&mut request, 1, LEN);
    varint(&mut request, resource_spans_len as u64);
    request.extend_from_slice(resource);
    for (head, (_, spans)) in heads.iter().zip(scopes) {
        // `ScopeSpans`, field 2 of `ResourceSpans`: its head, then its spans.
        tag(&mut request, 2, LEN);
        varint(&mut request, scope_len(head, spans) as u64);
        request.extend_from_slice(head);
        request.extend_from_slice(spans);
    }
    request
}

/// A `ResourceSpans`' resource fields (the `Resource`, its schema URL),
/// encoded once when export starts.
pub fn resource(resource: &Resource) -> Vec<u8> {
    let mut attributes = Vec::new();
    for (key, value) in resource.iter() {
        key_value(&mut attributes, 1, key.as_str(), value);
    }
    let mut out = Vec::with_capacity(attributes.len() + 8);
    message(&mut out, 1, &attributes);
    if let Some(schema) = resource.schema_url() {
        string(&mut out, 3, schema);
    }
    out
}

/// A `ScopeSpans`' fields but its spans: the scope, its schema URL.
fn scope_head(scope: &InstrumentationScope) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(64);
    string(&mut encoded, 1, scope.name());
    if let Some(version) = scope.version() {
        string(&mut encoded, 2, version);
    }
    for attribute in scope.attributes() {
        key_value(&mut encoded, 3, attribute.key.as_str(), &attribute.value);
    }
    let mut head = Vec::with_capacity(encoded.len() + 16);
    message(&mut head, 1, &encoded);
    if let Some(schema) = scope.schema_url() {
        string(&mut head, 3, schema);
    }
    head
}

/// One span's fields (a `Span` message's body), into `out`.
pub fn span(out: &mut Vec<u8>, data: &SpanData) {
    let context = &data.span_context;
    bytes(out, 1, &context.trace_id().to_bytes());
    bytes(out, 2, &context.span_id().to_bytes());
    let state = context.trace_state().header();
    if !state.is_empty() {
        string(out, 3, &state);
    }
    if data.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        bytes(out, 4, &data.parent_span_id.to_bytes());
    }
    string(out, 5, &data.name);
    let kind = match data.span_kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    };
    tag(out, 6, VARINT);
    varint(out, kind);
    fixed64(out, 7, nanos(data.start_time));
    fixed64(out, 8, nanos(data.end_time));
    for attribute in &data.attributes {
        key_value(out, 9, attribute.key.as_str(), &attribute.value);
    }
    uint(out, 10, u64::from(data.dropped_attributes_count));
    for event in data.events.iter() {
        let mut encoded = Vec::with_capacity(64);
        fixed64(&mut encoded, 1, nanos(event.timestamp));
        string(&mut encoded, 2, &event.name);
        for attribute in &event.attributes {
            key_value(&mut encoded, 3, attribute.key.as_str(), &attribute.value);
        }
        uint(&mut encoded, 4, u64::from(event.dropped_attributes_count));
        message(out, 11, &encoded);
    }
    uint(out, 12, u64::from(data.events.dropped_count));
    for link in data.links.iter() {
        let mut encoded = Vec::with_capacity(64);
        bytes(&mut encoded, 1, &link.span_context.trace_id().to_bytes());
        bytes(&mut encoded, 2, &link.span_context.span_id().to_bytes());
        let state = link.span_context.trace_state().header();
        if !state.is_empty() {
            string(&mut encoded, 3, &state);
        }
        for attribute in &link.attributes {
            key_value(&mut encoded, 4, attribute.key.as_str(), &attribute.value);
        }
        uint(&mut encoded, 5, u64::from(link.dropped_attributes_count));
        fixed32(&mut encoded, 6, flags(link.span_context.is_remote(), link.span_context.trace_flags().to_u8()));
        message(out, 13, &encoded);
    }
    uint(out, 14, u64::from(data.links.dropped_count));
    // `Status`: message 2, code 3 (0 unset, 1 ok, 2 error).
    let mut status = Vec::new();
    match &data.status {
        Status::Unset => {}
        Status::Ok => uint(&mut status, 3, 1),
        Status::Error { description } => {
            string(&mut status, 2, description);
            uint(&mut status, 3, 2);
        }
    }
    message(out, 15, &status);
    fixed32(out, 16, flags(data.parent_span_is_remote, context.trace_flags().to_u8()));
}

/// A span's or link's `flags`: the W3C trace flags, and whether the parent is remote.
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

/// A `uint32`/`uint64`/enum field, omitted when zero as proto3 does.
#[inline]
fn uint(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(out, field, VARINT);
        varint(out, value);
    }
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
