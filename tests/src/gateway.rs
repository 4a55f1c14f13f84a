//! A gateway started in-process from a policy string.

use portcullis::gateway::{Gateway, Options};
use portcullis::secrets::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub const PASSWORD: &str = "test-password";

pub struct TestGateway {
    pub gateway: Arc<Gateway>,
    pub dir: tempfile::TempDir,
    pub policy_path: PathBuf,
}

/// Compiled components are cached across tests (and test runs) here.
pub fn shared_cache_dir() -> PathBuf {
    PathBuf::from(env!("TEST_COMPONENT_CACHE"))
}

impl TestGateway {
    /// Starts a gateway on `policy` (fixture `[components]` are prepended).
    pub async fn start(policy: &str) -> anyhow::Result<TestGateway> {
        let dir = tempfile::tempdir()?;
        Self::start_in(dir, policy).await
    }

    /// Like [`TestGateway::start`], in a prepared home (e.g. with secrets set).
    pub async fn start_in(dir: tempfile::TempDir, policy: &str) -> anyhow::Result<TestGateway> {
        Self::start_with(dir, policy, |_| {}).await
    }

    /// Like [`TestGateway::start_in`], with the options adjusted by `adjust` (e.g. a small instance pool).
    pub async fn start_with(dir: tempfile::TempDir, policy: &str, adjust: impl FnOnce(&mut Options)) -> anyhow::Result<TestGateway> {
        crate::init_logging();
        let policy_path = dir.path().join("policy.toml");
        std::fs::write(&policy_path, with_fixtures(policy))?;
        let mut options = Options::new(policy_path.clone(), dir.path().join("home"));
        options.cache_dir = Some(shared_cache_dir());
        options.secrets_password = Some(SecretString::from(PASSWORD.to_owned()));
        adjust(&mut options);
        let gateway = Gateway::start(options).await?;
        Ok(TestGateway { gateway, dir, policy_path })
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub async fn addr(&self, workload: &str) -> SocketAddr {
        self.gateway.local_addr(workload).await.expect("workload is listening")
    }

    /// `http://127.0.0.1:<port>` of a workload.
    pub async fn url(&self, workload: &str) -> String {
        format!("http://{}", self.addr(workload).await)
    }

    /// Rewrites the policy file and reloads.
    pub async fn reload_with(&self, policy: &str) -> anyhow::Result<()> {
        std::fs::write(&self.policy_path, with_fixtures(policy))?;
        self.gateway.reload().await
    }

    pub async fn metrics(&self) -> String {
        self.gateway.metrics().encode()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            crate::leaks::assert_none();
        }
    }
}

fn with_fixtures(policy: &str) -> String {
    let (head, rest) = match policy.find("[[workloads]]") {
        Some(i) => policy.split_at(i),
        None => (policy, ""),
    };
    format!("{head}\n{}\n{rest}", crate::fixture_components())
}

/// A TOML workload with `listen` on an ephemeral loopback port.
pub fn workload(name: &str, upstream: &str, body: &str) -> String {
    format!("[[workloads]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{upstream}\"\npublic_url = \"http://127.0.0.1:8080\"\n{body}\n")
}

/// An inbound entry using the behaviours fixture.
pub fn behaviour(config: &str) -> String {
    format!("  [[workloads.inbound]]\n  component = \"behaviours\"\n  config = {{ {config} }}\n")
}
