//! The exporters: OTLP over HTTP/protobuf for traces and metrics, sent in
//! the background, so a slow or absent collector never holds a request.
//! Spans go through our own batches ([`super::span_export`], which says
//! why); metrics through opentelemetry-otlp, from the SDK's own thread.
//!
//! Each export ends within [`EXPORT_TIMEOUT`]. Failures are logged once per
//! outage, not once per batch or request ([`Health`]).

use super::config::Export;
use super::health::Health;
use super::span_export::{EXPORT_TIMEOUT, SpanBatches};
use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{MetricExporter, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use std::sync::Arc;

/// The running exporters; [`Exporters::shutdown`] flushes what is queued.
pub struct Exporters {
    pub spans: Arc<SpanBatches>,
    pub meter_provider: SdkMeterProvider,
}

impl Exporters {
    /// Builds both exporters. `runtime` runs their HTTP requests: the SDK's
    /// threads are not tokio's, and the gateway's HTTP client needs tokio.
    pub fn start(export: &Export, runtime: tokio::runtime::Handle) -> anyhow::Result<Exporters> {
        let health = Arc::new(Health::default());
        let client = || Client { http: http_client(), runtime: runtime.clone(), health: health.clone() };
        let resource = Resource::builder().with_service_name(export.service_name.clone()).build();

        let spans = Arc::new(SpanBatches::start(export, &resource, http_client(), &runtime, health.clone())?);

        let mut metrics = MetricExporter::builder().with_http().with_http_client(client()).with_protocol(Protocol::HttpBinary).with_timeout(EXPORT_TIMEOUT);
        if let Some(endpoint) = &export.metrics_endpoint {
            metrics = metrics.with_endpoint(endpoint);
        }
        let metrics = metrics.with_headers(export.headers.clone()).build()?;
        // Every 60 s unless `OTEL_METRIC_EXPORT_INTERVAL` (ms) says otherwise.
        let meter_provider = SdkMeterProvider::builder().with_reader(PeriodicReader::builder(metrics).build()).with_resource(resource).build();
        Ok(Exporters { spans, meter_provider })
    }

    /// Sends what is queued (bounded by the export timeout). Call it outside
    /// the tokio runtime, which must still run: it blocks on the exporters'
    /// threads, whose requests run on that runtime.
    pub fn shutdown(&self) {
        self.spans.shutdown(EXPORT_TIMEOUT);
        let _ = self.meter_provider.shutdown();
    }
}

fn http_client() -> reqwest::Client {
    crate::http_client::builder().timeout(EXPORT_TIMEOUT).build().expect("a client with the gateway's TLS configuration")
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
