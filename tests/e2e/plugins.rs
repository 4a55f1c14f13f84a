//! Drop-in plugin modules against a real OCI registry on loopback: push, add by
//! tag and by digest, serve through `plugin:NAME`, pins, signatures, tampered
//! blobs, oversize downloads, and a hot swap under load through the real binary.

use crate::cli::{portcullis, text};
use crate::{client, json, seen};
use portcullis::secrets::{SecretStore, SecretString};
use portcullis_tests::gateway::{PASSWORD, TestGateway};
use portcullis_tests::node::free_port;
use portcullis_tests::registry::Registry;
use portcullis_tests::upstream::TestUpstream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KEY: &str = "plugin-key-0123456789";

/// The API-key authenticator built against contract 0.2.0.
fn module() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/authenticator-0.2.0.wasm")).unwrap()
}

/// The same module with a custom section appended: same behaviour, another digest (a "new version").
fn variant(tag: &str) -> Vec<u8> {
    let mut wasm = module();
    let name = b"portcullis-test-version";
    let payload_len = 1 + name.len() + tag.len();
    wasm.push(0);
    wasm.push(u8::try_from(payload_len).unwrap());
    wasm.push(u8::try_from(name.len()).unwrap());
    wasm.extend_from_slice(name);
    wasm.extend_from_slice(tag.as_bytes());
    wasm
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A prepared directory: `home/` with the workload's key, and the policy path.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(&dir.path().join("home"), Some(SecretString::from(PASSWORD.to_owned())));
        portcullis_tests::leaks::register(KEY);
        store.set("workload:w:api-key", SecretString::from(KEY.to_owned())).unwrap();
        Site { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.path(name), bytes).unwrap();
        self.path(name).display().to_string()
    }

    /// `portcullis ARGS` with this site's home; `--policy` is added for the plugin commands that take it.
    fn cli(&self, args: &[&str]) -> Output {
        let mut command = Command::new(portcullis());
        command.args(args);
        if matches!(args.get(1), Some(&("add" | "update" | "remove" | "list"))) {
            command.arg("--policy").arg(self.path("policy.toml"));
        }
        command.env("PORTCULLIS_HOME", self.path("home")).env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "portcullis {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(!out.status.success(), "portcullis {args:?} should have failed:\n{}", text(&out.stdout));
        text(&out.stderr)
    }
}

/// A workload whose inbound chain is the plugin `reference`, with `head` before it (e.g. `[plugins]`).
fn policy(head: &str, upstream: &str, listen: &str, reference: &str) -> String {
    format!(
        "version = 1\n{head}\n[[workloads]]\nname = \"w\"\nlisten = \"{listen}\"\nupstream = \"{upstream}\"\npublic_url = \"http://127.0.0.1:8080/mcp\"\n\n  [[workloads.inbound]]\n  component = \"plugin:{reference}\"\n  grants = {{ secrets = [\"workload:w:api-key\"] }}\n"
    )
}

#[tokio::test]
async fn a_module_from_a_registry_serves_by_tag_and_by_digest() {
    let registry = Registry::start().await;
    let site = Site::new();
    let file = site.write("api.wasm", &module());
    let pushed = site.ok(&["plugin", "push", &file, &registry.reference("auth/api-key:1.0.0")]);
    let manifest = pushed.split("manifests/").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    assert!(manifest.starts_with("sha256:"), "{pushed}");

    site.ok(&["plugin", "add", &registry.reference("auth/api-key:1.0.0")]);
    site.ok(&["plugin", "add", &registry.reference(&format!("auth/api-key@{manifest}")), "--name", "api-key-pinned"]);
    let lock = std::fs::read_to_string(site.path("portcullis.lock")).unwrap();
    assert_eq!(lock.matches(&format!("digest = \"sha256:{}\"", sha256(&module()))).count(), 2, "{lock}");
    assert!(lock.contains("version = \"1.0.0\""), "the tag is the version: {lock}");
    let list = site.ok(&["plugin", "list"]);
    assert!(list.contains("api-key ") && list.contains("api-key-pinned") && list.contains("authenticator"), "{list}");
    let mode = std::fs::metadata(site.path("home/plugins")).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777).unwrap();
    assert_eq!(mode, 0o700);

    let upstream = TestUpstream::start().await;
    for reference in ["api-key@1.0.0", "api-key-pinned"] {
        let site_dir = tempfile::tempdir().unwrap();
        copy_site(&site, site_dir.path());
        let gw = TestGateway::start_in(site_dir, &policy("", &upstream.url(), "127.0.0.1:0", reference)).await.unwrap();
        let url = gw.url("w").await;
        assert_eq!(client().get(&url).send().await.unwrap().status(), 401, "{reference}: no key");
        assert_eq!(client().get(&url).header("x-api-key", "wrong").send().await.unwrap().status(), 401, "{reference}: wrong key");
        let r = client().get(&url).header("x-api-key", KEY).send().await.unwrap();
        assert_eq!(r.status(), 200, "{reference}: the right key");
        let echo = json(r).await;
        assert_eq!(seen(&echo, "x-api-client"), ["w"]);
        assert!(seen(&echo, "x-api-key").is_empty());
    }
}

/// Copies the lock and the home (store and secrets) into `to`, for a gateway started there.
fn copy_site(site: &Site, to: &Path) {
    std::fs::copy(site.path("portcullis.lock"), to.join("portcullis.lock")).unwrap();
    let status = Command::new("cp").arg("-a").arg(site.path("home")).arg(to.join("home")).status().unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn pins_are_kept_until_an_update_moves_them() {
    let site = Site::new();
    let file = site.write("api.wasm", &module());
    site.ok(&["plugin", "add", &file, "--name", "api-key"]);
    let (v1, v2) = (sha256(&module()), sha256(&variant("2")));
    site.write("api.wasm", &variant("2"));
    let refused = site.fails(&["plugin", "add", &file, "--name", "api-key"]);
    assert!(refused.contains(&v1) && refused.contains(&v2) && refused.contains("plugin update api-key"), "both digests and the way out: {refused}");
    let moved = site.ok(&["plugin", "update", "api-key"]);
    assert!(moved.contains(&format!("sha256:{v1} -> sha256:{v2}")), "{moved}");

    // A policy naming a module the lock does not pin says how to install it.
    std::fs::write(site.path("policy.toml"), policy("", "http://127.0.0.1:9", "127.0.0.1:0", "other")).unwrap();
    let check = site.fails(&["check", site.path("policy.toml").to_str().unwrap()]);
    assert!(check.contains("the plugin `other` is not installed") && check.contains("portcullis plugin add SOURCE --name other"), "{check}");

    // Bytes changed in the store are refused, with both values.
    std::fs::write(site.path("policy.toml"), policy("", "http://127.0.0.1:9", "127.0.0.1:0", "api-key")).unwrap();
    site.ok(&["check", site.path("policy.toml").to_str().unwrap()]);
    let stored = site.path(&format!("home/plugins/{v2}.wasm"));
    std::fs::write(&stored, module()).unwrap();
    let check = site.fails(&["check", site.path("policy.toml").to_str().unwrap()]);
    assert!(check.contains(&format!("the stored module {v2} was changed on disk (its bytes hash to {v1})")), "{check}");
}

/// A minisign key pair made with the `minisign` command: (secret key path, public key base64).
fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let (public, secret) = (dir.join(format!("{name}.pub")), dir.join(format!("{name}.key")));
    let out = Command::new("minisign").args(["-G", "-W", "-p"]).arg(&public).arg("-s").arg(&secret).output().expect("minisign (scripts/test installs it)");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = std::fs::read_to_string(&public).unwrap().lines().nth(1).unwrap().to_owned();
    (secret, key)
}

fn sign(secret: &Path, file: &str) {
    let out = Command::new("minisign").arg("-S").arg("-s").arg(secret).args(["-m", file]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn signatures_are_required_when_the_policy_says_so() {
    let registry = Registry::start().await;
    let site = Site::new();
    let (trusted_secret, trusted) = keypair(site.dir.path(), "trusted");
    let (other_secret, _) = keypair(site.dir.path(), "other");
    let signed = site.write("signed.wasm", &module());
    sign(&trusted_secret, &signed);
    let unsigned = site.write("unsigned.wasm", &variant("unsigned"));
    let stranger = site.write("stranger.wasm", &variant("stranger"));
    sign(&other_secret, &stranger);
    // The signed module travels through the registry with its signature.
    site.ok(&["plugin", "push", &signed, &registry.reference("auth/signed:1")]);
    site.ok(&["plugin", "add", &registry.reference("auth/signed:1"), "--name", "signed"]);
    site.ok(&["plugin", "add", &unsigned, "--name", "unsigned"]);
    site.ok(&["plugin", "add", &stranger, "--name", "stranger"]);

    let head = format!("[plugins]\nrequire_signatures = true\ntrusted_keys = [\"{trusted}\"]\n");
    let upstream = TestUpstream::start().await;
    for (name, why) in [("unsigned", "the module has no signature"), ("stranger", "no trusted key made its signature")] {
        std::fs::write(site.path("policy.toml"), policy(&head, &upstream.url(), "127.0.0.1:0", name)).unwrap();
        let check = site.fails(&["check", site.path("policy.toml").to_str().unwrap()]);
        assert!(check.contains(&format!("the plugin `{name}` is refused: {why}")), "{check}");
    }
    std::fs::write(site.path("policy.toml"), policy(&head, &upstream.url(), "127.0.0.1:0", "signed")).unwrap();
    site.ok(&["check", site.path("policy.toml").to_str().unwrap()]);
    // With the policy in place, `plugin add` refuses an unsigned module at once.
    let refused = site.fails(&["plugin", "add", &unsigned, "--name", "late"]);
    assert!(refused.contains("requires signatures"), "{refused}");
    // The signed one also serves.
    let dir = tempfile::tempdir().unwrap();
    copy_site(&site, dir.path());
    let gw = TestGateway::start_in(dir, &policy(&head, &upstream.url(), "127.0.0.1:0", "signed")).await.unwrap();
    let r = client().get(gw.url("w").await).header("x-api-key", KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Signs `file` with `comment` as its trusted comment (signed with the module).
fn sign_as(secret: &Path, file: &str, comment: &str) {
    let out = Command::new("minisign").arg("-S").arg("-s").arg(secret).args(["-m", file, "-t", comment]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn a_present_but_invalid_signature_is_refused_even_when_signatures_are_optional() {
    let site = Site::new();
    let (trusted_secret, trusted) = keypair(site.dir.path(), "trusted");
    let (other_secret, _) = keypair(site.dir.path(), "other");
    // Signed by the trusted key, then changed: the signature no longer matches the bytes.
    let tampered = site.write("tampered.wasm", &module());
    sign(&trusted_secret, &tampered);
    site.write("tampered.wasm", &variant("tampered"));
    let stranger = site.write("stranger.wasm", &variant("stranger"));
    sign(&other_secret, &stranger);
    let junk = site.write("junk.wasm", &variant("junk"));
    std::fs::write(format!("{junk}.minisig"), "not a signature\n").unwrap();
    let unsigned = site.write("unsigned.wasm", &variant("unsigned"));

    // Installed before any key was trusted: then a policy that trusts one refuses it at load.
    site.ok(&["plugin", "add", &tampered, "--name", "tampered"]);
    let head = format!("[plugins]\ntrusted_keys = [\"{trusted}\"]\n");
    std::fs::write(site.path("policy.toml"), policy(&head, "http://127.0.0.1:9", "127.0.0.1:0", "tampered")).unwrap();
    let check = site.fails(&["check", site.path("policy.toml").to_str().unwrap()]);
    assert!(check.contains("the plugin `tampered` is refused") && check.contains("signature"), "{check}");
    site.ok(&["plugin", "remove", "tampered"]);

    // With the policy in place, `plugin add` refuses each of them, though signatures are not required.
    for (file, name) in [(&tampered, "tampered"), (&stranger, "stranger"), (&junk, "junk")] {
        let refused = site.fails(&["plugin", "add", file, "--name", name]);
        assert!(refused.contains("is refused") && refused.contains("signature"), "{name}: {refused}");
    }
    let lock = std::fs::read_to_string(site.path("portcullis.lock")).unwrap();
    assert!(!lock.contains("name ="), "nothing was pinned: {lock}");
    // A module without any signature is still accepted: `require_signatures` is off.
    site.ok(&["plugin", "add", &unsigned, "--name", "unsigned"]);
}

#[tokio::test]
async fn an_update_refuses_an_older_or_renamed_signed_build_without_allow_downgrade() {
    let registry = Registry::start().await;
    let site = Site::new();
    let (secret, trusted) = keypair(site.dir.path(), "trusted");
    let head = format!("[plugins]\ntrusted_keys = [\"{trusted}\"]\n");
    std::fs::write(site.path("policy.toml"), policy(&head, "http://127.0.0.1:9", "127.0.0.1:0", "api-key")).unwrap();
    let build = |file: &str, tag: &str, comment: &str| {
        let path = site.write(file, &variant(tag));
        sign_as(&secret, &path, comment);
        path
    };
    let v1 = build("v1.wasm", "1", "name:api-key version:1.0.0");
    let v2 = build("v2.wasm", "2", "name:api-key version:2.0.0");
    let v10 = build("v10.wasm", "10", "name:api-key version:10.0.0");
    let other = build("other.wasm", "other", "name:allow-all version:99.0.0");
    let unsigned = site.write("unsigned.wasm", &variant("unsigned"));
    let stable = registry.reference("auth/api-key:stable");
    let lock = || std::fs::read_to_string(site.path("portcullis.lock")).unwrap();

    site.ok(&["plugin", "push", &v2, &stable]);
    site.ok(&["plugin", "add", &stable, "--name", "api-key"]);
    let pinned = lock();
    assert!(pinned.contains(&sha256(&variant("2"))), "{pinned}");
    // A module signed for another name cannot be installed under this one.
    let refused = site.fails(&["plugin", "add", &other, "--name", "api-key-2"]);
    assert!(refused.contains("allow-all") && refused.contains("api-key-2"), "{refused}");

    // The tag moved back to an older signed build: refused, the pin stays.
    site.ok(&["plugin", "push", &v1, &stable]);
    let refused = site.fails(&["plugin", "update", "api-key"]);
    assert!(refused.contains("1.0.0") && refused.contains("2.0.0") && refused.contains("--allow-downgrade"), "{refused}");
    assert_eq!(lock(), pinned);
    // Another module from the same signer under the tag: refused whatever its version.
    site.ok(&["plugin", "push", &other, &stable]);
    let refused = site.fails(&["plugin", "update", "api-key", "--allow-downgrade"]);
    assert!(refused.contains("allow-all"), "{refused}");
    assert_eq!(lock(), pinned);
    // A build with no signed version after one with: refused too.
    site.ok(&["plugin", "push", &unsigned, &stable]);
    let refused = site.fails(&["plugin", "update", "api-key"]);
    assert!(refused.contains("2.0.0") && refused.contains("--allow-downgrade"), "{refused}");
    assert_eq!(lock(), pinned);

    // A newer build moves the pin (10.0.0 is newer than 2.0.0: versions, not strings, are compared) ...
    site.ok(&["plugin", "push", &v10, &stable]);
    site.ok(&["plugin", "update", "api-key"]);
    assert!(lock().contains(&sha256(&variant("10"))), "{}", lock());
    // ... and a deliberate downgrade moves it back.
    site.ok(&["plugin", "push", &v1, &stable]);
    site.ok(&["plugin", "update", "api-key", "--allow-downgrade"]);
    assert!(lock().contains(&sha256(&variant("1"))), "{}", lock());
}

#[tokio::test]
async fn a_registry_serving_other_bytes_is_refused() {
    let registry = Registry::start().await;
    let site = Site::new();
    let file = site.write("api.wasm", &module());
    site.ok(&["plugin", "push", &file, &registry.reference("auth/api-key:1")]);
    // The registry's copy is swapped for other bytes of the same length.
    let mut other = module();
    let last = other.len() - 1;
    other[last] ^= 0xff;
    std::fs::write(registry.blob_path(&sha256(&module())), &other).unwrap();
    let refused = site.fails(&["plugin", "add", &registry.reference("auth/api-key:1")]);
    assert!(refused.to_lowercase().contains("digest"), "{refused}");
    assert!(!site.path("portcullis.lock").exists(), "nothing was pinned");
}

/// Serves `GET /big.wasm` (65 MiB with a Content-Length) and `GET /chunked.wasm`
/// (65 MiB, chunked, no length) on loopback.
async fn oversize_server() -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let n = tokio::io::AsyncReadExt::read(&mut stream, &mut request).await.unwrap_or(0);
                let chunked = String::from_utf8_lossy(&request[..n]).contains("/chunked.wasm");
                let total = 65 * 1024 * 1024;
                let block = vec![0u8; 1024 * 1024];
                if chunked {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
                    for _ in 0..total / block.len() {
                        if stream.write_all(format!("{:x}\r\n", block.len()).as_bytes()).await.is_err()
                            || stream.write_all(&block).await.is_err()
                            || stream.write_all(b"\r\n").await.is_err()
                        {
                            return;
                        }
                    }
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                } else {
                    let _ = stream.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n").as_bytes()).await;
                    for _ in 0..total / block.len() {
                        if stream.write_all(&block).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

// Multi-threaded: the CLI runs (blocking) while the server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_download_is_refused() {
    let server = oversize_server().await;
    let site = Site::new();
    for path in ["big.wasm", "chunked.wasm"] {
        let refused = site.fails(&["plugin", "add", &format!("{server}/{path}"), "--name", "big"]);
        assert!(refused.contains("over the limit"), "{path}: {refused}");
    }
    assert!(!site.path("portcullis.lock").exists());
    let refused = site.fails(&["plugin", "add", "http://example.com/a.wasm"]);
    assert!(refused.contains("only https://"), "{refused}");
}

/// The behaviours fixture as build `n`: its build marker rewritten (same
/// length), so the "new version" reports itself in `x-fixture-build`.
fn fixture_build(n: u8) -> Vec<u8> {
    let mut wasm = std::fs::read(portcullis_tests::fixture("behaviours")).unwrap();
    let marker = b"portcullis-fixture-build:1";
    let at: Vec<usize> = wasm.windows(marker.len()).enumerate().filter(|(_, w)| w == marker).map(|(i, _)| i).collect();
    assert_eq!(at.len(), 1, "the fixture holds its build marker once");
    wasm[at[0] + marker.len() - 1] = b'0' + n;
    wasm
}

/// Waits (up to 10 s) until `done`, or panics with `what`.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what}");
}

// Multi-threaded: requests keep flowing while the CLI (blocking) updates the pin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_swaps_the_module_under_load_and_a_bad_one_leaves_it_serving() {
    use std::sync::{Arc, Mutex};
    let registry = Registry::start().await;
    let site = Site::new();
    let (v1, v2) = (fixture_build(1), fixture_build(2));
    let stable = registry.reference("auth/fixture:stable");
    site.ok(&["plugin", "push", &site.write("v1.wasm", &v1), &stable]);
    site.ok(&["plugin", "add", &stable]);
    let upstream = TestUpstream::start().await;
    let (listen, admin) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
    let policy = format!(
        "version = 1\n[admin]\nlisten = \"{admin}\"\n\n[[workloads]]\nname = \"w\"\nlisten = \"{listen}\"\nupstream = \"{}\"\npublic_url = \"http://127.0.0.1:8080/mcp\"\n\n  [[workloads.inbound]]\n  component = \"plugin:fixture\"\n  config = {{ mode = \"allow\", tag = \"swap\", report = true }}\n",
        upstream.url()
    );
    std::fs::write(site.path("policy.toml"), policy).unwrap();
    // Killed on drop: the checks below may fail while it runs.
    let mut gateway = tokio::process::Command::new(portcullis())
        .args(["run", "--policy"])
        .arg(site.path("policy.toml"))
        .env("PORTCULLIS_HOME", site.path("home"))
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://{listen}/");
    // Which build answered a request, or why it failed.
    let answer = |url: String| async move {
        match client().get(&url).send().await {
            Ok(r) if r.status() == 200 => seen(&json(r).await, "x-fixture-build").join(","),
            Ok(r) => format!("status {}", r.status()),
            Err(e) => format!("error {e}"),
        }
    };
    let mut up = false;
    for _ in 0..200 {
        if answer(url.clone()).await == "portcullis-fixture-build:1" {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "the gateway did not start");

    // Requests one after another, each answer recorded in order, until told to stop.
    let answers = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, answers, url) = (stop.clone(), answers.clone(), url.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let answer = answer(url.clone()).await;
                answers.lock().unwrap().push(answer);
            }
        })
    };
    let count = |build: &str| answers.lock().unwrap().iter().filter(|a| a.ends_with(build)).count();
    until("no request was answered by build 1", || count(":1") >= 5).await;
    // A new build under the same tag, and the deliberate move of the pin.
    site.ok(&["plugin", "push", &site.write("v2.wasm", &v2), &stable]);
    let moved = site.ok(&["plugin", "update", "fixture"]);
    assert!(moved.contains(&format!("-> sha256:{}", sha256(&v2))), "{moved}");
    let metrics = format!("http://{admin}/metrics");
    let reloads = |result: &'static str| {
        let metrics = metrics.clone();
        async move {
            crate::metric(&client().get(&metrics).send().await.unwrap().text().await.unwrap(), &format!("portcullis_reloads_total{{result=\"{result}\"}}"))
        }
    };
    for _ in 0..200 {
        if reloads("success").await == Some(1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(reloads("success").await, Some(1.0), "the lock file change reloaded the gateway");
    until("build 2 never answered after the swap", || count(":2") >= 5).await;

    // A lock that pins something unusable: the reload fails and build 2 keeps serving.
    let lock = std::fs::read_to_string(site.path("portcullis.lock")).unwrap().replace(&sha256(&v2), &"0".repeat(64));
    std::fs::write(site.path("portcullis.lock"), lock).unwrap();
    for _ in 0..200 {
        if reloads("failure").await == Some(1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(reloads("failure").await, Some(1.0), "a lock pinning a module that is not in the store is refused");
    let after_refusal = count(":2");
    until("the refused reload stopped build 2 serving", || count(":2") >= after_refusal + 5).await;
    // The instance pool's gauges, read on each scrape.
    let text = client().get(&metrics).send().await.unwrap().text().await.unwrap();
    for gauge in ["portcullis_pool_component_instances", "portcullis_pool_unused_warm_memories", "portcullis_pool_unused_memory_bytes_resident"] {
        assert!(crate::metric(&text, gauge).is_some(), "{gauge} in {text}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();
    let _ = gateway.start_kill();
    let _ = gateway.wait().await;

    // Build 1, then build 2 from one request to the next: no failure, no way back.
    let answers = answers.lock().unwrap().clone();
    let switch = answers.iter().position(|a| a.ends_with(":2")).unwrap();
    let (before, after) = answers.split_at(switch);
    assert!(before.iter().all(|a| a == "portcullis-fixture-build:1"), "before the swap: {before:?}");
    assert!(after.iter().all(|a| a == "portcullis-fixture-build:2"), "after the swap: {after:?}");
}

#[test]
fn the_example_policy_installs_what_its_lock_pins_and_checks() {
    // A copy laid out as in the repository, so the lock's relative source resolves.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for file in ["examples/plugins/policy.toml", "examples/plugins/portcullis.lock", "tests/compat/authenticator-0.2.0.wasm"] {
        let to = dir.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo.join(file), &to).unwrap();
    }
    let site = Site { dir };
    let policy = site.path("examples/plugins/policy.toml");
    let run = |args: &[&str]| {
        Command::new(portcullis()).args(args).env("PORTCULLIS_HOME", site.path("home")).env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD).output().unwrap()
    };
    let check = run(&["check", policy.to_str().unwrap()]);
    assert!(!check.status.success() && text(&check.stderr).contains("plugin update api-key"), "not in the store yet: {}", text(&check.stderr));
    let update = run(&["plugin", "update", "api-key", "--policy", policy.to_str().unwrap()]);
    assert!(
        text(&update.stdout).contains("api-key: unchanged"),
        "the committed lock pins the committed module: {}{}",
        text(&update.stdout),
        text(&update.stderr)
    );
    let check = run(&["check", policy.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_credentials_come_from_the_secret_store_or_the_docker_config() {
    let registry = Registry::with_login("alice", "s3cret-registry-password").await;
    let site = Site::new();
    let file = site.write("api.wasm", &module());
    let reference = registry.reference("auth/api-key:1");
    let refused = site.fails(&["plugin", "push", &file, &reference]);
    assert!(refused.contains("cannot push"), "anonymous is refused: {refused}");
    let store = SecretStore::new(&site.path("home"), Some(SecretString::from(PASSWORD.to_owned())));
    portcullis_tests::leaks::register("alice:s3cret-registry-password");
    store.set(&format!("registry:{}", registry.addr), SecretString::from("alice:s3cret-registry-password".to_owned())).unwrap();
    site.ok(&["plugin", "push", &file, &reference]);
    site.ok(&["plugin", "add", &reference]);

    // Without the secret, the usual ~/.docker/config.json serves.
    let other = Site::new();
    let docker = other.path("docker");
    std::fs::create_dir_all(&docker).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret-registry-password");
    std::fs::write(docker.join("config.json"), format!("{{\"auths\": {{\"{}\": {{\"auth\": \"{auth}\"}}}}}}", registry.addr)).unwrap();
    let out = Command::new(portcullis())
        .args(["plugin", "add", &reference, "--policy"])
        .arg(other.path("policy.toml"))
        .env("PORTCULLIS_HOME", other.path("home"))
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .env("DOCKER_CONFIG", &docker)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("s3cret") && !text(&out.stderr).contains("s3cret"), "the password is never printed");
}
