//! The exporters: OTLP over HTTP/protobuf for traces and metrics, each sent
//! by the SDK's own background thread, so a slow or absent collector never
//! holds a request.
//!
//! Bounds: spans wait in a queue of [`MAX_QUEUED_SPANS`] (past it, new spans
//! are dropped, not the requests); each export ends within [`EXPORT_TIMEOUT`].
//! Failures are logged once per outage, not once per batch or request
//! ([`Health`]).

use super::config::Export;
use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
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

        let mut spans = SpanExporter::builder().with_http().with_http_client(client()).with_protocol(Protocol::HttpBinary).with_timeout(EXPORT_TIMEOUT);
        if let Some(endpoint) = &export.traces_endpoint {
            spans = spans.with_endpoint(endpoint);
        }
        let spans = spans.with_headers(export.headers.clone()).build()?;
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
