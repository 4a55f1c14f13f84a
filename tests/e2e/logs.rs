//! What the real binary writes to its log under load and under attack
//! (issue "Hardening", items 17 and 22): values that come from requests or
//! components cannot forge a line, and a refused grant is reported once, not
//! once per request.

use crate::client;
use portcullis::secrets::{ExposeSecret, SecretStore, SecretString};
use portcullis_tests::gateway::behaviour;
use std::process::Stdio;
use tokio::io::AsyncReadExt;

const PASSWORD: &str = "log-test-password";

#[tokio::test]
async fn a_refused_grant_is_logged_once_and_component_text_cannot_forge_lines() {
    let dir = tempfile::tempdir().unwrap();
    let port = |_: u8| portcullis_tests::node::free_port();
    let (sk, secret) = (port(0), port(1));
    let upstream = portcullis_tests::upstream::TestUpstream::start().await;
    let workload = |name: &str, port: u16, body: &str| {
        format!(
            "[[workloads]]\nname = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{}\"\npublic_url = \"http://127.0.0.1:{port}\"\n{body}",
            upstream.url()
        )
    };
    // The shape of policy the foundation shipped: only the current key granted.
    // Per-request isolation runs `init` (which asks for the grace key) on every request.
    let shared_key = "  [[workloads.inbound]]\n  component = \"builtin:shared-key\"\n  config = { key = \"auto\" }\n  grants = { secrets = [\"workload:sk:shared-key\"] }\n  isolation = \"per-request\"\n";
    let policy = format!(
        "version = 1\n{}\n{}{}",
        portcullis_tests::fixture_components(),
        workload("sk", sk, shared_key),
        workload("secret", secret, &behaviour("mode = \"secret\", secret = \"nope\\nFORGED-LINE from a secret name\"")),
    );
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy).unwrap();
    let mut child = tokio::process::Command::new(crate::cli::portcullis())
        .args(["run", "--policy", policy_path.to_str().unwrap()])
        .env("PORTCULLIS_HOME", dir.path())
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let sk_url = format!("http://127.0.0.1:{sk}/mcp");
    let mut up = false;
    for _ in 0..300 {
        if client().get(&sk_url).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "the gateway did not start within 30 s");
    let store = SecretStore::new(dir.path(), Some(SecretString::from(PASSWORD.to_owned())));
    let key = store.get("workload:sk:shared-key").unwrap().expect("key = auto created the key");
    for _ in 0..50 {
        let r = client().get(&sk_url).header("x-portcullis-key", key.expose_secret()).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    for _ in 0..2 {
        client().get(format!("http://127.0.0.1:{secret}/")).send().await.unwrap();
    }
    child.start_kill().unwrap();
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).await.unwrap();
    let refusals = log.lines().filter(|l| l.contains("refused a secret read") && l.contains("workload:sk:shared-key:previous")).count();
    assert_eq!(refusals, 1, "the missing grace grant is reported once, not per request ({refusals} times):\n{log}");
    assert!(log.contains("FORGED-LINE"), "the component's text is logged (escaped): {log}");
    for line in log.lines() {
        assert!(!line.trim_start().starts_with("FORGED-LINE"), "a component forged a log line: {line:?}");
    }
    assert!(!log.contains(key.expose_secret()), "the key never reaches the log");
}

/// A component's log line carries the request's span: workload, method and the
/// request id the client got back.
#[tokio::test]
async fn log_lines_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let port = portcullis_tests::node::free_port();
    let upstream = portcullis_tests::upstream::TestUpstream::start().await;
    let policy = format!(
        "version = 1\n{}\n[[workloads]]\nname = \"w\"\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{}\"\npublic_url = \"http://127.0.0.1:{port}\"\n{}",
        portcullis_tests::fixture_components(),
        upstream.url(),
        behaviour("mode = \"secret\", secret = \"not-granted-name\"")
    );
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy).unwrap();
    let mut child = tokio::process::Command::new(crate::cli::portcullis())
        .args(["--log-format", "json", "run", "--policy", policy_path.to_str().unwrap()])
        .env("PORTCULLIS_HOME", dir.path())
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let mut id = None;
    for _ in 0..200 {
        if let Ok(r) = client().get(&url).send().await {
            id = Some(r.headers()["x-request-id"].to_str().unwrap().to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let id = id.expect("the gateway did not start");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    child.start_kill().unwrap();
    let mut log = String::new();
    child.stdout.take().unwrap().read_to_string(&mut log).await.unwrap();
    child.stderr.take().unwrap().read_to_string(&mut log).await.unwrap();
    let line = log.lines().find(|l| l.contains("refused a secret read")).unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["span"]["request_id"], id.as_str(), "{line}");
    assert_eq!(line["span"]["workload"], "w", "{line}");
}

/// A component writing 10 000 lines per request gets about 100 per second
/// into the log, and the log says how many it dropped; its requests still pass.
#[tokio::test]
async fn a_log_flood_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let port = portcullis_tests::node::free_port();
    let upstream = portcullis_tests::upstream::TestUpstream::start().await;
    let policy = format!(
        "version = 1\n{}\n[[workloads]]\nname = \"flood\"\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{}\"\npublic_url = \"http://127.0.0.1:{port}\"\n{}  limits = {{ deadline_ms = 5000 }}\n",
        portcullis_tests::fixture_components(),
        upstream.url(),
        behaviour("mode = \"log-flood\", tag = \"f\"")
    );
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy).unwrap();
    // To a file: a pipe nobody reads while the flood runs would block the gateway.
    let log_path = dir.path().join("gateway.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(crate::cli::portcullis())
        .args(["--log-format", "json", "run", "--policy", policy_path.to_str().unwrap()])
        .env("PORTCULLIS_HOME", dir.path())
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let started = std::time::Instant::now();
    let mut served = 0;
    for _ in 0..200 {
        match client().get(&url).send().await {
            Ok(r) => {
                assert_eq!(r.status(), 200, "the flooding component still decides");
                served += 1;
                if served == 3 {
                    break;
                }
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    assert_eq!(served, 3, "the gateway did not serve");
    // One more line after a pause: it carries the count of what was dropped.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    let elapsed = started.elapsed().as_secs_f64();
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    let kept = log.lines().filter(|l| l.contains("flood line")).count();
    assert!(kept >= 100, "the first lines are kept ({kept})");
    assert!((kept as f64) <= 200.0 + 100.0 * elapsed + 1.0, "{kept} of 40 000 lines in {elapsed:.1} s");
    assert!(log.contains("log lines from this component were dropped"), "the drop is reported");
}
