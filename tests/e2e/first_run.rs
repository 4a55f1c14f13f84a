//! What a new user meets first: `init` for each mode (checked, then served),
//! `--version` with the contract and the built-in pins, completions, the man page.

use crate::cli::portcullis;
use crate::client;
use portcullis::secrets::{ExposeSecret, SecretStore, SecretString};
use portcullis_tests::gateway::{PASSWORD, TestGateway};
use portcullis_tests::upstream::TestUpstream;
use std::process::{Command, Output};

fn run(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(portcullis()).args(args).env("PORTCULLIS_HOME", home).env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD).env("NO_COLOR", "1").output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `portcullis init` with `args` in a fresh directory; returns the directory and the policy text.
fn init(args: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("starter.toml");
    let mut all = vec!["init", "--output", output.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run(&dir.path().join("home"), &all);
    assert!(out.status.success(), "init failed: {}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("OK (1 workloads)"), "init checks what it wrote: {}", text(&out.stdout));
    let policy = std::fs::read_to_string(&output).unwrap();
    // Refuses to overwrite without --force, and overwrites with it.
    let again = run(&dir.path().join("home"), &all);
    assert!(!again.status.success() && text(&again.stderr).contains("--force"), "{}", text(&again.stderr));
    all.push("--force");
    assert!(run(&dir.path().join("home"), &all).status.success());
    // The admin listener's fixed port would collide between parallel tests.
    (dir, policy.replace("127.0.0.1:9901", "127.0.0.1:0"))
}

/// Serves `policy` in-process (the workload listens on an ephemeral port).
async fn serve(dir: tempfile::TempDir, policy: &str) -> (TestGateway, String) {
    let policy = policy.replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"");
    let gw = TestGateway::start_in(dir, &policy).await.unwrap();
    let url = format!("{}/mcp", gw.url("mcp").await);
    (gw, url)
}

#[tokio::test]
async fn init_anonymous_serves() {
    let upstream = TestUpstream::start().await;
    let (dir, policy) = init(&["--mode", "anonymous", "--upstream", &upstream.url()]);
    assert!(policy.contains("anonymous = true") && policy.starts_with("# Written by `portcullis init --mode anonymous`"), "{policy}");
    let (_gw, url) = serve(dir, &policy).await;
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn init_shared_key_serves_with_the_created_key() {
    let upstream = TestUpstream::start().await;
    let (dir, policy) = init(&["--mode", "shared-key", "--upstream", &upstream.url()]);
    let (gw, url) = serve(dir, &policy).await;
    assert_eq!(client().get(&url).send().await.unwrap().status(), 401);
    let store = SecretStore::new(&gw.home(), Some(SecretString::from(PASSWORD.to_owned())));
    let key = store.get("workload:mcp:shared-key").unwrap().expect("key = auto created it");
    let r = client().get(&url).header("x-portcullis-key", key.expose_secret()).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn init_oidc_serves_a_protected_resource() {
    let upstream = TestUpstream::start().await;
    let issuer = portcullis_tests::key_server::KeyServer::start(serde_json::json!({ "keys": [] })).await;
    let (dir, policy) = init(&["--mode", "oidc", "--upstream", &upstream.url(), "--issuer", &issuer.issuer]);
    assert!(policy.contains("http_private = true"), "a loopback issuer needs the private-address grant: {policy}");
    let (gw, url) = serve(dir, &policy).await;
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("resource_metadata="));
    let metadata = client().get(format!("{}/.well-known/oauth-protected-resource/mcp", gw.url("mcp").await)).send().await.unwrap();
    assert_eq!(crate::json(metadata).await["authorization_servers"][0], issuer.issuer);
    assert_eq!(upstream.hits(), 0);
}

#[test]
fn init_oidc_needs_an_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["init", "--mode", "oidc", "--output", dir.path().join("p.toml").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--issuer"), "{}", text(&out.stderr));
    assert!(!dir.path().join("p.toml").exists());
}

#[test]
fn version_names_the_contract_and_the_builtin_pins() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["--version"]);
    assert!(out.status.success());
    let version = text(&out.stdout);
    assert!(version.contains("contract portcullis:auth@0.2.0"), "{version}");
    for name in portcullis::runtime::builtins::names() {
        let sha = portcullis::runtime::builtins::lookup(name).unwrap().sha256();
        assert!(version.contains(&format!("builtin:{name} sha256:{sha}")), "{version}");
    }
}

#[test]
fn completions_and_the_man_page() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = run(dir.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains("portcullis") && script.contains("init") && script.contains("client-config"), "{shell}: {script}");
    }
    let man = run(dir.path(), &["man"]);
    assert!(man.status.success());
    let page = text(&man.stdout);
    assert!(page.contains(".TH portcullis 1") && page.contains("init"), "{page}");
}

#[test]
fn logs_to_a_pipe_have_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad.toml");
    std::fs::write(&policy, "version = 1\n[[workloads]]\nname = \"w\"\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:1\"\npublic_url = \"http://127.0.0.1:1\"\nanonymous = true\n").unwrap();
    let out = Command::new(portcullis())
        .args(["check", policy.to_str().unwrap()])
        .env("PORTCULLIS_HOME", dir.path())
        .env("RUST_LOG", "debug")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let log = text(&out.stderr);
    assert!(log.contains("DEBUG") || log.contains("INFO"), "the check logged something: {log:?}");
    assert!(!log.contains('\u{1b}'), "no escape sequences when stderr is not a terminal: {log:?}");
}
