//! A real OCI registry on loopback: the CNCF distribution registry (Debian's
//! `docker-registry`), on an ephemeral port, storing in a temporary directory.

use std::path::PathBuf;
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
        let port = crate::node::free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = root.path().join("config.yml");
        let storage = root.path().join("data");
        let mut yaml =
            format!("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nlog:\n  level: error\n", storage.display());
        if let Some((user, password)) = login {
            let out =
                Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd (Debian package apache2-utils; scripts/test installs it)");
            let htpasswd = root.path().join("htpasswd");
            std::fs::write(&htpasswd, out.stdout).unwrap();
            yaml.push_str(&format!("auth:\n  htpasswd:\n    realm: test\n    path: {}\n", htpasswd.display()));
        }
        std::fs::write(&config, yaml).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry; scripts/test installs it)");
        let registry = Registry { addr, root, child };
        let url = format!("http://{}/v2/", registry.addr);
        for _ in 0..100 {
            // Up when it answers (401 is an answer, for a registry that wants a login).
            if crate::http_client().build().unwrap().get(&url).send().await.is_ok() {
                return registry;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the registry did not start on {}", registry.addr);
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

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
