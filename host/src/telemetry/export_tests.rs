use super::*;
use opentelemetry_sdk::trace::SpanExporter as _;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A collector on loopback answering each export with the next of
/// `answers` (a status line and headers), recording what each carried.
async fn collector(answers: &'static [&'static str]) -> (String, Arc<Mutex<Vec<String>>>) {
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
            record.lock().unwrap().push(String::from_utf8_lossy(&request).to_string());
            socket.write_all(format!("{answer}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes()).await.unwrap();
        }
    });
    (url, seen)
}

fn exporter(url: &str) -> Spans {
    let export = Export {
        traces_endpoint: url.to_owned(),
        metrics_endpoint: None,
        headers: Default::default(),
        trace_headers: vec![("authorization".into(), "Bearer otlp".into())],
        sampling_ratio: 1.0,
        service_name: "test".into(),
    };
    let client = Client { http: http_client(), runtime: tokio::runtime::Handle::current(), health: Arc::new(Health::default()) };
    Spans::new(&export, &Resource::builder_empty().with_service_name("test").build(), client).unwrap()
}

#[tokio::test]
async fn an_export_the_collector_throttles_is_sent_again_and_one_it_refuses_is_not() {
    let (url, seen) = collector(&["HTTP/1.1 503 Service Unavailable\r\nretry-after: 0", "HTTP/1.1 429 Too Many Requests", "HTTP/1.1 200 OK"]).await;
    exporter(&url).export(Vec::new()).await.expect("delivered at the third try");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert!(request.starts_with("POST /v1/traces "), "{request}");
        assert!(request.contains("content-type: application/x-protobuf\r\n"), "{request}");
        assert!(request.contains("authorization: Bearer otlp\r\n"), "{request}");
    }

    let (url, seen) = collector(&["HTTP/1.1 400 Bad Request", "HTTP/1.1 200 OK"]).await;
    let error = exporter(&url).export(Vec::new()).await.expect_err("a 400 is final");
    assert!(error.to_string().contains("400"), "{error}");
    assert_eq!(seen.lock().unwrap().len(), 1, "not sent again");
}
