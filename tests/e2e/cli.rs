//! The `portcullis` binary: secrets, check, schema, plugin inspect, run + SIGTERM drain.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `portcullis` binary, rebuilt by cargo for this test run.
pub fn portcullis() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portcullis-under-test"))
}

pub(crate) fn cli(home: &Path, password: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(portcullis())
        .args(args)
        .env("PORTCULLIS_HOME", home)
        .env("PORTCULLIS_SECRETS_PASSWORD", password)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        // A command that does not read its input (`secrets list`, or one that
        // fails first) may have exited already: its output says what happened.
        match child.stdin.take().unwrap().write_all(input.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.unwrap(),
        }
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn secrets_round_trip_through_the_cli() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let set = cli(h, "pw", &["secrets", "set", "api:token"], Some("tok-123\n"));
    assert!(set.status.success(), "{}", text(&set.stderr));
    assert!(!text(&set.stderr).contains("tok-123"), "the value is never echoed");
    let get = cli(h, "pw", &["secrets", "get", "api:token"], None);
    assert_eq!(text(&get.stdout), "tok-123\n");
    let mode = std::fs::metadata(h.join("secrets.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!std::fs::read_to_string(h.join("secrets.json")).unwrap().contains("tok-123"));

    let wrong = cli(h, "not-the-password", &["secrets", "set", "other", "--"], Some("x"));
    assert!(!wrong.status.success());
    assert!(text(&wrong.stderr).contains("wrong password"), "{}", text(&wrong.stderr));
    let list = cli(h, "pw", &["secrets", "list"], None);
    assert_eq!(text(&list.stdout), "api:token\n", "the failed write changed nothing");

    let delete = cli(h, "pw", &["secrets", "delete", "api:token"], None);
    assert!(delete.status.success());
    let get = cli(h, "pw", &["secrets", "get", "api:token"], None);
    assert!(!get.status.success());
}

#[test]
fn concurrent_writers_lose_nothing() {
    let home = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut child = Command::new(portcullis())
                .args(["secrets", "set", &format!("key{i}")])
                .env("PORTCULLIS_HOME", home.path())
                .env("PORTCULLIS_SECRETS_PASSWORD", "pw")
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(format!("value{i}").as_bytes()).unwrap();
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let list = cli(home.path(), "pw", &["secrets", "list"], None);
    let names: Vec<String> = text(&list.stdout).lines().map(str::to_owned).collect();
    assert_eq!(names, (0..8).map(|i| format!("key{i}")).collect::<Vec<_>>());
}

#[test]
fn every_example_policy_checks() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let home = tempfile::tempdir().unwrap();
            for (name, value) in example_secrets(&std::fs::read_to_string(&path).unwrap()) {
                let set = cli(home.path(), "pw", &["secrets", "set", name], Some(&value));
                assert!(set.status.success(), "{name}: {}", text(&set.stderr));
            }
            let out = cli(home.path(), "pw", &["check", path.to_str().unwrap()], None);
            assert!(out.status.success(), "{}: {}", path.display(), text(&out.stderr));
            checked += 1;
        }
    }
    assert!(checked > 0);
}

/// The secrets an example's header tells its reader to store first
/// (`portcullis secrets set NAME`), with values of the right form: a check
/// reads them as a serving gateway would.
fn example_secrets(policy: &str) -> Vec<(&str, String)> {
    use base64::Engine as _;
    let header = policy.lines().take_while(|line| line.starts_with('#'));
    let names = header.filter_map(|line| line.split("portcullis secrets set ").nth(1)).filter_map(|rest| rest.split_whitespace().next());
    names
        .map(|name| {
            let value = if name.starts_with("signing:") {
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem()
            } else if name.ends_with("token-key") {
                base64::engine::general_purpose::STANDARD.encode([7u8; 32])
            } else {
                "example-secret-value".to_owned()
            };
            (name, value)
        })
        .collect()
}

#[test]
fn check_reports_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad.toml");
    std::fs::write(
        &policy,
        "version = 1\n\n[[workloads]]\nname = \"w\"\nlisten = \"127.0.0.1:0\"\nupstream = \"ftp://x\"\npublic_url = \"http://127.0.0.1\"\nanonymous = true\n",
    )
    .unwrap();
    let out = cli(dir.path(), "pw", &["check", policy.to_str().unwrap()], None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml:6: `workloads[0].upstream`"), "{err}");
}

#[test]
fn schema_and_inspect() {
    let home = tempfile::tempdir().unwrap();
    let schema = cli(home.path(), "pw", &["schema"], None);
    let schema: serde_json::Value = serde_json::from_slice(&schema.stdout).unwrap();
    assert!(schema["properties"]["workloads"].is_object());

    let fixture = portcullis_tests::fixture("behaviours");
    let out = cli(home.path(), "pw", &["plugin", "inspect", "--json", fixture.to_str().unwrap()], None);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["world"], "authenticator");
    assert_eq!(info["sha256"], portcullis_tests::sha256_of(&fixture));
    assert!(info["imports"].as_array().unwrap().iter().any(|i| i == "portcullis:auth/secrets@0.2.0"));
    let out = cli(home.path(), "pw", &["plugin", "inspect", portcullis_tests::fixture("inject_header").to_str().unwrap()], None);
    assert!(text(&out.stdout).contains("world:   credential-injector"));
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    drains_on_sigterm(None).await;
}

/// One worker thread runs the gateway on tokio's current-thread scheduler (`cli::runtime`).
#[tokio::test]
async fn sigterm_drains_in_flight_requests_on_one_thread() {
    drains_on_sigterm(Some("1")).await;
}

async fn drains_on_sigterm(worker_threads: Option<&str>) {
    let upstream = portcullis_tests::upstream::TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = portcullis_tests::upstream::closed_port().await.port();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "version = 1\n[[workloads]]\nname = \"w\"\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{}\"\npublic_url = \"http://127.0.0.1:{port}\"\nanonymous = true\n",
            upstream.url()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(portcullis())
        .args(["run", "--policy", policy.to_str().unwrap()])
        .env("PORTCULLIS_HOME", dir.path())
        .envs(worker_threads.map(|n| ("TOKIO_WORKER_THREADS", n)))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let c = crate::client();
    let mut ready = false;
    for _ in 0..100 {
        if c.get(&url).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the gateway did not start");
    // A request that takes 5 s upstream is in flight when SIGTERM arrives.
    let slow = tokio::spawn({
        let c = c.clone();
        let url = format!("{url}/slow");
        async move { c.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    // In flight means: it reached the upstream (the readiness probes above were one hit).
    let hits = upstream.hits();
    for _ in 0..200 {
        if upstream.hits() > hits {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(upstream.hits() > hits, "the slow request never reached the upstream");
    let pid = child.id().unwrap() as i32;
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let slow = tokio::time::timeout(std::time::Duration::from_secs(15), slow).await.expect("the drain hung");
    assert_eq!(slow.unwrap().unwrap(), 200, "the in-flight request completed");
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success());
}

#[test]
fn files_holding_credentials_or_code_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // A client configuration carrying a key: written 0600, the old one kept (0600) beside it.
    let keys = cli(h, "pw", &["keys", "create", "demo"], None);
    assert!(keys.status.success(), "{}", text(&keys.stderr));
    let config = h.join("mcp.json");
    std::fs::write(&config, r#"{"mcpServers":{}}"#).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let args = ["client-config", "demo", "--client", "cursor", "--url", "http://127.0.0.1:8080/mcp", "--write", "--config-file", config.to_str().unwrap()];
    let out = cli(h, "pw", &args, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for file in [config.clone(), h.join("mcp.json.bak")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    // The compile cache: a 0700 directory of 0600 files (it holds native code the gateway loads).
    let policy = h.join("policy.toml");
    std::fs::write(
        &policy,
        "version = 1\n[[workloads]]\nname = \"demo\"\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:9\"\npublic_url = \"http://127.0.0.1:8080\"\n  [[workloads.inbound]]\n  component = \"builtin:shared-key\"\n  grants = { secrets = [\"workload:demo:shared-key\"] }\n",
    )
    .unwrap();
    let out = cli(h, "pw", &["check", policy.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cache = h.join("cache/components");
    assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
    let files: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!files.is_empty(), "the check compiled into the cache");
    for file in files {
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "{}", file.display());
    }
}

#[test]
fn a_damaged_store_is_reported_and_left_alone() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    assert!(cli(h, "pw", &["secrets", "set", "a"], Some("v1")).status.success());
    let store = h.join("secrets.json");
    let whole = std::fs::read(&store).unwrap();
    std::fs::write(&store, &whole[..whole.len() / 2]).unwrap();
    for args in [&["secrets", "list"][..], &["secrets", "set", "b"][..], &["secrets", "get", "a"][..]] {
        let out = cli(h, "pw", args, Some("v2"));
        assert!(!out.status.success(), "{args:?} on a damaged store");
        assert!(text(&out.stderr).contains("is not a valid secret store"), "{args:?}: {}", text(&out.stderr));
    }
    assert_eq!(std::fs::read(&store).unwrap(), &whole[..whole.len() / 2], "nothing was recreated or overwritten");
}

/// SIGKILL at random moments of `secrets set`: the store always opens, and
/// holds either the value before the write or the one being written.
#[test]
fn a_killed_write_loses_neither_the_old_value_nor_the_new() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    assert!(cli(h, "pw", &["secrets", "set", "k"], Some("v0")).status.success());
    let started = std::time::Instant::now();
    assert!(cli(h, "pw", &["secrets", "set", "k"], Some("v1")).status.success());
    let one_write = started.elapsed();
    let mut committed = "v1".to_owned();
    let mut killed = 0;
    for n in 2..32 {
        let value = format!("v{n}");
        let mut child = Command::new(portcullis())
            .args(["secrets", "set", "k"])
            .env("PORTCULLIS_HOME", h)
            .env("PORTCULLIS_SECRETS_PASSWORD", "pw")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(value.as_bytes()).unwrap();
        }
        // Anywhere in the span of one write, from start-up to rename.
        let at = one_write.mul_f64(f64::from(rand_fraction(n)));
        std::thread::sleep(at);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if !status.success() {
            killed += 1;
        }
        let get = cli(h, "pw", &["secrets", "get", "k"], None);
        assert!(get.status.success(), "the store does not open after a kill at {at:?}: {}", text(&get.stderr));
        let now = text(&get.stdout).trim().to_owned();
        assert!(now == committed || now == value, "after a kill at {at:?}: {now:?}, expected {committed:?} or {value:?}");
        committed = now;
    }
    assert!(killed > 0, "no write was interrupted");
}

/// A deterministic spread of fractions in [0, 1).
fn rand_fraction(n: u32) -> f32 {
    (n.wrapping_mul(2_654_435_761) % 1000) as f32 / 1000.0
}
