//! What one client, or one busy workload, may hold: connections, idle time,
//! component instances (issue "Hardening", item 10).

use crate::{client, json};
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::upstream::TestUpstream;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_flood_on_one_workload_does_not_starve_its_neighbour() {
    let upstream = TestUpstream::start().await;
    let slow =
        format!("limits = {{ max_instances = 8 }}\n{}  limits = {{ deadline_ms = 1000 }}\n", behaviour(r#"mode = "allow", tag = "slow", sleep_ms = 200"#));
    // Per-request isolation: every request of the neighbour needs a fresh instance from the pool.
    let quiet = format!("limits = {{ max_instances = 8 }}\n{}  isolation = \"per-request\"\n", behaviour(r#"mode = "allow", tag = "quiet""#));
    let policy = format!("version = 1\n{}{}", workload("busy", &upstream.url(), &slow), workload("quiet", &upstream.url(), &quiet));
    // A pool of 24 instances for the process: without per-workload bounds, the
    // flood below would hold all of them.
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(dir, &policy, |o| o.instance_pool = 24).await.unwrap();
    let busy = gw.url("busy").await;
    let flood: Vec<_> = (0..48)
        .map(|_| {
            let url = busy.clone();
            tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0) })
        })
        .collect();
    // The flood is running once it holds every instance `busy` may have (the
    // pool's gauge counts live instances; `quiet`, per-request, holds none idle).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let held = crate::metric(&gw.metrics().await, "portcullis_pool_component_instances").unwrap();
        if held >= 8.0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the flood never held busy's 8 instances ({held})");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let quiet_url = gw.url("quiet").await;
    for _ in 0..10 {
        let r = client().get(&quiet_url).send().await.unwrap();
        assert_eq!(r.status(), 200, "the neighbour keeps serving during the flood: {}", r.text().await.unwrap());
    }
    let statuses: Vec<u16> = futures_join(flood).await;
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "the flood is served or refused, never anything else: {statuses:?}");
    assert!(statuses.contains(&200));
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<u16>>) -> Vec<u16> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_one() {
    let upstream = TestUpstream::start().await;
    let body = format!("limits = {{ max_connections = 2 }}\n{}", behaviour(r#"mode = "allow", tag = "a""#));
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &body))).await.unwrap();
    let url = gw.url("w").await;
    // Two clients hold their connections with a stream the upstream keeps open.
    let mut streams = Vec::new();
    for _ in 0..2 {
        let c = portcullis_tests::http_client().no_proxy().build().unwrap();
        let r = c.get(format!("{url}/sse")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        streams.push((c, r));
    }
    assert_eq!(upstream.hits(), 2);
    // A third connection waits in the kernel's backlog: its request does not
    // reach the upstream while two are open...
    let third = tokio::spawn({
        let url = url.clone();
        async move { client().get(url).send().await.map(|r| r.status().as_u16()) }
    });
    // Time for a gateway without the cap to forward it: a loaded machine can
    // only make this check miss a defect, never fail a sound gateway.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(upstream.hits(), 2, "a third connection was served while two were open");
    assert!(!third.is_finished(), "a third connection was answered while two were open: {:?}", third.await);
    // ...and that same request is served once one of them closes.
    drop(streams.pop());
    let status = tokio::time::timeout(Duration::from_secs(10), third).await.expect("the waiting connection was served").unwrap();
    assert_eq!(status.unwrap(), 200);
    assert_eq!(upstream.hits(), 3);
}

/// Reads until the server closes the connection; `true` if it did within 5 s.
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn silent_and_idle_connections_are_closed() {
    let upstream = TestUpstream::start().await;
    let body = format!("limits = {{ header_timeout_ms = 300, idle_timeout_ms = 300 }}\n{}", behaviour(r#"mode = "allow", tag = "a""#));
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &body))).await.unwrap();
    let addr = gw.addr("w").await;
    // Opens and says nothing (slowloris, or a TLS-less scan).
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(closed_by_server(&mut silent).await, "a silent connection is closed");
    // One request, then keep-alive silence.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").await.unwrap();
    assert!(closed_by_server(&mut idle).await, "an idle keep-alive connection is closed");
}

#[tokio::test]
async fn plain_listeners_do_not_speak_cleartext_http2() {
    let upstream = TestUpstream::start().await;
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &behaviour(r#"mode = "allow", tag = "a""#)))).await.unwrap();
    let h2c = portcullis_tests::http_client().no_proxy().http2_prior_knowledge().timeout(Duration::from_secs(5)).build().unwrap();
    assert!(h2c.get(gw.url("w").await).send().await.is_err(), "h2c with prior knowledge is refused");
    let r = client().get(gw.url("w").await).send().await.unwrap();
    assert_eq!(json(r).await["version"], "HTTP/1.1");
}
