//! Chain ordering, the chain rules, header edits and the outbound chain.

use crate::{client, json, seen};
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::upstream::TestUpstream;

#[tokio::test]
async fn first_allow_runs_in_order_and_deny_stops_the_chain() {
    let upstream = TestUpstream::start().await;
    let chain = [
        behaviour(r#"mode = "deny", tag = "d", only_if_header = "x-deny""#),
        behaviour(r#"mode = "allow", tag = "a", only_if_header = "x-a""#),
        behaviour(r#"mode = "allow", tag = "b", only_if_header = "x-b""#),
    ]
    .concat();
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &chain))).await.unwrap();
    let url = gw.url("w").await;
    let c = client();

    // Everyone abstains: 401.
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "unauthenticated");

    // The first allow wins: `a` comes before `b`.
    let r = c.get(&url).header("x-a", "1").header("x-b", "1").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(seen(&json(r).await, "x-fixture-allowed-by"), ["a"]);

    let r = c.get(&url).header("x-b", "1").send().await.unwrap();
    assert_eq!(seen(&json(r).await, "x-fixture-allowed-by"), ["b"]);

    // A deny before an allow stops the chain with the component's response.
    let r = c.get(&url).header("x-deny", "1").header("x-a", "1").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(json(r).await["denied_by"], "d");
}

#[tokio::test]
async fn all_allow_needs_every_component() {
    let upstream = TestUpstream::start().await;
    let a = behaviour(r#"mode = "allow", tag = "a""#);
    let b = behaviour(r#"mode = "allow", tag = "b", only_if_header = "x-b""#);
    let d = behaviour(r#"mode = "deny", tag = "d""#);
    let policy = format!(
        "version = 1\n{}{}",
        workload("both", &upstream.url(), &format!("chain_rule = \"all-allow\"\n{a}{b}")),
        workload("deny", &upstream.url(), &format!("chain_rule = \"all-allow\"\n{a}{d}{b}")),
    );
    let gw = TestGateway::start(&policy).await.unwrap();
    let c = client();
    let both = gw.url("both").await;

    let r = c.get(&both).header("x-b", "1").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(seen(&json(r).await, "x-fixture-allowed-by"), ["a", "b"], "edits of every allow apply, in order");

    let r = c.get(&both).send().await.unwrap();
    assert_eq!(r.status(), 401, "an abstain refuses under all-allow");

    let r = c.get(gw.url("deny").await).header("x-b", "1").send().await.unwrap();
    assert_eq!(r.status(), 403, "a deny refuses even after an allow");
}

#[tokio::test]
async fn inbound_edits_apply_before_injectors_and_the_upstream() {
    let upstream = TestUpstream::start().await;
    let body = format!(
        "{}  [[workloads.outbound]]\n  component = \"inject-header\"\n  config = {{ header = \"authorization\", value = \"Bearer upstream-token\" }}\n",
        behaviour(r#"mode = "allow", tag = "a""#)
    );
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &body))).await.unwrap();
    let r = client()
        .get(format!("{}/some/path?x=1", gw.url("w").await))
        .header("x-fixture-credential", "client-secret")
        .header("authorization", "Bearer client-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo = json(r).await;
    assert_eq!(echo["path"], "/some/path?x=1");
    assert!(seen(&echo, "x-fixture-credential").is_empty(), "the authenticator removed the credential");
    assert_eq!(seen(&echo, "x-injector-saw-credential"), ["false"], "the injector ran after the inbound edits");
    assert_eq!(seen(&echo, "authorization"), ["Bearer upstream-token"], "the injector replaced the client's token");
}

#[tokio::test]
async fn an_injector_can_refuse_and_anonymous_workloads_pass() {
    let upstream = TestUpstream::start().await;
    let refusing = "anonymous = true\n  [[workloads.outbound]]\n  component = \"inject-header\"\n  config = { header = \"a\", value = \"b\", deny = true }\n";
    let policy = format!("version = 1\n{}{}", workload("refuse", &upstream.url(), refusing), workload("open", &upstream.url(), "anonymous = true\n"));
    let gw = TestGateway::start(&policy).await.unwrap();
    let r = client().get(gw.url("refuse").await).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "login_required");
    let r = client().get(gw.url("open").await).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Each request gets a fresh instance: the fixture counts the calls its
/// instance answered, 1 every time. A pooled workload beside it counts up,
/// which shows the count can tell the two apart.
#[tokio::test]
async fn per_request_isolation_serves_too() {
    let upstream = TestUpstream::start().await;
    let counting = behaviour(r#"mode = "allow", tag = "fresh", report = true"#);
    let policy = format!(
        "version = 1\n{}{}",
        workload("fresh", &upstream.url(), &format!("{counting}  isolation = \"per-request\"\n")),
        workload("pooled", &upstream.url(), &counting)
    );
    let gw = TestGateway::start(&policy).await.unwrap();
    let calls = |name: &'static str| {
        let gw = &gw;
        async move {
            let echo = json(client().get(gw.url(name).await).send().await.unwrap()).await;
            assert_eq!(seen(&echo, "x-fixture-allowed-by"), ["fresh"], "{echo}");
            seen(&echo, "x-fixture-calls")
        }
    };
    for _ in 0..3 {
        assert_eq!(calls("fresh").await, ["1"], "a per-request instance answers one call");
    }
    // The pooled workload keeps its one instance (made at load) for every request.
    let pooled = [calls("pooled").await, calls("pooled").await, calls("pooled").await];
    assert_eq!(pooled, [["1"], ["2"], ["3"]], "one pooled instance answers every request");
}
