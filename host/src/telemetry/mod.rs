//! OpenTelemetry export: traces and metrics over OTLP/HTTP, beside the logs
//! and the Prometheus endpoint.
//!
//! - **Spans** ([`trace`]): `request`, with `plugin.call`, `upstream` and
//!   `server.route` below it, recorded by the gateway (not by the SDK's
//!   tracer, nor from the log's `tracing` spans: the module says why).
//! - **The request's span** ([`request`]): its kind, status and outcome,
//!   and its duration in `http.server.request.duration`.
//! - **Trace context** ([`context`]): W3C `traceparent`/`tracestate` read
//!   from clients the workload trusts (`trust_trace_context`), and sent to
//!   the upstream.
//! - **Metrics** ([`metrics`]): the Prometheus metrics' names, recorded a
//!   second time into OpenTelemetry instruments, and `http.server.request.duration`.
//! - **Span export** ([`span_export`], [`otlp`]): each span encoded to
//!   OTLP/protobuf as it ends, batched, posted by a task on the runtime.
//! - **Configuration** ([`config`]): `[telemetry]` in the policy and the
//!   standard `OTEL_*` variables, read once at start.
//!
//! Off (no endpoint anywhere) it costs a branch per span and per metric: no
//! tracer, no instrument exists.

pub mod config;
pub mod context;
mod export;
mod health;
pub mod metrics;
mod otlp;
mod record;
pub mod request;
mod span_export;
pub mod trace;

pub use config::{Export, TelemetryFile, TelemetrySettings};

/// Export running; dropping it does not flush, [`Telemetry::shutdown`] does.
pub struct Telemetry {
    exporters: export::Exporters,
}

impl Telemetry {
    /// Starts the exporters and turns the gateway's telemetry on. `runtime`
    /// is the gateway's tokio runtime, which runs the exports' requests.
    pub fn start(export: &Export, runtime: tokio::runtime::Handle) -> anyhow::Result<Telemetry> {
        let exporters = export::Exporters::start(export, runtime)?;
        metrics::install(&exporters.meter_provider);
        trace::install(exporters.spans.clone(), export.sampling_ratio);
        Ok(Telemetry { exporters })
    }

    /// Exports what is queued. Outside the runtime, which must still run.
    pub fn shutdown(self) {
        self.exporters.shutdown();
    }
}
