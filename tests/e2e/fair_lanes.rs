//! Fair slow lanes (issue 22, item 5): what one caller sends cannot push a
//! workload's authorizer into the slow lane for everyone, a faulted entry
//! leaves a busy lane, and the lane's queue, wait and occupancy are in the
//! metrics. The assertions read the lane's own counters, not the clock.

use crate::{client, json};
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::upstream::TestUpstream;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// An MCP workload on `upstream` whose callers are told apart by a header:
/// `x-caller-a` is `fixture:a`, `x-caller-b` is `fixture:b`; then `authorize`.
fn mcp_workload(upstream: &str, authorize: &str) -> String {
    let inbound = [("a", "x-caller-a"), ("b", "x-caller-b")]
        .map(|(tag, header)| behaviour(&format!(r#"mode = "allow", tag = "{tag}", only_if_header = "{header}""#)))
        .concat();
    workload("tools", upstream, &format!("{inbound}{authorize}"))
        .replace("public_url = \"http://127.0.0.1:8080\"", "public_url = \"http://127.0.0.1:8080/mcp\"")
}

/// A `tools/call` of `echo` with `arguments`, as caller `a` or `b`.
async fn call(url: &str, caller: &str, arguments: &Value) -> reqwest::Response {
    let message = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "echo", "arguments": arguments } });
    client()
        .post(url)
        .header(format!("x-caller-{caller}"), "1")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(message.to_string())
        .send()
        .await
        .unwrap()
}

/// The value of the series `line` starts (name and labels) in the metrics text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .parse()
        .unwrap()
}

/// Every call sent to the slow lane so far, whatever the reason.
fn lane_calls(text: &str) -> f64 {
    ["slow_caller", "slow_callers", "input", "faulted"].iter().map(|r| metric(text, &format!("portcullis_slow_lane_calls_total{{reason=\"{r}\"}}"))).sum()
}

/// About 500 KB of arguments, 100,000 numbers: what the issue's attacker sends.
fn heavy_arguments() -> Value {
    json!({ "items": (0..100_000).collect::<Vec<u32>>() })
}

#[tokio::test]
async fn arguments_over_the_policys_bounds_are_refused_before_any_authorizer_is_asked() {
    let upstream = TestUpstream::start().await;
    let authorize = "  [[workloads.authorize]]\n  component = \"test-authorizer\"\n  config = { mode = \"allow\" }\n";
    let gw = TestGateway::start(&format!("version = 1\n{}", mcp_workload(&upstream.url(), authorize))).await.unwrap();
    let url = format!("{}/mcp", gw.url("tools").await);
    let asked = async || metric(&gw.metrics().await, "portcullis_component_call_seconds_count{workload=\"tools\",component=\"test-authorizer\"}");

    assert_eq!(call(&url, "a", &json!({ "message": "hi" })).await.status(), 200);
    assert_eq!(asked().await, 1.0);
    // The defaults: 64 KiB of JSON, 4096 values.
    for (arguments, key) in [
        (json!({ "message": "x".repeat(70 * 1024) }), "limits.max_mcp_arguments_bytes = 65536"),
        (json!({ "items": vec![0; 5000] }), "limits.max_mcp_arguments_elements"),
        (heavy_arguments(), "limits.max_mcp_arguments_bytes"),
    ] {
        let r = call(&url, "b", &arguments).await;
        assert_eq!(r.status(), 403, "{key}");
        let body = json(r).await;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(key) && message.contains("before any authorizer was asked"), "{body}");
    }
    assert_eq!(asked().await, 1.0, "no authorizer was asked about a refused call");

    // A policy may allow more.
    let raised = format!("{authorize}  [workloads.limits]\n  max_mcp_arguments_bytes = 1048576\n  max_mcp_arguments_elements = 200000\n");
    gw.reload_with(&format!("version = 1\n{}", mcp_workload(&upstream.url(), &raised))).await.unwrap();
    let url = format!("{}/mcp", gw.url("tools").await);
    assert_eq!(call(&url, "b", &heavy_arguments()).await.status(), 200);
}

#[tokio::test]
async fn one_callers_large_arguments_send_only_that_caller_to_the_slow_lane() {
    let upstream = TestUpstream::start().await;
    // Limits raised so that the attacker's arguments reach Cedar, and a
    // deadline long enough for them on a loaded machine: this is about
    // where the calls run, not whether they end in time.
    let authorize = "  [[workloads.authorize]]\n  component = \"builtin:cedar\"\n  config = { policies = 'permit(principal, action, resource);' }\n  limits = { deadline_ms = 10000, memory_mib = 64 }\n\
                     \n  [workloads.limits]\n  max_mcp_arguments_bytes = 1048576\n  max_mcp_arguments_elements = 200000\n";
    let gw = TestGateway::start(&format!("version = 1\n{}", mcp_workload(&upstream.url(), authorize))).await.unwrap();
    let url = format!("{}/mcp", gw.url("tools").await);
    let lane = gw.gateway.runtime().slow_lane().metrics().clone();
    use portcullis::admin::metrics::LaneReason;

    // The attacker: a large input goes to the lane from its start, and its
    // conversion computes long, which marks this caller.
    assert_eq!(call(&url, "b", &heavy_arguments()).await.status(), 200);
    assert_eq!(lane.calls(LaneReason::Input), 1);
    assert_eq!(call(&url, "b", &json!({ "message": "small" })).await.status(), 200);
    assert_eq!(lane.calls(LaneReason::Caller), 1, "the attacker's next call, however small, runs in the lane");
    // Its neighbour's calls stay on the gateway's workers.
    let before = lane_calls(&gw.metrics().await);
    for _ in 0..5 {
        assert_eq!(call(&url, "a", &json!({ "message": "hi" })).await.status(), 200);
    }
    assert_eq!(lane_calls(&gw.metrics().await), before, "another caller's calls were sent to the slow lane");
}

#[tokio::test]
async fn one_callers_faults_send_only_that_caller_to_the_slow_lane() {
    let upstream = TestUpstream::start().await;
    // Cedar's default memory cap (16 MiB) does not hold the attacker's arguments: each call faults.
    let authorize = "  [[workloads.authorize]]\n  component = \"builtin:cedar\"\n  config = { policies = 'permit(principal, action, resource);' }\n  limits = { deadline_ms = 10000 }\n\
                     \n  [workloads.limits]\n  max_mcp_arguments_bytes = 1048576\n  max_mcp_arguments_elements = 200000\n";
    let gw = TestGateway::start(&format!("version = 1\n{}", mcp_workload(&upstream.url(), authorize))).await.unwrap();
    let url = format!("{}/mcp", gw.url("tools").await);
    let lane = gw.gateway.runtime().slow_lane().metrics().clone();
    use portcullis::admin::metrics::LaneReason;

    let r = call(&url, "b", &heavy_arguments()).await;
    assert_eq!(r.status(), 503);
    let metrics = gw.metrics().await;
    assert_eq!(
        metric(&metrics, "portcullis_component_faults_total{workload=\"tools\",component=\"builtin:cedar\",kind=\"memory_limit\",blame=\"guest\"}"),
        1.0
    );
    // Its neighbour's calls stay on the gateway's workers.
    let before = lane_calls(&gw.metrics().await);
    for _ in 0..5 {
        assert_eq!(call(&url, "a", &json!({ "message": "hi" })).await.status(), 200);
    }
    let m = gw.metrics().await;
    assert_eq!(lane_calls(&m), before, "another caller's calls were sent to the slow lane: {m}");
    // The attacker's next call runs in the lane, and going well ends its mark.
    assert_eq!(call(&url, "b", &json!({ "message": "small" })).await.status(), 200);
    assert_eq!(lane.calls(LaneReason::Faulted), 1);
    assert_eq!(call(&url, "b", &json!({ "message": "small" })).await.status(), 200);
    assert_eq!(lane.calls(LaneReason::Faulted), 1);
}

#[tokio::test]
async fn a_faulted_entry_leaves_a_busy_lane() {
    let upstream = TestUpstream::start().await;
    // An entry that traps when asked to (`x-trap`) and abstains otherwise, then one that allows.
    let body = format!(
        "{}  limits = {{ deadline_ms = 300 }}\n{}",
        behaviour(r#"mode = "trap", only_if_header = "x-trap""#),
        behaviour(r#"mode = "allow", tag = "ok""#)
    );
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("flaky", &upstream.url(), &body))).await.unwrap();
    let url = gw.url("flaky").await;
    let lane = gw.gateway.runtime().slow_lane().clone();

    // Fill every thread of this gateway's lane (a blocking wait, as a runaway would) until released.
    let (release, held) = tokio::sync::watch::channel(false);
    let mut holders = Vec::new();
    for _ in 0..lane.threads() {
        let (lane, mut held) = (lane.clone(), held.clone());
        let (started, running) = tokio::sync::oneshot::channel();
        holders.push(tokio::spawn(async move {
            lane.run(Instant::now() + Duration::from_secs(120), async move {
                started.send(()).unwrap();
                // Blocks the lane's thread until released.
                while !*held.borrow_and_update() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
            .await
        }));
        running.await.unwrap();
    }
    assert_eq!(lane.metrics().running.get() as usize, lane.threads());

    assert_eq!(client().get(&url).header("x-trap", "1").send().await.unwrap().status(), 500);
    // The entry faulted: its next call goes to the lane, which cannot start it.
    // That must not keep it there: the call after runs in place again.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let status = client().get(&url).send().await.unwrap().status().as_u16();
        statuses.push(status);
        if status == 200 {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&200), "{statuses:?}");
    assert!(statuses.iter().all(|&s| s == 200 || s == 503), "{statuses:?}");
    let text = gw.metrics().await;
    assert_eq!(metric(&text, "portcullis_slow_lane_not_started_total"), (statuses.len() - 1) as f64, "{statuses:?}");
    release.send(true).unwrap();
    for holder in holders {
        holder.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn the_lanes_queue_wait_and_occupancy_are_in_the_metrics() {
    let upstream = TestUpstream::start().await;
    let body = format!("{}  limits = {{ deadline_ms = 5000 }}\n", behaviour(r#"mode = "trap""#));
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("trap", &upstream.url(), &body))).await.unwrap();
    let url = gw.url("trap").await;
    // The first fault runs in place; the second call runs in the lane.
    for _ in 0..2 {
        assert_eq!(client().get(&url).send().await.unwrap().status(), 500);
    }
    let text = gw.metrics().await;
    for series in ["portcullis_slow_lane_threads", "portcullis_slow_lane_queued", "portcullis_slow_lane_running", "portcullis_slow_lane_not_started_total"] {
        metric(&text, series);
    }
    assert_eq!(metric(&text, "portcullis_slow_lane_calls_total{reason=\"faulted\"}"), 1.0, "{text}");
    assert!(metric(&text, "portcullis_slow_lane_wait_seconds_count") >= 1.0, "{text}");
}
