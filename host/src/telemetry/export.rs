//! The exporters: OTLP over HTTP/protobuf for traces and metrics, each sent
//! by the SDK's own background thread, so a slow or absent collector never
//! holds a request. Metrics go through opentelemetry-otlp; spans are encoded
//! by [`super::otlp`] and sent by [`Spans`], a span exporter of our own
//! (the module says why).
//!
//! Bounds: spans wait in a queue of [`MAX_QUEUED_SPANS`] (past it, new spans
//! are dropped, not the requests); each export ends within [`EXPORT_TIMEOUT`].
//! Failures are logged once per outage, not once per batch or request
//! ([`Health`]).

use super::config::Export;
use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{MetricExporter, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Spans waiting for export. At ~1 KiB a span, a collector outage costs at
/// most ~4 MiB.
const MAX_QUEUED_SPANS: usize = 4096;
/// Spans sent in one export, unless `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` says
/// otherwise: at three spans a request, the SDK's 512 made a hundred exports
/// a second under load, each waking the exporter's thread and the runtime.
const EXPORT_BATCH: usize = 2048;
/// One export, connection included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The running exporters; [`Exporters::shutdown`] flushes what is queued.
pub struct Exporters {
    pub tracer_provider: SdkTracerProvider,
    pub meter_provider: SdkMeterProvider,
}

impl Exporters {
    /// Builds both exporters. `runtime` runs their HTTP requests: the SDK's
    /// threads are not tokio's, and the gateway's HTTP client needs tokio.
    pub fn start(export: &Export, runtime: tokio::runtime::Handle) -> anyhow::Result<Exporters> {
        let health = Arc::new(Health::default());
        let client = || Client { http: http_client(), runtime: runtime.clone(), health: health.clone() };
        let resource = Resource::builder().with_service_name(export.service_name.clone()).build();

        let spans = Spans::new(export, &resource, client())?;
        let mut batch = BatchConfigBuilder::default().with_max_queue_size(MAX_QUEUED_SPANS);
        if std::env::var_os("OTEL_BSP_MAX_EXPORT_BATCH_SIZE").is_none() {
            batch = batch.with_max_export_batch_size(EXPORT_BATCH);
        }
        let batch = batch.build();
        let tracer_provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(spans).with_batch_config(batch).build())
            // A trusted client's sampled flag is followed; a new trace is
            // sampled at the ratio.
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(export.sampling_ratio))))
            .with_resource(resource.clone())
            .build();

        let mut metrics = MetricExporter::builder().with_http().with_http_client(client()).with_protocol(Protocol::HttpBinary).with_timeout(EXPORT_TIMEOUT);
        if let Some(endpoint) = &export.metrics_endpoint {
            metrics = metrics.with_endpoint(endpoint);
        }
        let metrics = metrics.with_headers(export.headers.clone()).build()?;
        // Every 60 s unless `OTEL_METRIC_EXPORT_INTERVAL` (ms) says otherwise.
        let meter_provider = SdkMeterProvider::builder().with_reader(PeriodicReader::builder(metrics).build()).with_resource(resource).build();
        Ok(Exporters { tracer_provider, meter_provider })
    }

    /// Sends what is queued (bounded by the export timeout). Call it outside
    /// the tokio runtime, which must still run: it blocks on the exporters'
    /// threads, whose requests run on that runtime.
    pub fn shutdown(&self) {
        let _ = self.tracer_provider.shutdown();
        let _ = self.meter_provider.shutdown();
    }
}

/// The span exporter: a batch encoded straight to OTLP/protobuf, POSTed to
/// the traces endpoint, retried as OTLP/HTTP says (429, 502, 503, 504 and
/// no answer; `Retry-After` followed) within [`EXPORT_TIMEOUT`].
#[derive(Debug)]
struct Spans {
    client: Client,
    endpoint: http::Uri,
    headers: http::HeaderMap,
    /// The `ResourceSpans`' resource fields, encoded once.
    resource: Vec<u8>,
}

/// Waits between tries: 100 ms, doubling, at most [`MAX_RETRIES`] times.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRIES: u32 = 3;

impl Spans {
    fn new(export: &Export, resource: &Resource, client: Client) -> anyhow::Result<Spans> {
        use anyhow::Context as _;
        let endpoint = export.traces_endpoint.parse().with_context(|| format!("the traces endpoint {:?} is not a URL", export.traces_endpoint))?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in &export.trace_headers {
            // The value is never in the error: headers carry credentials.
            let value = http::HeaderValue::from_str(value).with_context(|| format!("the telemetry header {name:?} has a value that is not a header value"))?;
            headers.insert(http::HeaderName::from_bytes(name.as_bytes())?, value);
        }
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-protobuf"));
        Ok(Spans { client, endpoint, headers, resource: super::otlp::resource(resource) })
    }

    /// One POST of `body`; `Err` says whether to try again, and after how long.
    async fn post(http: &reqwest::Client, endpoint: &http::Uri, headers: &http::HeaderMap, body: Bytes) -> Result<(), (String, Option<Duration>)> {
        let mut request = Request::post(endpoint.clone()).body(body).map_err(|e| (e.to_string(), None))?;
        *request.headers_mut() = headers.clone();
        let request = reqwest::Request::try_from(request).map_err(|e| (e.to_string(), None))?;
        let response = match http.execute(request).await {
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

impl opentelemetry_sdk::trace::SpanExporter for Spans {
    async fn export(&self, batch: Vec<opentelemetry_sdk::trace::SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        let body = Bytes::from(super::otlp::encode(&self.resource, batch));
        let (http, endpoint, headers) = (self.client.http.clone(), self.endpoint.clone(), self.headers.clone());
        // On the gateway's runtime: the SDK's thread has no tokio timer or reactor.
        let sent = self.client.runtime.spawn(async move {
            let give_up = tokio::time::Instant::now() + EXPORT_TIMEOUT;
            let mut wait = FIRST_RETRY;
            let mut tries = 0;
            loop {
                let (what, retry) = match tokio::time::timeout_at(give_up, Spans::post(&http, &endpoint, &headers, body.clone())).await {
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
        });
        let outcome = sent.await.unwrap_or_else(|_| Err("the runtime is stopping".to_owned()));
        match outcome {
            Ok(()) => {
                self.client.health.succeeded();
                Ok(())
            }
            Err(what) => {
                self.client.health.failed(&what);
                Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(what))
            }
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = super::otlp::resource(resource);
    }
}

fn http_client() -> reqwest::Client {
    crate::http_client::builder().timeout(EXPORT_TIMEOUT).build().expect("a client with the gateway's TLS configuration")
}

/// Whether the last export failed: the first failure is logged, and the
/// recovery, nothing in between (a collector down for an hour would
/// otherwise write a line every few seconds).
#[derive(Debug, Default)]
struct Health {
    failing: AtomicBool,
}

impl Health {
    fn failed(&self, what: &str) {
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = what, "telemetry export failed; spans and metrics are dropped until the collector answers (logged once, not per request)");
        }
    }

    fn succeeded(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("telemetry export works again");
        }
    }
}

/// The exporters' HTTP client: the gateway's reqwest (one TLS setup, no
/// second reqwest version in the build), driven on the gateway's runtime.
#[derive(Debug)]
struct Client {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
    health: Arc<Health>,
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let response = http.execute(reqwest::Request::try_from(request)?).await?;
            let mut answer = Response::builder().status(response.status());
            for (name, value) in response.headers() {
                answer = answer.header(name, value);
            }
            let body = response.bytes().await?;
            Ok::<_, HttpError>(answer.body(body)?)
        });
        // The error names the endpoint, never a header (the headers are secrets).
        let outcome = match sent.await {
            Ok(Ok(response)) if response.status().is_success() => Ok(response),
            Ok(Ok(response)) => Err(format!("the collector answered {}", response.status())),
            Ok(Err(error)) => Err(crate::error_chain::Chain(error.as_ref()).to_string()),
            Err(_) => Err("the runtime is stopping".to_owned()),
        };
        match outcome {
            Ok(response) => {
                self.health.succeeded();
                Ok(response)
            }
            Err(what) => {
                self.health.failed(&what);
                Err(what.into())
            }
        }
    }
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
