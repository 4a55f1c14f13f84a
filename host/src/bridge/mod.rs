//! `portcullis bridge`: MCP over stdio on one side, MCP Streamable HTTP to the
//! gateway on the other, adding the workload's shared key to every request.
//!
//! For MCP clients that only speak stdio. Standard output carries protocol
//! messages and nothing else (one JSON-RPC message per line); everything meant
//! for a person goes to standard error.
//!
//! - Each line from stdin is POSTed. A JSON response is written out; an SSE
//!   response is streamed out event by event (server requests made during a
//!   tool call arrive this way). Posts run concurrently, so the client can
//!   answer a server request while the call that caused it is still open.
//! - The `Mcp-Session-Id` from the initialize response is sent on every later
//!   request, and a GET stream is opened for server-initiated messages.
//! - At end of input the bridge waits for open requests, DELETEs the session
//!   and exits 0. A 401 or 403 ends it with one line on stderr and exit code 1.

mod sse;

use crate::keys::KeySettings;
use crate::secrets::ExposeSecret;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sse::SseParser;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

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
    let header = HeaderName::from_bytes(options.settings.header.as_bytes()).map_err(|_| BridgeError::Unreachable {
        url: options.url.clone(),
        reason: format!("invalid header name {:?}", options.settings.header),
    })?;
    let mut value = HeaderValue::from_str(&options.settings.header_value(options.key.expose_secret()))
        .map_err(|_| BridgeError::Unreachable { url: options.url.clone(), reason: "the key is not a valid header value".into() })?;
    value.set_sensitive(true);
    let mut auth = HeaderMap::new();
    auth.insert(header, value);

    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel::<BridgeError>();
    let bridge = Arc::new(Bridge {
        client: reqwest::Client::builder().no_proxy().build().expect("HTTP client"),
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

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut posts = tokio::task::JoinSet::new();
    let mut get_stream: Option<tokio::task::JoinHandle<()>> = None;
    let outcome = loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => {
                    let bridge = bridge.clone();
                    posts.spawn(async move { bridge.post(line).await });
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
        if is_initialize
            && let Some(session) = response.headers().get("mcp-session-id") {
                *self.session.lock().unwrap() = Some(session.clone());
            }
        if !response.status().is_success() {
            // The server answered with an HTTP error instead of a JSON-RPC one:
            // turn it into a JSON-RPC error so the client's request does not hang.
            let body = response.text().await.unwrap_or_default();
            if let Some(id) = message.as_ref().and_then(|m| m.get("id")).filter(|id| !id.is_null()) {
                let error = serde_json::json!({
                    "jsonrpc": "2.0", "id": id,
                    "error": { "code": -32000, "message": format!("HTTP {status} from the gateway: {}", body.chars().take(300).collect::<String>()) }
                });
                let _ = self.out.send(error.to_string());
            }
            return;
        }
        self.relay(response, is_initialize).await;
    }

    /// Writes the messages of a response (JSON or SSE) to stdout.
    async fn relay(&self, mut response: reqwest::Response, is_initialize: bool) {
        let is_sse = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            if let Ok(body) = response.text().await {
                let body = body.trim();
                if !body.is_empty() {
                    self.emit(body.to_owned(), is_initialize);
                }
            }
            return;
        }
        let mut parser = SseParser::default();
        while let Ok(Some(chunk)) = response.chunk().await {
            for data in parser.feed(&chunk) {
                self.emit(data, is_initialize);
            }
        }
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
                Ok(r) if r.status().is_success() => self.relay(r, false).await,
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
