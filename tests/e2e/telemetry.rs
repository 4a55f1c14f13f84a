//! OpenTelemetry export end to end (issue 27): the real binary exports to a
//! real OTLP/HTTP receiver (tests/otlp/receiver.py, decoding with the
//! official `opentelemetry-proto` package), in front of an upstream that
//! echoes the headers it received.
//!
//! - A client's `traceparent` on a workload that trusts it is continued: the
//!   request span's parent is the client's span, the component calls and the
//!   upstream call are its children, a server route is a child with its
//!   component call below it, and the upstream receives a `traceparent` of
//!   the same trace whose parent is the upstream span.
//! - On a workload that does not trust it, the client's is ignored: a new trace.
//! - The metrics arrive under their names; no secret of the test (the shared
//!   key, the injected token, the exporter's own header, the store's
//!   password) is anywhere in what was exported.
//! - With the collector down, requests are answered as ever and the log says
//!   so once.

use crate::{client, json, seen};
use portcullis::secrets::{ExposeSecret, SecretStore, SecretString};
use portcullis_tests::gateway::behaviour;
use portcullis_tests::node::free_port;
use portcullis_tests::upstream::TestUpstream;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

const PASSWORD: &str = "telemetry-test-password";
/// The exporter's `authorization` header, from the secret store.
const OTLP_TOKEN: &str = "Bearer otlp-token-5f1d9c27";
/// What the outbound injector puts on requests to the upstream.
const INJECTED: &str = "upstream-token-8b2e4711";
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
/// A trusted client's trace that it does not sample (flags `00`).
const UNSAMPLED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

fn client_traceparent() -> String {
    format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01")
}

/// The OTLP receiver, writing what it decodes into its directory.
struct Receiver {
    _child: tokio::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Receiver {
    async fn start() -> Receiver {
        let otlp = Path::new(env!("CARGO_MANIFEST_DIR")).join("otlp");
        let python = otlp.join(".venv/bin/python");
        assert!(python.exists(), "{} is missing: scripts/test installs it from tests/otlp/requirements.txt", python.display());
        let dir = tempfile::tempdir().unwrap();
        let mut child =
            tokio::process::Command::new(python).arg(otlp.join("receiver.py")).arg(dir.path()).stdout(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.expect("the receiver starts").unwrap().unwrap();
        let port = line.strip_prefix("listening ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("unexpected: {line}"));
        Receiver { _child: child, port, dir }
    }

    fn lines(&self, name: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn spans(&self) -> Vec<Value> {
        self.lines("spans.jsonl")
    }

    fn metric_names(&self) -> BTreeSet<String> {
        self.lines("metrics.jsonl").iter().map(|m| m["name"].as_str().unwrap().to_owned()).collect()
    }

    /// Everything received: the raw bodies and what was decoded from them.
    fn everything(&self) -> Vec<u8> {
        ["raw.bin", "spans.jsonl", "metrics.jsonl"].iter().flat_map(|f| std::fs::read(self.dir.path().join(f)).unwrap_or_default()).collect()
    }
}

/// The gateway binary on `policy`, its log (at `info`) in `dir/gateway.log`.
fn run_gateway(dir: &Path, policy: &str, env: &[(&str, &str)]) -> tokio::process::Child {
    let policy_path = dir.join("policy.toml");
    std::fs::write(&policy_path, policy).unwrap();
    let log = std::fs::File::create(dir.join("gateway.log")).unwrap();
    let mut command = tokio::process::Command::new(crate::cli::portcullis());
    command
        .args(["run", "--policy", policy_path.to_str().unwrap()])
        .env("PORTCULLIS_HOME", dir)
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    for var in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_SDK_DISABLED"] {
        command.env_remove(var);
    }
    // Export soon after each request, not after the SDK's 5 s and 60 s.
    command.env("OTEL_BSP_SCHEDULE_DELAY", "100").env("OTEL_METRIC_EXPORT_INTERVAL", "300");
    command.envs(env.iter().copied());
    command.spawn().unwrap()
}

async fn wait_until_up(url: &str) {
    for _ in 0..300 {
        if client().get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway did not start within 30 s");
}

fn workload(name: &str, port: u16, upstream: &str, body: &str) -> String {
    format!("[[workloads]]\nname = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{upstream}\"\npublic_url = \"http://127.0.0.1:{port}\"\n{body}\n")
}

/// The trace id and parent id of a `traceparent`.
fn trace_and_parent(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    (parts[1].to_owned(), parts[2].to_owned())
}

fn children<'a>(spans: &'a [Value], parent: &Value) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["trace_id"] == parent["trace_id"] && s["parent_span_id"] == parent["span_id"]).collect()
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

#[tokio::test]
async fn traces_continue_a_trusted_client_and_reach_the_upstream_and_metrics_arrive_without_secrets() {
    let receiver = Receiver::start().await;
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(dir.path(), Some(SecretString::from(PASSWORD.to_owned())));
    store.set("otlp-token", SecretString::from(OTLP_TOKEN.to_owned())).unwrap();
    let (trusting, untrusting) = (free_port(), free_port());
    let shared_key = "  [[workloads.inbound]]\n  component = \"builtin:shared-key\"\n  config = { key = \"auto\" }\n  grants = { secrets = [\"workload:trusting:shared-key\", \"workload:trusting:shared-key:previous\"] }\n";
    let injector =
        format!("  [[workloads.outbound]]\n  component = \"inject-header\"\n  config = {{ header = \"x-upstream-token\", value = \"{INJECTED}\" }}\n");
    let server = "  [workloads.server]\n  component = \"serve\"\n";
    let policy = format!(
        "version = 1\n{}\n[telemetry]\nendpoint = \"http://127.0.0.1:{}\"\nheader_secrets = {{ authorization = \"otlp-token\" }}\nservice_name = \"portcullis-e2e\"\n\n{}{}",
        portcullis_tests::fixture_components(),
        receiver.port,
        workload("trusting", trusting, &upstream.url(), &format!("trust_trace_context = true\n{shared_key}{injector}{server}")),
        workload("untrusting", untrusting, &upstream.url(), &behaviour("mode = \"allow\"")),
    );
    let _gateway = run_gateway(dir.path(), &policy, &[]);
    wait_until_up(&format!("http://127.0.0.1:{trusting}/")).await;
    let key = store.get("workload:trusting:shared-key").unwrap().expect("key = auto created the key");

    // A forwarded request and a server route on the trusting workload, a
    // forwarded request on the other; all with the client's traceparent.
    let send = |url: String, with_key: bool| {
        let mut request = client().get(url).header("traceparent", client_traceparent()).header("tracestate", "client=1");
        if with_key {
            request = request.header("x-portcullis-key", key.expose_secret());
        }
        request.send()
    };
    let forwarded = send(format!("http://127.0.0.1:{trusting}/tools"), true).await.unwrap();
    assert_eq!(forwarded.status(), 200);
    let echo = json(forwarded).await;
    assert_eq!(seen(&echo, "x-upstream-token"), [INJECTED], "the injector ran");
    let (trusted_trace, trusted_parent) = trace_and_parent(&seen(&echo, "traceparent")[0]);
    assert_eq!(trusted_trace, CLIENT_TRACE, "the upstream is in the client's trace");
    assert_ne!(trusted_parent, CLIENT_SPAN, "its parent is the gateway's span, not the client's");
    assert_eq!(seen(&echo, "tracestate"), ["client=1"], "a trusted client's trace state goes on");
    // A trusted client that does not sample this trace: its flag goes on to
    // the upstream, and nothing of the trace is exported (checked below,
    // once the later requests' spans have arrived).
    let unsampled = client()
        .get(format!("http://127.0.0.1:{trusting}/tools"))
        .header("traceparent", format!("00-{UNSAMPLED_TRACE}-{CLIENT_SPAN}-00"))
        .header("x-portcullis-key", key.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(unsampled.status(), 200);
    let parent = seen(&json(unsampled).await, "traceparent")[0].clone();
    assert!(parent.starts_with(&format!("00-{UNSAMPLED_TRACE}-")) && parent.ends_with("-00"), "not sampled, in the client's trace: {parent}");
    let route = send(format!("http://127.0.0.1:{trusting}/hello"), false).await.unwrap();
    assert_eq!(route.status(), 200);
    let ignored = send(format!("http://127.0.0.1:{untrusting}/tools"), false).await.unwrap();
    assert_eq!(ignored.status(), 200);
    let echo = json(ignored).await;
    assert_eq!(seen(&echo, "traceparent").len(), 1, "the client's traceparent is replaced, not added to");
    let (new_trace, new_parent) = trace_and_parent(&seen(&echo, "traceparent")[0]);
    assert_ne!(new_trace, CLIENT_TRACE, "an untrusting workload starts a new trace");
    assert!(!seen(&echo, "tracestate").iter().any(|v| v == "client=1"), "and drops the client's trace state");

    // The spans arrive within a few export intervals.
    // Each awaited by name: the readiness probe's refused request is a span too.
    let wanted = |spans: &[Value]| {
        let has =
            |workload: &str, outcome: &str| spans.iter().any(|s| s["name"] == "request" && attr(s, "workload") == workload && attr(s, "outcome") == outcome);
        has("trusting", "forwarded")
            && has("trusting", "served")
            && has("untrusting", "forwarded")
            && spans.iter().filter(|s| s["name"] == "plugin.call").count() >= 4
            && spans.iter().filter(|s| s["name"] == "upstream").count() >= 2
    };
    let mut spans = receiver.spans();
    for _ in 0..100 {
        if wanted(&spans) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        spans = receiver.spans();
    }
    assert!(wanted(&spans), "spans received: {spans:#?}");
    assert!(!spans.iter().any(|s| s["trace_id"] == UNSAMPLED_TRACE), "a trace the trusted client does not sample is not exported: {spans:#?}");
    let request = |workload: &str, outcome: &str| {
        let found: Vec<&Value> = spans.iter().filter(|s| s["name"] == "request" && attr(s, "workload") == workload && attr(s, "outcome") == outcome).collect();
        assert_eq!(found.len(), 1, "one {workload} {outcome} request span: {spans:#?}");
        found[0]
    };

    // Trusting, forwarded: the client's trace continued, the tree below it.
    let root = request("trusting", "forwarded");
    assert_eq!((root["trace_id"].as_str(), root["parent_span_id"].as_str()), (Some(CLIENT_TRACE), Some(CLIENT_SPAN)));
    assert_eq!((attr(root, "method").as_str(), attr(root, "status").as_i64(), root["kind"].as_i64()), (Some("GET"), Some(200), Some(2)), "{root}");
    assert_eq!(root["service"], "portcullis-e2e");
    let below = children(&spans, root);
    let call = |component: &str| {
        let found: Vec<&&Value> = below.iter().filter(|s| s["name"] == "plugin.call" && attr(s, "component") == component).collect();
        assert_eq!(found.len(), 1, "one call of {component} below the request: {below:#?}");
        *found[0]
    };
    let authn = call("builtin:shared-key");
    assert_eq!(
        (attr(authn, "role").as_str(), attr(authn, "world").as_str(), attr(authn, "verdict").as_str()),
        (Some("authenticator"), Some("authenticator"), Some("allow"))
    );
    assert!(authn["end"].as_u64() > authn["start"].as_u64(), "a call has a duration");
    let inject = call("inject-header");
    assert_eq!((attr(inject, "world").as_str(), attr(inject, "verdict").as_str()), (Some("credential-injector"), Some("forward")));
    let up: Vec<&&Value> = below.iter().filter(|s| s["name"] == "upstream").collect();
    assert_eq!(up.len(), 1, "{below:#?}");
    assert_eq!((up[0]["span_id"].as_str(), attr(up[0], "status").as_i64(), up[0]["kind"].as_i64()), (Some(trusted_parent.as_str()), Some(200), Some(3)));

    // Trusting, a server route: the route span, and its component call below it.
    let served = request("trusting", "served");
    assert_eq!((served["trace_id"].as_str(), attr(served, "route").as_str()), (Some(CLIENT_TRACE), Some("/hello")));
    let route_spans = children(&spans, served);
    assert_eq!(route_spans.len(), 1, "{route_spans:#?}");
    assert_eq!((route_spans[0]["name"].as_str(), attr(route_spans[0], "route").as_str()), (Some("server.route"), Some("/hello")));
    let serve = children(&spans, route_spans[0]);
    assert_eq!(serve.len(), 1, "{serve:#?}");
    assert_eq!((attr(serve[0], "component").as_str(), attr(serve[0], "world").as_str()), (Some("serve"), Some("authorization-server")));

    // Untrusting: a trace of its own, which the upstream continued.
    let own = request("untrusting", "forwarded");
    assert_eq!((own["trace_id"].as_str(), own["parent_span_id"].as_str()), (Some(new_trace.as_str()), Some("")));
    let up = children(&spans, own).into_iter().find(|s| s["name"] == "upstream").expect("an upstream span");
    assert_eq!(up["span_id"].as_str(), Some(new_parent.as_str()));

    // The metrics, under their names, with the requests counted: two
    // forwarded on the trusting workload, three answered 200 there (and the
    // `/hello` route). Waited for as a whole: an export from before them
    // (after the readiness probe's refused request) already carries the names.
    let expected = ["portcullis_requests", "portcullis_component_call_seconds", "http.server.request.duration", "portcullis_component_events"];
    let counted = |receiver: &Receiver| {
        let points = |name: &str| -> Vec<Value> {
            receiver.lines("metrics.jsonl").into_iter().filter(|m| m["name"] == name).flat_map(|m| m["points"].as_array().unwrap().clone()).collect()
        };
        let forwarded = points("portcullis_requests").iter().any(|p| p["workload"] == "trusting" && p["outcome"] == "forwarded" && p["_value"] == 2);
        let answered = points("http.server.request.duration")
            .iter()
            .any(|p| p["workload"] == "trusting" && p["http.response.status_code"] == 200 && p["http.request.method"] == "GET" && p["_value"] == 3);
        forwarded && answered
    };
    for _ in 0..100 {
        if expected.iter().all(|m| receiver.metric_names().contains(*m)) && counted(&receiver) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let names = receiver.metric_names();
    assert!(expected.iter().all(|m| names.contains(*m)), "metrics received: {names:?}");
    assert!(counted(&receiver), "the requests are counted: {:#?}", receiver.lines("metrics.jsonl"));
    // The event the `serve` component reported on /hello, under its entry.
    let events: Vec<Value> = receiver
        .lines("metrics.jsonl")
        .into_iter()
        .filter(|m| m["name"] == "portcullis_component_events")
        .flat_map(|m| m["points"].as_array().unwrap().clone())
        .collect();
    assert!(events.iter().any(|p| p["workload"] == "trusting" && p["component"] == "serve" && p["event"] == "token-exchanged"), "{events:#?}");

    // The exporter's header came from the secret store; no secret is in the data.
    let authorization = std::fs::read_to_string(receiver.dir.path().join("authorization.txt")).unwrap();
    assert!(authorization.lines().all(|l| l == OTLP_TOKEN), "{authorization}");
    let exported = receiver.everything();
    for secret in [key.expose_secret(), OTLP_TOKEN, INJECTED, PASSWORD, "otlp-token-5f1d9c27"] {
        assert!(!contains(&exported, secret.as_bytes()), "a secret of the test was exported");
    }
}

#[tokio::test]
async fn with_the_collector_down_requests_are_answered_and_the_log_says_so_once() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let (collector, port) = (free_port(), free_port());
    let policy = format!(
        "version = 1\n{}\n[telemetry]\nendpoint = \"http://127.0.0.1:{collector}\"\n\n{}",
        portcullis_tests::fixture_components(),
        workload("open", port, &upstream.url(), &behaviour("mode = \"allow\"")),
    );
    let mut gateway = run_gateway(dir.path(), &policy, &[]);
    let url = format!("http://127.0.0.1:{port}/tools");
    wait_until_up(&url).await;
    for _ in 0..40 {
        let response = client().get(&url).header("traceparent", client_traceparent()).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    // Several span batches (every 100 ms) and metric exports (every 300 ms) fail meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    gateway.start_kill().unwrap();
    gateway.wait().await.unwrap();
    let log = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap();
    let failures = log.lines().filter(|l| l.contains("telemetry export failed")).count();
    assert_eq!(failures, 1, "the outage is logged once ({failures} times):\n{log}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What is still queued when the gateway stops is exported as it stops, on
/// either scheduler: with one worker the runtime is a current-thread one,
/// which runs the exports' requests only while something drives it.
#[tokio::test]
async fn spans_queued_at_shutdown_are_exported_on_one_thread_and_on_several() {
    for threads in ["1", "2"] {
        let receiver = Receiver::start().await;
        let upstream = TestUpstream::start().await;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let policy = format!(
            "version = 1\n{}\n[telemetry]\nendpoint = \"http://127.0.0.1:{}\"\n\n{}",
            portcullis_tests::fixture_components(),
            receiver.port,
            workload("open", port, &upstream.url(), &behaviour("mode = \"allow\"")),
        );
        // Spans wait a minute in the queue: only the stop sends them.
        let mut gateway = run_gateway(dir.path(), &policy, &[("TOKIO_WORKER_THREADS", threads), ("OTEL_BSP_SCHEDULE_DELAY", "60000")]);
        let url = format!("http://127.0.0.1:{port}/tools");
        wait_until_up(&url).await;
        assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
        let pid = gateway.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = tokio::time::timeout(Duration::from_secs(20), gateway.wait()).await.expect("the gateway stops").unwrap();
        assert!(status.success(), "{threads} worker(s): {status}: {}", std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default());
        let names: Vec<_> = receiver.spans().iter().map(|s| s["name"].as_str().unwrap_or_default().to_owned()).collect();
        assert!(names.iter().any(|n| n == "request"), "{threads} worker(s): the request's span was exported at the stop: {names:?}");
    }
}
