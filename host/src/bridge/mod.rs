//! `portcullis bridge`: MCP over stdio on one side, MCP Streamable HTTP to the
//! gateway on the other, adding the workload's shared key to every request.
//!
//! For MCP clients that only speak stdio. Standard output carries protocol
//! messages and nothing else (one JSON-RPC message per line); everything meant
//! for a person goes to standard error, through the log (`tracing`).
//!
//! - Each line from stdin is POSTed. A JSON response is written out; an SSE
//!   response is streamed out event by event (server requests made during a
//!   tool call arrive this way). Posts run concurrently, so the client can
//!   answer a server request while the call that caused it is still open.
//! - The `Mcp-Session-Id` from the initialize response is sent on every later
//!   request, and a GET stream is opened for server-initiated messages.
//! - At end of input the bridge waits for open requests, DELETEs the session
//!   and exits 0. A 401 or 403 ends it with one line on stderr and exit code 1.
//! - The key goes to the URL given and nowhere else: no redirects are followed
//!   (a 3xx ends the bridge with exit code 1) and no proxy from the environment is used.
//! - Every message is bounded ([`MAX_MESSAGE_BYTES`]) in both directions: an
//!   input line, a JSON response, an SSE event. A larger one is refused with a
//!   JSON-RPC error for its request (or a line on stderr), never buffered whole.

use crate::keys::KeySettings;
use crate::mcp::sse::{self, EventSplitter, TooLarge};
use crate::secrets::ExposeSecret;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The largest MCP message the bridge passes, either way.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

pub struct BridgeOptions {
    /// The workload's MCP endpoint, e.g. `http://127.0.0.1:8080/mcp`.
    pub url: String,
    pub key: crate::secrets::SecretString,
    pub settings: KeySettings,
}

/// Why the bridge stopped early.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("the gateway refused the key for workload `{workload}` (HTTP {status}); check it with `portcullis keys show {workload}`")]
    Refused { workload: String, status: u16 },
    #[error("cannot reach the gateway at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "the gateway at {url} answered with a redirect (HTTP {status}); the bridge does not follow redirects, so the key never goes elsewhere: give the workload's endpoint itself with --url"
    )]
    Redirected { url: String, status: u16 },
}

struct Bridge {
    client: reqwest::Client,
    url: String,
    auth: HeaderMap,
    session: Mutex<Option<HeaderValue>>,
    protocol_version: Mutex<Option<HeaderValue>>,
    out: mpsc::UnboundedSender<String>,
    fatal: mpsc::UnboundedSender<BridgeError>,
    workload: String,
}

pub async fn run(options: BridgeOptions) -> Result<(), BridgeError> {
    let header = HeaderName::from_bytes(options.settings.header.as_bytes())
        .map_err(|_| BridgeError::Unreachable { url: options.url.clone(), reason: format!("invalid header name {:?}", options.settings.header) })?;
    let mut value = HeaderValue::from_str(&options.settings.header_value(options.key.expose_secret()))
        .map_err(|_| BridgeError::Unreachable { url: options.url.clone(), reason: "the key is not a valid header value".into() })?;
    value.set_sensitive(true);
    let mut auth = HeaderMap::new();
    auth.insert(header, value);

    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel::<BridgeError>();
    let bridge = Arc::new(Bridge {
        // The key is for this URL only: no proxy from the environment, no redirects.
        client: crate::http_client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().expect("HTTP client"),
        url: options.url,
        auth,
        session: Mutex::new(None),
        protocol_version: Mutex::new(None),
        out: out_tx,
        fatal: fatal_tx,
        workload: options.settings.workload,
    });

    // One writer owns stdout, so messages never interleave.
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = out_rx.recv().await {
            if stdout.write_all(line.as_bytes()).await.is_err() || stdout.write_all(b"\n").await.is_err() {
                break;
            }
            let _ = stdout.flush().await;
        }
    });

    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut posts = tokio::task::JoinSet::new();
    let mut get_stream: Option<tokio::task::JoinHandle<()>> = None;
    let outcome = loop {
        tokio::select! {
            line = read_line(&mut stdin, MAX_MESSAGE_BYTES) => match line {
                Ok(Some(Line::Text(line))) if line.trim().is_empty() => continue,
                Ok(Some(Line::Text(line))) => {
                    let bridge = bridge.clone();
                    posts.spawn(async move { bridge.post(line).await });
                }
                Ok(Some(Line::TooLong)) => {
                    tracing::warn!("an input message over {MAX_MESSAGE_BYTES} bytes was dropped");
                }
                // End of input (or a closed stdin): finish up.
                Ok(None) | Err(_) => break Ok(()),
            },
            Some(error) = fatal_rx.recv() => break Err(error),
            Some(_) = posts.join_next(), if !posts.is_empty() => {
                if get_stream.is_none() && bridge.session.lock().unwrap().is_some() {
                    let bridge = bridge.clone();
                    get_stream = Some(tokio::spawn(async move { bridge.listen().await }));
                }
            }
        }
    };
    if outcome.is_ok() {
        // Requests already sent get their answers before the session ends.
        while posts.join_next().await.is_some() {}
    } else {
        posts.abort_all();
        while posts.join_next().await.is_some() {}
    }
    if let Some(stream) = get_stream {
        stream.abort();
    }
    bridge.end_session().await;
    drop(bridge);
    let _ = writer.await;
    match outcome {
        Ok(()) => match fatal_rx.try_recv() {
            Ok(error) => Err(error),
            Err(_) => Ok(()),
        },
        Err(error) => Err(error),
    }
}

impl Bridge {
    fn headers(&self, accept: &'static str) -> HeaderMap {
        let mut headers = self.auth.clone();
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static(accept));
        if let Some(session) = self.session.lock().unwrap().clone() {
            headers.insert("mcp-session-id", session);
        }
        if let Some(version) = self.protocol_version.lock().unwrap().clone() {
            headers.insert("mcp-protocol-version", version);
        }
        headers
    }

    async fn post(&self, line: String) {
        let message: Option<serde_json::Value> = serde_json::from_str(&line).ok();
        let is_initialize = message.as_ref().is_some_and(|m| m["method"] == "initialize");
        let mut headers = self.headers("application/json, text/event-stream");
        headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let response = match self.client.post(&self.url).headers(headers).body(line).send().await {
            Ok(response) => response,
            Err(error) => {
                let _ = self.fatal.send(BridgeError::Unreachable { url: self.url.clone(), reason: error.to_string() });
                return;
            }
        };
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            let _ = self.fatal.send(BridgeError::Refused { workload: self.workload.clone(), status });
            return;
        }
        if response.status().is_redirection() {
            let _ = self.fatal.send(BridgeError::Redirected { url: self.url.clone(), status });
            return;
        }
        let id = message.as_ref().and_then(|m| m.get("id")).filter(|id| !id.is_null()).cloned();
        if is_initialize && let Some(session) = response.headers().get("mcp-session-id") {
            *self.session.lock().unwrap() = Some(session.clone());
        }
        if !response.status().is_success() {
            // The server answered with an HTTP error instead of a JSON-RPC one:
            // turn it into a JSON-RPC error so the client's request does not hang.
            let body = read_body(response, 4096).await.unwrap_or_default();
            self.reply_error(id.as_ref(), &format!("HTTP {status} from the gateway: {}", String::from_utf8_lossy(&body).chars().take(300).collect::<String>()));
            return;
        }
        if let Err(TooLarge) = self.relay(response, is_initialize).await {
            tracing::warn!("a response message over {MAX_MESSAGE_BYTES} bytes was dropped");
            self.reply_error(id.as_ref(), &format!("the gateway's answer is larger than the bridge's limit of {MAX_MESSAGE_BYTES} bytes"));
        }
    }

    /// A JSON-RPC error for request `id` (if it has one), so the client does not wait forever.
    fn reply_error(&self, id: Option<&serde_json::Value>, message: &str) {
        if let Some(id) = id {
            let error = serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32000, "message": message } });
            let _ = self.out.send(error.to_string());
        }
    }

    /// Writes the messages of a response (JSON or SSE) to stdout; stops at a
    /// message over [`MAX_MESSAGE_BYTES`].
    async fn relay(&self, mut response: reqwest::Response, is_initialize: bool) -> Result<(), TooLarge> {
        let is_sse = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            let body = read_body(response, MAX_MESSAGE_BYTES).await?;
            let body = String::from_utf8_lossy(&body);
            let body = body.trim();
            if !body.is_empty() {
                self.emit(body.to_owned(), is_initialize);
            }
            return Ok(());
        }
        let mut events = EventSplitter::new(MAX_MESSAGE_BYTES);
        while let Ok(Some(chunk)) = response.chunk().await {
            // `event:`, `id:`, `retry:` and comments carry nothing the bridge forwards.
            for data in events.feed(&chunk)?.iter().filter_map(|event| sse::data(event)) {
                self.emit(data, is_initialize);
            }
        }
        Ok(())
    }

    fn emit(&self, message: String, is_initialize: bool) {
        if is_initialize {
            let version = serde_json::from_str::<serde_json::Value>(&message)
                .ok()
                .and_then(|m| m["result"]["protocolVersion"].as_str().and_then(|v| HeaderValue::from_str(v).ok()));
            if let Some(version) = version {
                *self.protocol_version.lock().unwrap() = Some(version);
            }
        }
        // One message per line: compact any pretty-printed JSON.
        let line = match serde_json::from_str::<serde_json::Value>(&message) {
            Ok(value) => value.to_string(),
            Err(_) => return,
        };
        let _ = self.out.send(line);
    }

    /// The GET stream of server-initiated messages. A server without one answers 405.
    async fn listen(&self) {
        for attempt in 0..5u32 {
            let response = self.client.get(&self.url).headers(self.headers("text/event-stream")).send().await;
            match response {
                Ok(r) if r.status().is_success() => {
                    if let Err(TooLarge) = self.relay(r, false).await {
                        tracing::warn!("a server message over {MAX_MESSAGE_BYTES} bytes was dropped; reopening the stream");
                    }
                }
                Ok(r) if r.status() == 401 || r.status() == 403 => {
                    let _ = self.fatal.send(BridgeError::Refused { workload: self.workload.clone(), status: r.status().as_u16() });
                    return;
                }
                Ok(_) => return,
                Err(_) => {}
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 * 2u64.pow(attempt))).await;
        }
    }

    async fn end_session(&self) {
        if self.session.lock().unwrap().is_none() {
            return;
        }
        let _ = self.client.delete(&self.url).headers(self.headers("application/json")).send().await;
    }
}

/// A line of input, or the news that it was too long (and was skipped).
enum Line {
    Text(String),
    TooLong,
}

/// Reads one line of at most `max` bytes without ever holding more; a longer
/// line is consumed and dropped. `None` at end of input.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (line.is_empty(), too_long) {
                (true, false) => None,
                (_, true) => Some(Line::TooLong),
                (false, false) => Some(Line::Text(String::from_utf8_lossy(&line).into_owned())),
            });
        }
        let (part, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], end + 1),
            None => (available, available.len()),
        };
        let ended = done > part.len();
        if !too_long && line.len() + part.len() <= max {
            line.extend_from_slice(part);
        } else {
            too_long = true;
            line = Vec::new();
        }
        reader.consume(done);
        if ended {
            return Ok(Some(if too_long { Line::TooLong } else { Line::Text(String::from_utf8_lossy(&line).into_owned()) }));
        }
    }
}

/// A whole response body, refused past `max` bytes without reading further.
async fn read_body(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, TooLarge> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        if body.len() + chunk.len() > max {
            return Err(TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_input_lines_are_dropped_not_buffered() {
        let input = format!("{}\n{{\"ok\":1}}\n{}", "x".repeat(100), "y".repeat(5));
        let mut reader = tokio::io::BufReader::with_capacity(16, input.as_bytes());
        assert!(matches!(read_line(&mut reader, 50).await.unwrap(), Some(Line::TooLong)));
        assert!(matches!(read_line(&mut reader, 50).await.unwrap(), Some(Line::Text(t)) if t == "{\"ok\":1}"));
        assert!(matches!(read_line(&mut reader, 50).await.unwrap(), Some(Line::Text(t)) if t == "yyyyy"));
        assert!(read_line(&mut reader, 50).await.unwrap().is_none());
    }
}
