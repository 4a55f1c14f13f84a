//! Shared-key workloads end to end: the real reference MCP server behind the
//! gateway binary, the official MCP SDK client over HTTP and over
//! `portcullis bridge`, key rotation with grace, and no key in any log.

use crate::cli::portcullis;
use portcullis_tests::node::{EverythingServer, free_port, mcp_client};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const PASSWORD: &str = "shared-key-test";
/// Everything the gateway logs, but for the engine's compiler, the poller and
/// the file watcher (whose trace of each change to the log file beside the
/// policy would feed itself).
const TRACE: &str = "trace,wasmtime=info,cranelift_codegen=info,cranelift_frontend=info,mio=info,notify=info";

/// The gateway binary on a shared-key policy, logging at trace level to a file.
pub(crate) struct RunningGateway {
    dir: tempfile::TempDir,
    port: u16,
    child: tokio::process::Child,
}

impl RunningGateway {
    async fn start(upstream: &str, grace: &str) -> RunningGateway {
        RunningGateway::with_policy(TRACE, |port, _| {
            format!(
                r#"version = 1
[[workloads]]
name = "everything"
listen = "127.0.0.1:{port}"
upstream = "{upstream}"
public_url = "http://127.0.0.1:{port}/mcp"
  [[workloads.inbound]]
  component = "builtin:shared-key"
  config = {{ key = "auto", grace = "{grace}" }}
  grants = {{ secrets = ["workload:everything:shared-key*"] }}
"#
            )
        })
        .await
    }

    /// The gateway binary on the policy `policy(port, dir)` gives, listening on
    /// `port`, logging what `log_filter` (`RUST_LOG`) selects; the policy file is
    /// in `dir`, where relative paths in it point.
    pub(crate) async fn with_policy(log_filter: &str, policy: impl Fn(u16, &Path) -> String) -> RunningGateway {
        // The binary cannot bind port 0 and say which port it got, so it is
        // given a free port; if another process takes the port first, the
        // gateway exits, and it starts again on another.
        for _ in 0..20 {
            if let Some(gateway) = RunningGateway::on_port(free_port(), log_filter, &policy).await {
                return gateway;
            }
        }
        panic!("the gateway found no free port");
    }

    /// The gateway on `port`, or `None` when it exited because it could not bind it.
    async fn on_port(port: u16, log_filter: &str, policy: &impl Fn(u16, &Path) -> String) -> Option<RunningGateway> {
        let dir = tempfile::tempdir().unwrap();
        let text = policy(port, dir.path());
        std::fs::write(dir.path().join("policy.toml"), text).unwrap();
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let child = tokio::process::Command::new(portcullis())
            .args(["--log-format", "json", "run", "--policy"])
            .arg(dir.path().join("policy.toml"))
            .env("PORTCULLIS_HOME", dir.path().join("home"))
            .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
            .env("RUST_LOG", log_filter)
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let mut gateway = RunningGateway { dir, port, child };
        for _ in 0..600 {
            // Up when the gateway itself holds the listening socket (not another process that took the port).
            if portcullis_tests::node::listens_on(pid, port) {
                return Some(gateway);
            }
            if gateway.child.try_wait().unwrap().is_some() {
                let log = gateway.log();
                assert!(log.contains("in use"), "the gateway exited: {log}");
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway did not start: {}", gateway.log());
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The process's resident memory, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("the gateway is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub(crate) fn policy(&self) -> PathBuf {
        self.dir.path().join("policy.toml")
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// Runs a `portcullis` subcommand against this gateway's home.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(portcullis()).args(args).env("PORTCULLIS_HOME", self.home()).env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD).output().unwrap()
    }

    fn key(&self) -> String {
        self.key_of("everything")
    }

    pub(crate) fn key_of(&self, workload: &str) -> String {
        let out = self.cli(&["keys", "show", workload]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

async fn http_client(url: &str, key: Option<&str>) -> serde_json::Value {
    let header = key.map(|k| format!("X-Portcullis-Key: {k}"));
    let mut args = vec!["http", url];
    if let Some(h) = &header {
        args.extend(["--header", h]);
    }
    mcp_client(&args, &[]).await
}

fn assert_mcp_ok(report: &serde_json::Value) {
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["tools"].as_array().unwrap().iter().any(|t| t == "echo"), "{report}");
    assert!(report["echo"].as_str().unwrap().contains("hello portcullis"), "{report}");
}

#[tokio::test]
async fn the_mcp_sdk_client_needs_the_key() {
    let server = EverythingServer::start().await;
    let mut gw = RunningGateway::start(&server.url(), "10m").await;
    let key = gw.key();
    assert_eq!(key.len(), 43, "32 bytes in base64url without padding");

    assert_mcp_ok(&http_client(&gw.url(), Some(&key)).await);

    let refused = http_client(&gw.url(), None).await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["status"], 401, "{refused}");
    let wrong = http_client(&gw.url(), Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).await;
    assert_eq!(wrong["status"], 401, "{wrong}");

    // The refusal tells a person what to do, without starting an OAuth discovery.
    let r = crate::client().post(gw.url()).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_none());
    let body = crate::json(r).await;
    assert_eq!(body["header"], "x-portcullis-key");
    assert!(body["message"].as_str().unwrap().contains("portcullis keys show everything"), "{body}");

    gw.child.start_kill().unwrap();
    let _ = gw.child.wait().await;
    assert_no_key_in(&gw.log(), &[&key]);
}

#[tokio::test]
async fn stdio_clients_reach_it_through_the_bridge() {
    let server = EverythingServer::start().await;
    let gw = RunningGateway::start(&server.url(), "10m").await;
    let key = gw.key();
    let bin = portcullis();
    let policy = gw.policy();
    let home = gw.home();
    // The bridge logs all it can, and all of it is searched for the key.
    let envs = [("PORTCULLIS_HOME", home.to_str().unwrap()), ("PORTCULLIS_SECRETS_PASSWORD", PASSWORD), ("RUST_LOG", TRACE)];
    let (report, output) = mcp_client_with_output(&["stdio", bin.to_str().unwrap(), "bridge", "everything", "--policy", policy.to_str().unwrap()], &envs).await;
    assert_mcp_ok(&report);
    assert_no_key_in(&output, &[&key]);

    // With another store's key the bridge says so on stderr, once, and exits non-zero.
    let other = tempfile::tempdir().unwrap();
    let create = std::process::Command::new(portcullis())
        .args(["keys", "create", "everything"])
        .env("PORTCULLIS_HOME", other.path())
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(create.status.success());
    let out = bridge_once(other.path(), &gw.url());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let refusals: Vec<&str> = stderr.lines().filter(|l| l.contains("refused the key")).collect();
    assert_eq!(refusals.len(), 1, "{stderr}");
    assert!(out.stdout.is_empty(), "nothing but protocol messages on stdout");
    // This bridge carried the other store's key: that is the one its stderr must not show.
    let shown = std::process::Command::new(portcullis())
        .args(["keys", "show", "everything"])
        .env("PORTCULLIS_HOME", other.path())
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let other_key = String::from_utf8_lossy(&shown.stdout).trim().to_owned();
    assert!(other_key.len() >= 32, "the other store's key: {other_key:?}");
    assert_no_key_in(&stderr, &[&key, &other_key]);
    assert_no_key_in(&gw.log(), &[&key, &other_key]);
}

/// Like `node::mcp_client`, also returning all the client wrote, stdout and
/// stderr: over stdio, the bridge's stderr passes through the client's.
async fn mcp_client_with_output(args: &[&str], envs: &[(&str, &str)]) -> (serde_json::Value, String) {
    let dir = portcullis_tests::node::node_dir();
    let output = tokio::process::Command::new("node")
        .arg(dir.join("mcp-client.mjs"))
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let report = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("mcp-client printed no JSON report: stdout={stdout:?} stderr={stderr:?}"));
    (report, format!("{stdout}{stderr}"))
}

/// Sends one initialize request through a bridge using the store at `home`.
fn bridge_once(home: &Path, url: &str) -> std::process::Output {
    let mut child = std::process::Command::new(portcullis())
        .args(["bridge", "everything", "--url", url])
        .env("PORTCULLIS_HOME", home)
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let init =
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{init}").unwrap();
    // Keep stdin open: the bridge must stop on the refusal, not on end of input.
    // A regression that hangs must fail the test, not the whole suite.
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let expired = finished.recv_timeout(Duration::from_secs(30)).is_err();
        if expired {
            let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
        }
        expired
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    drop(stdin);
    assert!(!watchdog.join().unwrap(), "the bridge did not stop within 30 s");
    out
}

#[tokio::test]
async fn a_rotated_key_keeps_working_for_the_grace_period() {
    let server = EverythingServer::start().await;
    // Ten seconds of grace, kept in whole seconds from the rotation: at least
    // nine after it, whatever the clock's fraction. The checks inside it are
    // plain HTTP (no Node start, no Argon2 run) and must land well within that.
    let gw = RunningGateway::start(&server.url(), "10s").await;
    let old = gw.key();
    let out = gw.cli(&["keys", "rotate", "everything", "--policy", gw.policy().to_str().unwrap()]);
    let rotated_at = std::time::Instant::now();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(initialize_status(&gw.url(), &old).await, 200, "the old key within the grace period");
    assert!(rotated_at.elapsed() < Duration::from_secs(8), "the grace check ran too late to mean anything");
    let new = gw.key();
    assert_ne!(old, new);
    assert_mcp_ok(&http_client(&gw.url(), Some(&new)).await);
    tokio::time::sleep(Duration::from_secs(11).saturating_sub(rotated_at.elapsed())).await;
    assert_eq!(http_client(&gw.url(), Some(&old)).await["status"], 401, "the grace period is over");
    assert_mcp_ok(&http_client(&gw.url(), Some(&new)).await);
    assert_no_key_in(&gw.log(), &[&old, &new]);
}

/// The status of an MCP `initialize` POST carrying `key`, over plain HTTP.
async fn initialize_status(url: &str, key: &str) -> u16 {
    let body =
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    crate::client()
        .post(url)
        .header("x-portcullis-key", key)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn assert_no_key_in(text: &str, keys: &[&str]) {
    assert!(!text.is_empty(), "no log was captured");
    for key in keys {
        assert!(!text.contains(key), "a key appears in the log");
    }
}

/// An empty stored key never matches, not even an empty presentation (issue "Hardening", item 16).
#[tokio::test]
async fn an_empty_key_admits_nothing() {
    use portcullis::secrets::{SecretStore, SecretString};
    use portcullis_tests::gateway::{PASSWORD as GATEWAY_PASSWORD, TestGateway, workload};
    let upstream = portcullis_tests::upstream::TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(&dir.path().join("home"), Some(SecretString::from(GATEWAY_PASSWORD.to_owned())));
    store.set("workload:w:shared-key", SecretString::from(String::new())).unwrap();
    let entry = "  [[workloads.inbound]]\n  component = \"builtin:shared-key\"\n  grants = { secrets = [\"workload:w:shared-key*\"] }\n";
    let gw = TestGateway::start_in(dir, &format!("version = 1\n{}", workload("w", &upstream.url(), entry))).await.unwrap();
    let c = crate::client();
    let url = gw.url("w").await;
    assert_eq!(c.get(&url).send().await.unwrap().status(), 401, "no header");
    assert_eq!(c.get(&url).header("x-portcullis-key", "").send().await.unwrap().status(), 401, "an empty header");
    assert_eq!(c.get(&url).header("x-portcullis-key", "guess").send().await.unwrap().status(), 503, "the stored key is unusable");
    assert_eq!(upstream.hits(), 0);
}

/// The key is consumed: it never reaches the upstream, whichever header and scheme carry it.
#[tokio::test]
async fn the_key_never_reaches_the_upstream() {
    use crate::{client, json, seen};
    use portcullis::secrets::{SecretStore, SecretString};
    use portcullis_tests::gateway::{PASSWORD as GATEWAY_PASSWORD, TestGateway, workload};
    let upstream = portcullis_tests::upstream::TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = "kW3x0Q4bq0m1pS0uS6oXgk7l0tJc9yQ2p3bTn1VnE8A";
    let store = SecretStore::new(&dir.path().join("home"), Some(SecretString::from(GATEWAY_PASSWORD.to_owned())));
    portcullis_tests::leaks::register(key);
    store.set("workload:w:shared-key", SecretString::from(key.to_owned())).unwrap();
    let entry = "  [[workloads.inbound]]\n  component = \"builtin:shared-key\"\n  config = { header = \"authorization\", scheme = \"Bearer\" }\n  grants = { secrets = [\"workload:w:shared-key\"] }\n";
    let gw = TestGateway::start_in(dir, &format!("version = 1\n{}", workload("w", &upstream.url(), entry))).await.unwrap();
    let r = client().get(gw.url("w").await).header("authorization", format!("Bearer {key}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let echo = json(r).await;
    assert!(seen(&echo, "authorization").is_empty(), "the key was forwarded: {echo}");
    assert!(!echo.to_string().contains(key));
    let r = client().get(gw.url("w").await).header("authorization", "Bearer wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(upstream.hits(), 1, "the refused request never reached the upstream");
}
