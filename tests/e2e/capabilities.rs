//! Capabilities are denied by default: an ungranted origin, a private address
//! without `http_private`, or an ungranted secret is refused, the component sees
//! the refusal, and the gateway logs it.

use crate::{client, json};
use portcullis::secrets::{SecretStore, SecretString};
use portcullis_tests::gateway::{PASSWORD, TestGateway, behaviour, workload};
use portcullis_tests::upstream::TestUpstream;

async fn outcome(gw: &TestGateway, name: &str) -> String {
    let r = client().get(gw.url(name).await).send().await.unwrap();
    assert_eq!(r.status(), 418, "the fixture reports through a 418");
    json(r).await["outcome"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn http_is_limited_to_granted_public_origins() {
    let upstream = TestUpstream::start().await;
    let target = format!("{}/from-component", upstream.url());
    let origin = upstream.url();
    let http = |grants: &str| format!("{}  grants = {{ {grants} }}\n", behaviour(&format!(r#"mode = "http", url = "{target}""#)));
    let policy = format!(
        "version = 1\n{}{}{}",
        workload("ungranted", &upstream.url(), &http(r#"http = ["https://idp.example.com"]"#)),
        workload("private", &upstream.url(), &http(&format!(r#"http = ["{origin}"]"#))),
        workload("granted", &upstream.url(), &http(&format!(r#"http = ["{origin}"], http_private = true"#))),
    );
    let gw = TestGateway::start(&policy).await.unwrap();
    let ungranted = outcome(&gw, "ungranted").await;
    assert!(ungranted.starts_with("not-granted:http://127.0.0.1:"), "{ungranted}");
    let private = outcome(&gw, "private").await;
    assert!(private.starts_with("address-refused:"), "{private}");
    assert_eq!(outcome(&gw, "granted").await, "status:200");
}

#[tokio::test]
async fn secrets_are_limited_to_granted_names() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(&dir.path().join("home"), Some(SecretString::from(PASSWORD.to_owned())));
    store.set("team:token", SecretString::from("s3cret-value".to_owned())).unwrap();
    store.set("other:token", SecretString::from("not-yours".to_owned())).unwrap();
    let secret = |name: &str, grants: &str| format!("{}  grants = {{ {grants} }}\n", behaviour(&format!(r#"mode = "secret", secret = "{name}""#)));
    let policy = format!(
        "version = 1\n{}{}{}{}",
        workload("granted", &upstream.url(), &secret("team:token", r#"secrets = ["team:*"]"#)),
        workload("ungranted", &upstream.url(), &secret("other:token", r#"secrets = ["team:*"]"#)),
        workload("none", &upstream.url(), &secret("team:token", "")),
        workload("missing", &upstream.url(), &secret("team:absent", r#"secrets = ["team:*"]"#)),
    );
    let gw = TestGateway::start_in(dir, &policy).await.unwrap();
    assert_eq!(outcome(&gw, "granted").await, "found:12-bytes");
    assert_eq!(outcome(&gw, "ungranted").await, "not-granted");
    assert_eq!(outcome(&gw, "none").await, "not-granted");
    assert_eq!(outcome(&gw, "missing").await, "not-found");
}
