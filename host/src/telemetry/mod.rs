//! OpenTelemetry export: traces and metrics over OTLP/HTTP, beside the logs
//! and the Prometheus endpoint, built on what is already there.
//!
//! - **Spans** are the `tracing` spans the gateway opens anyway: `request`
//!   (`proxy::pipeline`), `plugin.call` (`runtime::plugin`), and two opened
//!   only while exporting, `upstream` and `server.route`. A second layer of
//!   the one subscriber ([`layer`]) turns exactly those into OpenTelemetry
//!   spans: no events (log lines can carry details, and would cost an
//!   allocation each), nothing from other crates.
//! - **The request's export** ([`request`]): its kind, status and outcome,
//!   and its duration, recorded only while exporting.
//! - **Trace context** ([`context`]): W3C `traceparent`/`tracestate` read
//!   from clients the workload trusts (`trust_trace_context`), and sent to
//!   the upstream.
//! - **Metrics** ([`metrics`]): the Prometheus metrics' names, recorded a
//!   second time into OpenTelemetry instruments, and `http.server.request.duration`.
//! - **Configuration** ([`config`]): `[telemetry]` in the policy and the
//!   standard `OTEL_*` variables, read once at start.
//!
//! Off (no endpoint anywhere) it costs a load of one flag per request
//! ([`enabled`]): no layer is installed, no instrument exists, the extra
//! spans are not opened.

pub mod config;
pub mod context;
mod export;
pub mod metrics;
pub mod request;

use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::{Layer, Registry};

/// The subscriber layer that exports the spans (the first over the registry).
pub type SpanLayer = Box<dyn Layer<Registry> + Send + Sync>;

pub use config::{Export, TelemetryFile, TelemetrySettings};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans and metrics are exported (set once, at start).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The spans exported: the gateway's own, by name (see the module docs).
const SPANS: [&str; 4] = ["request", "plugin.call", "upstream", "server.route"];

/// Export running; dropping it does not flush, [`Telemetry::shutdown`] does.
pub struct Telemetry {
    exporters: export::Exporters,
}

impl Telemetry {
    /// Starts the exporters and turns the gateway's telemetry on. Returns the
    /// handle and the subscriber layer that exports the spans (for
    /// `cli::init_logging`). `runtime` is the gateway's tokio runtime.
    pub fn start(export: &Export, runtime: tokio::runtime::Handle) -> anyhow::Result<(Telemetry, SpanLayer)> {
        use opentelemetry::trace::TracerProvider as _;
        let exporters = export::Exporters::start(export, runtime)?;
        metrics::install(&exporters.meter_provider);
        let tracer = exporters.tracer_provider.tracer("portcullis");
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            // Attributes are what the spans declare, nothing about the process.
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_level(false)
            .with_tracked_inactivity(false)
            // The OpenTelemetry context is read from the span where it is
            // needed (`context::to_upstream`), not from a thread-local set at
            // every poll of every instrumented future.
            .with_context_activation(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span() && meta.target().starts_with("portcullis") && SPANS.contains(&meta.name())
            }))
            .boxed();
        ENABLED.store(true, Ordering::Relaxed);
        Ok((Telemetry { exporters }, layer))
    }

    /// Exports what is queued. Outside the runtime, which must still run.
    pub fn shutdown(self) {
        self.exporters.shutdown();
    }
}

/// An `info` span that exists only while exporting (`upstream`,
/// `server.route`): the log has the request's span already, and a span
/// opened for nothing would cost its allocations on every request.
macro_rules! span {
    ($name:literal $(, $($fields:tt)*)?) => {
        if $crate::telemetry::enabled() { tracing::info_span!($name $(, $($fields)*)?) } else { tracing::Span::none() }
    };
}
pub(crate) use span;
