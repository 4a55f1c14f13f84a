//! A well-behaved workload's latency while hostile components run beside it
//! in the same gateway: the target is a p99 within 2× of the same workload
//! alone.
//!
//! `cargo bench -p portcullis-tests --bench hostile_neighbour`, figures in
//! docs/reliability.md. One in-process gateway on a 2-thread runtime (the
//! same as `TOKIO_WORKER_THREADS=2` on this 2-core machine) serves two
//! workloads. `healthy` has a fixture component that allows. `hostile` has
//! one fixture component per hostile behaviour: a call that spins until its
//! 100 ms deadline, one that grows its memory until the cap, one that
//! recurses until the stack runs out, one that traps, and one that floods the
//! log (`HOSTILE_MODES=loop,trap` runs only some). Eight clients keep the hostile workload busy the whole time, cycling
//! through the behaviours. One client sends requests to `healthy` one after
//! another and records each latency: 5,000 alone, then 5,000 beside the
//! hostile load.

use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::upstream::TestUpstream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SAMPLES: usize = 5_000;
const HOSTILE_CLIENTS: usize = 8;
const MODES: [&str; 5] = ["loop", "grow", "recurse", "trap", "log-flood"];

/// The behaviours to run: all, or those named in `HOSTILE_MODES` (comma-separated;
/// `allow` gives the baseline of a well-behaved neighbour under the same load).
fn modes() -> Vec<&'static str> {
    match std::env::var("HOSTILE_MODES") {
        Ok(only) => only.split(',').map(|m| &*Box::leak(m.trim().to_owned().into_boxed_str())).collect(),
        Err(_) => MODES.to_vec(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn measure(client: &reqwest::Client, url: &str) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        let status = client.get(url).send().await.unwrap().status();
        samples.push(started.elapsed());
        assert_eq!(status, 200);
    }
    samples.sort();
    samples
}

fn report(label: &str, samples: &[Duration]) -> Duration {
    let p99 = percentile(samples, 0.99);
    eprintln!("{label:>16}: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}", percentile(samples, 0.5), percentile(samples, 0.9), p99, samples[samples.len() - 1]);
    p99
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let upstream = TestUpstream::start().await;
        // One workload per behaviour: in one chain, the first fault would end each request.
        let mut policy = String::from("version = 1\n");
        policy.push_str(&workload("healthy", &upstream.url(), &behaviour(r#"mode = "allow", tag = "ok""#)));
        let modes = modes();
        for (n, mode) in modes.iter().enumerate() {
            policy.push_str(&workload(&format!("hostile-{n}"), &upstream.url(), &behaviour(&format!("mode = \"{mode}\", tag = \"n\""))));
        }
        let gw = TestGateway::start(&policy).await.unwrap();
        let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(16).build().unwrap();
        let healthy = gw.url("healthy").await;
        for _ in 0..500 {
            client.get(&healthy).send().await.unwrap();
        }

        let alone = measure(&client, &healthy).await;
        let alone_p99 = report("alone", &alone);

        let stop = Arc::new(AtomicBool::new(false));
        let hostile_calls = Arc::new(AtomicU64::new(0));
        let mut urls = Vec::new();
        for n in 0..modes.len() {
            urls.push(gw.url(&format!("hostile-{n}")).await);
        }
        let load: Vec<_> = (0..HOSTILE_CLIENTS)
            .map(|c| {
                let (client, urls, stop, calls, modes) = (client.clone(), urls.clone(), stop.clone(), hostile_calls.clone(), modes.clone());
                tokio::spawn(async move {
                    let mut n = c;
                    while !stop.load(Ordering::Relaxed) {
                        let mode = modes[n % urls.len()];
                        let status = client.get(&urls[n % urls.len()]).send().await.unwrap().status();
                        // Every fault fails closed; the log flood is dropped past its budget and allows.
                        assert!(status.is_server_error() || matches!(mode, "log-flood" | "allow"), "{mode}: {status}");
                        calls.fetch_add(1, Ordering::Relaxed);
                        n += 1;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let beside = measure(&client, &healthy).await;
        stop.store(true, Ordering::Relaxed);
        for task in load {
            task.await.unwrap();
        }
        let beside_p99 = report("beside hostile", &beside);
        let ratio = beside_p99.as_secs_f64() / alone_p99.as_secs_f64();
        eprintln!("p99 ratio {ratio:.2} (target at most 2.00); {} hostile calls meanwhile, every fault answered 5xx", hostile_calls.load(Ordering::Relaxed));
    });
}
