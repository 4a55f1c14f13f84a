//! A resumed stream would replay answers (lists included) that the list
//! filter never read, so on a workload with MCP authorizers the gateway
//! removes `Last-Event-ID` before the upstream sees it.

use crate::{client, json, seen};
use portcullis_tests::gateway::{TestGateway, workload};
use portcullis_tests::upstream::TestUpstream;

#[tokio::test]
async fn last_event_id_never_reaches_the_upstream_of_an_authorized_workload() {
    let upstream = TestUpstream::start().await;
    let authorize =
        "anonymous = true\n  [[workloads.authorize]]\n  component = \"builtin:cedar\"\n  config = { policies = 'permit(principal, action, resource);' }\n";
    let policy = workload("tools", &upstream.url(), authorize).replace("public_url = \"http://127.0.0.1:8080\"", "public_url = \"http://127.0.0.1:8080/mcp\"");
    let gw = TestGateway::start(&format!("version = 1\n{policy}")).await.unwrap();
    let url = format!("{}/mcp", gw.url("tools").await);
    let r = client()
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("last-event-id", "resume-from-here")
        .header("x-other", "kept")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo = json(r).await;
    assert_eq!(seen(&echo, "x-other"), ["kept"], "the upstream's echo: {echo}");
    assert!(seen(&echo, "last-event-id").is_empty(), "Last-Event-ID reached the upstream: {echo}");
}
