//! The response to a list request, with the items the caller may not use
//! removed. A JSON response is read whole (bounded) and rewritten; an SSE
//! response is passed on event by event, and only the event that carries the
//! list's result is rewritten. An error status passes unchanged.
//!
//! A successful answer must carry the response with the request's id, byte
//! for byte, and no other response: anything else (a 202 from a legacy
//! HTTP+SSE server that sends the list on its GET stream, an id a server
//! rounded, a stream that ends without the answer) could be the list
//! unfiltered, so it is refused (502) or, on a stream, cut off.

use super::annotations::ToolAnnotations;
use super::authorize::Authorizers;
use super::lists::ListRequest;
use super::sse::{self, EventSplitter};
use crate::runtime::bindings::types::Identity;
use crate::runtime::request::RequestData;
use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Channel, Full};
use portcullis_contract::mcp::McpMethod;
use serde_json::Value;
use std::sync::Arc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// The largest list response (JSON) or SSE event that is filtered; past it
/// the response fails rather than reaching the client unfiltered.
const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;

/// The list response could not be read (over the bound, broken, compressed,
/// not JSON or SSE, or without the response to the request), so it is not passed on.
#[derive(Debug)]
pub struct Unfilterable;

/// Everything a list's filter needs, owned: an SSE rewrite runs in its own task.
pub struct ListFilter {
    pub list: ListRequest,
    pub authorizers: Authorizers,
    pub request: Arc<RequestData>,
    pub identity: Option<Identity>,
    pub workload: Arc<str>,
    /// Where a `tools/list` answer's annotations are remembered.
    pub tools: Arc<ToolAnnotations>,
}

impl ListFilter {
    /// A successful answer it cannot read (compressed, or neither JSON nor
    /// SSE, or JSON that does not parse) is refused, never passed unfiltered.
    pub async fn apply(self, response: Response<Body>) -> Result<Response<Body>, Unfilterable> {
        let headers = response.headers();
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
        let encoded = headers.get(header::CONTENT_ENCODING).is_some_and(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity"));
        // A success with no body (202 Accepted, 204) carries no answer: see
        // below, it is neither JSON nor SSE.
        if !response.status().is_success() {
            return Ok(response);
        }
        if encoded {
            return Err(Unfilterable);
        }
        if content_type.starts_with("text/event-stream") {
            Ok(self.filter_stream(response))
        } else if content_type.starts_with("application/json") {
            self.filter_whole(response).await
        } else {
            Err(Unfilterable)
        }
    }

    async fn filter_whole(self, response: Response<Body>) -> Result<Response<Body>, Unfilterable> {
        let (mut parts, mut body) = response.into_parts();
        let mut whole = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(|_| Unfilterable)?.into_data() {
                if whole.len() + data.len() > MAX_LIST_BYTES {
                    return Err(Unfilterable);
                }
                whole.extend_from_slice(&data);
            }
        }
        let bytes = whole.freeze();
        // Not the list's response: as the upstream sent it; not JSON: refused.
        let mut value = serde_json::from_slice::<Value>(&bytes).map_err(|_| Unfilterable)?;
        let bytes = match self.filter_value(&mut value).await {
            Seen::Answer => Bytes::from(serde_json::to_vec(&value).expect("JSON values serialise")),
            Seen::Other | Seen::Unfilterable => return Err(Unfilterable),
        };
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        Ok(Response::from_parts(parts, Full::new(bytes).map_err(|never| match never {}).boxed()))
    }

    fn filter_stream(self, response: Response<Body>) -> Response<Body> {
        let (mut parts, mut body) = response.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        let (mut tx, rx) = Channel::<Bytes, BoxError>::new(16);
        tokio::spawn(async move {
            let mut splitter = EventSplitter::new(MAX_LIST_BYTES);
            let mut answered = false;
            while let Some(frame) = body.frame().await {
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(error) => return tx.abort(error),
                };
                let Ok(data) = frame.into_data() else {
                    continue; // trailers: SSE has none worth keeping
                };
                let events = match splitter.feed(&data) {
                    Ok(events) => events,
                    Err(sse::TooLarge) => {
                        tracing::warn!(workload = %self.workload, "an SSE event of a list response is over 16 MiB; the response is cut off");
                        return tx.abort("an SSE event over the filter's bound".into());
                    }
                };
                for event in events {
                    let Some(event) = self.filter_event(event, &mut answered).await else {
                        return tx.abort("a response other than the list's own on its stream".into());
                    };
                    if tx.send_data(Bytes::from(event)).await.is_err() {
                        return; // the client went away
                    }
                }
            }
            let rest = splitter.rest();
            let event = match rest.is_empty() {
                true => Vec::new(),
                false => match self.filter_event(rest, &mut answered).await {
                    Some(event) => event,
                    None => return tx.abort("a response other than the list's own on its stream".into()),
                },
            };
            if !answered {
                tracing::warn!(workload = %self.workload, "a list's SSE response ended without the list; the response is cut off");
                return tx.abort("the stream ended without the list".into());
            }
            let _ = tx.send_data(Bytes::from(event)).await;
        });
        Response::from_parts(parts, rx.boxed())
    }

    /// One event, rewritten when its data is the list's response. An event
    /// whose data cannot be read (not UTF-8, not JSON, or several events run
    /// together by line endings this reader does not split on) might hide the
    /// list, so it is dropped rather than passed on; an empty one (a priming
    /// or keep-alive event) passes. `None`: the stream must be cut off (a
    /// response that is not the list's own, or a second answer).
    async fn filter_event(&self, event: Vec<u8>, answered: &mut bool) -> Option<Vec<u8>> {
        let Some(data) = sse::data(&event) else {
            // No data at all (a comment, a keep-alive) passes; data that is not UTF-8 does not.
            return Some(if sse::has_data(&event) { Vec::new() } else { event });
        };
        if data.trim().is_empty() {
            return Some(event);
        }
        let Ok(mut value) = serde_json::from_str::<Value>(&data) else {
            tracing::warn!(workload = %self.workload, "dropped an SSE event of a list response that is not JSON");
            return Some(Vec::new());
        };
        match self.filter_value(&mut value).await {
            Seen::Answer if !*answered => {
                *answered = true;
                Some(sse::with_data(&event, &value.to_string()))
            }
            Seen::Other => Some(event),
            Seen::Answer | Seen::Unfilterable => {
                tracing::warn!(workload = %self.workload, "a list's SSE response carries a response other than the list's own; it is cut off");
                None
            }
        }
    }

    /// Filters the list in `value` (a message, or a batch of them).
    async fn filter_value(&self, value: &mut Value) -> Seen {
        match value {
            Value::Array(messages) => {
                let mut seen = Seen::Other;
                for message in messages {
                    seen = match (seen, Box::pin(self.filter_value(message)).await) {
                        (Seen::Unfilterable, _) | (_, Seen::Unfilterable) | (Seen::Answer, Seen::Answer) => Seen::Unfilterable,
                        (Seen::Answer, Seen::Other) | (Seen::Other, Seen::Answer) => Seen::Answer,
                        (Seen::Other, Seen::Other) => Seen::Other,
                    };
                }
                seen
            }
            message => {
                if !self.list.answered_by(message) {
                    // A request or notification of the server's passes; a
                    // response (no `method`) to anything else may be the list
                    // under an id the server rewrote.
                    return match message.get("method") {
                        Some(_) => Seen::Other,
                        None => Seen::Unfilterable,
                    };
                }
                let Some(items) = self.list.items(message) else {
                    // The list's own error passes; a result without the list is not read.
                    return match (message.get("error"), message.get("result")) {
                        (Some(_), None) => Seen::Answer,
                        _ => Seen::Unfilterable,
                    };
                };
                if self.list.kind.item_method == McpMethod::ToolsCall {
                    self.tools.learn(&items);
                }
                let mut keep = Vec::with_capacity(items.len());
                for item in &items {
                    // A name out of the one spelling is hidden unasked, as the call would be refused.
                    keep.push(match self.list.name_problem(item) {
                        Some(why) => {
                            tracing::debug!(workload = %self.workload, name = ?item.name, why, "list item hidden");
                            false
                        }
                        None => self.authorizers.lists(&self.request, self.identity.as_ref(), item, &self.workload).await,
                    });
                }
                let kept = keep.iter().filter(|k| **k).count();
                tracing::info!(target: "audit", workload = %self.workload, subject = ?self.identity.as_ref().map(|i| i.subject.as_str()),
                    method = %self.list.kind.key, kept, of = items.len(), "list filtered");
                self.list.retain(message, &keep);
                Seen::Answer
            }
        }
    }
}

/// What a response's messages were, to the list's filter.
#[derive(Clone, Copy)]
enum Seen {
    /// The response to the list request (filtered, or its error).
    Answer,
    /// Only requests and notifications of the server.
    Other,
    /// Something that could be the list, unread: a response to another id, a
    /// result without the list, or two answers.
    Unfilterable,
}

#[cfg(test)]
mod tests {
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

    fn response(status: u16, content_type: &'static str, body: &'static str) -> Response<Body> {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).map_err(|never| match never {}).boxed());
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
}
