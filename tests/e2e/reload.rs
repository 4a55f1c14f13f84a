//! Reloads: a good file replaces the snapshot atomically; a bad one leaves the old serving.

use crate::{client, json, seen};
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::upstream::TestUpstream;
use std::time::Duration;

#[tokio::test]
async fn good_reload_swaps_and_bad_reload_keeps_the_old_policy() {
    let upstream = TestUpstream::start().await;
    let policy = |tag: &str| format!("version = 1\n{}", workload("w", &upstream.url(), &behaviour(&format!(r#"mode = "allow", tag = "{tag}""#))));
    let gw = TestGateway::start(&policy("one")).await.unwrap();
    let url = gw.url("w").await;
    let tag = || async { seen(&json(client().get(&url).send().await.unwrap()).await, "x-fixture-allowed-by") };
    assert_eq!(tag().await, ["one"]);

    gw.reload_with(&policy("two")).await.unwrap();
    assert_eq!(tag().await, ["two"], "the new snapshot serves, on the same listener");

    // A syntax error, then a semantic one: both refused, the old policy serves on.
    for broken in [policy("three").replace("version = 1", "version = "), policy("three").replace("127.0.0.1:0", "nonsense")] {
        let err = gw.reload_with(&broken).await.unwrap_err();
        assert!(format!("{err:#}").contains("policy.toml:"), "{err:#}");
        assert_eq!(tag().await, ["two"]);
    }
    let metrics = gw.metrics().await;
    assert!(metrics.contains("portcullis_reloads_total{result=\"success\"} 1"), "{metrics}");
    assert!(metrics.contains("portcullis_reloads_total{result=\"failure\"} 2"), "{metrics}");
}

#[tokio::test]
async fn reload_adds_and_removes_workloads_and_the_old_listener_drains() {
    let upstream = TestUpstream::start().await;
    let allow = behaviour(r#"mode = "allow", tag = "a""#);
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("a", &upstream.url(), &allow))).await.unwrap();
    let a = gw.addr("a").await;
    // A stream in flight on `a` when `a` is removed.
    let mut stream = client().get(format!("http://{a}/sse")).send().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await.unwrap().unwrap().unwrap();
    assert_eq!(&first[..], b"event: message\ndata: first\n\n");

    gw.reload_with(&format!("version = 1\n{}", workload("b", &upstream.url(), &allow))).await.unwrap();
    let b = gw.url("b").await;
    assert_eq!(client().get(&b).send().await.unwrap().status(), 200);
    assert!(gw.gateway.local_addr("a").await.is_none(), "`a` is no longer in the policy");

    // The old listener accepts nothing new...
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(a).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the removed workload's listener still accepts connections");
    // ...while the request that started before the reload finishes, on the old policy.
    upstream.release_sse();
    let second = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await.unwrap().unwrap().unwrap();
    assert_eq!(&second[..], b"event: message\ndata: second\n\n");
    assert!(stream.chunk().await.unwrap().is_none(), "the drained stream ends cleanly");
}
