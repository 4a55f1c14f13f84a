//! Traps, deadlines, memory caps and malformed verdicts fail closed, are
//! counted, and leave the rest of the gateway serving.

use crate::{client, json};
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::upstream::TestUpstream;
use std::time::{Duration, Instant};

async fn gateway(upstream: &TestUpstream) -> TestGateway {
    let mut policy = String::from("version = 1\n");
    for (name, mode) in [("trap", "trap"), ("loop", "loop"), ("grow", "grow"), ("badstatus", "bad-status"), ("badedit", "bad-edit")] {
        // A component's call after a fault runs in the slow lane at low priority,
        // where a loaded machine can starve it: a generous deadline keeps the
        // fault's own reason from turning into `deadline`, except for the spinner.
        let deadline_ms = if mode == "loop" { 100 } else { 1000 };
        let body = format!("{}  limits = {{ deadline_ms = {deadline_ms}, memory_mib = 8 }}\n", behaviour(&format!(r#"mode = "{mode}""#)));
        policy.push_str(&workload(name, &upstream.url(), &body));
    }
    policy.push_str(&workload("healthy", &upstream.url(), &behaviour(r#"mode = "allow", tag = "ok""#)));
    TestGateway::start(&policy).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_fails_closed_with_a_json_body_naming_the_component() {
    let upstream = TestUpstream::start().await;
    let gw = gateway(&upstream).await;
    let c = client();
    for (workload, status, reason) in
        [("trap", 500, "trap"), ("loop", 503, "deadline"), ("grow", 503, "memory_limit"), ("badstatus", 500, "bad_verdict"), ("badedit", 500, "bad_verdict")]
    {
        // Twice: the instance that failed is replaced, and the next call fails the same way.
        for _ in 0..2 {
            let started = Instant::now();
            let r = c.get(gw.url(workload).await).send().await.unwrap();
            assert_eq!(r.status(), status, "{workload}");
            let body = json(r).await;
            assert_eq!(body["error"], "component_failed", "{workload}");
            assert_eq!(body["component"], "behaviours", "{workload}");
            assert_eq!(body["reason"], reason, "{workload}");
            // Correctness bound, not a benchmark: the deadline is 100 ms or 1 s.
            assert!(started.elapsed() < Duration::from_secs(2), "{workload} took {:?}", started.elapsed());
        }
    }
    let metrics = gw.metrics().await;
    for (workload, kind) in [("trap", "trap"), ("loop", "deadline"), ("grow", "memory_limit"), ("badstatus", "bad_verdict")] {
        let line = format!("portcullis_component_faults_total{{workload=\"{workload}\",component=\"behaviours\",kind=\"{kind}\",blame=\"guest\"}} 2");
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }
    assert!(metrics.contains("portcullis_requests_total{workload=\"trap\",outcome=\"component_failed\"} 2"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_workloads_keep_serving_while_a_component_spins() {
    let upstream = TestUpstream::start().await;
    // Spinning calls that last three seconds each, beside a healthy workload.
    let spin = format!("{}  limits = {{ deadline_ms = 3000 }}\n", behaviour(r#"mode = "loop""#));
    let policy = format!(
        "version = 1\n{}{}",
        workload("loop", &upstream.url(), &spin),
        workload("healthy", &upstream.url(), &behaviour(r#"mode = "allow", tag = "ok""#))
    );
    let gw = TestGateway::start(&policy).await.unwrap();
    let c = client();
    let looping = gw.url("loop").await;
    let healthy = gw.url("healthy").await;
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            let url = looping.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let status = c.get(url).send().await.unwrap().status();
                (status, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    for _ in 0..20 {
        let r = c.get(&healthy).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let healthy_took = started.elapsed();
    // Every healthy request was answered while all four spinners were still
    // running (on a two-thread runtime: the spinning guests yield every tick).
    assert!(spinners.iter().all(|s| !s.is_finished()), "the healthy workload waited for the spinning one ({healthy_took:?})");
    for s in spinners {
        let (status, took) = s.await.unwrap();
        assert_eq!(status, 503);
        assert!(took >= Duration::from_millis(2900), "the call spun until its deadline ({took:?})");
        assert!(took < Duration::from_millis(4500), "and no longer: the spinners ran side by side ({took:?})");
    }
}

#[tokio::test]
async fn unbounded_recursion_fails_closed() {
    let upstream = TestUpstream::start().await;
    let policy = format!(
        "version = 1\n{}{}",
        // A generous deadline: the second call runs in the slow lane (see `gateway`).
        workload("recurse", &upstream.url(), &format!("{}  limits = {{ deadline_ms = 1000 }}\n", behaviour(r#"mode = "recurse""#))),
        workload("healthy", &upstream.url(), &behaviour(r#"mode = "allow", tag = "ok""#))
    );
    let gw = TestGateway::start(&policy).await.unwrap();
    for _ in 0..2 {
        let r = client().get(gw.url("recurse").await).send().await.unwrap();
        assert_eq!(r.status(), 500);
        assert_eq!(json(r).await["reason"], "trap");
        assert_eq!(client().get(gw.url("healthy").await).send().await.unwrap().status(), 200);
    }
    assert_eq!(upstream.hits(), 2, "only the healthy requests reached the upstream");
}
