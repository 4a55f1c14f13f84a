//! A real Prometheus on loopback: Debian's `prometheus` (scripts/test installs
//! it), on a free port below the ephemeral range, its TSDB in a temporary
//! directory, scraping one target every second; killed when dropped.
//!
//! [`PrometheusServer::query`] asks its HTTP API (`/api/v1/query`) for an
//! instant vector; [`PrometheusServer::wait_for`] polls until a query gives
//! the expected value, within a bound.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The job name of the one scrape config (the `job` label of every series).
pub const JOB: &str = "portcullis";

pub struct PrometheusServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl PrometheusServer {
    /// A Prometheus that scrapes `http://<target>/metrics` every second.
    pub fn start(target: SocketAddr) -> PrometheusServer {
        // Another process may take the free port first: then start on another.
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let config = dir.path().join("prometheus.yml");
            std::fs::write(
                &config,
                format!(
                    "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                     scrape_configs:\n  - job_name: {JOB}\n    metrics_path: /metrics\n    static_configs:\n      - targets: ['{target}']\n"
                ),
            )
            .unwrap();
            let port = crate::node::free_port();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let mut child = Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // No console templates: the Debian paths may be absent, and nothing here uses them.
                .arg("--web.console.templates=")
                .arg("--web.console.libraries=")
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("prometheus (Debian package prometheus; scripts/test installs it)");
            let until = Instant::now() + Duration::from_secs(20);
            loop {
                if crate::node::listens_on(child.id(), port) {
                    return PrometheusServer { port, dir, child };
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > until {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("prometheus did not start");
    }

    /// `http://127.0.0.1:<port>`: its web UI and HTTP API.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What Prometheus logged so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Waits, up to `within`, until the API answers `/-/ready` with 200.
    pub async fn ready(&self, within: Duration) {
        let client = crate::http_client().no_proxy().build().unwrap();
        let until = Instant::now() + within;
        loop {
            if client.get(format!("{}/-/ready", self.url())).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(Instant::now() < until, "prometheus was not ready within {within:?}:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The result of an instant query (`data.result`: a list of `{metric, value}`).
    pub async fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let client = crate::http_client().no_proxy().build().unwrap();
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/query", self.url()), [("query", promql)]).unwrap();
        let response = client.get(url).send().await.unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The single value of a query whose result is one sample, or `None` when it has none.
    pub async fn value(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql).await;
        assert!(result.len() <= 1, "{promql} gave more than one series: {result:?}");
        result.first().map(|sample| sample["value"][1].as_str().unwrap().parse().unwrap())
    }

    /// Polls `promql` until its single value is `expected`, for at most
    /// `within`; gives the last value seen (so the caller's assertion names it).
    pub async fn wait_for(&self, promql: &str, expected: f64, within: Duration) -> Option<f64> {
        let until = Instant::now() + within;
        loop {
            let value = self.value(promql).await;
            if value == Some(expected) || Instant::now() > until {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every metric name Prometheus holds (`/api/v1/label/__name__/values`).
    pub async fn metric_names(&self) -> Vec<String> {
        let client = crate::http_client().no_proxy().build().unwrap();
        let body: serde_json::Value = client.get(format!("{}/api/v1/label/__name__/values", self.url())).send().await.unwrap().json().await.unwrap();
        assert_eq!(body["status"], "success", "{body}");
        body["data"].as_array().unwrap().iter().map(|name| name.as_str().unwrap().to_owned()).collect()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
