//! The Node.js side of the end-to-end tests (`tests/node/`, installed by
//! `npm ci` from its lock file): the reference MCP server, the official MCP SDK
//! client, and a real OpenID Provider.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

fn script(name: &str) -> PathBuf {
    let dir = node_dir();
    assert!(dir.join("node_modules").exists(), "run `npm ci` in {} (scripts/test does)", dir.display());
    dir.join(name)
}

/// A free loopback port for a process that binds it later, taken below the
/// kernel's ephemeral range (32768 and up): a port that `bind(0)` handed out
/// and released can be handed to another test, or become the local end of a
/// client connection, before the process binds it. Ports below the range are
/// only ever taken by name; each call in this process gets a different one.
/// Still, another process may take it first: only for programs that cannot
/// bind port 0 and say which port they got (the gateway binary, the
/// registry), whose callers start again on another port when the bind fails.
/// Our Node scripts bind port 0 themselves and report the port (see [`start`]).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20000;
    const COUNT: u32 = 12000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() % COUNT;
    for _ in 0..COUNT {
        let port = (FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + COUNT)
}

/// Whether process `pid` holds the socket listening on `127.0.0.1:port`
/// (from `/proc`): a process that was handed a port by [`free_port`] is
/// known to have bound it, rather than another process that took it first.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else { return false };
    // Columns: sl, local_address, rem_address, st (0A = LISTEN), ..., inode (the 10th).
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|c| c.len() > 9 && c[1] == local && c[3] == "0A")
        .map(|c| format!("socket:[{}]", c[9]))
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str())))
}

/// The port in a `READY <port>` or `READY http://127.0.0.1:<port>` line.
pub fn ready_port(ready: &str) -> u16 {
    let last = ready.trim().rsplit([' ', ':']).next().unwrap_or_default();
    last.parse().unwrap_or_else(|_| panic!("no port in {ready:?}"))
}

/// Spawns a Node script and waits for its `READY ...` line; returns the child,
/// that line, and the lines it prints afterwards.
pub(crate) async fn start(name: &str, args: &[String]) -> (Child, String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let mut child = Command::new("node")
        .arg(script(name))
        .args(args)
        .current_dir(node_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node is installed");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("READY") {
                return line;
            }
        }
        panic!("{name} exited before it was ready");
    })
    .await
    .unwrap_or_else(|_| panic!("{name} did not start within 30 s"));
    // Keep draining stdout so the script never blocks on a full pipe.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
    (child, ready, rx)
}

/// `@modelcontextprotocol/server-everything` in Streamable HTTP mode.
pub struct EverythingServer {
    pub port: u16,
    _child: Child,
}

impl EverythingServer {
    pub async fn start() -> EverythingServer {
        // Port 0: the script binds a port of its own and reports it.
        let (child, ready, _) = start("everything-server.mjs", &["0".into()]).await;
        EverythingServer { port: ready_port(&ready), _child: child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// `tests/node/mcp-server.mjs`: tools with annotations, prompts and
/// resources, answering POSTs with SSE or (`json`) plain JSON.
pub struct McpServer {
    pub port: u16,
    _child: Child,
}

impl McpServer {
    pub async fn start(json: bool) -> McpServer {
        let mut args = vec!["0".to_owned()];
        if json {
            args.push("--json".into());
        }
        let (child, ready, _) = start("mcp-server.mjs", &args).await;
        McpServer { port: ready_port(&ready), _child: child }
    }

    /// The 2024-11-05 HTTP+SSE transport (`--legacy-sse`): POSTs are answered
    /// 202, their answers sent on the GET stream.
    pub async fn start_legacy_sse() -> McpServer {
        let (child, ready, _) = start("mcp-server.mjs", &["0".into(), "--legacy-sse".into()]).await;
        McpServer { port: ready_port(&ready), _child: child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Runs the official MCP SDK client; returns its one-line JSON report.
pub async fn mcp_client(args: &[&str], envs: &[(&str, &str)]) -> serde_json::Value {
    let output = Command::new("node")
        .arg(script("mcp-client.mjs"))
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(node_dir())
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("mcp-client printed no JSON report: stdout={stdout:?} stderr={:?}", String::from_utf8_lossy(&output.stderr)))
}

/// A real OpenID Provider (`oidc-provider`) issuing JWT access tokens for
/// resource indicators through the client-credentials grant.
pub struct OpenIdProvider {
    pub issuer: String,
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl OpenIdProvider {
    pub async fn start() -> OpenIdProvider {
        let (child, ready, lines) = start("oidc-provider.mjs", &["0".into()]).await;
        let issuer = ready.trim_start_matches("READY").trim().to_owned();
        OpenIdProvider { issuer, child, lines }
    }

    /// An access token for `resource` from `client` (`test-client`: RS256, `test-client-es256`: ES256).
    pub async fn token(&self, client: &str, resource: &str, scope: &str) -> String {
        let body = format!("grant_type=client_credentials&resource={}&scope={}", urlencode(resource), urlencode(scope));
        let response = crate::http_client()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some("test-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let json: serde_json::Value = response.json().await.unwrap();
        assert!(status.is_success(), "token request failed: {json}");
        json["access_token"].as_str().unwrap().to_owned()
    }

    /// Replaces the provider's signing keys; returns the new RS256 `kid`.
    pub async fn rotate(&mut self) -> String {
        use tokio::io::AsyncWriteExt;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"rotate\n").await.unwrap();
        stdin.flush().await.unwrap();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(10), self.lines.recv()).await.expect("rotation").expect("provider alive");
            if let Some(kid) = line.strip_prefix("ROTATED ") {
                return kid.trim().to_owned();
            }
        }
    }

    /// Stops the provider (its port then refuses connections).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
