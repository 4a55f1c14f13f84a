use super::*;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A collector on loopback answering each export with the next of
/// `answers` (a status line and headers), recording what each carried.
async fn collector(answers: &'static [&'static str]) -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        for answer in answers {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // The head, then the body its content-length announces.
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text.lines().find_map(|l| l.strip_prefix("content-length: ")).map_or(0, |v| v.trim().parse().unwrap());
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            record.lock().unwrap().push(request);
            socket.write_all(format!("{answer}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes()).await.unwrap();
        }
    });
    (url, seen)
}

fn export(url: &str) -> Export {
    Export {
        traces_endpoint: url.to_owned(),
        metrics_endpoint: None,
        headers: Default::default(),
        trace_headers: vec![("authorization".into(), "Bearer otlp".into())],
        sampling_ratio: 1.0,
        service_name: "test".into(),
    }
}

fn poster(url: &str) -> Poster {
    let resource = Resource::builder_empty().with_service_name("test").build();
    Poster::new(&export(url), &resource, crate::http_client::builder().build().unwrap(), Arc::new(Health::default())).unwrap()
}

#[tokio::test]
async fn an_export_the_collector_throttles_is_sent_again_and_one_it_refuses_is_not() {
    let (url, seen) = collector(&["HTTP/1.1 503 Service Unavailable\r\nretry-after: 0", "HTTP/1.1 429 Too Many Requests", "HTTP/1.1 200 OK"]).await;
    poster(&url).send(Bytes::from_static(b"spans")).await.expect("delivered at the third try");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for request in seen.iter().map(|r| String::from_utf8_lossy(r)) {
        assert!(request.starts_with("POST /v1/traces "), "{request}");
        assert!(request.contains("content-type: application/x-protobuf\r\n"), "{request}");
        assert!(request.contains("authorization: Bearer otlp\r\n"), "{request}");
        assert!(request.ends_with("\r\n\r\nspans"), "{request}");
    }

    let (url, seen) = collector(&["HTTP/1.1 400 Bad Request", "HTTP/1.1 200 OK"]).await;
    let error = poster(&url).send(Bytes::from_static(b"spans")).await.expect_err("a 400 is final");
    assert!(error.contains("400"), "{error}");
    assert_eq!(seen.lock().unwrap().len(), 1, "not sent again");
}

/// A span of `scope`, ended, sampled or not.
fn span(scope: &InstrumentationScope, sampled: bool, name: &'static str) -> SpanData {
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
    let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    SpanData {
        span_context: SpanContext::new(TraceId::from(1), SpanId::from(2), flags, false, TraceState::default()),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: name.into(),
        start_time: std::time::SystemTime::now(),
        end_time: std::time::SystemTime::now(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: Default::default(),
        links: Default::default(),
        status: Status::Unset,
        instrumentation_scope: scope.clone(),
    }
}

/// The span names of each export the collector received, decoded.
fn exported(seen: &Mutex<Vec<Vec<u8>>>) -> Vec<Vec<(String, Vec<String>)>> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    let seen = seen.lock().unwrap();
    seen.iter()
        .map(|request| {
            let body = &request[request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
            let decoded = ExportTraceServiceRequest::decode(body).unwrap();
            let scopes = &decoded.resource_spans[0].scope_spans;
            scopes.iter().map(|s| (s.scope.as_ref().unwrap().name.clone(), s.spans.iter().map(|span| span.name.clone()).collect())).collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_sent_when_a_batch_fills_when_the_scope_changes_and_at_a_flush_and_unsampled_ones_never() {
    let (url, seen) = collector(&["HTTP/1.1 200 OK"; 4]).await;
    let resource = Resource::builder_empty().with_service_name("test").build();
    let batches = SpanBatches::start(
        &export(&url),
        &resource,
        crate::http_client::builder().build().unwrap(),
        &tokio::runtime::Handle::current(),
        Arc::new(Health::default()),
    )
    .unwrap();
    let batches = SpanBatches { max_batch: 2, ..batches };
    let (a, b) = (InstrumentationScope::builder("a").build(), InstrumentationScope::builder("b").build());
    batches.on_end(span(&a, true, "1"));
    batches.on_end(span(&a, false, "unsampled"));
    batches.on_end(span(&a, true, "2")); // full: sent
    batches.on_end(span(&a, true, "3"));
    batches.on_end(span(&b, true, "4")); // another scope: "3" is sent first
    tokio::task::spawn_blocking(move || {
        batches.force_flush().unwrap(); // "4"
        batches.on_end(span(&a, true, "5"));
        batches.shutdown().unwrap(); // "5"
        batches.on_end(span(&a, true, "after shutdown"));
        assert!(batches.force_flush().is_ok());
    })
    .await
    .unwrap();
    let names = |scope: &str, names: &[&str]| vec![(scope.to_owned(), names.iter().map(|n| n.to_string()).collect::<Vec<_>>())];
    assert_eq!(exported(&seen), [names("a", &["1", "2"]), names("a", &["3"]), names("b", &["4"]), names("a", &["5"])]);
}

#[test]
fn a_traces_endpoint_that_is_not_an_http_url_is_refused_at_start() {
    for endpoint in ["collector:4318/v1/traces", "ftp://collector/v1/traces", "not a url", "/v1/traces"] {
        let resource = Resource::builder_empty().build();
        let Err(error) = Poster::new(&export(endpoint), &resource, crate::http_client::builder().build().unwrap(), Arc::new(Health::default())) else {
            panic!("{endpoint} accepted");
        };
        assert!(error.to_string().contains("is not an http:// or https:// URL"), "{endpoint}: {error}");
    }
}
