//! The server's own stream (the answer to a GET) on a workload with
//! authorizers. In Streamable HTTP it carries the server's requests and
//! notifications, never a response: responses answer POSTs, and resuming a
//! POST's stream (`Last-Event-ID`) is turned off on such workloads. A
//! response on it could only be an answer that was never filtered — the
//! legacy HTTP+SSE transport (2024-11-05) sends every answer, lists included,
//! that way, after announcing itself with an `endpoint` event. So the stream
//! is cut off at an `endpoint` event or at any JSON-RPC response, and an
//! event that cannot be read is dropped.

use super::sse::{self, EventSplitter};
use crate::body::{BoxError, ProxyBody};
use bytes::Bytes;
use http::{Response, header};
use http_body_util::{BodyExt, Channel};
use serde_json::Value;
use std::sync::Arc;

/// The largest event read; past it the stream is cut off.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Passes `response` on if it is not an event stream; otherwise event by
/// event, cut off at the first event that answers a request.
pub fn guard(response: Response<ProxyBody>, workload: Arc<str>) -> Response<ProxyBody> {
    let is_stream =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.to_ascii_lowercase().starts_with("text/event-stream"));
    if !response.status().is_success() || !is_stream {
        return response;
    }
    let (parts, mut body) = response.into_parts();
    let (mut tx, rx) = Channel::<Bytes, BoxError>::new(16);
    tokio::spawn(async move {
        let mut splitter = EventSplitter::new(MAX_EVENT_BYTES);
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map(|f| f.into_data()) else {
                return tx.abort("the server's stream broke".into());
            };
            let Ok(data) = data else { continue };
            let Ok(events) = splitter.feed(&data) else {
                return tx.abort("an event over the bound on the server's stream".into());
            };
            for event in events {
                match read(&event) {
                    Event::Pass => {
                        if tx.send_data(Bytes::from(event)).await.is_err() {
                            return; // the client went away
                        }
                    }
                    Event::Drop => tracing::warn!(workload = %workload, "dropped an event of the server's stream that is not JSON"),
                    Event::CutOff(why) => {
                        tracing::warn!(workload = %workload, why, "the server's stream is cut off");
                        return tx.abort(why.into());
                    }
                }
            }
        }
    });
    Response::from_parts(parts, rx.boxed())
}

enum Event {
    Pass,
    Drop,
    CutOff(&'static str),
}

/// What to do with one event of the server's stream.
fn read(event: &[u8]) -> Event {
    if event_name(event).is_some_and(|name| name == b"endpoint") {
        return Event::CutOff("the legacy HTTP+SSE transport is not served behind authorizers");
    }
    let Some(data) = sse::data(event) else {
        // A comment or keep-alive passes; data that is not UTF-8 does not.
        return if sse::has_data(event) { Event::Drop } else { Event::Pass };
    };
    if data.trim().is_empty() {
        return Event::Pass;
    }
    match serde_json::from_str::<Value>(&data) {
        Ok(Value::Array(batch)) if batch.iter().any(is_response) => Event::CutOff("a response on the server's stream"),
        Ok(message) if is_response(&message) => Event::CutOff("a response on the server's stream"),
        Ok(_) => Event::Pass,
        Err(_) => Event::Drop,
    }
}

/// A JSON-RPC response, or anything a lenient client could read as one: a
/// `result` or an `error` member, in any case (with a `method` beside it, it
/// is no valid request either).
fn is_response(message: &Value) -> bool {
    let Some(object) = message.as_object() else { return false };
    object.keys().any(|key| key.eq_ignore_ascii_case("result") || key.eq_ignore_ascii_case("error"))
}

/// The value of the event's `event:` field, if any.
fn event_name(event: &[u8]) -> Option<&[u8]> {
    event
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .find_map(|line| line.strip_prefix(b"event:"))
        .map(|v| v.strip_prefix(b" ").unwrap_or(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_notifications_pass_responses_and_endpoints_cut_off() {
        let pass = |e: &str| matches!(read(e.as_bytes()), Event::Pass);
        let cut = |e: &str| matches!(read(e.as_bytes()), Event::CutOff(_));
        assert!(pass("data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n"));
        assert!(pass("data: {\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"sampling/createMessage\",\"params\":{}}\n\n"));
        assert!(pass(": keep-alive\n\n"));
        assert!(pass("id: 1\ndata:\n\n"));
        assert!(cut("event: endpoint\ndata: /messages?sessionId=1\n\n"));
        assert!(cut("data: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[]}}\n\n"));
        assert!(cut("data: {\"jsonrpc\":\"2.0\",\"id\":2,\"Result\":{\"tools\":[]}}\n\n"));
        assert!(cut("data: [{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":1,\"message\":\"x\"}}]\n\n"));
        assert!(matches!(read(b"data: not json\n\n"), Event::Drop));
    }
}
