use super::*;
use crate::runtime::bindings::mcp::McpCall;

/// The filter of a `tools/list` with `id`; no authorizers, so every item is kept.
fn filter(id: &str) -> ListFilter {
    let call = McpCall { method: "tools/list".into(), name: None, arguments_json: None, annotations_json: None, id: Some(id.into()) };
    let request = RequestData {
        method: http::Method::POST,
        scheme: "http",
        authority: "localhost".into(),
        uri: "/mcp".parse().unwrap(),
        headers: http::HeaderMap::new(),
        remote: "127.0.0.1:1".parse().unwrap(),
        tls_client_identity: None,
        mcp_calls: vec![call.clone()],
        body: bytes::Bytes::new(),
        identity: None,
    };
    ListFilter {
        list: ListRequest::of(&[call]).unwrap(),
        authorizers: Authorizers::default(),
        request: Arc::new(request),
        identity: None,
        workload: "w".into(),
        tools: Default::default(),
    }
}

fn response(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).map_err(|never| match never {}).boxed());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    if !content_type.is_empty() {
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}

async fn body_of(response: Response<Body>) -> Result<Bytes, BoxError> {
    response.into_body().collect().await.map(|c| c.to_bytes())
}

const LIST_7: &str = r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"echo"}]}}"#;

#[tokio::test]
async fn the_answer_with_the_request_id_is_filtered() {
    let json = filter("7").apply(response(200, "application/json", LIST_7)).await.unwrap();
    assert!(body_of(json).await.unwrap().starts_with(br#"{"id":7"#));
    let sse = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[]}}\n\n";
    let sse = filter("7").apply(response(200, "text/event-stream", sse)).await.unwrap();
    assert!(body_of(sse).await.is_ok());
    // An error status is the server's answer, not a list.
    assert!(filter("7").apply(response(404, "application/json", "{}")).await.is_ok());
}

/// A legacy HTTP+SSE server answers 202 and sends the list elsewhere; a
/// server that rounds ids answers with another id: neither is a list the
/// filter has read, so neither is passed on.
#[tokio::test]
async fn a_success_without_the_list_is_unfilterable() {
    assert!(filter("7").apply(response(202, "", "")).await.is_err(), "202");
    assert!(filter("7").apply(response(200, "", "")).await.is_err(), "200 empty");
    assert!(filter("7").apply(response(204, "", "")).await.is_err(), "204");
    for other in [
        r#"{"jsonrpc":"2.0","id":7.0,"result":{"tools":[{"name":"x"}]}}"#,
        r#"{"jsonrpc":"2.0","id":"7","result":{"tools":[{"name":"x"}]}}"#,
        r#"{"jsonrpc":"2.0","id":8,"result":{"tools":[{"name":"x"}]}}"#,
        r#"[{"jsonrpc":"2.0","id":8,"result":{"tools":[{"name":"x"}]}}]"#,
        r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#,
    ] {
        assert!(filter("7").apply(response(200, "application/json", other)).await.is_err(), "{other}");
    }
    // On a stream, an answer with another id cuts the stream off before it
    // reaches the client, and so does a stream that ends without the list.
    for stream in [
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":9007199254740992,\"result\":{\"tools\":[{\"name\":\"x\"}]}}\n\n",
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n",
    ] {
        let response = filter("7").apply(response(200, "text/event-stream", stream)).await.unwrap();
        match body_of(response).await {
            Err(_) => {}
            Ok(bytes) => panic!("passed: {}", String::from_utf8_lossy(&bytes)),
        }
    }
}

/// A resource whose URI could resolve elsewhere is hidden before any
/// authorizer is asked (here there are none, which allows everything).
#[tokio::test]
async fn resource_items_out_of_the_one_spelling_are_hidden() {
    let call = McpCall { method: "resources/list".into(), name: None, arguments_json: None, annotations_json: None, id: Some("7".into()) };
    let mut filter = filter("7");
    filter.list = ListRequest::of(&[call]).unwrap();
    let list = r#"{"jsonrpc":"2.0","id":7,"result":{"resources":[{"uri":"file:///public/a"},{"uri":"file:///public/../secret"},{"uri":"file:///public/%73ecret"},{"uri":"FILE:///public/b"},{"uri":"file://localhost/public/c"}]}}"#;
    let response = filter.apply(response(200, "application/json", list)).await.unwrap();
    let value: Value = serde_json::from_slice(&body_of(response).await.unwrap()).unwrap();
    assert_eq!(value["result"]["resources"], serde_json::json!([{"uri":"file:///public/a"}]));
}

/// Compressed, or not JSON or SSE, or JSON that does not parse: a list the
/// filter cannot read is refused (the stage answers 502), never passed on.
#[tokio::test]
async fn a_list_the_filter_cannot_read_is_refused() {
    for encoding in ["gzip", "br", "deflate", "zstd", "GZIP"] {
        let mut compressed = response(200, "application/json", LIST_7);
        compressed.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        assert!(filter("7").apply(compressed).await.is_err(), "{encoding}");
    }
    let mut identity = response(200, "application/json", LIST_7);
    identity.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("identity"));
    assert!(filter("7").apply(identity).await.is_ok(), "identity is no encoding");
    let mut compressed_stream = response(200, "text/event-stream", "event: message\ndata: {}\n\n");
    compressed_stream.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    assert!(filter("7").apply(compressed_stream).await.is_err(), "a compressed stream");
    for content_type in ["text/plain", "text/html", "application/octet-stream", "application/x-ndjson"] {
        assert!(filter("7").apply(response(200, content_type, LIST_7)).await.is_err(), "{content_type}");
    }
    for broken in ["not json", r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"echo"}]}"#, "\u{feff}{}"] {
        assert!(filter("7").apply(response(200, "application/json", broken)).await.is_err(), "{broken}");
    }
}

/// A list answer of `len` bytes: `LIST_7` with a description padding it out.
fn list_of_length(len: usize) -> String {
    let head = r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"echo","description":""#;
    let tail = r#""}]}}"#;
    format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
}

#[tokio::test]
async fn a_list_over_16_mib_is_refused() {
    let at_bound = filter("7").apply(response(200, "application/json", list_of_length(MAX_LIST_BYTES))).await;
    assert!(at_bound.is_ok(), "16 MiB is read");
    let over = filter("7").apply(response(200, "application/json", list_of_length(MAX_LIST_BYTES + 1))).await;
    assert!(over.is_err(), "one byte more is refused");
    // On a stream, an event over the bound cuts the stream off.
    let event = format!("event: message\ndata: {}\n\n", list_of_length(MAX_LIST_BYTES + 1));
    let stream = filter("7").apply(in_chunks(event.into_bytes())).await.unwrap();
    assert!(body_of(stream).await.is_err(), "an event over 16 MiB is not passed on");
}

/// An SSE response whose body arrives in 64 KiB chunks, as from a socket
/// (hyper reads at most a few hundred KiB at a time).
fn in_chunks(bytes: Vec<u8>) -> Response<Body> {
    let (mut tx, body) = Channel::<Bytes, BoxError>::new(4);
    tokio::spawn(async move {
        for chunk in bytes.chunks(64 * 1024) {
            if tx.send_data(Bytes::copy_from_slice(chunk)).await.is_err() {
                return;
            }
        }
    });
    let mut response = Response::new(body.boxed());
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response
}

/// An event whose data cannot be read might hide the list: it is dropped,
/// and the stream goes on to the list's own answer.
#[tokio::test]
async fn unreadable_sse_events_are_dropped() {
    let mut stream = b"event: message\ndata: {\"tools\":[{\"name\":\"hidden-a\"}]\n\n".to_vec();
    stream.extend_from_slice(b"event: message\ndata: \xff{\"name\":\"hidden-b\"}\n\n");
    stream.extend_from_slice(b": a comment passes\n\n");
    stream.extend_from_slice(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"echo\"}]}}\n\n");
    let response = filter("7").apply(response(200, "text/event-stream", stream)).await.unwrap();
    let body = String::from_utf8_lossy(&body_of(response).await.unwrap()).into_owned();
    assert!(!body.contains("hidden"), "{body}");
    assert!(body.contains(": a comment passes") && body.contains(r#""name":"echo""#), "{body}");
}
