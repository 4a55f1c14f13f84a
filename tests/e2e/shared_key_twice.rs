//! A shared-key header sent twice is refused, even when both copies hold the
//! right key: which one counts would be ambiguous (docs/shared-key.md).

use crate::{client, json};
use portcullis::secrets::{SecretStore, SecretString};
use portcullis_tests::gateway::{PASSWORD, TestGateway, workload};
use portcullis_tests::upstream::TestUpstream;

const KEY: &str = "twice-key-0123456789abcdefghijklmnopqrstuvw";

#[tokio::test]
async fn a_shared_key_header_sent_twice_is_refused() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(&dir.path().join("home"), Some(SecretString::from(PASSWORD.to_owned())));
    portcullis_tests::leaks::register(KEY);
    store.set("workload:w:shared-key", SecretString::from(KEY.to_owned())).unwrap();
    let keyed = "  [[workloads.inbound]]\n  component = \"builtin:shared-key\"\n  grants = { secrets = [\"workload:w:shared-key*\"] }\n";
    let gw = TestGateway::start_in(dir, &format!("version = 1\n{}", workload("w", &upstream.url(), keyed))).await.unwrap();
    let url = gw.url("w").await;

    let r = client().get(&url).header("x-portcullis-key", KEY).send().await.unwrap();
    assert_eq!(r.status(), 200, "once: served");
    for (copy, second) in [("the key", KEY), ("another key", "not-the-key")] {
        // `header` appends: two fields with the same name.
        let r = client().get(&url).header("x-portcullis-key", KEY).header("x-portcullis-key", second).send().await.unwrap();
        assert_eq!(r.status(), 401, "twice, the second time {copy}: refused");
        let body = json(r).await;
        assert_eq!(body["error"], "missing_key", "{body}");
    }
}
