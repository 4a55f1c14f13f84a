//! A real OCI registry on loopback: the CNCF distribution registry (Debian's
//! `docker-registry`), on an ephemeral port, storing in a temporary directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Registry {
    /// `127.0.0.1:<port>`, as OCI references name it.
    pub addr: String,
    root: tempfile::TempDir,
    child: Child,
}

impl Registry {
    pub async fn start() -> Registry {
        Self::start_with(None).await
    }

    /// A registry that requires HTTP basic authentication as `user`/`password` (htpasswd, bcrypt).
    pub async fn with_login(user: &str, password: &str) -> Registry {
        Self::start_with(Some((user, password))).await
    }

    async fn start_with(login: Option<(&str, &str)>) -> Registry {
        let root = tempfile::tempdir().unwrap();
        let htpasswd = login.map(|(user, password)| {
            let out =
                Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd (Debian package apache2-utils; scripts/test installs it)");
            let path = root.path().join("htpasswd");
            std::fs::write(&path, out.stdout).unwrap();
            path
        });
        // The registry cannot bind port 0 and say which port it got, so it is
        // given a free port; if another process takes that port first, the
        // registry says so and exits, and it starts again on another.
        for _ in 0..20 {
            let addr = format!("127.0.0.1:{}", crate::node::free_port());
            let (mut child, started) = start_on(&addr, root.path(), htpasswd.as_deref()).await;
            if started {
                return Registry { addr, root, child };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("the registry did not start");
    }

    /// `oci://<addr>/<repository>`.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("oci://{}/{repository_and_tag}", self.addr)
    }

    /// Where the registry keeps the blob with this sha256 (hex), to tamper with it.
    pub fn blob_path(&self, hex: &str) -> PathBuf {
        self.root.path().join("data/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }
}

/// Starts the registry on `addr`; true once it listens there, false when it
/// could not bind the address (or exited).
async fn start_on(addr: &str, root: &Path, htpasswd: Option<&Path>) -> (Child, bool) {
    let storage = root.join("data");
    // Log level info: the registry logs "listening on <addr>" once it is bound.
    let mut yaml = format!("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nlog:\n  level: info\n", storage.display());
    if let Some(htpasswd) = htpasswd {
        yaml.push_str(&format!("auth:\n  htpasswd:\n    realm: test\n    path: {}\n", htpasswd.display()));
    }
    let config = root.join("config.yml");
    std::fs::write(&config, yaml).unwrap();
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker-registry (Debian package docker-registry; scripts/test installs it)");
    let stderr = child.stderr.take().unwrap();
    let listening = format!("listening on {addr}");
    let started = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stderr).lines();
        let started = lines.by_ref().map_while(Result::ok).any(|line| line.contains(&listening));
        // Keep draining stderr so the registry never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        started
    });
    let started = tokio::time::timeout(std::time::Duration::from_secs(30), started).await.expect("the registry starts or exits within 30 s").unwrap();
    (child, started)
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
