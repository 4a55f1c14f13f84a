//! One caller's expensive `arguments` beside another caller of the same MCP
//! workload (issue 22, item 5): caller A's p99 and 503 rate alone, and while
//! caller B sends about 500 KB of `arguments` once a second.
//!
//! `cargo bench -p portcullis-tests --bench heavy_arguments`, figures in
//! docs/reliability.md. One in-process gateway on a 2-thread runtime serves
//! an MCP workload whose two callers are told apart by a header (a fixture
//! authenticator each) and whose calls the built-in Cedar authorizer
//! decides, with a policy that reads an argument. Its upstream and each
//! client run on threads of their own. A sends calls from four clients, each
//! one after another, for `HEAVY_SECONDS` (default 20) alone, then as long
//! beside B.
//! `HEAVY_RAISE_LIMITS=1` raises `limits.max_mcp_arguments_bytes` and
//! `max_mcp_arguments_elements` so that B's calls reach Cedar (the routing
//! alone is measured); by default they are refused before it.
//! `HEAVY_HOGS=2` adds two threads that spin at the process's priority for
//! the whole run, as other work on a loaded machine would (the lane, at nice
//! 10, then gets about a tenth of a core).

use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::threads::{on_own_thread, runtime};
use portcullis_tests::upstream::TestUpstream;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const POLICIES: &str = r#"
@id("tools")
permit(principal, action, resource);

@id("no-system-paths")
forbid(principal, action == Action::"call_tool", resource)
when { context has arg_path && context.arg_path like "/etc/*" };
"#;

/// The status of a `tools/call` as `caller`; 0 when the connection failed.
async fn post(client: &reqwest::Client, url: &str, caller: &str, arguments: &Value) -> u16 {
    let message = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "echo", "arguments": arguments } });
    let response = client
        .post(url)
        .header(format!("x-caller-{caller}"), "1")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(message.to_string())
        .send()
        .await;
    let Ok(response) = response else {
        return 0;
    };
    let status = response.status().as_u16();
    let _ = response.bytes().await;
    status
}

/// A's calls from `HEAVY_A_CLIENTS` clients (default 4, enough to keep both
/// cores busy), each back to back, until `stop`: each latency, and the count of each status.
async fn caller_a(url: String, stop: Arc<AtomicBool>) -> (Vec<Duration>, BTreeMap<u16, usize>) {
    let clients: usize = std::env::var("HEAVY_A_CLIENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    let client = portcullis_tests::http_client().no_proxy().build().unwrap();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let arguments = json!({ "path": "/srv/data/report.txt", "mode": "read" });
                let (mut samples, mut statuses) = (Vec::new(), BTreeMap::<u16, usize>::new());
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let status = post(&client, &url, "a", &arguments).await;
                    samples.push(started.elapsed());
                    *statuses.entry(status).or_default() += 1;
                }
                (samples, statuses)
            })
        })
        .collect();
    let (mut samples, mut statuses) = (Vec::new(), BTreeMap::new());
    for task in tasks {
        let (more, counted) = task.await.unwrap();
        samples.extend(more);
        for (status, n) in counted {
            *statuses.entry(status).or_default() += n;
        }
    }
    samples.sort();
    (samples, statuses)
}

/// B: about 500 KB of `arguments` (25,000 strings) once a second, until `stop`; the count of each status.
async fn caller_b(url: String, stop: Arc<AtomicBool>) -> BTreeMap<u16, usize> {
    let client = portcullis_tests::http_client().no_proxy().build().unwrap();
    let arguments = json!({ "path": "/srv/x", "items": (0..25_000).map(|n| format!("item-{n:08}-padding")).collect::<Vec<_>>() });
    eprintln!("B's arguments: {} bytes", arguments.to_string().len());
    let mut statuses = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        *statuses.entry(post(&client, &url, "b", &arguments).await).or_default() += 1;
    }
    statuses
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn report(label: &str, samples: &[Duration], statuses: &BTreeMap<u16, usize>) {
    let failed: usize = statuses.iter().filter(|(s, _)| **s == 503).map(|(_, n)| n).sum();
    eprintln!(
        "{label:>12}: {} calls, p50 {:?}  p99 {:?}  max {:?}; 503: {failed} ({:.2} %); statuses {statuses:?}",
        samples.len(),
        percentile(samples, 0.5),
        percentile(samples, 0.99),
        samples[samples.len() - 1],
        100.0 * failed as f64 / samples.len() as f64
    );
}

fn main() {
    let seconds: u64 = std::env::var("HEAVY_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let raise = std::env::var("HEAVY_RAISE_LIMITS").is_ok_and(|v| v == "1");
    let hogs: usize = std::env::var("HEAVY_HOGS").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let hogging = Arc::new(AtomicBool::new(true));
    for n in 0..hogs {
        let hogging = hogging.clone();
        std::thread::Builder::new()
            .name(format!("hog-{n}"))
            .spawn(move || {
                while hogging.load(Ordering::Relaxed) {
                    std::hint::black_box(Instant::now());
                }
            })
            .unwrap();
    }
    let upstream_rt = runtime("upstream", 1);
    let upstream = upstream_rt.block_on(TestUpstream::start());
    drop(std::thread::spawn(move || upstream_rt.block_on(std::future::pending::<()>())));

    let inbound = [("a", "x-caller-a"), ("b", "x-caller-b"), ("c", "x-caller-c")]
        .map(|(tag, header)| behaviour(&format!(r#"mode = "allow", tag = "{tag}", only_if_header = "{header}""#)))
        .concat();
    let mut authorize =
        format!("  [[workloads.authorize]]\n  component = \"builtin:cedar\"\n  config = {{ policies = '''{POLICIES}''' }}\n  limits = {{ memory_mib = 64 }}\n");
    if raise {
        authorize.push_str("  [workloads.limits]\n  max_mcp_arguments_bytes = 1048576\n  max_mcp_arguments_elements = 100000\n");
    }
    let policy = format!(
        "version = 1\n{}",
        workload("tools", &upstream.url(), &format!("{inbound}{authorize}"))
            .replace("public_url = \"http://127.0.0.1:8080\"", "public_url = \"http://127.0.0.1:8080/mcp\"")
    );
    let gateway_rt = runtime("gateway", 2);
    let (gw, url) = gateway_rt.block_on(async {
        let gw = TestGateway::start(&policy).await.unwrap();
        let url = format!("{}/mcp", gw.url("tools").await);
        (gw, url)
    });
    eprintln!("argument bounds {}", if raise { "raised to 1 MiB and 100,000 values" } else { "at their defaults (or none, before them)" });

    // With `HEAVY_SIZES=1`, first what a call costs by the size of its
    // arguments (strings of 24 bytes), alone: the median of 7 calls of each
    // size, decided in place or in the lane, whichever the gateway chose.
    let sizes = std::env::var("HEAVY_SIZES").is_ok_and(|v| v == "1").then(|| {
        on_own_thread("sizes", {
            let url = url.clone();
            async move {
                let client = portcullis_tests::http_client().no_proxy().build().unwrap();
                for items in [10, 300, 1_300, 2_600, 25_000] {
                    let arguments = json!({ "path": "/srv/x", "items": (0..items).map(|n| format!("item-{n:08}-padding")).collect::<Vec<_>>() });
                    let mut took = Vec::new();
                    let mut statuses = BTreeMap::<u16, usize>::new();
                    for _ in 0..7 {
                        let started = Instant::now();
                        *statuses.entry(post(&client, &url, "c", &arguments).await).or_default() += 1;
                        took.push(started.elapsed());
                        // Past the lane marks of the call before.
                        tokio::time::sleep(Duration::from_millis(1100)).await;
                    }
                    took.sort();
                    eprintln!("{:>8} bytes of arguments: median call {:?}; statuses {statuses:?}", arguments.to_string().len(), took[took.len() / 2]);
                }
            }
        })
    });
    if let Some(sizes) = sizes {
        sizes.join().unwrap();
    }

    // Warm up, then A alone, then A beside B.
    let stop = Arc::new(AtomicBool::new(false));
    let warm = on_own_thread("warm-up", caller_a(url.clone(), stop.clone()));
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    warm.join().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let alone = on_own_thread("caller-a", caller_a(url.clone(), stop.clone()));
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let (samples, statuses) = alone.join().unwrap();
    report("A alone", &samples, &statuses);

    let stop = Arc::new(AtomicBool::new(false));
    let b = on_own_thread("caller-b", caller_b(url.clone(), stop.clone()));
    let a = on_own_thread("caller-a", caller_a(url.clone(), stop.clone()));
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let (samples, statuses) = a.join().unwrap();
    let b_statuses = b.join().unwrap();
    report("A beside B", &samples, &statuses);
    eprintln!("{:>12}: statuses {b_statuses:?}", "B");
    eprintln!(
        "{}",
        gw.gateway
            .metrics()
            .encode()
            .lines()
            .filter(|l| l.starts_with("portcullis_slow_lane") || l.contains("faults_total") && !l.ends_with(" 0"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    hogging.store(false, Ordering::Relaxed);
    drop(gw);
}
