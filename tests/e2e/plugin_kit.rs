//! The author's tools: the walkthrough of docs/plugin-authoring.md run as
//! written (ending with a push to a real registry and an install from it), `plugin test` on the built-ins and on a committed 0.2.0 component,
//! a scaffolded injector, and a component written in JavaScript in a gateway.

use crate::cli::{portcullis, text};
use crate::oidc::{ISSUER, PUBLIC_URL, ec_key, es256, good_claims};
use crate::{client, json, seen};
use portcullis::plugin_kit::trial::{self, Report, TrialSpec};
use portcullis::runtime::Runtime;
use portcullis::runtime::plugin::Limits;
use portcullis::secrets::{SecretStore, SecretString};
use portcullis_tests::gateway::{PASSWORD, TestGateway, shared_cache_dir, workload};
use portcullis_tests::node::free_port;
use portcullis_tests::registry::Registry;
use portcullis_tests::upstream::TestUpstream;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn compat_fixture() -> PathBuf {
    repo().join("tests/compat/authenticator-0.2.0.wasm")
}

fn builtin(file: &str) -> Vec<u8> {
    std::fs::read(repo().join("target/guests/wasm32-wasip2/release").join(file)).expect("the built-ins are built by host/build.rs")
}

/// One `plugin test` call through the library (what the CLI runs).
async fn trial(wasm: Vec<u8>, config: Value, stubs: Value, request: Value) -> Report {
    let runtime = Runtime::with_pool(Some(shared_cache_dir()), 4).unwrap();
    let spec = TrialSpec {
        wasm,
        config_json: config.to_string(),
        request: serde_json::from_value(request).unwrap(),
        stubs: serde_json::from_value(stubs).unwrap(),
        workload: "demo".into(),
        public_url: PUBLIC_URL.into(),
        limits: Limits::default(),
    };
    trial::run(&runtime, spec).await.unwrap()
}

fn calls(report: &Report) -> Value {
    serde_json::to_value(&report.host_calls).unwrap()
}

#[tokio::test]
async fn a_component_built_against_0_2_0_keeps_loading() {
    let wasm = std::fs::read(compat_fixture()).unwrap();
    let stubs = json!({ "secrets": { "workload:demo:api-key": "test-key-0123456789" } });
    let allowed = trial(wasm.clone(), json!({}), stubs.clone(), json!({ "path": "/mcp", "headers": [["X-Api-Key", "test-key-0123456789"]] })).await;
    assert_eq!(allowed.world, "authenticator");
    assert_eq!(allowed.init, json!("ok"));
    assert_eq!(allowed.manifest, Some(json!({ "consumes": ["x-api-key"], "forwards": [], "produces": ["x-api-client"] })));
    let verdict = serde_json::to_value(allowed.verdict.as_ref().unwrap()).unwrap();
    assert_eq!(verdict["verdict"], "allow", "{verdict}");
    assert_eq!(verdict["identity"]["subject"], "api-key:demo");
    assert_eq!(verdict["edits"], json!([{ "set": ["x-api-client", "demo"] }]));
    assert_eq!(calls(&allowed), json!([{ "call": "secrets.get", "name": "workload:demo:api-key", "result": "found" }]));

    let denied = trial(wasm.clone(), json!({}), stubs.clone(), json!({ "path": "/mcp", "headers": [["x-api-key", "wrong"]] })).await;
    assert_eq!((denied.outcome(), denied.status()), ("deny", Some(401)));
    let missing = trial(wasm.clone(), json!({}), stubs, json!({ "path": "/mcp" })).await;
    assert_eq!((missing.outcome(), missing.status()), ("deny", Some(401)));
    assert!(missing.host_calls.is_empty(), "no key, no secret read");
    let no_secret = trial(wasm.clone(), json!({}), json!({}), json!({ "path": "/", "headers": [["x-api-key", "k"]] })).await;
    assert_eq!((no_secret.outcome(), no_secret.status()), ("deny", Some(503)), "fails closed without its secret");
    let refused = trial(wasm, json!({ "colour": "red" }), json!({}), json!({ "path": "/" })).await;
    assert_eq!(refused.outcome(), "init-failed");
    assert!(refused.init["error"].as_str().unwrap().contains("unknown field `colour`"), "{}", refused.init);
}

#[tokio::test]
async fn the_built_ins_answer_plugin_test() {
    let key = "k".repeat(43);
    let stubs = json!({ "secrets": { "workload:demo:shared-key": key, "workload:demo:shared-key:previous": null } });
    let allowed = trial(builtin("shared_key.wasm"), json!({}), stubs.clone(), json!({ "path": "/mcp", "headers": [["x-portcullis-key", key]] })).await;
    assert_eq!(allowed.verdict.as_ref().unwrap().identity.as_ref().unwrap()["subject"], "shared-key:demo");
    // `init` learnt that the previous key is not granted, so no request asks for it.
    assert_eq!(serde_json::to_value(&allowed.init_host_calls).unwrap()[0]["result"], "not-granted");
    assert_eq!(calls(&allowed), json!([{ "call": "secrets.get", "name": "workload:demo:shared-key", "result": "found" }]));
    let denied = trial(builtin("shared_key.wasm"), json!({}), stubs, json!({ "path": "/mcp", "headers": [["x-portcullis-key", "nope"]] })).await;
    assert_eq!((denied.outcome(), denied.status()), ("deny", Some(401)));
    let bad_config = trial(builtin("shared_key.wasm"), json!({ "grace": true }), json!({}), json!({ "path": "/" })).await;
    assert!(bad_config.init["error"].as_str().unwrap().contains("grace"), "errors name the key: {}", bad_config.init);

    // The OIDC verifier fetches its key set over (stubbed) HTTP, verifies natively, caches.
    let signing = ec_key("k1", json!({ "use": "sig", "alg": "ES256" }));
    let jwks_uri = format!("{ISSUER}/jwks");
    let stubs = json!({ "http": [{ "url": jwks_uri, "headers": [["cache-control", "max-age=300"]], "body": { "keys": [signing.jwk] } }] });
    let config = json!({ "issuer": ISSUER, "jwks_uri": jwks_uri, "algorithms": ["ES256"], "claims_to_headers": { "sub": "x-user" } });
    let token = es256("k1", &good_claims(), &signing);
    let allowed = trial(
        builtin("oidc_verifier.wasm"),
        config.clone(),
        stubs.clone(),
        json!({ "path": "/mcp", "headers": [["authorization", format!("Bearer {token}")]] }),
    )
    .await;
    let verdict = serde_json::to_value(allowed.verdict.as_ref().unwrap()).unwrap();
    assert_eq!(verdict["verdict"], "allow", "{verdict}");
    assert_eq!(verdict["identity"]["subject"], "alice");
    assert_eq!(verdict["edits"], json!([{ "append": ["x-user", "alice"] }]));
    let made: Vec<String> = allowed.host_calls.iter().map(|c| serde_json::to_value(c).unwrap()["call"].as_str().unwrap().to_owned()).collect();
    for call in ["http.send", "crypto.verify-jws", "cache.set"] {
        assert!(made.iter().any(|m| m == call), "{call} in {made:?}");
    }
    let unsigned = format!("{}.", token.rsplit_once('.').unwrap().0);
    let refused =
        trial(builtin("oidc_verifier.wasm"), config, stubs, json!({ "path": "/mcp", "headers": [["authorization", format!("Bearer {unsigned}")]] })).await;
    assert_eq!((refused.outcome(), refused.status()), ("deny", Some(401)));
}

/// Runs the `portcullis` binary under test.
fn run(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(portcullis()).args(args).current_dir(dir).output().unwrap()
}

#[test]
fn plugin_test_hash_and_inspect_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("stubs.json"), r#"{ "secrets": { "workload:demo:api-key": "right" } }"#).unwrap();
    std::fs::write(d.join("request.json"), r#"{ "method": "POST", "path": "/mcp", "headers": [["x-api-key", "wrong"]] }"#).unwrap();
    let wasm = compat_fixture();
    let wasm = wasm.to_str().unwrap();
    let out = run(&["plugin", "test", wasm, "--stub", "stubs.json", "--request", "request.json", "--expect", "deny:401"], d);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"]["status"], 401);
    assert!(!text(&out.stdout).contains("\"right\""), "secret values are never printed");
    let out = run(&["plugin", "test", wasm, "--stub", "stubs.json", "--request", "request.json", "--expect", "allow"], d);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("expected allow, got deny:401"), "{}", text(&out.stderr));
    std::fs::write(d.join("bad.json"), r#"{ "path": "/", "headers": [["x", 1]] }"#).unwrap();
    let out = run(&["plugin", "test", wasm, "--request", "bad.json"], d);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("bad.json"), "{}", text(&out.stderr));

    // A trap's report carries the innermost wasm frames for the author (the
    // gateway records none unless PORTCULLIS_WASM_BACKTRACE=1).
    std::fs::write(d.join("trap.json"), r#"{ "mode": "trap" }"#).unwrap();
    let behaviours = portcullis_tests::fixture("behaviours");
    let out = run(&["plugin", "test", behaviours.to_str().unwrap(), "--config", "trap.json", "--request", "request.json"], d);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"]["fault"]["kind"], "trap", "{report}");
    assert!(report["verdict"]["fault"]["detail"].as_str().unwrap().contains("wasm backtrace:"), "{report}");

    let out = run(&["plugin", "hash", wasm], d);
    assert_eq!(text(&out.stdout).trim(), portcullis_tests::sha256_of(&compat_fixture()));
    let out = run(&["plugin", "inspect", wasm], d);
    assert!(text(&out.stdout).contains("grants the policy must give:\n  secrets = "), "{}", text(&out.stdout));
}

/// The ```bash walkthrough blocks of docs/plugin-authoring.md, in order.
fn walkthrough() -> String {
    let doc = std::fs::read_to_string(repo().join("docs/plugin-authoring.md")).unwrap();
    // A failed step ends the script; the trap stops the servers it started,
    // which would otherwise hold its output open.
    let mut script = String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    let mut inside = false;
    for line in doc.lines() {
        match (inside, line.trim_end()) {
            (false, "```bash walkthrough") => inside = true,
            (true, "```") => inside = false,
            (true, line) => {
                script.push_str(line);
                script.push('\n');
            }
            _ => {}
        }
    }
    assert!(script.contains("plugin new") && script.contains("curl"), "the walkthrough blocks were not found");
    script
}

/// A shell as a new user has it: `portcullis` on PATH, no cargo state from this test run.
fn shell(script: &str, dir: &Path, home: &Path) -> Command {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("portcullis");
    if !link.exists() {
        std::os::unix::fs::symlink(portcullis(), &link).unwrap();
    }
    let mut command = Command::new("bash");
    command
        .args(["-c", script])
        .current_dir(dir)
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .env("PORTCULLIS_HOME", home)
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD);
    for var in ["CARGO_TARGET_DIR", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUST_LOG"] {
        command.env_remove(var);
    }
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
}

/// Runs `command` and kills whatever it left behind (the walkthrough's servers).
/// A script still running after ten minutes (cold builds included) is killed,
/// so a step that waits forever fails the test instead of hanging the suite.
fn run_to_end(mut command: Command) -> std::process::Output {
    let child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let group = format!("-{}", child.id());
    let kill_group = move |signal: &str| {
        let _ = Command::new("kill").args([signal, "--", &group]).stderr(std::process::Stdio::null()).status();
    };
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = {
        let kill_group = kill_group.clone();
        std::thread::spawn(move || {
            if finished.recv_timeout(Duration::from_secs(600)).is_err() {
                kill_group("-KILL");
            }
        })
    };
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    watchdog.join().unwrap();
    kill_group("-TERM");
    out
}

#[test]
fn the_walkthrough_runs_as_written_and_an_injector_scaffold_works() {
    // Outside the repository, as a new user would be.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("home");
    // The last step publishes to a registry: a real one, on loopback.
    let registry = tokio::runtime::Runtime::new().unwrap().block_on(Registry::start());
    let mut command = shell(&walkthrough(), d, &home);
    command.env("GATEWAY_PORT", free_port().to_string()).env("UPSTREAM_PORT", free_port().to_string()).env("REGISTRY", &registry.addr);
    let out = run_to_end(command);
    assert!(out.status.success(), "the walkthrough failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("\"verdict\": \"allow\""), "{}", text(&out.stdout));

    // The other world, built with the walkthrough's compiled dependencies.
    let script = "set -euo pipefail
portcullis plugin new hello-inject --world credential-injector
cd hello-inject
CARGO_TARGET_DIR=../hello-auth/target cargo build --release
wasm=../hello-auth/target/wasm32-wasip2/release/hello_inject.wasm
portcullis plugin test $wasm --config tests/config.json --stub tests/stubs.json --request tests/request.json --expect forward
portcullis plugin test $wasm --config tests/config.json --stub tests/stubs-empty.json --request tests/request.json --expect deny:503
";
    let out = run_to_end(shell(script, d, &home));
    assert!(out.status.success(), "the injector scaffold failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains(r#""set": ["#) && text(&out.stdout).contains("Bearer test-token"), "{}", text(&out.stdout));
}

/// The JavaScript example, built from source when missing or older than its source.
fn js_component() -> PathBuf {
    let example = repo().join("examples/js-header-check");
    let wasm = example.join("header-check.wasm");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let stale = match modified(&wasm) {
        None => true,
        Some(built) => ["src/header-check.js", "package-lock.json"].iter().any(|f| modified(&example.join(f)).is_some_and(|m| m > built)),
    };
    if stale {
        let out = Command::new("bash").arg(example.join("build.sh")).output().unwrap();
        assert!(out.status.success(), "building the JavaScript component failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    }
    wasm
}

#[tokio::test]
async fn a_component_written_in_javascript_runs_in_the_gateway() {
    let wasm = tokio::task::spawn_blocking(js_component).await.unwrap();
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(&dir.path().join("home"), Some(SecretString::from(PASSWORD.to_owned())));
    portcullis_tests::leaks::register("js-key-0123456789");
    store.set("workload:js:api-key", SecretString::from("js-key-0123456789".to_owned())).unwrap();
    let entry = "  [[workloads.inbound]]\n  component = \"js-check\"\n  grants = { secrets = [\"workload:js:api-key\"] }\n";
    let policy = format!(
        "version = 1\n[components.js-check]\npath = {:?}\nsha256 = \"{}\"\nlimits = {{ memory_mib = 32 }}\n\n{}",
        wasm.display().to_string(),
        portcullis_tests::sha256_of(&wasm),
        workload("js", &upstream.url(), entry)
    );
    let gw = TestGateway::start_in(dir, &policy).await.unwrap();
    let url = gw.url("js").await;
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("ApiKey"));
    let r = client().get(&url).header("x-api-key", "js-key-9876543210").send().await.unwrap();
    assert_eq!(r.status(), 401, "a wrong key of the same length");
    let r = client().get(&url).header("x-api-key", "js-key-0123456789").header("x-api-client", "forged").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let echo = json(r).await;
    assert_eq!(seen(&echo, "x-api-client"), ["js"], "the component's header, not the client's");
    assert!(seen(&echo, "x-api-key").is_empty(), "the consumed key does not reach the upstream");
}

/// Documented OIDC refusals, driven through `plugin test`'s stubs: a provider
/// with no keys at all, and a discovery document that names another issuer.
#[tokio::test]
async fn oidc_refuses_without_keys_and_when_discovery_names_another_issuer() {
    let signing = ec_key("k1", json!({ "use": "sig", "alg": "ES256" }));
    let token = es256("k1", &good_claims(), &signing);
    let request = json!({ "path": "/mcp", "headers": [["authorization", format!("Bearer {token}")]] });
    let description = |report: &Report| {
        let verdict = serde_json::to_value(report.verdict.as_ref().unwrap()).unwrap();
        let challenge = verdict["headers"].as_array().unwrap().iter().find(|h| h[0] == "www-authenticate").map(|h| h[1].as_str().unwrap().to_owned());
        (report.status(), challenge.unwrap_or_default())
    };

    let jwks_uri = format!("{ISSUER}/jwks");
    let empty = json!({ "http": [{ "url": jwks_uri, "body": { "keys": [] } }] });
    let report = trial(builtin("oidc_verifier.wasm"), json!({ "issuer": ISSUER, "jwks_uri": jwks_uri, "algorithms": ["ES256"] }), empty, request.clone()).await;
    let (status, challenge) = description(&report);
    assert_eq!(status, Some(401));
    assert!(challenge.contains("no trusted key matches the token"), "{challenge}");

    let discovery = format!("{ISSUER}/.well-known/openid-configuration");
    let other = json!({ "http": [{ "url": discovery, "body": { "issuer": "https://evil.test", "jwks_uri": jwks_uri } }, { "url": jwks_uri, "body": { "keys": [signing.jwk] } }] });
    let report = trial(builtin("oidc_verifier.wasm"), json!({ "issuer": ISSUER, "algorithms": ["ES256"] }), other, request).await;
    let (status, challenge) = description(&report);
    assert_eq!(status, Some(401));
    assert!(challenge.contains("the issuer's signing keys are unavailable"), "{challenge}");
    let fetched: Vec<String> = report.host_calls.iter().filter_map(|c| serde_json::to_value(c).unwrap()["url"].as_str().map(str::to_owned)).collect();
    assert!(!fetched.contains(&jwks_uri), "the key set of a discovery document for another issuer is never fetched: {fetched:?}");
}
