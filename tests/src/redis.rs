//! A real Redis on loopback: Debian's `redis-server` (scripts/test installs
//! it), on a free port below the ephemeral range, in a temporary directory,
//! with no save points and no append-only file; killed when dropped.
//!
//! For outage tests: [`RedisServer::stop`] shuts it down saving what it holds
//! (so [`RedisServer::restart`] on the same port brings it back, as a real
//! restart would), [`RedisServer::kill`] loses it, and [`RedisServer::pause`]
//! leaves it listening but silent (a hung server: only timeouts notice).
//! [`RedisServer::start_tls`] serves `rediss://` with a self-signed certificate.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a test server authenticates its clients.
#[derive(Clone, Debug, Default)]
pub enum RedisAuth {
    /// Anyone on loopback.
    #[default]
    None,
    /// The default user with a password (`requirepass`).
    Password(String),
    /// An ACL user with a password; the default user is disabled.
    User { username: String, password: String },
}

pub struct RedisServer {
    port: u16,
    auth: RedisAuth,
    /// TLS only (`rediss://`), with a self-signed certificate for `127.0.0.1` and `localhost`.
    tls: bool,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// A server anyone on loopback may use.
    pub fn start() -> RedisServer {
        Self::start_with(RedisAuth::None)
    }

    /// A server that requires `auth`.
    pub fn start_with(auth: RedisAuth) -> RedisServer {
        Self::start_as(auth, false)
    }

    /// A server that speaks TLS only, with a self-signed certificate
    /// ([`RedisServer::ca_file`]) for `127.0.0.1` and `localhost`.
    pub fn start_tls() -> RedisServer {
        Self::start_as(RedisAuth::None, true)
    }

    fn start_as(auth: RedisAuth, tls: bool) -> RedisServer {
        // Another process may take the free port first: then start on another.
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            if tls {
                let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
                std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
                std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
            }
            let mut server = RedisServer { port: crate::node::free_port(), auth: auth.clone(), tls, dir, child: None };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/0`, or `rediss://` for a TLS server (no
    /// credentials: the store reads them from the secret store).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}/0", if self.tls { "rediss" } else { "redis" }, self.port)
    }

    /// The PEM certificate a TLS server presents (self-signed: its own CA).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Shuts the server down, saving its data first (`SHUTDOWN SAVE`).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = self.cli(&["SHUTDOWN", "SAVE"]);
            let until = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server: what it held is lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server's process (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Starts the server again on the same port and directory (with what
    /// [`RedisServer::stop`] saved), after a stop or a kill.
    pub fn restart(&mut self) {
        self.kill();
        let until = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(Instant::now() < until, "redis-server did not start again on port {}", self.port);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Authenticates [`RedisServer::cli`] (and a restarted server) with
    /// `auth` from now on: after a test changed the password on the server.
    pub fn set_auth(&mut self, auth: RedisAuth) {
        self.auth = auth;
    }

    /// Runs `redis-cli` against the server, authenticated, and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--no-auth-warning"]);
        if self.tls {
            command.arg("--tls").arg("--cacert").arg(self.ca_file());
        }
        match &self.auth {
            RedisAuth::None => {}
            RedisAuth::Password(password) => {
                command.args(["-a", password]);
            }
            RedisAuth::User { username, password } => {
                command.args(["--user", username, "--pass", password]);
            }
        }
        let out = command.args(args).output().expect("redis-cli (Debian package redis-tools, with redis-server)");
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is running");
        let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Starts `redis-server` on `self.port`; true once it listens there,
    /// false when it exited (the port was taken).
    fn spawn(&mut self) -> bool {
        let config = self.dir.path().join("redis.conf");
        let users = match &self.auth {
            RedisAuth::None => String::new(),
            RedisAuth::Password(password) => format!("requirepass {password}\n"),
            RedisAuth::User { username, password } => format!("user default off\nuser {username} on >{password} ~* &* +@all\n"),
        };
        std::fs::write(&config, users).unwrap();
        let log: PathBuf = self.dir.path().join("redis.log");
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command.arg(&config);
        if self.tls {
            command.args(["--port", "0", "--tls-port", &port, "--tls-auth-clients", "no", "--tls-cert-file"]);
            command.arg(self.dir.path().join("cert.pem")).arg("--tls-key-file").arg(self.dir.path().join("key.pem"));
        } else {
            command.args(["--port", &port]);
        }
        let mut child = command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; scripts/test installs it)");
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if crate::node::listens_on(child.id(), self.port) {
                self.child = Some(child);
                return true;
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server would not die of SIGTERM; SIGKILL works either way.
        self.kill();
    }
}
