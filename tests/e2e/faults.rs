//! Traps, deadlines, memory caps and malformed verdicts fail closed, are
//! counted, and leave the rest of the gateway serving.

use crate::{client, json, seen};
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::upstream::TestUpstream;
use std::time::{Duration, Instant};

/// One workload per fault. Each allows, reporting how many calls its instance
/// answered, unless the request names a fault in `x-fixture-mode`.
async fn gateway(upstream: &TestUpstream) -> TestGateway {
    let mut policy = String::from("version = 1\n");
    for name in ["trap", "loop", "grow", "badstatus", "badedit"] {
        // A component's call after a fault runs in the slow lane at low priority,
        // where a loaded machine can starve it: a generous deadline keeps the
        // fault's own reason, and the allowed calls after it, from turning into `deadline`.
        let entry = behaviour(r#"mode = "allow", tag = "ok", report = true, mode_from = "x-fixture-mode""#);
        policy.push_str(&workload(name, &upstream.url(), &format!("{entry}  limits = {{ deadline_ms = 1000, memory_mib = 8 }}\n")));
    }
    TestGateway::start(&policy).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_fails_closed_with_a_json_body_naming_the_component() {
    let upstream = TestUpstream::start().await;
    let gw = gateway(&upstream).await;
    let c = client();
    for (workload, mode, status, reason) in [
        ("trap", "trap", 500, "trap"),
        ("loop", "loop", 503, "deadline"),
        ("grow", "grow", 503, "memory_limit"),
        ("badstatus", "bad-status", 500, "bad_verdict"),
        ("badedit", "bad-edit", 500, "bad_verdict"),
    ] {
        let url = gw.url(workload).await;
        // Calls this workload's instance has answered, as it reports them.
        let calls = || async { seen(&json(c.get(&url).send().await.unwrap()).await, "x-fixture-calls") };
        assert_eq!([calls().await, calls().await], [["1"], ["2"]], "{workload}: one pooled instance answers calls in turn");
        // Twice: the instance that failed is replaced (the next call is its
        // replacement's first), and the next fault fails the same way.
        for _ in 0..2 {
            let started = Instant::now();
            let r = c.get(&url).header("x-fixture-mode", mode).send().await.unwrap();
            assert_eq!(r.status(), status, "{workload}");
            let body = json(r).await;
            assert_eq!(body["error"], "component_failed", "{workload}");
            assert_eq!(body["component"], "behaviours", "{workload}");
            assert_eq!(body["reason"], reason, "{workload}");
            // Answered, not hung: the deadline is 1 s, a bound ten times that cannot trip on a loaded machine.
            assert!(started.elapsed() < Duration::from_secs(10), "{workload} took {:?}", started.elapsed());
            assert_eq!(calls().await, ["1"], "{workload}: the failed instance was replaced");
        }
    }
    let metrics = gw.metrics().await;
    for (workload, kind) in [("trap", "trap"), ("loop", "deadline"), ("grow", "memory_limit"), ("badstatus", "bad_verdict"), ("badedit", "bad_verdict")] {
        let series = format!("portcullis_component_faults_total{{workload=\"{workload}\",component=\"behaviours\",kind=\"{kind}\",blame=\"guest\"}}");
        assert_eq!(crate::metric(&metrics, &series), Some(2.0), "{series} in\n{metrics}");
    }
    assert_eq!(crate::metric(&metrics, "portcullis_requests_total{workload=\"trap\",outcome=\"component_failed\"}"), Some(2.0), "{metrics}");
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
                let r = c.get(url).send().await.unwrap();
                let status = r.status();
                let reason = json(r).await["reason"].as_str().unwrap_or_default().to_owned();
                (status, reason, started.elapsed())
            })
        })
        .collect();
    // All four spin once they hold an instance each (`healthy` holds its idle one: five in use).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while crate::metric(&gw.metrics().await, "portcullis_pool_component_instances") < Some(5.0) {
        assert!(tokio::time::Instant::now() < deadline, "the four spinners never ran together");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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
        let (status, reason, took) = s.await.unwrap();
        assert_eq!((status.as_u16(), reason.as_str()), (503, "deadline"), "the deadline stopped the call");
        // The deadline runs from the gateway's start of the call, after the client's: this cannot trip.
        assert!(took >= Duration::from_millis(2900), "the call spun until its deadline ({took:?})");
        // Stopped there: a spinner the deadline missed, or four spinning one
        // after another, would take two deadlines; below that, 3 s of slack for a loaded machine.
        assert!(took < Duration::from_millis(6000), "and no longer: the spinners ran side by side ({took:?})");
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
