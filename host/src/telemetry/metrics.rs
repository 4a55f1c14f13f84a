//! The metrics over OTLP: the Prometheus metrics (`admin::metrics`) under
//! the same names, each recorded a second time through a twin resolved with
//! its Prometheus series at policy load, plus the HTTP server semantic
//! convention's `http.server.request.duration`.
//!
//! Each series is a bound instrument: its attributes are resolved when it is
//! made, not hashed and looked up at every measurement (about 2,000
//! instructions a request with three series, by callgrind).
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
use opentelemetry::metrics::{BoundCounter, BoundHistogram, Counter, Histogram, Meter};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use std::sync::{Arc, LazyLock, OnceLock, RwLock};
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

/// A counter series, bound to its attributes once: a measurement is an
/// atomic add, not a hash and lookup of its attributes.
#[derive(Clone)]
pub struct CounterTwin(BoundCounter<u64>);

impl CounterTwin {
    pub fn add_one(&self) {
        self.0.add(1);
    }
}

/// A histogram series, bound once.
#[derive(Clone)]
pub struct HistogramTwin(BoundHistogram<f64>);

impl HistogramTwin {
    pub fn record(&self, seconds: f64) {
        self.0.record(seconds);
    }
}

fn attributes(pairs: &[(&'static str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|&(key, value)| KeyValue::new(key, value.to_owned())).collect()
}

/// `portcullis_requests{workload, outcome}`.
pub fn requests(workload: &str, outcome: &'static str) -> Option<CounterTwin> {
    let i = instruments()?;
    Some(CounterTwin(i.requests.bind(&attributes(&[("workload", workload), ("outcome", outcome)]))))
}

/// `portcullis_component_call_seconds{workload, component}`.
pub fn call_seconds(workload: &str, component: &str) -> Option<HistogramTwin> {
    let i = instruments()?;
    Some(HistogramTwin(i.call_seconds.bind(&attributes(&[("workload", workload), ("component", component)]))))
}

/// `portcullis_component_faults{workload, component, kind, blame}`.
pub fn faults(workload: &str, component: &str, kind: &'static str, blame: &'static str) -> Option<CounterTwin> {
    let i = instruments()?;
    Some(CounterTwin(i.faults.bind(&attributes(&[("workload", workload), ("component", component), ("kind", kind), ("blame", blame)]))))
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

/// `http.server.request.duration`'s series, bound as each is first seen:
/// (workload, method, status, scheme). Bounded: the policy's workloads,
/// ten method names (`_OTHER` for the rest), the status codes. Hashed with
/// foldhash: a series is looked up on every request, where SipHash cost
/// about 450 instructions.
type DurationSeries = (Arc<str>, &'static str, u16, &'static str);
static REQUEST_DURATIONS: LazyLock<RwLock<foldhash::HashMap<DurationSeries, BoundHistogram<f64>>>> = LazyLock::new(Default::default);

/// `http.server.request.duration`, with the convention's attributes and the workload.
pub fn request_duration(workload: &Arc<str>, method: &http::Method, scheme: &'static str, status: http::StatusCode, took: Duration) {
    let Some(i) = instruments() else { return };
    let series = (workload.clone(), known_method(method).unwrap_or("_OTHER"), status.as_u16(), scheme);
    let seconds = took.as_secs_f64();
    if let Some(bound) = REQUEST_DURATIONS.read().unwrap_or_else(|p| p.into_inner()).get(&series) {
        return bound.record(seconds);
    }
    let attributes = [
        KeyValue::new("http.request.method", series.1),
        KeyValue::new("http.response.status_code", i64::from(series.2)),
        KeyValue::new("url.scheme", scheme),
        KeyValue::new("workload", workload.clone()),
    ];
    let mut durations = REQUEST_DURATIONS.write().unwrap_or_else(|p| p.into_inner());
    durations.entry(series).or_insert_with(|| i.request_duration.bind(&attributes)).record(seconds);
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
