//! The embedded authorization server on two replicas, the shape users deploy:
//! two gateway processes (the real binary) sharing one `redis-server`, behind
//! HAProxy doing round robin. A code issued through one replica is redeemed
//! on the other, a refresh works on either, a code redeemed on both at once
//! succeeds exactly once; with Redis stopped the server answers 503 with a
//! clear error, loses nothing written before, and recovers when Redis is back.

use crate::cli::portcullis;
use portcullis::secrets::{SecretStore, SecretString};
use portcullis_tests::node::{free_port, listens_on};
use portcullis_tests::oauth::{
    Authorize, CompanyIdp, Discovered, HeaderReportingMcpServer, Pkce, ServerPolicy, Stored, TOKEN_KEY_SECRET, client, login, mcp_status, random, redeem,
    refresh, signing_key_pem, write_private,
};
use portcullis_tests::redis::RedisServer;
use reqwest::StatusCode;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const PASSWORD: &str = "oauth-replicas-test";

/// One gateway process on `port`, its policy and home in `dir`.
pub(crate) struct Replica {
    port: u16,
    dir: tempfile::TempDir,
    child: tokio::process::Child,
}

impl Replica {
    /// Starts the binary on `policy` (for `port`); `None` if the port was taken meanwhile.
    async fn start(port: u16, policy: &str, keys: &Path, token_key: &str) -> Option<Replica> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        for entry in std::fs::read_dir(keys).unwrap() {
            let entry = entry.unwrap();
            write_private(&dir.path().join("keys").join(entry.file_name()), &std::fs::read_to_string(entry.path()).unwrap());
        }
        SecretStore::new(&dir.path().join("home"), Some(SecretString::from(PASSWORD.to_owned())))
            .set(TOKEN_KEY_SECRET, SecretString::from(token_key.to_owned()))
            .unwrap();
        std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let child = tokio::process::Command::new(portcullis())
            .args(["--log-format", "json", "run", "--policy"])
            .arg(dir.path().join("policy.toml"))
            .env("PORTCULLIS_HOME", dir.path().join("home"))
            .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
            .env("RUST_LOG", "info,portcullis=debug")
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let mut replica = Replica { port, dir, child };
        for _ in 0..1200 {
            if listens_on(pid, port) {
                return Some(replica);
            }
            if replica.child.try_wait().unwrap().is_some() {
                let log = replica.log();
                assert!(log.contains("in use"), "the gateway exited: {log}");
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway did not start: {}", replica.log());
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// HAProxy in front of the replicas, round robin, on loopback.
struct Haproxy {
    port: u16,
    _dir: tempfile::TempDir,
    child: tokio::process::Child,
}

impl Haproxy {
    async fn start(port: u16, backends: &[u16]) -> Option<Haproxy> {
        let dir = tempfile::tempdir().unwrap();
        let servers: String = backends.iter().enumerate().map(|(i, p)| format!("  server r{i} 127.0.0.1:{p}\n")).collect();
        let config = format!(
            "global\n  maxconn 256\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
             frontend gateway\n  bind 127.0.0.1:{port}\n  default_backend replicas\nbackend replicas\n  balance roundrobin\n{servers}"
        );
        std::fs::write(dir.path().join("haproxy.cfg"), config).unwrap();
        let child = tokio::process::Command::new("haproxy")
            .arg("-f")
            .arg(dir.path().join("haproxy.cfg"))
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy is installed (scripts/test installs it)");
        let pid = child.id().unwrap();
        let mut proxy = Haproxy { port, _dir: dir, child };
        for _ in 0..200 {
            if listens_on(pid, port) {
                return Some(proxy);
            }
            if proxy.child.try_wait().unwrap().is_some() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("haproxy did not start");
    }
}

pub(crate) struct Deployment<M> {
    pub(crate) replicas: Vec<Replica>,
    proxy: Haproxy,
    pub(crate) server: Discovered,
    pub(crate) redis: RedisServer,
    pub(crate) idp: CompanyIdp,
    pub(crate) mcp: M,
}

impl Deployment<HeaderReportingMcpServer> {
    async fn start() -> Deployment<HeaderReportingMcpServer> {
        Deployment::start_with(
            &[],
            |_| async {
                let mcp = HeaderReportingMcpServer::start().await;
                let url = mcp.url();
                (mcp, url)
            },
            |_| {},
        )
        .await
    }
}

impl<M> Deployment<M> {
    /// `idp_options` for the IdP, `mcp` the MCP server and its URL (given the
    /// IdP's issuer), `adjust` the policy both replicas run.
    pub(crate) async fn start_with<F: std::future::Future<Output = (M, String)>>(
        idp_options: &[&str],
        mcp: impl Fn(&str) -> F,
        adjust: impl Fn(&mut ServerPolicy),
    ) -> Deployment<M> {
        let redis = RedisServer::start();
        let keys = tempfile::tempdir().unwrap();
        write_private(&keys.path().join("as-1.pem"), &signing_key_pem());
        let token_key = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(random(32)).unwrap())
        };
        for _ in 0..5 {
            let public = free_port();
            let idp = CompanyIdp::start_with(&[format!("http://127.0.0.1:{public}/oauth/callback")], idp_options).await;
            let (mcp, mcp_url) = mcp(&idp.issuer).await;
            // Both replicas: the same public URL (HAProxy's), keys, sealing key and Redis.
            let mut policy = ServerPolicy::new(public, &mcp_url, &idp.issuer);
            policy.store = format!("[store]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"replicas\"\n", redis.url());
            adjust(&mut policy);
            let mut replicas = Vec::new();
            while replicas.len() < 2 {
                let port = free_port();
                let text = policy.toml().replace(&format!("listen = \"127.0.0.1:{public}\""), &format!("listen = \"127.0.0.1:{port}\""));
                if let Some(replica) = Replica::start(port, &text, keys.path(), &token_key).await {
                    replicas.push(replica);
                }
            }
            let Some(proxy) = Haproxy::start(public, &[replicas[0].port, replicas[1].port]).await else { continue };
            let server = Discovered::from(&policy.public_url()).await;
            return Deployment { replicas, proxy, server, redis, idp, mcp };
        }
        panic!("no free port for HAProxy");
    }

    pub(crate) fn mcp_url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.proxy.port)
    }

    /// `server` with its endpoints on one replica instead of HAProxy.
    fn on(&self, replica: usize) -> Discovered {
        let public = format!("http://127.0.0.1:{}", self.proxy.port);
        let text = self.server.metadata.to_string().replace(&public, &self.replicas[replica].origin());
        let mut server = self.server.clone();
        server.metadata = serde_json::from_str(&text).unwrap();
        server
    }
}

/// A code through `server`'s authorization endpoint (the IdP's callback goes through HAProxy).
async fn code(server: &Discovered, pkce: &Pkce, port: u16) -> (Authorize, String) {
    let request = Authorize::listed(&server.resource, pkce, port);
    let landing = login(&request.url(&server.endpoint("authorization_endpoint")), "alice", &request.redirect_uri).await;
    let code = landing.code();
    (request, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_behind_haproxy() {
    let mut d = Deployment::start().await;
    let (a, b) = (d.on(0), d.on(1));
    let pkce = Pkce::new();

    // Authorize on one replica, redeem on the other; refresh on either.
    let (request, code_a) = code(&a, &pkce, 41001).await;
    let issued = redeem(&b, &request, &code_a, &pkce.verifier).await;
    let access = issued.access_token();
    assert_eq!(mcp_status(&d.mcp_url(), &access).await, StatusCode::OK, "HAProxy: either replica verifies it");
    let on_a = refresh(&a, &issued.refresh_token()).await;
    let on_b = refresh(&b, &on_a.refresh_token()).await;
    let mut refresh_token = on_b.refresh_token();
    for replica in &d.replicas {
        assert_eq!(mcp_status(&format!("{}/mcp", replica.origin()), &on_b.access_token()).await, StatusCode::OK);
    }

    // The whole flow through HAProxy, several times (round robin spreads each over both).
    let admitted = |replica: &Replica| replica.log().matches("request admitted").count();
    let before: Vec<usize> = d.replicas.iter().map(admitted).collect();
    for port in [41002, 41003, 41004, 41005] {
        let (request, code) = code(&d.server, &pkce, port).await;
        let answer = redeem(&d.server, &request, &code, &pkce.verifier).await;
        assert_eq!(mcp_status(&d.mcp_url(), &answer.access_token()).await, StatusCode::OK);
        assert_eq!(refresh(&d.server, &answer.refresh_token()).await.status, StatusCode::OK);
    }
    let after: Vec<usize> = d.replicas.iter().map(admitted).collect();
    assert!(before.iter().zip(&after).all(|(b, a)| a > b), "HAProxy sent MCP requests to both replicas: {before:?} -> {after:?}");

    // One code redeemed on both replicas at once: exactly one succeeds.
    for round in 0..3 {
        let (request, code) = code(&d.server, &pkce, 41010 + round).await;
        let (one, two) = tokio::join!(redeem(&a, &request, &code, &pkce.verifier), redeem(&b, &request, &code, &pkce.verifier));
        let ok = [&one, &two].iter().filter(|t| t.status == StatusCode::OK).count();
        assert_eq!(ok, 1, "round {round}: {one:?} {two:?}");
        let loser = if one.status == StatusCode::OK { &two } else { &one };
        assert_eq!((loser.status, loser.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{loser:?}");
    }

    // Redis stopped: a clear 503 from the token and authorization endpoints, on both replicas.
    let keys_before = d.redis.keys();
    d.redis.stop();
    for server in [&a, &b] {
        let answer = refresh(server, &refresh_token).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
        assert_eq!(answer.error(), "temporarily_unavailable", "{answer:?}");
        let description = answer.body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains("store"), "the error says what is down: {answer:?}");
        let request = Authorize::listed(&server.resource, &pkce, 41020);
        let response = client().get(request.url(&server.endpoint("authorization_endpoint"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let log = d.replicas[0].log() + &d.replicas[1].log();
    assert!(log.to_ascii_lowercase().contains("redis"), "the log names the store that failed");

    // Back: nothing written before was lost, and both replicas serve again.
    d.redis.restart();
    assert_eq!(d.redis.keys(), keys_before, "nothing lost");
    let mut answer = refresh(&a, &refresh_token).await;
    for _ in 0..50 {
        if answer.status == StatusCode::OK {
            break;
        }
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = refresh(&a, &refresh_token).await;
    }
    refresh_token = answer.refresh_token();
    assert_eq!(refresh(&b, &refresh_token).await.status, StatusCode::OK, "the token the outage did not consume still works, on either replica");

    // No token in either replica's log (at debug level), whatever happened above.
    let log = d.replicas[0].log() + &d.replicas[1].log();
    for (name, token) in [("access token", &access), ("refresh token", &refresh_token), ("code", &code_a)] {
        assert!(!log.contains(token.as_str()), "a {name} is in the log");
    }
}
