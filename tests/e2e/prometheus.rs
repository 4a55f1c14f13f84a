//! A real Prometheus scrapes a running gateway's admin listener every second:
//! after known traffic its HTTP API gives the request counts and the component
//! latency histogram's count exactly; and every metric the Grafana dashboard
//! and the alert rules in deploy/ name is one Prometheus scraped from it, so a
//! renamed metric breaks this test rather than a dashboard in production.

use crate::client;
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::prometheus::{JOB, PrometheusServer};
use portcullis_tests::upstream::TestUpstream;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// Scrapes come every second: a few, with room for a loaded machine.
const SCRAPED_WITHIN: Duration = Duration::from_secs(30);

/// A gateway with an admin listener and one workload whose component allows,
/// unless the request's `x-fixture-mode` says `deny` (403); a Prometheus
/// scraping it.
async fn scraped_gateway(upstream: &TestUpstream) -> (TestGateway, PrometheusServer) {
    let entry = behaviour(r#"mode = "allow", tag = "ok", mode_from = "x-fixture-mode""#);
    let policy = format!("version = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n{}", workload("metered", &upstream.url(), &entry));
    let gw = TestGateway::start(&policy).await.unwrap();
    let prometheus = PrometheusServer::start(gw.gateway.admin_addr().await.unwrap());
    prometheus.ready(SCRAPED_WITHIN).await;
    (gw, prometheus)
}

/// Sends `allowed` requests that the component admits and `denied` that it refuses.
async fn traffic(gw: &TestGateway, allowed: usize, denied: usize) {
    let c = client();
    let url = gw.url("metered").await;
    for _ in 0..allowed {
        assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    }
    for _ in 0..denied {
        assert_eq!(c.get(&url).header("x-fixture-mode", "deny").send().await.unwrap().status(), 403);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_counts_of_known_traffic() {
    let upstream = TestUpstream::start().await;
    let (gw, prometheus) = scraped_gateway(&upstream).await;
    let (allowed, denied) = (7, 4);
    traffic(&gw, allowed, denied).await;

    let series = |name: &str, labels: &str| format!("{name}{{job=\"{JOB}\",workload=\"metered\"{labels}}}");
    for (promql, expected) in [
        (series("portcullis_requests_total", ",outcome=\"forwarded\""), allowed),
        (series("portcullis_requests_total", ",outcome=\"denied\""), denied),
        // Nothing else was counted: every outcome's series added up.
        (format!("sum({})", series("portcullis_requests_total", "")), allowed + denied),
        // One call of the component per request, allowed or denied.
        (series("portcullis_component_call_seconds_count", ",component=\"behaviours\""), allowed + denied),
        (series("portcullis_component_call_seconds_bucket", ",component=\"behaviours\",le=\"+Inf\""), allowed + denied),
    ] {
        let seen = prometheus.wait_for(&promql, expected as f64, SCRAPED_WITHIN).await;
        assert_eq!(seen, Some(expected as f64), "{promql} after {allowed} allowed and {denied} denied requests\n{}", prometheus.log());
    }
    // The scrape itself was healthy (the admin listener accepted Prometheus' Host).
    assert_eq!(prometheus.value(&format!("up{{job=\"{JOB}\"}}")).await, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_alerts_name_is_scraped_from_the_gateway() {
    let upstream = TestUpstream::start().await;
    let (gw, prometheus) = scraped_gateway(&upstream).await;
    // Traffic, so that histograms and counters have their series.
    traffic(&gw, 2, 1).await;
    let done = prometheus.wait_for(&format!("sum(portcullis_requests_total{{job=\"{JOB}\"}})"), 3.0, SCRAPED_WITHIN).await;
    assert_eq!(done, Some(3.0), "{}", prometheus.log());

    let scraped: BTreeSet<String> = prometheus.metric_names().await.into_iter().collect();
    let named = named_metrics();
    // The reading of the files found what they are known to use (a broken reader would pass vacuously).
    for known in ["portcullis_requests_total", "portcullis_component_call_seconds_bucket", "portcullis_reloads_total"] {
        assert!(named.contains(known), "{known} not found in deploy/: {named:?}");
    }
    let missing: Vec<&String> = named.iter().filter(|name| !scraped.contains(*name)).collect();
    assert!(missing.is_empty(), "deploy/ names metrics the gateway does not expose: {missing:?}\nscraped: {scraped:?}");
}

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every `portcullis_*` metric name in the dashboard's queries (the `expr` of
/// each target, the variables' `definition`) and anywhere in the alert rules.
fn named_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(deploy_dir().join("grafana/portcullis.json")).unwrap()).unwrap();
    let mut queries = Vec::new();
    collect_queries(&dashboard, &mut queries);
    assert!(queries.len() > 10, "the dashboard's queries: {queries:?}");
    for query in queries {
        names.extend(metric_names_in(&query));
    }
    names.extend(metric_names_in(&std::fs::read_to_string(deploy_dir().join("prometheus/portcullis.rules.yml")).unwrap()));
    names
}

fn collect_queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "definition", serde_json::Value::String(query)) => out.push(query.clone()),
                    _ => collect_queries(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_queries(item, out)),
        _ => {}
    }
}

/// The words of `text` that start with `portcullis_` (metric-name characters only).
fn metric_names_in(text: &str) -> Vec<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("portcullis_") {
        // A whole word only: not the tail of a longer name.
        let whole = !rest[..at].ends_with(is_name);
        let end = rest[at..].find(|c: char| !is_name(c)).map_or(rest.len(), |n| at + n);
        if whole {
            names.push(rest[at..end].to_owned());
        }
        rest = &rest[end..];
    }
    names
}
