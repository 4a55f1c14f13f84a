//! Prometheus metrics. Every label value comes from the policy (workload and
//! component names) or from a fixed set in this code — never from request data,
//! so a client cannot create series or smuggle text into the metrics.

use crate::telemetry::metrics::{self as telemetry, CounterTwin, HistogramTwin};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    workload: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    workload: String,
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    workload: String,
    component: String,
    kind: &'static str,
    blame: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    workload: String,
    component: String,
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabels {
    reason: &'static str,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    call_seconds: Family<PluginLabels, Histogram>,
    faults: Family<FaultLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    events: Family<EventLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::<RequestLabels, Counter>::default();
        // 1 µs .. ~1 s: component calls range from a pooled check to a JWKS fetch.
        let call_seconds = Family::<PluginLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(1e-6, 4.0, 11)));
        let faults = Family::<FaultLabels, Counter>::default();
        let reloads = Family::<ReloadLabels, Counter>::default();
        // Both results exist (at 0) from the start: a series born at 1 has no
        // increase, so an alert on the first failed reload would never fire.
        for result in ["success", "failure"] {
            let _ = reloads.get_or_create(&ReloadLabels { result });
        }
        registry.register("requests", "Requests by workload and outcome", requests.clone());
        registry.register("component_call_seconds", "Duration of component calls", call_seconds.clone());
        registry.register("component_faults", "Component calls that failed (trap, deadline, memory limit, ...)", faults.clone());
        registry.register("reloads", "Policy reloads by result", reloads.clone());
        let events = Family::<EventLabels, Counter>::default();
        registry.register("component_events", "Events components reported (token renewals, exchanges, ended sessions)", events.clone());
        Metrics { registry: Mutex::new(registry), requests, call_seconds, faults, reloads, events }
    }

    /// Request counters for one workload, one per outcome (a fixed label such
    /// as `forwarded` or `denied`), resolved once at policy load.
    pub fn workload(&self, workload: &str, outcomes: &[&'static str]) -> WorkloadMetrics {
        let requests = outcomes
            .iter()
            .map(|&outcome| {
                let counter = self.requests.get_or_create(&RequestLabels { workload: workload.to_owned(), outcome }).clone();
                (outcome, counter, telemetry::requests(workload, outcome))
            })
            .collect();
        WorkloadMetrics { requests }
    }

    pub fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
        telemetry::reload(result);
    }

    /// Handles for one chain position, resolved once at policy load.
    /// `faults`: every (kind, blame) pair the runtime reports, so each series
    /// exists (at 0) from the start.
    pub fn plugin(&self, workload: &str, component: &str, faults: &[(&'static str, &'static str)]) -> PluginMetrics {
        let labels = PluginLabels { workload: workload.to_owned(), component: component.to_owned() };
        let faults = faults
            .iter()
            .map(|&(kind, blame)| {
                let labels = FaultLabels { workload: workload.to_owned(), component: component.to_owned(), kind, blame };
                (kind, self.faults.get_or_create(&labels).clone(), telemetry::faults(workload, component, kind, blame))
            })
            .collect();
        let latency = self.call_seconds.get_or_create(&labels).clone();
        PluginMetrics { latency, latency_twin: telemetry::call_seconds(workload, component), faults }
    }

    /// The event counters of one chain entry (the `events` import), set up at
    /// load; each event's series appears at its first report (events are
    /// rare: a refresh, an exchange, not every request).
    pub fn events(&self, workload: &str, component: &str) -> EventCounters {
        let events = self.events.clone();
        let (workload, component) = (workload.to_owned(), component.to_owned());
        EventCounters(std::sync::Arc::new(move |event: &'static str| {
            events.get_or_create(&EventLabels { workload: workload.clone(), component: component.clone(), event }).inc();
            telemetry::component_event(&workload, &component, event);
        }))
    }

    /// Registers the slow lane's metrics (one lane per process: see `runtime::slow_lane`).
    pub fn slow_lane(&self, lane: &LaneMetrics) {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        registry.register("slow_lane_threads", "Threads of the slow lane", lane.threads.clone());
        registry.register("slow_lane_queued", "Work sent to the slow lane and not started yet (the queue's depth)", lane.queued.clone());
        registry.register("slow_lane_running", "Work running in the slow lane (its occupancy; compare with slow_lane_threads)", lane.running.clone());
        registry.register("slow_lane_wait_seconds", "Time from sending work to the slow lane to its start", lane.wait.clone());
        registry.register("slow_lane_calls", "Component calls sent to the slow lane, by why", lane.calls.clone());
        registry.register("slow_lane_not_started", "Component calls the slow lane was too busy to start by their deadline", lane.not_started.clone());
    }

    /// Registers the key-value store's count of operations answered
    /// `unavailable` (one per process: see `store::Stores`).
    pub fn store(&self, unavailable: &Counter) {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        registry.register(
            "store_unavailable",
            "Store operations answered unavailable (the backend unreachable, failing, or too slow for the call's deadline)",
            unavailable.clone(),
        );
    }

    /// Adds metrics read on each scrape (e.g. the instance pool's).
    pub fn add_collector(&self, collector: Box<dyn prometheus_client::collector::Collector>) {
        self.registry.lock().unwrap_or_else(|p| p.into_inner()).register_collector(collector);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String does not fail");
        out
    }
}

/// Counts the events one chain entry reports; counts nothing by default
/// (`portcullis check`, `plugin test`).
#[derive(Clone)]
pub struct EventCounters(std::sync::Arc<dyn Fn(&'static str) + Send + Sync>);

impl Default for EventCounters {
    fn default() -> Self {
        EventCounters(std::sync::Arc::new(|_| {}))
    }
}

impl std::fmt::Debug for EventCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventCounters")
    }
}

impl EventCounters {
    pub fn count(&self, event: &'static str) {
        (self.0)(event)
    }
}

/// One workload's request counters (with their OTLP twins while exporting: `telemetry::metrics`).
#[derive(Clone, Default)]
pub struct WorkloadMetrics {
    requests: Vec<(&'static str, Counter, Option<CounterTwin>)>,
}

impl WorkloadMetrics {
    /// Counts one finished request with `outcome` (one of those given to [`Metrics::workload`]).
    pub fn request(&self, outcome: &str) {
        if let Some((_, counter, twin)) = self.requests.iter().find(|(o, ..)| *o == outcome) {
            counter.inc();
            if let Some(twin) = twin {
                twin.add_one();
            }
        }
    }
}

/// One chain position's metric handles.
#[derive(Clone)]
pub struct PluginMetrics {
    latency: Histogram,
    latency_twin: Option<HistogramTwin>,
    /// By fault kind label.
    faults: Vec<(&'static str, Counter, Option<CounterTwin>)>,
}

impl PluginMetrics {
    /// Records one call's duration.
    pub fn call_took(&self, seconds: f64) {
        self.latency.observe(seconds);
        if let Some(twin) = &self.latency_twin {
            twin.record(seconds);
        }
    }

    /// Counts a failed call of `kind` (one of the labels given to [`Metrics::plugin`]).
    pub fn fault(&self, kind: &str) {
        if let Some((_, counter, twin)) = self.faults.iter().find(|(k, ..)| *k == kind) {
            counter.inc();
            if let Some(twin) = twin {
                twin.add_one();
            }
        }
    }
}

/// Why a component call runs in the slow lane (the `reason` label of `portcullis_slow_lane_calls_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneReason {
    /// This caller's calls of the entry lately computed long.
    Caller,
    /// Several callers' calls of the entry lately computed long: every caller's go.
    Entry,
    /// The call's own input is large enough to compute long.
    Input,
    /// This caller's last call of the entry faulted (or several callers' did).
    Faulted,
}

impl LaneReason {
    pub const ALL: [LaneReason; 4] = [LaneReason::Caller, LaneReason::Entry, LaneReason::Input, LaneReason::Faulted];

    pub fn label(self) -> &'static str {
        match self {
            LaneReason::Caller => "slow_caller",
            LaneReason::Entry => "slow_callers",
            LaneReason::Input => "input",
            LaneReason::Faulted => "faulted",
        }
    }
}

/// The slow lane's metrics, owned by the lane and registered with [`Metrics::slow_lane`].
#[derive(Clone)]
pub struct LaneMetrics {
    pub threads: Gauge,
    pub queued: Gauge,
    pub running: Gauge,
    pub wait: Histogram,
    calls: Family<LaneLabels, Counter>,
    pub not_started: Counter,
}

impl Default for LaneMetrics {
    fn default() -> Self {
        let calls = Family::<LaneLabels, Counter>::default();
        // Every reason's series exists (at 0) from the start.
        for reason in LaneReason::ALL {
            let _ = calls.get_or_create(&LaneLabels { reason: reason.label() });
        }
        LaneMetrics {
            threads: Gauge::default(),
            queued: Gauge::default(),
            running: Gauge::default(),
            // 10 µs .. ~2.6 s: an idle lane starts work at once; a busy one past every deadline.
            wait: Histogram::new(exponential_buckets(1e-5, 4.0, 10)),
            calls,
            not_started: Counter::default(),
        }
    }
}

impl LaneMetrics {
    /// Counts a component call sent to the lane for `reason`.
    pub fn call(&self, reason: LaneReason) {
        self.calls.get_or_create(&LaneLabels { reason: reason.label() }).inc();
    }

    /// The calls sent to the lane for `reason` so far.
    pub fn calls(&self, reason: LaneReason) -> u64 {
        self.calls.get_or_create(&LaneLabels { reason: reason.label() }).get()
    }
}
