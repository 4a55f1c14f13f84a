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

/// Reloads that keep a component reuse it (its code, and the pooled memory
/// slots its instances had) instead of loading a fresh copy each time, which
/// is what made RSS grow with reloads; one no longer used is let go.
#[tokio::test]
async fn a_reload_reuses_the_components_it_keeps_and_forgets_the_others() {
    let upstream = TestUpstream::start().await;
    let with = |body: &str| format!("version = 1\n{}", workload("w", &upstream.url(), body));
    let allow = |tag: &str| behaviour(&format!(r#"mode = "allow", tag = "{tag}""#));
    let gw = TestGateway::start(&with(&allow("a"))).await.unwrap();
    let runtime = gw.gateway.runtime().clone();
    assert_eq!(runtime.components_in_memory(), 1);
    let loads = runtime.loads();
    for tag in ["b", "c", "d"] {
        gw.reload_with(&with(&allow(tag))).await.unwrap();
    }
    assert_eq!(runtime.loads(), loads, "a kept component is not loaded again");
    assert_eq!(runtime.components_in_memory(), 1);
    // A failed reload forgets nothing the serving policy uses...
    gw.reload_with(&with(&allow("e")).replace("version = 1", "version = ")).await.unwrap_err();
    assert_eq!(runtime.components_in_memory(), 1);
    // ...and lets go of what only it loaded (here a component whose `init` refuses its configuration).
    let refused = "  [[workloads.inbound]]\n  component = \"builtin:shared-key\"\n  config = { header = \"not a header!\" }\n  grants = { secrets = [\"workload:x:shared-key\"] }\n";
    let before = runtime.loads();
    gw.reload_with(&format!("{}{}", with(&allow("e")), workload("x", &upstream.url(), refused))).await.unwrap_err();
    assert_eq!(runtime.loads(), before + 1, "the failed reload loaded the new component");
    assert_eq!(runtime.components_in_memory(), 1, "and let it go");
    gw.reload_with(&with(&allow("f"))).await.unwrap();
    assert_eq!(runtime.loads(), before + 1, "the serving policy's component is the one kept");
    gw.reload_with(&with("anonymous = true")).await.unwrap();
    assert_eq!(runtime.components_in_memory(), 0, "a component no policy uses is let go");
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

/// The real binary: SIGHUP and a changed file reload; a broken file and a
/// port that cannot be bound leave the old policy serving; SIGTERM lets an
/// in-flight stream finish while `/readyz` says 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reloads_on_sighup_and_file_change_and_drains_on_sigterm() {
    use portcullis_tests::node::free_port;
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let policy = |tag: &str, listen_port: u16| {
        format!(
            "version = 1\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n{}\n[[workloads]]\nname = \"w\"\nlisten = \"127.0.0.1:{listen_port}\"\nupstream = \"{}\"\npublic_url = \"http://127.0.0.1:{listen_port}\"\n{}",
            portcullis_tests::fixture_components(),
            upstream.url(),
            behaviour(&format!(r#"mode = "allow", tag = "{tag}""#))
        )
    };
    let path = dir.path().join("policy.toml");
    // Written aside and renamed in, as editors do.
    let write = |text: String| {
        let tmp = dir.path().join(".policy.toml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    write(policy("one", port));
    let mut gateway = tokio::process::Command::new(crate::cli::portcullis())
        .args(["run", "--policy"])
        .arg(&path)
        .env("PORTCULLIS_HOME", dir.path().join("home"))
        .env("PORTCULLIS_SECRETS_PASSWORD", "pw")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let mut first = None;
    for _ in 0..200 {
        first = allowed_by(&url).await;
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(first.expect("the gateway did not start"), ["one"]);
    let reloads = |result: &'static str| async move {
        let metrics = client().get(format!("http://127.0.0.1:{admin}/metrics")).send().await.unwrap().text().await.unwrap();
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("portcullis_reloads_total{{result=\"{result}\"}}")))
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
            .unwrap_or_default()
    };
    let wait_for = |result: &'static str, count: &'static str| async move {
        for _ in 0..100 {
            if reloads(result).await == count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("reloads_total{{result={result}}} never reached {count}");
    };
    let pid = gateway.id().unwrap().to_string();
    let signal = |name: &str| std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap();

    assert!(signal("HUP").success());
    wait_for("success", "1").await;
    write(policy("two", port));
    wait_for("success", "2").await;
    assert_eq!(allowed_by(&url).await.unwrap(), ["two"], "the changed file took effect");
    write(policy("three", port).replace("version = 1", "version = "));
    wait_for("failure", "1").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    write(policy("four", taken.local_addr().unwrap().port()));
    wait_for("failure", "2").await;
    assert_eq!(allowed_by(&url).await.unwrap(), ["two"], "a broken file and an unbindable port leave the old policy serving");

    // SIGTERM with a stream in flight: not ready any more, but the stream finishes.
    let mut stream = client().get(format!("http://127.0.0.1:{port}/sse")).send().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await.unwrap().unwrap().unwrap();
    assert_eq!(&first[..], b"event: message\ndata: first\n\n");
    assert!(signal("TERM").success());
    // The admin listener stays up while the stream drains (it closes last), so
    // `/readyz` must answer, and answer 503: a closed listener does not count.
    let mut not_ready = false;
    for _ in 0..100 {
        let r = client().get(format!("http://127.0.0.1:{admin}/readyz")).send().await.expect("the admin listener answers while draining");
        if r.status() != 200 {
            assert_eq!(r.status(), 503, "/readyz while draining");
            not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(not_ready, "/readyz kept answering 200 after SIGTERM");
    upstream.release_sse();
    let second = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await.unwrap().unwrap().unwrap();
    assert_eq!(&second[..], b"event: message\ndata: second\n\n");
    let status = tokio::time::timeout(Duration::from_secs(10), gateway.wait()).await.expect("the gateway exits after draining").unwrap();
    assert!(status.success(), "{status}");
}

/// Which policy version (the fixture's tag) admitted a request; `None` while nothing listens.
async fn allowed_by(url: &str) -> Option<Vec<String>> {
    let response = client().get(url).send().await.ok()?;
    Some(seen(&json(response).await, "x-fixture-allowed-by"))
}
