//! `builtin:registry-token` with real parts: a person logs in with a real
//! Chromium at a real OpenID Provider through `portcullis login` (the real
//! binary), then the gateway keeps a fresh bearer token on every request to a
//! registry that checks it by introspection at the provider.

use crate::cli::{portcullis, text};
use crate::{client, json};
use portcullis::secrets::{ExposeSecret, SecretStore, SecretString};
use portcullis_tests::gateway::{PASSWORD, TestGateway};
use portcullis_tests::login::{RegistryIdp, RegistryServer, browser_login};
use portcullis_tests::node::free_port;
use portcullis_tests::upstream::TestUpstream;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Access tokens live an hour, so none is renewed before a test says so:
/// [`make_due`] brings the stored token's expiry near, as time would.
const ACCESS_TTL: u32 = 3600;

/// Makes the stored token due for renewal (tokens are renewed when 30 s or
/// less remain): it now expires in 29 s, so it still serves while a renewal
/// fails. Then waits past the gateway's look at the store (every 250 ms).
async fn make_due(home: &Path) {
    let store = SecretStore::new(home, Some(SecretString::from(PASSWORD.to_owned())));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let changed = store
        .update(|entries| {
            let Some((_, value)) = entries.iter_mut().find(|(name, _)| name.starts_with("REGISTRY_OAUTH_")) else { return false };
            let mut record: Value = serde_json::from_str(value.expose_secret()).unwrap();
            record["expires_at"] = (now + 29).into();
            *value = SecretString::from(record.to_string());
            true
        })
        .unwrap();
    assert!(changed, "a login is stored");
    tokio::time::sleep(Duration::from_millis(400)).await;
}

pub(crate) fn policy(registry: &str, issuer: &str, callback_port: Option<u16>) -> String {
    let callback_port = callback_port.map(|port| format!(", callback_port = {port}")).unwrap_or_default();
    format!(
        r#"version = 1

[[workloads]]
name = "registry"
listen = "127.0.0.1:0"
upstream = "{registry}"
public_url = "http://127.0.0.1:8080"
anonymous = true

  [[workloads.outbound]]
  component = "builtin:registry-token"
  grants = {{ http = ["{issuer}"], http_private = true, secrets = ["REGISTRY_OAUTH_*"], secrets_write = ["REGISTRY_OAUTH_*"] }}
  config = {{ issuer = "{issuer}", client_id = "portcullis-cli", scopes = ["openid", "offline_access", "registry:read"], resource = "http://127.0.0.1/registry"{callback_port} }}
"#
    )
}

/// The real binary, in the gateway's home, with `args`.
pub(crate) fn command(home: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(portcullis());
    command
        .args(args)
        .env("PORTCULLIS_HOME", home)
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .env_remove("PORTCULLIS_REGISTRY_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A `portcullis login` in progress: the URL it printed, and the process.
pub(crate) struct Login {
    pub(crate) url: String,
    child: tokio::process::Child,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    printed: Vec<String>,
}

/// A login with its callback on a free port (the default port, 8666, may be
/// taken on the machine that runs the tests): if another process takes the
/// port first, the login says so and exits, and it starts again on another.
pub(crate) async fn start_login(home: &Path, policy: &Path) -> Login {
    for _ in 0..20 {
        let port = free_port().to_string();
        if let Some(login) = try_start_login(home, policy, &["--no-browser", "--timeout", "60", "--callback-port", &port]).await {
            return login;
        }
    }
    panic!("no free callback port");
}

async fn start_login_with(home: &Path, policy: &Path, flags: &[&str]) -> Login {
    try_start_login(home, policy, flags).await.expect("the callback port is free")
}

/// `None` when the login could not bind its callback port.
async fn try_start_login(home: &Path, policy: &Path, flags: &[&str]) -> Option<Login> {
    let mut args = vec!["login", "registry", "--policy", policy.to_str().unwrap()];
    args.extend_from_slice(flags);
    let mut child = command(home, &args).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            printed.push(line.clone());
            if line.trim().starts_with("http") {
                return Some(line.trim().to_owned());
            }
        }
        None
    })
    .await
    .expect("login prints its URL in time");
    let Some(url) = url else {
        let output = child.wait_with_output().await.unwrap();
        let stderr = text(&output.stderr);
        if stderr.contains("--callback-port") {
            return None;
        }
        panic!("login printed no URL: {printed:?}\n{stderr}");
    };
    Some(Login { url, child, stdout, printed })
}

/// Waits for the login to end; returns (success, everything it printed).
pub(crate) async fn finish_login(mut login: Login) -> (bool, String) {
    while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_secs(60), login.stdout.next_line()).await {
        login.printed.push(line);
    }
    let output = tokio::time::timeout(Duration::from_secs(10), login.child.wait_with_output()).await.expect("login ends").unwrap();
    (output.status.success(), format!("{}\n{}", login.printed.join("\n"), text(&output.stderr)))
}

/// The tokens stored by the login, registered so that any log line holding one fails the test.
pub(crate) fn stored_tokens(home: &Path) -> (String, Value) {
    let store = SecretStore::new(home, Some(SecretString::from(PASSWORD.to_owned())));
    let name = store.list().unwrap().into_iter().find(|n| n.starts_with("REGISTRY_OAUTH_")).expect("the login stored its tokens");
    let record: Value = serde_json::from_str(store.get(&name).unwrap().unwrap().expose_secret()).unwrap();
    for key in ["access_token", "refresh_token"] {
        if let Some(token) = record[key].as_str() {
            portcullis_tests::leaks::register(token);
        }
    }
    (name, record)
}

/// The results of spawned requests (already running concurrently).
async fn all(requests: impl Iterator<Item = tokio::task::JoinHandle<u16>>) -> Vec<u16> {
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    statuses
}

pub(crate) async fn status(home: &Path, policy: &Path) -> String {
    let out = command(home, &["status", "--policy", policy.to_str().unwrap()]).output().await.unwrap();
    text(&out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_login_keeps_a_fresh_token_on_every_registry_request() {
    let mut idp = RegistryIdp::start(ACCESS_TTL).await;
    let registry = RegistryServer::start(&idp.issuer).await;
    let dir = tempfile::tempdir().unwrap();
    let policy_text = policy(&registry.url, &idp.issuer, None);
    let gw = TestGateway::start_in(dir, &policy_text).await.unwrap();
    let (home, policy_path) = (gw.home(), gw.policy_path.clone());
    let url = gw.url("registry").await;

    // Before any login: 503 naming the command, and `status` says so.
    let r = client().get(format!("{url}/v0/servers")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body = json(r).await;
    assert_eq!(body["code"], "registry_auth_required", "{body}");
    assert!(body["message"].as_str().unwrap().contains("portcullis login registry"), "{body}");
    assert!(status(&home, &policy_path).await.contains("configured, not logged in"));

    // The login: the real binary, a real browser, the provider's own pages.
    let login = start_login(&home, &policy_path).await;
    assert!(login.url.starts_with(&format!("{}/auth?", idp.issuer)), "{}", login.url);
    for part in ["code_challenge_method=S256", "code_challenge=", "state=", "resource=http%3A%2F%2F127.0.0.1%2Fregistry"] {
        assert!(login.url.contains(part), "{part} in {}", login.url);
    }
    let report = browser_login(&login.url, "alice").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["title"], "Logged in", "{report}");
    let (ok, output) = finish_login(login).await;
    assert!(ok, "{output}");
    assert_eq!(idp.token_calls("authorization_code", 200), 1);
    let (secret, first) = stored_tokens(&home);
    for key in ["access_token", "refresh_token"] {
        assert!(!output.contains(first[key].as_str().unwrap()), "the login printed its {key}");
    }
    assert!(status(&home, &policy_path).await.contains("authenticated"), "{}", status(&home, &policy_path).await);

    // Requests carry the token; the registry checks it at the provider.
    let r = client().get(format!("{url}/v0/servers")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = json(r).await;
    assert_eq!(body["sub"], "alice", "{body}");
    assert_eq!(body["client_id"], "portcullis-cli", "{body}");

    // At expiry, 50 concurrent requests: all served, one refresh between them,
    // and the rotated refresh token is what the store holds.
    make_due(&home).await;
    let requests = (0..50).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { client().get(format!("{url}/v0/servers")).send().await.unwrap().status().as_u16() })
    });
    let statuses = all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(idp.token_calls("refresh_token", 200), 1, "exactly one refresh for 50 requests");
    let (_, second) = stored_tokens(&home);
    assert_ne!(second["refresh_token"], first["refresh_token"], "the rotated refresh token was persisted");
    assert_ne!(second["access_token"], first["access_token"]);

    // The provider fails (500, an HTML page): the current token keeps
    // serving, and once it recovers the next refresh works with no new login.
    make_due(&home).await;
    idp.fail_token_requests(1).await;
    let r = client().get(format!("{url}/v0/servers")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the still-valid token serves while the provider fails");
    assert_eq!(idp.token_calls("refresh_token", 500), 1);
    tokio::time::sleep(Duration::from_millis(1_500)).await; // the first backoff step
    let r = client().get(format!("{url}/v0/servers")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(idp.token_calls("refresh_token", 200), 2, "recovered without a new login");
    stored_tokens(&home);

    // Revoked at the provider: the registry refuses the token in hand (the
    // answer names the command), and the next refresh gets invalid_grant, so
    // the tokens are dropped and requests get 503 until a new login.
    idp.revoke_all().await;
    let r = client().get(format!("{url}/v0/servers")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body = json(r).await;
    assert_eq!(body["error"], "login_refused", "{body}");
    assert!(body["message"].as_str().unwrap().contains("portcullis login registry"), "{body}");
    make_due(&home).await;
    let r = client().get(format!("{url}/v0/servers")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(json(r).await["code"], "registry_auth_required");
    assert_eq!(idp.token_calls("refresh_token", 400), 1);
    let store = SecretStore::new(&home, Some(SecretString::from(PASSWORD.to_owned())));
    assert!(store.get(&secret).unwrap().is_none(), "the dropped tokens are gone from the store");
    assert!(status(&home, &policy_path).await.contains("configured, not logged in"));
}

#[tokio::test]
async fn two_gateways_on_one_store_refresh_once() {
    let mut idp = RegistryIdp::start(ACCESS_TTL).await;
    let registry = RegistryServer::start(&idp.issuer).await;
    let dir = tempfile::tempdir().unwrap();
    let policy_text = policy(&registry.url, &idp.issuer, None);
    let first = TestGateway::start_in(dir, &policy_text).await.unwrap();
    let login = start_login(&first.home(), &first.policy_path).await;
    assert_eq!(browser_login(&login.url, "bob").await["ok"], true);
    let (ok, output) = finish_login(login).await;
    assert!(ok, "{output}");
    stored_tokens(&first.home());
    // A second gateway (its own process state: instances, memory, store
    // handle) on the same secret store, as a second process would be.
    let home = first.home();
    let second = TestGateway::start_with(tempfile::tempdir().unwrap(), &policy_text, |o| o.home = home).await.unwrap();
    let urls = [first.url("registry").await, second.url("registry").await];
    for url in &urls {
        assert_eq!(client().get(url.as_str()).send().await.unwrap().status(), 200);
    }
    make_due(&first.home()).await;
    let requests = (0..40).map(|n| {
        let url = urls[n % 2].clone();
        tokio::spawn(async move { client().get(url).send().await.unwrap().status().as_u16() })
    });
    let statuses = all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(idp.token_calls("refresh_token", 200), 1, "one refresh for both gateways");
    assert_eq!(idp.token_calls("refresh_token", 400), 0, "no gateway used a burnt refresh token");
    stored_tokens(&first.home());
}

#[tokio::test]
async fn a_device_login_needs_no_browser_on_this_machine() {
    let mut idp = RegistryIdp::start(ACCESS_TTL).await;
    let registry = RegistryServer::start(&idp.issuer).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_in(dir, &policy(&registry.url, &idp.issuer, None)).await.unwrap();
    // The person finishes on another device: here, a browser that never
    // talks to the CLI, only to the provider's verification pages.
    let login = start_login_with(&gw.home(), &gw.policy_path, &["--device"]).await;
    assert!(login.url.starts_with(&format!("{}/device", idp.issuer)) && login.url.contains("user_code="), "{}", login.url);
    let report = browser_login(&login.url, "carol").await;
    assert_eq!(report["ok"], true, "{report}");
    let (ok, output) = finish_login(login).await;
    assert!(ok, "{output}");
    assert!(output.contains("enter the code"), "{output}");
    assert_eq!(idp.token_calls("urn:ietf:params:oauth:grant-type:device_code", 200), 1);
    let (_, record) = stored_tokens(&gw.home());
    assert!(!output.contains(record["access_token"].as_str().unwrap()));
    let r = client().get(gw.url("registry").await).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["sub"], "carol");
}

#[tokio::test]
async fn login_refuses_a_busy_callback_port() {
    let idp = RegistryIdp::start(ACCESS_TTL).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    // Below the ephemeral range: once free, no client connection takes it.
    let busy = std::net::TcpListener::bind(("127.0.0.1", free_port())).unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy("http://127.0.0.1:9", &idp.issuer, Some(busy_port))).unwrap();

    // A busy port is an error naming it and the flag, never another port.
    let out = command(&home, &["login", "registry", "--policy", policy_path.to_str().unwrap(), "--no-browser"]).output().await.unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{busy_port}")) && stderr.contains("--callback-port"), "{stderr}");
    assert!(!text(&out.stdout).contains("http"), "no login started: {}", text(&out.stdout));
    drop(busy);

    // Once free, the callback is on loopback, on the configured port.
    let login = start_login_with(&home, &policy_path, &["--no-browser", "--timeout", "60"]).await;
    assert_eq!(redirect_uri(&login.url), format!("http://127.0.0.1:{busy_port}/callback"));
}

/// The redirect URI of an authorization URL.
fn redirect_uri(authorize_url: &str) -> String {
    query_param(authorize_url, "redirect_uri")
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    let found = query.split('&').filter_map(|pair| pair.split_once('=')).find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no {name} in {url}"));
    found.1.replace("%3A", ":").replace("%2F", "/")
}

/// A complete login as `user` with the real browser.
pub(crate) async fn log_in(home: &Path, policy: &Path, user: &str) {
    let login = start_login(home, policy).await;
    let report = browser_login(&login.url, user).await;
    assert_eq!(report["ok"], true, "{report}");
    let (ok, output) = finish_login(login).await;
    assert!(ok, "{output}");
}

// Issue 22, item 9: a stray or forged callback (another tab, a page that
// knows the port) is refused and logged, and the login goes on; connections
// that never send a request hold nothing up.
#[tokio::test]
async fn stray_callbacks_neither_end_nor_hold_up_a_login() {
    let idp = RegistryIdp::start(ACCESS_TTL).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy("http://127.0.0.1:9", &idp.issuer, None)).unwrap();
    let login = start_login(&home, &policy_path).await;
    let (redirect, state) = (redirect_uri(&login.url), query_param(&login.url, "state"));

    let port = redirect.trim_start_matches("http://127.0.0.1:").trim_end_matches("/callback");
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await.unwrap());
    }
    for forged in ["code=stolen&state=forged", "code=stolen", "error=access_denied&state=forged"] {
        let r = tokio::time::timeout(Duration::from_secs(5), client().get(format!("{redirect}?{forged}")).send())
            .await
            .expect("a stray callback is answered at once, beside connections that send nothing")
            .unwrap();
        assert_eq!(r.status(), 400, "{forged}");
    }
    // The login is still waiting: its own callback is taken (here with a code
    // the provider never issued, so the exchange is refused).
    let issuer = idp.issuer.replace(':', "%3A").replace('/', "%2F");
    let r = tokio::time::timeout(Duration::from_secs(10), client().get(format!("{redirect}?code=not-issued&state={state}&iss={issuer}")).send())
        .await
        .expect("the login's own callback is answered")
        .unwrap();
    assert_eq!(r.status(), 400);
    let (ok, output) = finish_login(login).await;
    assert!(!ok);
    assert!(output.contains("refused the authorization code"), "{output}");
    assert!(output.contains("does not match"), "the stray callbacks are logged: {output}");
    drop(idle);
    let store = SecretStore::new(&home, Some(SecretString::from(PASSWORD.to_owned())));
    assert!(store.list().unwrap().iter().all(|n| !n.starts_with("REGISTRY_OAUTH_")), "nothing stored");
}

// Issue 22, item 9: a provider that advertises RFC 9207 must send `iss`; a
// callback without it may come from another provider (a mix-up).
#[tokio::test]
async fn a_callback_without_iss_is_refused_when_the_provider_sends_it() {
    let idp = RegistryIdp::start(ACCESS_TTL).await;
    let discovery: Value = portcullis_tests::http_client()
        .build()
        .unwrap()
        .get(format!("{}/.well-known/openid-configuration", idp.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["authorization_response_iss_parameter_supported"], true, "{discovery}");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy("http://127.0.0.1:9", &idp.issuer, None)).unwrap();
    let login = start_login(&home, &policy_path).await;
    let (redirect, state) = (redirect_uri(&login.url), query_param(&login.url, "state"));
    let r = client().get(format!("{redirect}?code=not-issued&state={state}")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let (ok, output) = finish_login(login).await;
    assert!(!ok);
    assert!(output.contains("no `iss`"), "{output}");
}

// Issue 22, item 9: the browser gets the user's environment, not the
// gateway's secrets.
#[tokio::test]
async fn the_browser_gets_no_secrets_in_its_environment() {
    let idp = RegistryIdp::start(ACCESS_TTL).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy("http://127.0.0.1:9", &idp.issuer, None)).unwrap();
    let browser = dir.path().join("browser.sh");
    std::fs::write(&browser, "#!/bin/sh\nenv > \"$0.env.tmp\"\nprintf '%s' \"$1\" > \"$0.url\"\nmv \"$0.env.tmp\" \"$0.env\"\n").unwrap();
    std::fs::set_permissions(&browser, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env_file = dir.path().join("browser.sh.env");
    // The callback on a free port; again on another if a process took it first.
    let mut _child = None;
    while _child.is_none() {
        let port = free_port().to_string();
        let mut login = command(&home, &["login", "registry", "--policy", policy_path.to_str().unwrap(), "--timeout", "60", "--callback-port", &port]);
        login.env("BROWSER", &browser).env("PORTCULLIS_REGISTRY_TOKEN", "static-registry-token-value");
        let mut child = login.spawn().unwrap();
        let exited = tokio::time::timeout(Duration::from_secs(60), async {
            while !env_file.exists() {
                if child.try_wait().unwrap().is_some() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        })
        .await
        .expect("the browser is started, or the login ends, within 60 s");
        if exited {
            let output = child.wait_with_output().await.unwrap();
            assert!(text(&output.stderr).contains("--callback-port"), "the login ended: {}", text(&output.stderr));
        } else {
            _child = Some(child);
        }
    }
    let env = std::fs::read_to_string(&env_file).expect("the browser was started");
    assert!(env.contains("PORTCULLIS_HOME="), "the rest of the environment is kept");
    for secret in ["PORTCULLIS_SECRETS_PASSWORD", "PORTCULLIS_REGISTRY_TOKEN", PASSWORD, "static-registry-token-value"] {
        assert!(!env.contains(secret), "the browser's environment holds {secret}");
    }
    let url = std::fs::read_to_string(dir.path().join("browser.sh.url")).unwrap();
    assert!(url.starts_with(&format!("{}/auth?", idp.issuer)), "{url}");
}

// Issue 22, item 6: a WAF's 403 or a CDN's 404 in front of the token endpoint
// says nothing about the refresh token: the login stays, and renewal backs off.
#[tokio::test]
async fn a_403_or_404_from_before_the_token_endpoint_keeps_the_login() {
    let mut idp = RegistryIdp::start(ACCESS_TTL).await;
    let registry = RegistryServer::start(&idp.issuer).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_in(dir, &policy(&registry.url, &idp.issuer, None)).await.unwrap();
    let (home, policy_path) = (gw.home(), gw.policy_path.clone());
    log_in(&home, &policy_path, "dave").await;
    let url = gw.url("registry").await;
    make_due(&home).await;
    idp.fail_token_requests_with(1, 403).await;
    let r = client().get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 200, "the token in hand still serves after a 403");
    assert_eq!(idp.token_calls("refresh_token", 403), 1);
    assert!(status(&home, &policy_path).await.contains("authenticated"), "the login stays after a 403");
    tokio::time::sleep(Duration::from_millis(1_500)).await; // the first backoff step
    idp.fail_token_requests_with(1, 404).await;
    let r = client().get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 200, "and after a 404");
    assert_eq!(idp.token_calls("refresh_token", 404), 1);
    tokio::time::sleep(Duration::from_millis(2_500)).await; // the second
    let r = client().get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(idp.token_calls("refresh_token", 200), 1, "renewed with the same refresh token, no new login");
    stored_tokens(&home);
}

// Issue 22, item 7: `logout` and a new `login` reach a gateway that is
// running, although the token it holds is good for minutes more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_a_new_login_reach_a_running_gateway() {
    let idp = RegistryIdp::start(300).await;
    let registry = RegistryServer::start(&idp.issuer).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_in(dir, &policy(&registry.url, &idp.issuer, None)).await.unwrap();
    let (home, policy_path) = (gw.home(), gw.policy_path.clone());
    let url = gw.url("registry").await;
    log_in(&home, &policy_path, "alice").await;
    let r = client().get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["sub"], "alice");

    let out = command(&home, &["logout", "registry", "--policy", policy_path.to_str().unwrap()]).output().await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    tokio::time::sleep(Duration::from_millis(400)).await; // the store's recheck interval (250 ms)
    let r = client().get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 503, "logged out: the gateway no longer sends the token");
    assert_eq!(json(r).await["code"], "registry_auth_required");

    log_in(&home, &policy_path, "bob").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = client().get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["sub"], "bob", "the new login's token is sent");
}

// Issue 22, item 7: a refresh still in flight when the login is removed (a
// logout that could not take the renewal lock removes the tokens anyway)
// does not write the logged-out login back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_in_flight_does_not_write_back_a_removed_login() {
    let mut idp = RegistryIdp::start(ACCESS_TTL).await;
    let registry = RegistryServer::start(&idp.issuer).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_in(dir, &policy(&registry.url, &idp.issuer, None)).await.unwrap();
    let (home, policy_path) = (gw.home(), gw.policy_path.clone());
    let url = gw.url("registry").await;
    log_in(&home, &policy_path, "erin").await;
    let (secret, _) = stored_tokens(&home);
    assert_eq!(client().get(url.as_str()).send().await.unwrap().status(), 200);

    make_due(&home).await;
    // Opened before the refresh, so that the delete below derives no key
    // while the gateway waits for the provider.
    let store = SecretStore::new(&home, Some(SecretString::from(PASSWORD.to_owned())));
    store.warm().unwrap();
    idp.hold_next_token_request().await;
    let refreshing = tokio::spawn(async move { client().get(url.as_str()).send().await.unwrap().status().as_u16() });
    idp.token_request_held().await;
    assert!(store.delete(&secret).unwrap(), "the login was stored");
    idp.release_token_request().await;
    let answered = refreshing.await.unwrap();
    assert_eq!(idp.token_calls("refresh_token", 200), 1, "the refresh was in flight");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let store = SecretStore::new(&home, Some(SecretString::from(PASSWORD.to_owned())));
    assert!(store.get(&secret).unwrap().is_none(), "the renewed tokens of a removed login were written back");
    assert_eq!(answered, 503, "the renewed token of a removed login is not used");
}

#[tokio::test]
async fn static_tokens_serve_without_a_login() {
    let upstream = TestUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(&dir.path().join("home"), Some(SecretString::from(PASSWORD.to_owned())));
    store.set("ci:registry-token", SecretString::from("secret-static-token".to_owned())).unwrap();
    std::fs::write(dir.path().join("token.txt"), "file-static-token\n").unwrap();
    for token in ["secret-static-token", "file-static-token"] {
        portcullis_tests::leaks::register(token);
    }
    let entry = |config: &str| {
        format!("  [[workloads.outbound]]\n  component = \"builtin:registry-token\"\n  grants = {{ secrets = [\"ci:*\"] }}\n  config = {{ {config} }}\n")
    };
    let workload = |name: &str, config: &str| portcullis_tests::gateway::workload(name, &upstream.url(), &format!("anonymous = true\n{}", entry(config)));
    let policy = format!(
        "version = 1\n{}{}",
        workload("from-secret", r#"token_secret = "ci:registry-token""#),
        workload("file-wins", r#"token_file = "token.txt", token_secret = "ci:registry-token""#)
    );
    let gw = TestGateway::start_in(dir, &policy).await.unwrap();
    for (workload, expected) in [("from-secret", "Bearer secret-static-token"), ("file-wins", "Bearer file-static-token")] {
        let r = client().get(gw.url(workload).await).header("authorization", "Bearer client-sent").send().await.unwrap();
        assert_eq!(r.status(), 200, "{workload}");
        let echo = json(r).await;
        assert_eq!(crate::seen(&echo, "authorization"), [expected], "{workload}");
    }
}
