//! The metrics over OTLP: the Prometheus metrics (`admin::metrics`) under
//! the same names, each recorded a second time through a twin resolved with
//! its Prometheus series at policy load, plus the HTTP server semantic
//! convention's `http.server.request.duration`.
//!
//! Why twins and not a bridge reading the Prometheus registry: the registry
//! can only be read as exposition text, and histograms cannot be reported
//! through OpenTelemetry's observable instruments. Twins exist only while
//! exporting (`None` otherwise: one branch per record).
//!
//! Attribute values, as the Prometheus labels: names from the policy and
//! fixed sets from this code, never request data (an unknown HTTP method is
//! `_OTHER`, as the convention says).

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

struct Instruments {
    requests: Counter<u64>,
    call_seconds: Histogram<f64>,
    faults: Counter<u64>,
    reloads: Counter<u64>,
    events: Counter<u64>,
    request_duration: Histogram<f64>,
}

static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();

pub(super) fn install(provider: &SdkMeterProvider) {
    use opentelemetry::metrics::MeterProvider as _;
    let meter: Meter = provider.meter("portcullis");
    // The Prometheus histogram's buckets: 1 µs .. ~1 s.
    let component_buckets = (0..11).map(|i| 1e-6 * 4f64.powi(i)).collect();
    let _ = INSTRUMENTS.set(Instruments {
        requests: meter.u64_counter("portcullis_requests").with_description("Requests by workload and outcome").build(),
        call_seconds: meter
            .f64_histogram("portcullis_component_call_seconds")
            .with_description("Duration of component calls")
            .with_unit("s")
            .with_boundaries(component_buckets)
            .build(),
        faults: meter.u64_counter("portcullis_component_faults").with_description("Component calls that failed (trap, deadline, memory limit, ...)").build(),
        reloads: meter.u64_counter("portcullis_reloads").with_description("Policy reloads by result").build(),
        events: meter
            .u64_counter("portcullis_component_events")
            .with_description("Events components reported (token renewals, exchanges, ended sessions)")
            .build(),
        // The convention's name, unit and advised buckets.
        request_duration: meter
            .f64_histogram("http.server.request.duration")
            .with_description("Duration of HTTP server requests (to the response head)")
            .with_unit("s")
            .with_boundaries(vec![0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0])
            .build(),
    });
}

fn instruments() -> Option<&'static Instruments> {
    INSTRUMENTS.get()
}

/// A counter series: the instrument and its attributes, resolved once.
#[derive(Clone)]
pub struct CounterTwin {
    counter: Counter<u64>,
    attributes: Arc<[KeyValue]>,
}

impl CounterTwin {
    pub fn add_one(&self) {
        self.counter.add(1, &self.attributes);
    }
}

/// A histogram series, resolved once.
#[derive(Clone)]
pub struct HistogramTwin {
    histogram: Histogram<f64>,
    attributes: Arc<[KeyValue]>,
}

impl HistogramTwin {
    pub fn record(&self, seconds: f64) {
        self.histogram.record(seconds, &self.attributes);
    }
}

fn attributes(pairs: &[(&'static str, &str)]) -> Arc<[KeyValue]> {
    pairs.iter().map(|&(key, value)| KeyValue::new(key, value.to_owned())).collect()
}

/// `portcullis_requests{workload, outcome}`.
pub fn requests(workload: &str, outcome: &'static str) -> Option<CounterTwin> {
    let i = instruments()?;
    Some(CounterTwin { counter: i.requests.clone(), attributes: attributes(&[("workload", workload), ("outcome", outcome)]) })
}

/// `portcullis_component_call_seconds{workload, component}`.
pub fn call_seconds(workload: &str, component: &str) -> Option<HistogramTwin> {
    let i = instruments()?;
    Some(HistogramTwin { histogram: i.call_seconds.clone(), attributes: attributes(&[("workload", workload), ("component", component)]) })
}

/// `portcullis_component_faults{workload, component, kind, blame}`.
pub fn faults(workload: &str, component: &str, kind: &'static str, blame: &'static str) -> Option<CounterTwin> {
    let i = instruments()?;
    let attributes = attributes(&[("workload", workload), ("component", component), ("kind", kind), ("blame", blame)]);
    Some(CounterTwin { counter: i.faults.clone(), attributes })
}

/// `portcullis_reloads{result}`.
pub fn reload(result: &'static str) {
    if let Some(i) = instruments() {
        i.reloads.add(1, &[KeyValue::new("result", result)]);
    }
}

/// `portcullis_component_events{workload, component, event}`: resolved per
/// event, as events are rare (a renewal, an exchange, not every request).
pub fn component_event(workload: &str, component: &str, event: &'static str) {
    if let Some(i) = instruments() {
        i.events.add(1, &attributes(&[("workload", workload), ("component", component), ("event", event)]));
    }
}

/// `http.server.request.duration`, with the convention's attributes and the workload.
pub fn request_duration(workload: &Arc<str>, method: &http::Method, scheme: &'static str, status: http::StatusCode, took: Duration) {
    let Some(i) = instruments() else { return };
    let attributes = [
        KeyValue::new("http.request.method", known_method(method).unwrap_or("_OTHER")),
        KeyValue::new("http.response.status_code", i64::from(status.as_u16())),
        KeyValue::new("url.scheme", scheme),
        KeyValue::new("workload", workload.clone()),
    ];
    i.request_duration.record(took.as_secs_f64(), &attributes);
}

/// The method's name if it is one of HTTP's own (RFC 9110 and PATCH), as a
/// static string: an attribute that costs no allocation.
pub(super) fn known_method(method: &http::Method) -> Option<&'static str> {
    Some(match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => return None,
    })
}
