use super::*;
use opentelemetry::trace::{Event, Link, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use opentelemetry::{KeyValue, StringValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
use prost::Message as _;
use std::time::Duration;

fn context(trace: u128, span: u64, sampled: bool, remote: bool, state: &str) -> SpanContext {
    let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    SpanContext::new(TraceId::from(trace), SpanId::from(span), flags, remote, state.parse::<TraceState>().unwrap())
}

/// Spans using every field the encoder writes: each kind of value, events,
/// links, each status, trace state, a remote parent, two scopes.
fn spans() -> Vec<SpanData> {
    let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(1_765_000_000_000 + ms);
    let portcullis = InstrumentationScope::builder("portcullis").build();
    let other = InstrumentationScope::builder("other").with_version("1.2").with_schema_url("https://s/1").with_attributes([KeyValue::new("a", true)]).build();
    let mut events = SpanEvents::default();
    events.events.push(Event::new("retry", at(3), vec![KeyValue::new("attempt", 2)], 1));
    events.dropped_count = 4;
    let mut links = SpanLinks::default();
    links.links.push(Link::new(context(7, 8, true, true, "k=v"), vec![KeyValue::new("why", "batch")], 0));
    links.dropped_count = 2;
    let attributes = vec![
        KeyValue::new("workload", "edge"),
        KeyValue::new("status", 200_i64),
        KeyValue::new("negative", -5_i64),
        KeyValue::new("ratio", 0.25),
        KeyValue::new("ok", false),
        KeyValue::new("list", Value::Array(vec![StringValue::from("a"), StringValue::from("é")].into())),
        KeyValue::new("numbers", Value::Array(vec![1_i64, -1].into())),
        KeyValue::new("flags", Value::Array(vec![true].into())),
        KeyValue::new("floats", Value::Array(vec![1.5_f64].into())),
    ];
    let span = |name: &'static str, context: SpanContext, parent: u64, kind: SpanKind, status: Status, scope: &InstrumentationScope| SpanData {
        span_context: context,
        parent_span_id: SpanId::from(parent),
        parent_span_is_remote: parent == 1,
        span_kind: kind,
        name: name.into(),
        start_time: at(0),
        end_time: at(5),
        attributes: attributes.clone(),
        dropped_attributes_count: 3,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    };
    let mut server = span("request", context(0xabc, 2, true, false, "vendor=x,other=y"), 1, SpanKind::Server, Status::Ok, &portcullis);
    server.events = events;
    server.links = links;
    vec![
        server,
        span("upstream", context(0xabc, 3, true, false, ""), 2, SpanKind::Client, Status::error("refused"), &portcullis),
        span("plugin.call", context(0xabc, 4, false, false, ""), 2, SpanKind::Internal, Status::Unset, &other),
        span("root", context(u128::MAX, u64::MAX, true, false, ""), 0, SpanKind::Producer, Status::Unset, &other),
        span("consumer", context(5, 6, true, false, ""), 9, SpanKind::Consumer, Status::Unset, &portcullis),
    ]
}

/// `batch` as the exporter sends it: one `ScopeSpans` per scope, in the
/// order the scopes first appear.
fn encode(resource: &[u8], batch: Vec<SpanData>) -> Vec<u8> {
    let mut scopes: Vec<(InstrumentationScope, Vec<u8>)> = Vec::new();
    for data in batch {
        let index = scopes.iter().position(|(scope, _)| *scope == data.instrumentation_scope).unwrap_or_else(|| {
            scopes.push((data.instrumentation_scope.clone(), Vec::new()));
            scopes.len() - 1
        });
        let mut body = Vec::new();
        span(&mut body, &data);
        append_span(&mut scopes[index].1, &body);
    }
    let scopes: Vec<(&InstrumentationScope, &[u8])> = scopes.iter().map(|(scope, spans)| (scope, spans.as_slice())).collect();
    request(resource, &scopes)
}

#[test]
fn the_encoding_decodes_to_what_opentelemetry_proto_makes_of_the_same_spans() {
    let resource = Resource::builder_empty()
        .with_service_name("edge")
        .with_attribute(KeyValue::new("replicas", 3_i64))
        .with_schema_url([KeyValue::new("deployment", "eu")], "https://opentelemetry.io/schemas/1.2.0")
        .build();
    let ours = ExportTraceServiceRequest::decode(&encode(&super::resource(&resource), spans())[..]).expect("valid protobuf");
    let theirs = opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope(spans(), &(&resource).into());
    assert_eq!(ours.resource_spans, theirs);
}

#[test]
fn an_empty_batch_is_an_empty_request() {
    let ours = ExportTraceServiceRequest::decode(&encode(&super::resource(&Resource::builder_empty().build()), Vec::new())[..]).unwrap();
    assert_eq!(ours.resource_spans.len(), 1);
    assert!(ours.resource_spans[0].scope_spans.is_empty());
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
