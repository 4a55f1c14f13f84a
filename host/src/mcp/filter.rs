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
#[path = "filter_tests.rs"]
mod tests;
