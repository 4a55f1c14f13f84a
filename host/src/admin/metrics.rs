//! Prometheus metrics. Every label value comes from the policy (workload and
//! component names) or from a fixed set in this code — never from request data,
//! so a client cannot create series or smuggle text into the metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
struct ReloadLabels {
    result: &'static str,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    call_seconds: Family<PluginLabels, Histogram>,
    faults: Family<FaultLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
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
        registry.register("requests", "Requests by workload and outcome", requests.clone());
        registry.register("component_call_seconds", "Duration of component calls", call_seconds.clone());
        registry.register("component_faults", "Component calls that failed (trap, deadline, memory limit, ...)", faults.clone());
        registry.register("reloads", "Policy reloads by result", reloads.clone());
        Metrics { registry: Mutex::new(registry), requests, call_seconds, faults, reloads }
    }

    /// Request counters for one workload, one per outcome (a fixed label such
    /// as `forwarded` or `denied`), resolved once at policy load.
    pub fn workload(&self, workload: &str, outcomes: &[&'static str]) -> WorkloadMetrics {
        let requests =
            outcomes.iter().map(|&outcome| (outcome, self.requests.get_or_create(&RequestLabels { workload: workload.to_owned(), outcome }).clone())).collect();
        WorkloadMetrics { requests }
    }

    pub fn reload(&self, ok: bool) {
        self.reloads.get_or_create(&ReloadLabels { result: if ok { "success" } else { "failure" } }).inc();
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
                (kind, self.faults.get_or_create(&labels).clone())
            })
            .collect();
        PluginMetrics { latency: self.call_seconds.get_or_create(&labels).clone(), faults }
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

/// One workload's request counters.
#[derive(Clone, Default)]
pub struct WorkloadMetrics {
    requests: Vec<(&'static str, Counter)>,
}

impl WorkloadMetrics {
    /// Counts one finished request with `outcome` (one of those given to [`Metrics::workload`]).
    pub fn request(&self, outcome: &str) {
        if let Some((_, counter)) = self.requests.iter().find(|(o, _)| *o == outcome) {
            counter.inc();
        }
    }
}

/// One chain position's metric handles.
#[derive(Clone)]
pub struct PluginMetrics {
    pub latency: Histogram,
    /// By fault kind label.
    faults: Vec<(&'static str, Counter)>,
}

impl PluginMetrics {
    /// Counts a failed call of `kind` (one of the labels given to [`Metrics::plugin`]).
    pub fn fault(&self, kind: &str) {
        if let Some((_, counter)) = self.faults.iter().find(|(k, _)| *k == kind) {
            counter.inc();
        }
    }
}
