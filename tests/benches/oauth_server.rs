//! The embedded authorization server's figures (issue 24), over HTTP against
//! the real binary on one core (`taskset -c 0`, `TOKIO_WORKER_THREADS=1`),
//! the load from this process on the other core:
//! - `/oauth/token` refresh grants per second, memory and Redis stores, at
//!   32 concurrent token families (each refreshes its own rotating token);
//! - the refresh grant's latency alone (one family, sequential) with each
//!   store: what Redis adds at p50 and p99;
//! - the authorization-code exchange's latency (the code's redemption; the
//!   upstream login that produced the code is excluded).
//!
//! `cargo bench -p portcullis-tests --bench oauth_server` (seconds per run:
//! `PORTCULLIS_BENCH_SECONDS`, default 10). Every answer must be 200: one
//! that is not fails the run, so a figure cannot count refusals.
//! Figures go in docs/benchmarks.md. (Verifying the server's own tokens:
//! `--bench jwt_verify`, `jwt/embedded-server/*`.)

use portcullis::secrets::{SecretStore, SecretString};
use portcullis_tests::node::{free_port, listens_on};
use portcullis_tests::oauth::{CompanyIdp, Discovered, Pkce, ServerPolicy, TOKEN_KEY_SECRET, listed_code, redeem, refresh, signing_key_pem, write_private};
use portcullis_tests::redis::RedisServer;
use std::time::{Duration, Instant};

const PASSWORD: &str = "oauth-bench";
const FAMILIES: usize = 32;

struct Gateway {
    _dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real binary on core 0 with one worker thread, on `policy`.
fn gateway(port: u16, idp: &str, store: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    write_private(&dir.path().join("keys/as-1.pem"), &signing_key_pem());
    let key = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(rand_bytes())
    };
    SecretStore::new(&dir.path().join("home"), Some(SecretString::from(PASSWORD.to_owned()))).set(TOKEN_KEY_SECRET, SecretString::from(key)).unwrap();
    let mut policy = ServerPolicy::new(port, "http://127.0.0.1:9", idp);
    policy.key_dir = dir.path().join("keys").display().to_string();
    policy.store = store.to_owned();
    // Long lifetimes: nothing expires during a run.
    policy.config = "  access_token_ttl = 3600\n".into();
    std::fs::write(dir.path().join("policy.toml"), policy.toml()).unwrap();
    let child = std::process::Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_portcullis-under-test"), "run", "--policy"])
        .arg(dir.path().join("policy.toml"))
        .env("PORTCULLIS_HOME", dir.path().join("home"))
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .env("TOKIO_WORKER_THREADS", "1")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("taskset (util-linux) and the gateway binary");
    // Dropped (killed and waited for) on every path from here.
    let gateway = Gateway { _dir: dir, child };
    let pid = gateway.child.id();
    for _ in 0..600 {
        if listens_on(pid, port) {
            return gateway;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the gateway did not listen on {port}");
}

fn rand_bytes() -> [u8; 32] {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    bytes
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Logs `n` users in and redeems their codes: the refresh tokens, and each redemption's latency.
async fn families(server: &Discovered, n: usize) -> (Vec<String>, Vec<Duration>) {
    let mut tokens = Vec::with_capacity(n);
    let mut exchanges = Vec::with_capacity(n);
    for i in 0..n {
        let pkce = Pkce::new();
        let (request, code) = listed_code(server, &pkce, &format!("user{i}")).await;
        let started = Instant::now();
        let answer = redeem(server, &request, &code, &pkce.verifier).await;
        exchanges.push(started.elapsed());
        tokens.push(answer.refresh_token());
    }
    (tokens, exchanges)
}

/// Each family refreshes its own token in a loop for `seconds`: grants per second and every latency.
async fn refresh_load(server: &Discovered, tokens: Vec<String>, seconds: u64) -> (f64, Vec<Duration>) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|mut token| {
            let server = server.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let answer = refresh(&server, &token).await;
                    latencies.push(t.elapsed());
                    // Anything but 200 fails the run (`refresh_token()` asserts it).
                    token = answer.refresh_token();
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

async fn run(store_name: &str, store: &str, idp: &mut Option<CompanyIdp>, seconds: u64) {
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/oauth/callback");
    *idp = Some(CompanyIdp::start(&[callback]).await);
    let issuer = idp.as_ref().unwrap().issuer.clone();
    let _gateway = gateway(port, &issuer, store);
    let server = Discovered::from(&format!("http://127.0.0.1:{port}/mcp")).await;
    let (mut tokens, mut exchanges) = families(&server, FAMILIES + 1).await;
    exchanges.sort();
    eprintln!(
        "oauth/{store_name}/code-exchange: p50 {} p99 {} ({} redemptions)",
        micros(percentile(&exchanges, 0.5)),
        micros(percentile(&exchanges, 0.99)),
        exchanges.len()
    );
    let single = tokens.pop().unwrap();
    let (_, alone) = refresh_load(&server, vec![single], seconds.min(5)).await;
    eprintln!("oauth/{store_name}/refresh-latency (1 family): p50 {} p99 {}", micros(percentile(&alone, 0.5)), micros(percentile(&alone, 0.99)));
    let (rate, loaded) = refresh_load(&server, tokens, seconds).await;
    eprintln!(
        "oauth/{store_name}/refresh-grants ({FAMILIES} families, one gateway core): {rate:.0}/s, p50 {} p99 {}",
        micros(percentile(&loaded, 0.5)),
        micros(percentile(&loaded, 0.99))
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: a smoke run.
    let benching = std::env::args().any(|a| a == "--bench");
    let seconds = if benching { std::env::var("PORTCULLIS_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10) } else { 1 };
    // The load generator on the other core.
    let _ = std::process::Command::new("taskset").args(["-cp", "1", &std::process::id().to_string()]).output();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        let mut idp = None;
        run("memory", "", &mut idp, seconds).await;
        let redis = RedisServer::start();
        let store = format!("[store]\nbackend = \"redis\"\nurl = \"{}\"\n", redis.url());
        run("redis", &store, &mut idp, seconds).await;
    });
}
