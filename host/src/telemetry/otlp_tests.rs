use super::*;
use opentelemetry::trace::{SpanContext, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, StringValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use prost::Message as _;
use std::time::{Duration, UNIX_EPOCH};

fn context(trace: u128, span: u64, sampled: bool, state: &str) -> SpanContext {
    let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    SpanContext::new(TraceId::from(trace), SpanId::from(span), flags, false, state.parse::<TraceState>().unwrap())
}

/// Attributes as at load, of every kind of value.
fn fixed() -> Vec<KeyValue> {
    vec![
        KeyValue::new("workload", "edge"),
        KeyValue::new("component", Value::String(StringValue::from(std::sync::Arc::<str>::from("jwt")))),
        KeyValue::new("replicas", 3_i64),
        KeyValue::new("ratio", 0.25),
        KeyValue::new("ok", false),
        KeyValue::new("list", Value::Array(vec![StringValue::from("a"), StringValue::from("é")].into())),
        KeyValue::new("numbers", Value::Array(vec![1_i64, -1].into())),
        KeyValue::new("flags", Value::Array(vec![true].into())),
        KeyValue::new("floats", Value::Array(vec![1.5_f64].into())),
    ]
}

/// A span's own attributes, as a request sets them.
const OWN: [(&str, AttributeValue<'static>); 4] = [
    ("request_id", AttributeValue::Text("0193f4c2-7a1e-7c3d-9f00-5e6d7c8b9a01")),
    ("status", AttributeValue::Int(200)),
    ("negative", AttributeValue::Int(-5)),
    ("outcome", AttributeValue::Text("forwarded é")),
];

fn own() -> Vec<KeyValue> {
    OWN.iter()
        .map(|(key, value)| match value {
            AttributeValue::Text(text) => KeyValue::new(*key, text.to_string()),
            AttributeValue::Int(number) => KeyValue::new(*key, *number),
        })
        .collect()
}

/// Spans using every field the encoder writes: fixed attributes or none,
/// own attributes or none, each kind of span, trace state, a remote parent,
/// a root.
fn spans(fixed: &FixedAttributes) -> Vec<Record<'_>> {
    let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(1_765_000_000_000 + ms);
    let mut attributes = Vec::new();
    for (key, value) in OWN {
        attribute(&mut attributes, key, value);
    }
    let span = |name: &'static str, context: SpanContext, parent: u64, kind: SpanKind| Record {
        context,
        fixed: if kind == SpanKind::Server || kind == SpanKind::Producer { fixed.encoded() } else { FixedAttributes::none().encoded() },
        parent: SpanId::from(parent),
        parent_is_remote: parent == 1,
        name,
        attributes: if kind == SpanKind::Consumer { Vec::new() } else { attributes.clone() },
        kind,
        start: at(0),
        end: at(5),
    };
    vec![
        span("request", context(0xabc, 2, true, "vendor=x,other=y"), 1, SpanKind::Server),
        span("upstream", context(0xabc, 3, true, ""), 2, SpanKind::Client),
        span("plugin.call", context(0xabc, 4, false, ""), 2, SpanKind::Internal),
        span("root", context(u128::MAX, u64::MAX, true, ""), 0, SpanKind::Producer),
        span("consumer", context(5, 6, true, ""), 9, SpanKind::Consumer),
    ]
}

/// The same span as the SDK would have handed its exporter.
fn as_sdk_data(record: Record<'_>) -> SpanData {
    let fixed = if record.fixed.is_empty() { Vec::new() } else { fixed() };
    let own = if record.attributes.is_empty() { Vec::new() } else { own() };
    SpanData {
        span_context: record.context,
        parent_span_id: record.parent,
        parent_span_is_remote: record.parent_is_remote,
        span_kind: record.kind,
        name: record.name.into(),
        start_time: record.start,
        end_time: record.end,
        attributes: [fixed, own].concat(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder(SCOPE).with_version(env!("CARGO_PKG_VERSION")).build(),
    }
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_service_name("edge")
        .with_attribute(KeyValue::new("replicas", 3_i64))
        .with_schema_url([KeyValue::new("deployment", "eu")], "https://opentelemetry.io/schemas/1.2.0")
        .build()
}

/// `batch` as the poster sends it.
fn encode(head: &Head, batch: Vec<Record<'_>>) -> Vec<u8> {
    let mut spans = vec![0; head.room()];
    for record in batch {
        append_span(&mut spans, &record);
    }
    head.request(spans).to_vec()
}

#[test]
fn the_encoding_decodes_to_what_opentelemetry_proto_makes_of_the_same_spans() {
    let resource = resource();
    let fixed = FixedAttributes::new(&fixed());
    let ours = ExportTraceServiceRequest::decode(&encode(&Head::new(&resource), spans(&fixed))[..]).expect("valid protobuf");
    let sdk_data = spans(&fixed).into_iter().map(as_sdk_data).collect();
    let theirs = opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope(sdk_data, &(&resource).into());
    assert_eq!(ours.resource_spans, theirs);
}

#[test]
fn an_empty_batch_is_a_scope_without_spans() {
    let ours = ExportTraceServiceRequest::decode(&encode(&Head::new(&Resource::builder_empty().build()), Vec::new())[..]).unwrap();
    assert_eq!(ours.resource_spans.len(), 1);
    let scopes = &ours.resource_spans[0].scope_spans;
    assert_eq!(scopes.len(), 1);
    assert_eq!(scopes[0].scope.as_ref().unwrap().name, SCOPE);
    assert!(scopes[0].spans.is_empty());
}

#[test]
fn varints_are_as_protobuf_writes_them() {
    for (value, encoded) in
        [(0u64, vec![0u8]), (1, vec![1]), (127, vec![0x7f]), (128, vec![0x80, 1]), (300, vec![0xac, 2]), (u64::MAX, [vec![0xff; 9], vec![1]].concat())]
    {
        let mut out = Vec::new();
        varint(&mut out, value);
        assert_eq!(out, encoded, "{value}");
        assert_eq!(varint_len(value), encoded.len(), "{value}");
    }
}
