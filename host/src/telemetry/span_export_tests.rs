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

/// A span named `name`, ended.
fn span(name: &'static str) -> Record<'static> {
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState};
    Record {
        context: SpanContext::new(TraceId::from(1), SpanId::from(2), TraceFlags::SAMPLED, false, TraceState::NONE),
        parent: SpanId::INVALID,
        parent_is_remote: false,
        name,
        kind: SpanKind::Server,
        start: std::time::SystemTime::now(),
        end: std::time::SystemTime::now(),
        fixed: &[],
        attributes: Vec::new(),
    }
}

/// The span names of each export the collector received, decoded.
fn exported(seen: &Mutex<Vec<Vec<u8>>>) -> Vec<Vec<String>> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    let seen = seen.lock().unwrap();
    seen.iter()
        .map(|request| {
            let body = &request[request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
            let decoded = ExportTraceServiceRequest::decode(body).unwrap();
            let scopes = &decoded.resource_spans[0].scope_spans;
            assert_eq!(scopes.len(), 1);
            scopes[0].spans.iter().map(|span| span.name.clone()).collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_sent_when_a_batch_fills_and_at_a_flush_and_none_after_shutdown() {
    let (url, seen) = collector(&["HTTP/1.1 200 OK"; 3]).await;
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
    batches.end(&span("1"));
    batches.end(&span("2")); // full: sent
    batches.end(&span("3"));
    tokio::task::spawn_blocking(move || {
        assert!(batches.flush(EXPORT_TIMEOUT)); // "3"
        assert!(batches.flush(EXPORT_TIMEOUT), "nothing pending: nothing sent");
        batches.end(&span("4"));
        assert!(batches.shutdown(EXPORT_TIMEOUT)); // "4"
        batches.end(&span("after shutdown"));
        assert!(batches.flush(EXPORT_TIMEOUT));
    })
    .await
    .unwrap();
    assert_eq!(exported(&seen), [vec!["1", "2"], vec!["3"], vec!["4"]]);
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
