//! Compiled components are cached on disk by content hash; pins are checked first.

use portcullis::runtime::Runtime;
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::{fixture, sha256_of};

#[test]
fn a_warm_cache_does_not_recompile() {
    let cache = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(fixture("behaviours")).unwrap();
    let sha = sha256_of(&fixture("behaviours"));
    let cold = Runtime::new(Some(cache.path().to_owned())).unwrap();
    cold.component(&sha, &wasm).unwrap();
    assert_eq!(cold.compilations(), 1);
    let warm = Runtime::new(Some(cache.path().to_owned())).unwrap();
    warm.component(&sha, &wasm).unwrap();
    assert_eq!(warm.compilations(), 0, "loaded from the cache");

    // A cache file that others could write is not trusted.
    let file = std::fs::read_dir(cache.path()).unwrap().next().unwrap().unwrap().path();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let wary = Runtime::new(Some(cache.path().to_owned())).unwrap();
    wary.component(&sha, &wasm).unwrap();
    assert_eq!(wary.compilations(), 1);

    // A cache file that is a symlink (to a file that looks right) is not followed.
    let good = cache.path().join("elsewhere.cwasm");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&file, &good).unwrap();
    std::os::unix::fs::symlink(&good, &file).unwrap();
    let linked = Runtime::new(Some(cache.path().to_owned())).unwrap();
    linked.component(&sha, &wasm).unwrap();
    assert_eq!(linked.compilations(), 1, "a symlinked cache file is recompiled, not loaded");

    // A cache directory others can write is not used at all (checked at load, not only on write).
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let open_dir = Runtime::new(Some(cache.path().to_owned())).unwrap();
    open_dir.component(&sha, &wasm).unwrap();
    assert_eq!(open_dir.compilations(), 1);
}

#[tokio::test]
async fn a_wrong_pin_is_refused_before_compiling() {
    // A private cache, empty, and a first policy that loads no component: the
    // runtime's compile counter and the cache directory both show whether
    // the tampered reload got as far as the compiler.
    let cache = tempfile::tempdir().unwrap();
    let open = format!("version = 1\n{}", workload("w", "http://127.0.0.1:9", "anonymous = true"));
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), &open, |o| o.cache_dir = Some(cache.path().to_owned())).await.unwrap();
    let runtime = gw.gateway.runtime().clone();
    let pinned = sha256_of(&fixture("behaviours"));
    let text = format!("version = 1\n{}\n{}", portcullis_tests::fixture_components(), workload("w", "http://127.0.0.1:9", &behaviour(r#"mode = "allow""#)));
    std::fs::write(&gw.policy_path, text.replace(&pinned, &"0".repeat(64))).unwrap();
    let err = format!("{:#}", gw.gateway.reload().await.unwrap_err());
    // Both values, so the operator sees which one to change.
    assert!(err.contains(&format!("the policy pins sha256 {}, the file's is {pinned}", "0".repeat(64))), "{err}");
    assert!(err.contains("components.behaviours.sha256"), "{err}");
    assert_eq!(runtime.compilations(), 0, "the tampered file was compiled");
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "the tampered file reached the cache");

    // The same reload with the right pin compiles it once, into that cache: the two observations work.
    std::fs::write(&gw.policy_path, &text).unwrap();
    gw.gateway.reload().await.unwrap();
    assert_eq!(runtime.compilations(), 1);
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn a_refused_configuration_names_the_policy_entry() {
    let policy = format!("version = 1\n{}", workload("w", "http://127.0.0.1:9", &behaviour(r#"mode = "refuse-config""#)));
    let err = format!("{:#}", TestGateway::start(&policy).await.err().unwrap());
    assert!(err.contains("workloads[0].inbound[0]"), "{err}");
    assert!(err.contains("refused on purpose"), "{err}");
}

#[tokio::test]
async fn an_injector_in_the_inbound_chain_is_refused() {
    let policy = format!(
        "version = 1\n{}",
        workload("w", "http://127.0.0.1:9", "  [[workloads.inbound]]\n  component = \"inject-header\"\n  config = { header = \"a\", value = \"b\" }\n")
    );
    let err = format!("{:#}", TestGateway::start(&policy).await.err().unwrap());
    assert!(err.contains("does not export `portcullis:auth/authenticate@0.2.0`"), "{err}");
}
