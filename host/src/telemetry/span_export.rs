//! Span export: each sampled span is encoded to OTLP/protobuf as it ends
//! ([`super::otlp`]), on the thread that ends it, into the pending batch; a
//! task on the gateway's runtime posts full batches, and the pending one
//! every schedule delay, to the traces endpoint ([`Poster`]).
//!
//! Why not the SDK's `BatchSpanProcessor` and an exporter: its channel moves
//! each span's data (about 400 bytes) to its own thread, which gathers them
//! and frees them there (allocations freed on another thread than made
//! them). With export on, that channel was the largest single cost left on
//! a request's thread (docs/benchmarks.md, "Telemetry overhead"). Here a
//! span's data is dropped where it was made, and what crosses threads is
//! one buffer per batch.
//!
//! Bounds: a batch holds at most `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` spans
//! (default [`EXPORT_BATCH`], at most [`MAX_EXPORT_BATCH`]); at most [`QUEUED_BATCHES`] full batches wait
//! for the poster, past which new batches are dropped, not the requests.
//! One export (its retries included) ends within [`EXPORT_TIMEOUT`].

use super::config::Export;
use super::health::Health;
use super::record::Record;
use bytes::Bytes;
use opentelemetry_sdk::Resource;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Spans in one export, unless `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` says
/// otherwise: at three spans a request, the SDK's 512 made a hundred
/// exports a second under load.
const EXPORT_BATCH: usize = 2048;
/// The most a batch may be set to hold: the queue's memory is bounded by it.
const MAX_EXPORT_BATCH: usize = 16_384;
/// Full batches waiting to be posted: with the pending one, about 6,000
/// spans (~2 MiB encoded) during a collector outage.
const QUEUED_BATCHES: usize = 2;
/// The pending batch is posted this often unless `OTEL_BSP_SCHEDULE_DELAY`
/// (ms) says otherwise (the specification's default).
const SCHEDULE_DELAY: Duration = Duration::from_secs(5);
/// One export, its retries and their waits included.
pub(super) const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Waits between tries: 100 ms, doubling, at most [`MAX_RETRIES`] times.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRIES: u32 = 3;

/// Where ended spans go ([`super::trace`]): the pending batch, and the
/// poster's queue.
#[derive(Debug)]
pub struct SpanBatches {
    pending: Arc<Mutex<Pending>>,
    to_poster: mpsc::Sender<Message>,
    max_batch: usize,
    /// The room each batch leaves for the request's head (`otlp::Head::room`).
    room: usize,
    stopped: AtomicBool,
    /// Whether a batch was dropped since the poster last kept up (logged once).
    dropping: AtomicBool,
}

/// The batch being filled: room for the request's head, then its spans, encoded.
#[derive(Debug, Default)]
struct Pending {
    spans: Vec<u8>,
    count: usize,
}

impl Pending {
    fn take(&mut self) -> Option<Batch> {
        if self.count == 0 {
            return None;
        }
        self.count = 0;
        Some(Batch { spans: std::mem::take(&mut self.spans) })
    }
}

#[derive(Debug)]
struct Batch {
    spans: Vec<u8>,
}

#[derive(Debug)]
enum Message {
    Batch(Batch),
    /// Post the pending batch and all before it, then answer.
    Flush(std::sync::mpsc::SyncSender<()>),
}

impl SpanBatches {
    /// Starts the poster on `runtime`.
    pub fn start(
        export: &Export,
        resource: &Resource,
        http: reqwest::Client,
        runtime: &tokio::runtime::Handle,
        health: Arc<Health>,
    ) -> anyhow::Result<SpanBatches> {
        let poster = Poster::new(export, resource, http, health)?;
        let room = poster.head.room();
        let env_number = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok()).filter(|n| *n > 0);
        let max_batch = env_number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE").map_or(EXPORT_BATCH, |n| (n as usize).min(MAX_EXPORT_BATCH));
        let delay = env_number("OTEL_BSP_SCHEDULE_DELAY").map_or(SCHEDULE_DELAY, Duration::from_millis);
        let (to_poster, messages) = mpsc::channel(QUEUED_BATCHES + 1);
        let pending = Arc::new(Mutex::new(Pending::default()));
        runtime.spawn(poster.run(messages, pending.clone(), delay));
        Ok(SpanBatches { pending, to_poster, max_batch, room, stopped: AtomicBool::new(false), dropping: AtomicBool::new(false) })
    }

    /// A span that ended, sampled: encoded into the pending batch, which
    /// goes to the poster when full.
    pub fn end(&self, span: &Record<'_>) {
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if pending.count == 0 {
                pending.spans.reserve(self.room + self.max_batch * 256);
                pending.spans.resize(self.room, 0);
            }
            super::otlp::append_span(&mut pending.spans, span);
            pending.count += 1;
            if pending.count >= self.max_batch { pending.take() } else { None }
        };
        if let Some(batch) = full {
            self.hand_over(batch);
        }
    }

    fn hand_over(&self, batch: Batch) {
        match self.to_poster.try_send(Message::Batch(batch)) {
            Ok(()) => {
                if self.dropping.swap(false, Ordering::Relaxed) {
                    tracing::info!("telemetry export keeps up again; spans are no longer dropped");
                }
            }
            Err(_) => {
                if !self.dropping.swap(true, Ordering::Relaxed) {
                    tracing::warn!("telemetry export is behind; batches of spans are dropped until it catches up (logged once, not per batch)");
                }
            }
        }
    }

    /// Posts the pending batch and everything queued, waiting at most
    /// `timeout`; `false` if that ran out. It blocks: called from a thread
    /// of the runtime's workers, it would hold the poster it waits for (the
    /// gateway calls it from a blocking thread, `Exporters::shutdown`).
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let mut message = Message::Flush(answer);
        // Not `blocking_send`, which panics on a runtime's thread.
        loop {
            match self.to_poster.try_send(message) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Full(again)) if Instant::now() < deadline => {
                    message = again;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        answered.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_ok()
    }

    /// Posts what is pending and queued, and takes no span after.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        self.stopped.store(true, Ordering::Relaxed);
        self.flush(timeout)
    }
}

/// Posts batches to the traces endpoint with the gateway's HTTP client,
/// retried as OTLP/HTTP says: 429, 502, 503, 504 and no answer, following
/// `Retry-After`. Not `Debug`: its headers hold the collector's credentials.
struct Poster {
    http: reqwest::Client,
    endpoint: http::Uri,
    headers: http::HeaderMap,
    /// The `ResourceSpans`' resource and scope fields, encoded once.
    head: super::otlp::Head,
    health: Arc<Health>,
}

impl Poster {
    fn new(export: &Export, resource: &Resource, http: reqwest::Client, health: Arc<Health>) -> anyhow::Result<Poster> {
        use anyhow::Context as _;
        let endpoint: http::Uri = export
            .traces_endpoint
            .parse()
            .ok()
            .filter(|uri: &http::Uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some())
            .with_context(|| format!("the traces endpoint {:?} is not an http:// or https:// URL", export.traces_endpoint))?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in &export.trace_headers {
            // The value is never in the error: headers carry credentials.
            let mut value =
                http::HeaderValue::from_str(value).with_context(|| format!("the telemetry header {name:?} has a value that is not a header value"))?;
            value.set_sensitive(true);
            headers.insert(http::HeaderName::from_bytes(name.as_bytes())?, value);
        }
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-protobuf"));
        Ok(Poster { http, endpoint, headers, head: super::otlp::Head::new(resource), health })
    }

    /// Posts what arrives, and the pending batch every `delay`, until the
    /// processor is dropped.
    async fn run(self, mut messages: mpsc::Receiver<Message>, pending: Arc<Mutex<Pending>>, delay: Duration) {
        let take = || pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + delay, delay);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = messages.recv() => match message {
                    Some(Message::Batch(batch)) => self.export(batch).await,
                    Some(Message::Flush(answer)) => {
                        if let Some(batch) = take() {
                            self.export(batch).await;
                        }
                        let _ = answer.send(());
                    }
                    None => return,
                },
                _ = tick.tick() => {
                    if let Some(batch) = take() {
                        self.export(batch).await;
                    }
                }
            }
        }
    }

    async fn export(&self, batch: Batch) {
        let body = self.head.request(batch.spans);
        match self.send(body).await {
            Ok(()) => self.health.succeeded(),
            Err(what) => self.health.failed(&what),
        }
    }

    /// Tries, and tries again while the answer says so and time is left.
    async fn send(&self, body: Bytes) -> Result<(), String> {
        let give_up = tokio::time::Instant::now() + EXPORT_TIMEOUT;
        let mut wait = FIRST_RETRY;
        let mut tries = 0;
        loop {
            let (what, retry) = match tokio::time::timeout_at(give_up, self.post(body.clone())).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(error)) => error,
                Err(_) => return Err(format!("no answer within {EXPORT_TIMEOUT:?}")),
            };
            tries += 1;
            let Some(advised) = retry else { return Err(what) };
            let pause = wait.max(advised);
            if tries > MAX_RETRIES || tokio::time::Instant::now() + pause >= give_up {
                return Err(what);
            }
            tokio::time::sleep(pause).await;
            wait *= 2;
        }
    }

    /// One POST; `Err` says whether to try again, and after how long.
    async fn post(&self, body: Bytes) -> Result<(), (String, Option<Duration>)> {
        let mut request = http::Request::post(self.endpoint.clone()).body(body).map_err(|e| (e.to_string(), None))?;
        *request.headers_mut() = self.headers.clone();
        let request = reqwest::Request::try_from(request).map_err(|e| (e.to_string(), None))?;
        let response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(error) => return Err((crate::error_chain::Chain(&error).to_string(), Some(Duration::ZERO))),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry = match status.as_u16() {
            429 | 503 => Some(retry_after(response.headers()).unwrap_or(Duration::ZERO)),
            502 | 504 => Some(Duration::ZERO),
            _ => None,
        };
        Err((format!("the collector answered {status}"), retry))
    }
}

/// `Retry-After` in seconds (the date form is rare from collectors and
/// read as no advice), at most the export timeout.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(EXPORT_TIMEOUT))
}

#[cfg(test)]
#[path = "span_export_tests.rs"]
mod tests;
