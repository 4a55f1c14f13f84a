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
    portcullis_tests::leaks::register("s3cret-value");
    store.set("team:token", SecretString::from("s3cret-value".to_owned())).unwrap();
    portcullis_tests::leaks::register("not-yours");
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

// Issue 22, item 13: a secret write waits for the store's writers' lock only
// within the call's deadline, and never holds a gateway worker while it waits
// (nor while it derives a key or asks the keychain).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_write_waits_for_the_store_lock_only_within_the_call_deadline() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    SecretStore::new(&home, Some(SecretString::from(PASSWORD.to_owned()))).set("team:seed", SecretString::from("seed".to_owned())).unwrap();
    // A deadline a debug build's key derivation fits in.
    let writer = format!(
        "{}  grants = {{ secrets_write = [\"team:*\"] }}\n  limits = {{ deadline_ms = 2000 }}\n",
        behaviour(r#"mode = "secret-write", secret = "team:written""#)
    );
    let policy =
        format!("version = 1\n{}{}", workload("writer", &upstream.url(), &writer), workload("other", &upstream.url(), &behaviour(r#"mode = "allow""#)));
    let gw = TestGateway::start_in(dir, &policy).await.unwrap();
    let (writer_url, other_url) = (gw.url("writer").await, gw.url("other").await);
    assert_eq!(outcome(&gw, "writer").await, "written", "a write with the lock free");

    // Another process holds the writers' lock (a CLI write waiting on a keychain prompt, say).
    let mut holder = tokio::process::Command::new("flock").arg(home.join("secrets.lock")).args(["sleep", "15"]).kill_on_drop(true).spawn().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let writes: Vec<_> = (0..4)
        .map(|_| {
            let url = writer_url.clone();
            tokio::spawn(async move {
                let r = client().get(url).send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.text().await.unwrap())
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let r = client().get(other_url).send().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 200);
    assert!(waited < std::time::Duration::from_secs(3), "another workload waited {waited:?} behind secret writes");
    for write in writes {
        let (status, body) = write.await.unwrap();
        assert!(status >= 500 || (status == 418 && body.contains("unavailable")), "{status} {body}");
    }
    let waited = started.elapsed();
    assert!(waited < std::time::Duration::from_secs(5), "the writes waited {waited:?} for a lock another process holds");
    let _ = holder.kill().await;
}

/// A loopback server that counts its connections and answers each with an
/// empty 200: a target that shows whether anything reached it, or a "proxy".
struct CountingServer {
    addr: std::net::SocketAddr,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingServer {
    async fn start() -> CountingServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                });
            }
        });
        CountingServer { addr, connections, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for CountingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A component's host state with `grants`, built as the gateway builds it
/// (`check` chooses `Services::for_check`, as `portcullis check` does).
fn host_state(store: std::sync::Arc<SecretStore>, grants: &str, check: bool) -> portcullis::runtime::capabilities::HostState {
    use portcullis::runtime::capabilities::{Capabilities, HostState, PluginLabel, Services};
    let services = if check { Services::for_check(store) } else { Services::new(store) };
    let grants: portcullis::policy::file::GrantsFile = toml::from_str(grants).unwrap();
    let label = PluginLabel { workload: "w".into(), component: "c".into() };
    let grants = portcullis::runtime::capabilities::Grants::parse(&grants, false).0.expect("good grants");
    let caps = Capabilities::new(label, &grants, &services, "inbound[0]", Default::default());
    HostState::new(std::sync::Arc::new(caps), 16 * 1024 * 1024)
}

fn get_request(url: &str, headers: &[(&str, &str)]) -> portcullis::runtime::bindings::host::portcullis::auth::http_client::OutgoingRequest {
    use portcullis::runtime::bindings::types::Header;
    portcullis::runtime::bindings::host::portcullis::auth::http_client::OutgoingRequest {
        method: "GET".into(),
        url: url.into(),
        headers: headers.iter().map(|(n, v)| Header { name: (*n).into(), value: (*v).into() }).collect(),
        body: Vec::new(),
        timeout_ms: Some(2000),
    }
}

/// `portcullis check` initialises components with their grants; it must not
/// let them reach the network or change the secret store. The same calls in a
/// serving gateway do both, which shows the servers and grants are right.
#[tokio::test]
async fn check_mode_refuses_outbound_http_and_secret_writes() {
    use portcullis::runtime::bindings::host::portcullis::auth::http_client::{self, HttpError};
    use portcullis::runtime::bindings::host::portcullis::auth::secrets::{self, SecretError};
    let target = CountingServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = std::sync::Arc::new(SecretStore::new(&home, Some(SecretString::from(PASSWORD.to_owned()))));
    let grants = format!(
        r#"http = ["{}"]
http_private = true
secrets_write = ["team:*"]"#,
        target.url()
    );

    let mut checking = host_state(store.clone(), &grants, true);
    match http_client::Host::send(&mut checking, get_request(&format!("{}/token", target.url()), &[])).await {
        Err(HttpError::InvalidRequest(why)) => assert_eq!(why, "not available during portcullis check"),
        other => panic!("expected invalid-request, got {other:?}"),
    }
    assert!(matches!(secrets::Host::set(&mut checking, "team:refresh".into(), "v1".into()).await, Err(SecretError::Unavailable)));
    // Refusals that do not depend on the mode are unchanged.
    match http_client::Host::send(&mut checking, get_request("https://idp.example.com/", &[])).await {
        Err(HttpError::NotGranted(origin)) => assert_eq!(origin, "https://idp.example.com:443"),
        other => panic!("expected not-granted, got {other:?}"),
    }
    assert!(matches!(secrets::Host::set(&mut checking, "other:x".into(), "v".into()).await, Err(SecretError::NotGranted)));
    assert_eq!(target.connections(), 0, "nothing reached the granted origin during check");
    assert_eq!(store.get("team:refresh").unwrap().map(|_| ()), None);
    assert!(!home.join("secrets.json").exists(), "the secret store was not created");

    let mut serving = host_state(store.clone(), &grants, false);
    let response = http_client::Host::send(&mut serving, get_request(&format!("{}/token", target.url()), &[])).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(target.connections(), 1);
    secrets::Host::set(&mut serving, "team:refresh".into(), "v1".into()).await.unwrap();
    assert!(store.get("team:refresh").unwrap().is_some());
}

/// A `Host` header (or any header that routes or frames the request) would
/// reach another virtual host on a granted address: refused, nothing sent.
#[tokio::test]
async fn routing_headers_in_outbound_requests_are_refused_before_connecting() {
    use portcullis::runtime::bindings::host::portcullis::auth::http_client::{self, HttpError};
    let target = CountingServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SecretStore::new(dir.path(), Some(SecretString::from(PASSWORD.to_owned()))));
    let mut state = host_state(store, &format!("http = [\"{}\"]\nhttp_private = true", target.url()), false);
    for (name, value) in
        [("Host", "internal-admin.example"), ("x-forwarded-host", "internal-admin.example"), ("transfer-encoding", "chunked"), ("bad name", "v")]
    {
        match http_client::Host::send(&mut state, get_request(&target.url(), &[(name, value)])).await {
            Err(HttpError::InvalidRequest(why)) => assert!(why.contains(&name.to_ascii_lowercase()), "{name}: {why}"),
            other => panic!("{name}: expected invalid-request, got {other:?}"),
        }
    }
    assert_eq!(target.connections(), 0);
    let ok = http_client::Host::send(&mut state, get_request(&target.url(), &[("authorization", "Bearer t")])).await.unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(target.connections(), 1);
}

/// With `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` pointing at a "proxy", a
/// component's request to a granted origin still goes straight to it: through a
/// proxy, the gateway would check only the proxy's address. The gateway runs as
/// its own process, so these variables do not leak into the other tests.
#[tokio::test]
async fn outbound_http_ignores_proxy_environment_variables() {
    let upstream = TestUpstream::start().await;
    let proxy = CountingServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = portcullis_tests::upstream::closed_port().await.port();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "version = 1\n{components}\n[[workloads]]\nname = \"w\"\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{up}\"\npublic_url = \"http://127.0.0.1:{port}\"\n{entry}  grants = {{ http = [\"{up}\"], http_private = true }}\n  limits = {{ deadline_ms = 5000 }}\n",
            components = portcullis_tests::fixture_components(),
            up = upstream.url(),
            entry = behaviour(&format!(r#"mode = "http", url = "{}/from-component""#, upstream.url())),
        ),
    )
    .unwrap();
    let mut command = tokio::process::Command::new(crate::cli::portcullis());
    command.args(["run", "--policy", policy.to_str().unwrap()]).env("PORTCULLIS_HOME", dir.path()).env("RUST_LOG", "warn").kill_on_drop(true);
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        command.env(var, proxy.url());
    }
    for var in ["NO_PROXY", "no_proxy", "REQUEST_METHOD"] {
        command.env_remove(var);
    }
    let mut child = command.spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let mut response = None;
    for _ in 0..300 {
        if let Ok(r) = client().get(&url).send().await {
            response = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let response = response.expect("the gateway did not start within 30 s");
    assert_eq!(response.status(), 418, "the fixture reports through a 418");
    assert_eq!(json(response).await["outcome"], "status:200");
    assert_eq!(proxy.connections(), 0, "the proxy from the environment was not used");
    child.kill().await.unwrap();
}

/// A loopback server answering `/redirect` with a 302 to `location` and `/big`
/// with a 2 MiB body; counts its requests.
async fn odd_server(location: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let location = location.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 2048];
                let n = stream.read(&mut request).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&request[..n]).into_owned();
                if head.starts_with("GET /big") {
                    let body = vec![b'x'; 2 * 1024 * 1024];
                    let _ = stream.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                } else {
                    let _ = stream.write_all(format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
                }
            });
        }
    });
    (url, hits)
}

#[tokio::test]
async fn outbound_redirects_are_not_followed_and_responses_are_capped() {
    let upstream = TestUpstream::start().await;
    let (elsewhere, elsewhere_hits) = odd_server("http://127.0.0.1:9/unused".into()).await;
    let (odd, _) = odd_server(format!("{elsewhere}/stolen")).await;
    let entry =
        |path: &str| format!("{}  grants = {{ http = [\"{odd}\"], http_private = true }}\n", behaviour(&format!(r#"mode = "http", url = "{odd}/{path}""#)));
    let policy = format!("version = 1\n{}{}", workload("redirect", &upstream.url(), &entry("redirect")), workload("big", &upstream.url(), &entry("big")));
    let gw = TestGateway::start(&policy).await.unwrap();
    assert_eq!(outcome(&gw, "redirect").await, "status:302", "the component sees the redirect itself");
    assert_eq!(elsewhere_hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the redirect target got nothing");
    assert_eq!(outcome(&gw, "big").await, "error:HttpError::TooLarge", "a body over 1 MiB is refused");
}
