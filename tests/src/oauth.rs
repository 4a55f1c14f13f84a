//! The embedded authorization server's real parts (`builtin:oauth-server`):
//! a policy that runs it in a workload, federating to the company IdP
//! (`registry-idp.mjs`, oidc-provider with its dev login pages); discovery
//! from the MCP endpoint's 401; a login driven over plain HTTP (the IdP's
//! login form posted by hand, cookies kept per origin) that ends on the
//! client's redirect URI with a code; the token endpoint's grants; and PKCE.
//!
//! Chromium drives the one login that must be a browser's (the SDK client's,
//! `tests/node/mcp-oauth-client.mjs`); every other test logs in over plain
//! HTTP here, which takes milliseconds instead of a browser start.

use crate::node::{node_dir, ready_port, start};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::secrets::{SecretStore, SecretString};
use reqwest::{Method, StatusCode, Url};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;
use tokio::process::Child;

/// The secret holding the AES-256-GCM key that seals upstream tokens.
pub const TOKEN_KEY_SECRET: &str = "oauth:token-key";
/// The IdP's public client the authorization server logs users in with.
pub const IDP_CLIENT_ID: &str = "portcullis-cli";
/// The client listed in the policy (public, loopback redirect on any port).
pub const LISTED_CLIENT: &str = "cli";
pub const LISTED_REDIRECT: &str = "http://127.0.0.1/callback";

/// `n` random bytes, base64url.
pub fn random(n: usize) -> String {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge of `verifier`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A PKCE pair (RFC 7636): a 43-character verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = random(32);
        Pkce { challenge: s256(&verifier), verifier }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

/// A fresh P-256 signing key, PKCS#8 PEM.
pub fn signing_key_pem() -> String {
    rcgen::KeyPair::generate().unwrap().serialize_pem()
}

/// Writes a private key readable by its owner only (the host refuses group- or world-readable keys).
pub fn write_private(path: &Path, contents: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Prepares a gateway directory: `keys/<name>.pem` for each key name, and the
/// sealing key in the secret store of `<dir>/home` (opened with `password`).
pub fn prepare_dir(dir: &Path, key_names: &[&str], password: &str) {
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    for name in key_names {
        write_private(&dir.join("keys").join(format!("{name}.pem")), &signing_key_pem());
    }
    let key = base64::engine::general_purpose::STANDARD.encode(random_bytes(32));
    add_secret(dir, password, TOKEN_KEY_SECRET, &key);
}

/// Puts `name` = `value` in the secret store of `<dir>/home` (opened with `password`).
pub fn add_secret(dir: &Path, password: &str, name: &str, value: &str) {
    SecretStore::new(&dir.join("home"), Some(SecretString::from(password.to_owned()))).set(name, SecretString::from(value.to_owned())).unwrap();
}

fn random_bytes(n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    bytes
}

/// A workload that runs `builtin:oauth-server` in front of an MCP server,
/// federating to `idp`, its inbound verifier trusting the server's own keys:
/// `examples/authorization-server.toml`'s shape, on loopback (`http_private`
/// for the IdP; `https://*` lets it fetch a client's metadata document, on
/// public addresses only).
pub struct ServerPolicy {
    /// The workload's port: the issuer is `http://127.0.0.1:<port>`, the resource `…/mcp`.
    pub port: u16,
    pub upstream: String,
    pub idp: String,
    /// The signing keys' names, signer first: `file:{key_dir}/{name}.pem` each.
    pub keys: Vec<String>,
    /// Where the key files are (relative paths are the policy file's directory's).
    pub key_dir: String,
    /// Extra `key = value` lines for `[workloads.server.config]`.
    pub config: String,
    /// A `[store]` section, or empty for the memory store.
    pub store: String,
    /// The server's `grants.store` (`true`, or a shared namespace's name in quotes).
    pub store_grant: String,
    /// More of the workload, after the server's first upstream (further
    /// upstreams, `[[workloads.outbound]]` entries).
    pub more: String,
    /// More origins the server may reach over `http` (further upstreams').
    pub more_http: Vec<String>,
}

impl ServerPolicy {
    pub fn new(port: u16, upstream: &str, idp: &str) -> ServerPolicy {
        ServerPolicy {
            port,
            upstream: upstream.to_owned(),
            idp: idp.to_owned(),
            keys: vec!["as-1".into()],
            key_dir: "keys".into(),
            config: String::new(),
            store: String::new(),
            store_grant: "true".into(),
            more: String::new(),
            more_http: Vec::new(),
        }
    }

    pub fn public_url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub fn toml(&self) -> String {
        let keys = self.keys.iter().map(|k| format!("\"file:{}/{k}.pem\"", self.key_dir)).collect::<Vec<_>>().join(", ");
        let ServerPolicy { port, upstream, idp, config, store, store_grant, more, .. } = self;
        let more_http: String = self.more_http.iter().map(|origin| format!(", \"{origin}\"")).collect();
        format!(
            r#"version = 1
{store}
[[workloads]]
name = "mcp"
listen = "127.0.0.1:{port}"
upstream = "{upstream}"
public_url = "http://127.0.0.1:{port}/mcp"
  [[workloads.inbound]]
  component = "builtin:oidc-verifier"
  config = {{ embedded_server = true, required_scopes = ["mcp"], scopes_supported = ["mcp"] }}
  [workloads.server]
  component = "builtin:oauth-server"
  grants = {{ http = ["{idp}", "https://*"{more_http}], http_private = true, secrets = ["oauth:*"], store = {store_grant}, signing_keys = [{keys}] }}
  [workloads.server.config]
  token_key_secret = "{TOKEN_KEY_SECRET}"
  scopes = ["mcp"]
{config}
  [[workloads.server.config.clients]]
  client_id = "{LISTED_CLIENT}"
  redirect_uris = ["{LISTED_REDIRECT}"]
  [[workloads.server.config.upstreams]]
  name = "corp"
  issuer = "{idp}"
  client_id = "{IDP_CLIENT_ID}"
  scopes = ["openid"]
{more}"#
        )
    }
}

/// The company IdP: `registry-idp.mjs` with the gateway's `/oauth/callback`
/// registered for its public client `portcullis-cli` (PKCE, auto-consent).
pub struct CompanyIdp {
    pub issuer: String,
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// The `TOKEN` lines read so far.
    token_lines: Vec<String>,
}

impl CompanyIdp {
    /// `callbacks`: the gateways' `/oauth/callback` URLs (one per public origin).
    pub async fn start(callbacks: &[String]) -> CompanyIdp {
        CompanyIdp::start_with(callbacks, &[]).await
    }

    /// With more of `registry-idp.mjs`'s options (`--access-ttl 4`).
    pub async fn start_with(callbacks: &[String], options: &[&str]) -> CompanyIdp {
        let mut args = vec!["0".to_owned()];
        for callback in callbacks {
            args.push("--redirect-uri".into());
            args.push(callback.clone());
        }
        args.extend(options.iter().map(|o| o.to_string()));
        let (child, ready, lines) = start("registry-idp.mjs", &args).await;
        CompanyIdp { issuer: ready.trim_start_matches("READY").trim().to_owned(), child, lines, token_lines: Vec::new() }
    }

    /// The next token response carries a forged ID token: `nonce` or `aud`
    /// wrong (signed with the IdP's key), or `signature` (another key, same kid).
    pub async fn tamper_id_token(&mut self, what: &str) {
        self.command(&format!("tamper-id-token {what}"), "TAMPERING").await;
    }

    /// Sends a stdin command (`revoke-user alice`) and waits for the line starting with `done`.
    pub async fn command(&mut self, command: &str, done: &str) {
        use tokio::io::AsyncWriteExt;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{command}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(10), self.lines.recv()).await.expect("the IdP answers").expect("the IdP is alive");
            if line.starts_with("TOKEN ") {
                self.token_lines.push(line);
            } else if line.starts_with(done) {
                return;
            }
        }
    }

    /// Every `TOKEN <grant_type> <status>` line so far: one per request to the token endpoint.
    pub fn token_requests(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            if line.starts_with("TOKEN ") {
                self.token_lines.push(line);
            }
        }
        self.token_lines.clone()
    }
}

/// `tests/node/mcp-server.mjs --headers-tool`: a real MCP server that can say
/// which headers reached it.
pub struct HeaderReportingMcpServer {
    pub port: u16,
    _child: Child,
    pub lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl HeaderReportingMcpServer {
    pub async fn start() -> HeaderReportingMcpServer {
        let (child, ready, lines) = start("mcp-server.mjs", &["0".into(), "--headers-tool".into()]).await;
        HeaderReportingMcpServer { port: ready_port(&ready), _child: child, lines }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `REQUEST ...` lines printed so far (each ends in `auth=yes|no`).
    pub fn requests(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(line) = self.lines.try_recv() {
            if line.starts_with("REQUEST ") {
                out.push(line);
            }
        }
        out
    }
}

/// A client that follows no redirects and uses no proxy.
pub fn client() -> reqwest::Client {
    crate::http_client().no_proxy().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(20)).build().unwrap()
}

/// The authorization server as a client discovers it from the MCP endpoint:
/// the 401's `resource_metadata` (RFC 9728), then RFC 8414 metadata.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub resource: String,
    pub issuer: String,
    pub metadata: serde_json::Value,
}

impl Discovered {
    pub async fn from(mcp_url: &str) -> Discovered {
        let http = client();
        let response = http.post(mcp_url).header("content-type", "application/json").body("{}").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "the MCP endpoint wants a token");
        let challenge = response.headers().get("www-authenticate").expect("a Bearer challenge").to_str().unwrap().to_owned();
        let prm_url =
            challenge.split("resource_metadata=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_else(|| panic!("no resource_metadata in {challenge}"));
        let prm: serde_json::Value = http.get(prm_url).send().await.unwrap().json().await.unwrap();
        let resource = prm["resource"].as_str().unwrap().to_owned();
        let issuer = prm["authorization_servers"][0].as_str().unwrap_or_else(|| panic!("the PRM names no authorization server: {prm}")).to_owned();
        let origin = Url::parse(&issuer).unwrap();
        let path = origin.path().trim_end_matches('/');
        let well_known = format!("{}/.well-known/oauth-authorization-server{path}", origin.origin().ascii_serialization());
        let response = http.get(&well_known).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{well_known}");
        let metadata: serde_json::Value = response.json().await.unwrap();
        Discovered { resource, issuer, metadata }
    }

    pub fn endpoint(&self, name: &str) -> String {
        self.metadata[name].as_str().unwrap_or_else(|| panic!("no {name} in {}", self.metadata)).to_owned()
    }
}

/// An authorization request; `url()` builds it, leaving out what is `None`.
#[derive(Debug, Clone)]
pub struct Authorize {
    pub client_id: String,
    pub redirect_uri: String,
    pub resource: Option<String>,
    pub scope: Option<String>,
    pub state: String,
    pub challenge: Option<String>,
    pub method: Option<String>,
}

impl Authorize {
    /// The listed client, redirecting to `http://127.0.0.1:<port>/callback`.
    pub fn listed(resource: &str, pkce: &Pkce, port: u16) -> Authorize {
        Authorize {
            client_id: LISTED_CLIENT.into(),
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
            resource: Some(resource.to_owned()),
            scope: Some("mcp".into()),
            state: random(12),
            challenge: Some(pkce.challenge.clone()),
            method: Some("S256".into()),
        }
    }

    pub fn url(&self, endpoint: &str) -> String {
        let mut url = Url::parse(endpoint).unwrap();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("state", &self.state);
            for (name, value) in
                [("resource", &self.resource), ("scope", &self.scope), ("code_challenge", &self.challenge), ("code_challenge_method", &self.method)]
            {
                if let Some(value) = value {
                    q.append_pair(name, value);
                }
            }
        }
        url.to_string()
    }
}

/// Where a login ended.
#[derive(Debug)]
pub enum Landing {
    /// Redirected to the client's redirect URI; its query parameters (each listed once per occurrence).
    Redirect { url: Url, params: Vec<(String, String)> },
    /// A page that is not a login form (an error page, or anything unexpected).
    Page { url: String, status: StatusCode, body: String },
}

impl Landing {
    pub fn param(&self, name: &str) -> Option<String> {
        match self {
            Landing::Redirect { params, .. } => params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()),
            Landing::Page { .. } => None,
        }
    }

    /// The code of a successful redirect; panics with what happened otherwise.
    pub fn code(&self) -> String {
        match self.param("code") {
            Some(code) => code,
            None => panic!("the login did not end with a code: {self:?}"),
        }
    }
}

/// A cookie jar per host, just enough for oidc-provider's interaction
/// cookies and the gateway's login binding. Per host, not per origin, as a
/// browser keeps them (RFC 6265 §8.5: cookies do not tell ports apart).
#[derive(Default)]
struct Jar(HashMap<String, BTreeMap<String, String>>);

impl Jar {
    fn origin(url: &Url) -> String {
        url.host_str().unwrap_or_default().to_owned()
    }

    fn header(&self, url: &Url) -> Option<String> {
        let cookies = self.0.get(&Self::origin(url))?;
        (!cookies.is_empty()).then(|| cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; "))
    }

    fn take(&mut self, url: &Url, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let Ok(value) = value.to_str() else { continue };
            let pair = value.split(';').next().unwrap_or_default();
            if let Some((name, v)) = pair.split_once('=') {
                let cookies = self.0.entry(Self::origin(url)).or_default();
                if v.is_empty() || value.to_ascii_lowercase().contains("expires=thu, 01 jan 1970") {
                    cookies.remove(name.trim());
                } else {
                    cookies.insert(name.trim().to_owned(), v.to_owned());
                }
            }
        }
    }
}

/// Follows an authorization request the way a browser would, in a fresh
/// browser that allows on the gateway's consent page: see [`Browser::login`].
pub async fn login(authorize_url: &str, user: &str, redirect_prefix: &str) -> Landing {
    Browser::new(Consent::Allow).login(authorize_url, user, redirect_prefix).await
}

/// What a [`Browser`] answers on the gateway's consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Allow,
    Deny,
}

/// One person's browser over plain HTTP: its cookies, kept across logins.
pub struct Browser {
    jar: Jar,
    consent: Consent,
}

impl Browser {
    pub fn new(consent: Consent) -> Browser {
        Browser { jar: Jar::default(), consent }
    }

    /// A GET in this browser (its cookies sent, the ones set kept), not followed.
    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let url = Url::parse(url).unwrap();
        let mut request = client().get(url.clone());
        if let Some(cookies) = self.jar.header(&url) {
            request = request.header("cookie", cookies);
        }
        let response = request.send().await.unwrap();
        self.jar.take(&url, &response);
        response
    }

    /// The cookies this browser would send to `url`.
    pub fn cookies(&self, url: &str) -> Option<String> {
        self.jar.header(&Url::parse(url).unwrap())
    }

    /// Follows an authorization request the way a browser would: redirects, the
    /// gateway's consent page (answered as the browser's [`Consent`]), the IdP's
    /// login form (signing in as `user`) and its consent form, until the
    /// client's redirect URI (`redirect_prefix`, without the query) or a page
    /// that is none of these.
    pub async fn login(&mut self, authorize_url: &str, user: &str, redirect_prefix: &str) -> Landing {
        let http = client();
        let jar = &mut self.jar;
        let mut url = Url::parse(authorize_url).unwrap();
        let mut form: Option<Vec<(String, String)>> = None;
        for _ in 0..20 {
            let mut request = match &form {
                // A browser names the page's origin on a form post.
                Some(fields) => http.request(Method::POST, url.clone()).header("origin", url.origin().ascii_serialization()).form(fields),
                None => http.get(url.clone()),
            };
            if let Some(cookies) = jar.header(&url) {
                request = request.header("cookie", cookies);
            }
            let response = request.send().await.unwrap_or_else(|e| panic!("login step {url}: {e}"));
            jar.take(&url, &response);
            let status = response.status();
            form = None;
            if status.is_redirection() {
                let location = response.headers().get("location").expect("a redirect has a Location").to_str().unwrap();
                let next = url.join(location).unwrap();
                let mut bare = next.clone();
                bare.set_query(None);
                if bare.as_str() == redirect_prefix || bare.as_str().trim_end_matches('/') == redirect_prefix.trim_end_matches('/') {
                    let params = next.query_pairs().map(|(n, v)| (n.into_owned(), v.into_owned())).collect();
                    return Landing::Redirect { url: next, params };
                }
                url = next;
                continue;
            }
            let body = response.text().await.unwrap_or_default();
            if status == StatusCode::OK
                && let Some(action) = form_action(&body)
            {
                let next = url.join(&action).unwrap();
                if body.contains("name=\"login\"") {
                    form = Some(vec![("prompt".into(), "login".into()), ("login".into(), user.into()), ("password".into(), "portcullis-test-password".into())]);
                } else if body.contains("name=\"prompt\" value=\"consent\"") {
                    form = Some(vec![("prompt".into(), "consent".into())]);
                } else if body.contains("name=\"decision\"") {
                    let decision = if self.consent == Consent::Allow { "allow" } else { "deny" };
                    form = Some(hidden_inputs(&body).into_iter().chain([("decision".to_owned(), decision.to_owned())]).collect());
                }
                if form.is_some() {
                    url = next;
                    continue;
                }
            }
            return Landing::Page { url: url.to_string(), status, body };
        }
        panic!("the login took more than 20 steps (last at {url})");
    }
}

/// The `name` and `value` of each `<input type="hidden">` of a page.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let attribute = |tag: &str, name: &str| tag.split(&format!("{name}=\"")).nth(1).and_then(|rest| rest.split('"').next()).map(str::to_owned);
    html.split("<input")
        .skip(1)
        .filter_map(|tag| {
            let tag = tag.split('>').next()?;
            tag.contains("type=\"hidden\"").then(|| Some((attribute(tag, "name")?, attribute(tag, "value")?)))?
        })
        .collect()
}

/// The `action` of the first form in an HTML page, HTML entities undone.
fn form_action(html: &str) -> Option<String> {
    let start = html.find("<form")?;
    let action = html[start..].split("action=\"").nth(1)?.split('"').next()?;
    Some(action.replace("&amp;", "&").replace("&#x2F;", "/").replace("&#47;", "/").replace("&#x3D;", "="))
}

/// A code for the listed client: authorize (with `pkce`) → IdP login → code.
pub async fn listed_code(server: &Discovered, pkce: &Pkce, user: &str) -> (Authorize, String) {
    let request = Authorize::listed(&server.resource, pkce, 43210);
    let landing = login(&request.url(&server.endpoint("authorization_endpoint")), user, &request.redirect_uri).await;
    assert_eq!(landing.param("state").as_deref(), Some(request.state.as_str()), "{landing:?}");
    let code = landing.code();
    (request, code)
}

/// A token endpoint answer: status, JSON body (`Null` if none), and its `Cache-Control`.
pub struct TokenAnswer {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub cache_control: Option<String>,
}

/// Shown in failures with the token values left out (only their presence).
impl std::fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut body = self.body.clone();
        for name in ["access_token", "refresh_token", "id_token"] {
            if let Some(value) = body.get_mut(name) {
                *value = "<redacted>".into();
            }
        }
        f.debug_struct("TokenAnswer").field("status", &self.status).field("body", &body).field("cache_control", &self.cache_control).finish()
    }
}

impl TokenAnswer {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("<none>")
    }

    pub fn access_token(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        self.body["access_token"].as_str().unwrap().to_owned()
    }

    pub fn refresh_token(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        self.body["refresh_token"].as_str().unwrap().to_owned()
    }
}

/// POSTs `form` to the token endpoint.
pub async fn token(endpoint: &str, form: &[(&str, &str)]) -> TokenAnswer {
    let response = client().post(endpoint).form(form).send().await.unwrap();
    let status = response.status();
    let cache_control = response.headers().get("cache-control").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    TokenAnswer { status, body: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null), cache_control }
}

/// Redeems `code` from `request` with `verifier`.
pub async fn redeem(server: &Discovered, request: &Authorize, code: &str, verifier: &str) -> TokenAnswer {
    let resource = request.resource.clone().unwrap_or_default();
    token(
        &server.endpoint("token_endpoint"),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("client_id", &request.client_id),
            ("redirect_uri", &request.redirect_uri),
            ("resource", &resource),
        ],
    )
    .await
}

/// Refreshes with `refresh_token` for the listed client.
pub async fn refresh(server: &Discovered, refresh_token: &str) -> TokenAnswer {
    token(
        &server.endpoint("token_endpoint"),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", LISTED_CLIENT), ("resource", &server.resource)],
    )
    .await
}

/// Registers a client (RFC 7591) with `metadata` at `server`; its `client_id`.
pub async fn register(server: &Discovered, metadata: serde_json::Value) -> String {
    let answer: serde_json::Value = client().post(server.endpoint("registration_endpoint")).json(&metadata).send().await.unwrap().json().await.unwrap();
    answer["client_id"].as_str().unwrap_or_else(|| panic!("not registered: {answer}")).to_owned()
}

/// Status of an MCP `initialize` sent with `token`.
pub async fn mcp_status(mcp_url: &str, token: &str) -> StatusCode {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"probe","version":"0"}}}"#;
    client()
        .post(mcp_url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

/// The decoded (unverified) header and claims of a JWT.
pub fn jwt_parts(token: &str) -> (serde_json::Value, serde_json::Value) {
    let mut parts = token.split('.');
    let mut decode = || serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().expect("a JWT part")).unwrap()).unwrap();
    let header = decode();
    (header, decode())
}

/// Runs `tests/node/mcp-oauth-client.mjs` (the official SDK client with its
/// own OAuth provider, logging in with Chromium); returns its JSON report.
pub async fn sdk_client(args: &[&str]) -> serde_json::Value {
    let output = tokio::process::Command::new("node")
        .arg(node_dir().join("mcp-oauth-client.mjs"))
        .args(args)
        .current_dir(node_dir())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("mcp-oauth-client printed no JSON report: stdout={stdout:?} stderr={}", String::from_utf8_lossy(&output.stderr)))
}

/// What the tests read of the authorization server's records in Redis
/// ([`crate::redis::RedisServer`]): keys, lifetimes and values.
pub trait Stored {
    /// Every key, sorted.
    fn keys(&self) -> Vec<String>;
    /// The remaining lifetime of `key` in seconds (-1: none, -2: no such key).
    fn ttl(&self, key: &str) -> i64;
    /// The value of a string `key`, as text (`None` when absent or not a string).
    fn get(&self, key: &str) -> Option<String>;
}

impl Stored for crate::redis::RedisServer {
    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.cli(&["--scan"]).lines().filter(|l| !l.is_empty()).map(str::to_owned).collect();
        keys.sort();
        keys
    }

    fn ttl(&self, key: &str) -> i64 {
        self.cli(&["ttl", key]).trim().parse().unwrap()
    }

    fn get(&self, key: &str) -> Option<String> {
        (self.cli(&["type", key]).trim() == "string").then(|| self.cli(&["--raw", "get", key]))
    }
}
