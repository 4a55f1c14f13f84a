//! The secret store's key in a real Secret Service (Debian's gnome-keyring on a
//! private D-Bus session bus, unlocked by the harness), with the kernel keyring
//! as a cache: the store survives a restart and a simulated reboot, a store
//! from an earlier version (key in the kernel keyring only) is made durable,
//! no Secret Service means a clear refusal, and `secrets migrate`,
//! `export-key` and `import-key` lose nothing.

use crate::cli::{portcullis, text};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LOGIN_PASSWORD: &str = "desktop-login-password";

/// A private session bus (no service activation, so nothing but our keyring
/// answers for the Secret Service) and, optionally, gnome-keyring on it.
/// Its files (the keyring on disk) live in `dir`, which outlives a "reboot".
struct Desktop {
    dir: PathBuf,
    bus: Child,
    keyring: Option<Child>,
    address: String,
}

impl Desktop {
    fn boot(dir: &Path, with_keyring: bool) -> Desktop {
        let run = dir.join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let socket = run.join("bus");
        let _ = std::fs::remove_file(&socket);
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>"#,
                socket.display()
            ),
        )
        .unwrap();
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian package dbus) runs");
        let mut line = String::new();
        BufReader::new(bus.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let address = line.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon printed {address:?}");
        let mut desktop = Desktop { dir: dir.to_owned(), bus, keyring: None, address };
        if with_keyring {
            desktop.start_keyring();
        }
        desktop
    }

    /// gnome-keyring-daemon, its login keyring unlocked with the password on
    /// standard input, as a desktop login does (PAM) and as it does headlessly.
    fn start_keyring(&mut self) {
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .envs(self.env())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (Debian package gnome-keyring) runs");
        keyring.stdin.take().unwrap().write_all(LOGIN_PASSWORD.as_bytes()).unwrap();
        self.keyring = Some(keyring);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.secret_service_is_up() {
            assert!(Instant::now() < deadline, "gnome-keyring never took org.freedesktop.secrets on the bus");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn secret_service_is_up(&self) -> bool {
        let out = Command::new("dbus-send")
            .envs(self.env())
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .output()
            .unwrap();
        text(&out.stdout).contains("boolean true")
    }

    /// What a process of this desktop session sees.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DBUS_SESSION_BUS_ADDRESS", self.address.clone()),
            ("HOME", self.dir.display().to_string()),
            ("XDG_DATA_HOME", self.dir.join("data").display().to_string()),
            ("XDG_RUNTIME_DIR", self.dir.join("run").display().to_string()),
        ]
    }

    /// The keyring's own view of our entry, through its command-line client
    /// (`secret-tool`): the key it holds (base64), if any.
    fn secret_service_lookup(&self, store: &Path) -> Option<String> {
        let out = Command::new("secret-tool")
            .envs(self.env())
            .args(["lookup", "service", "portcullis", "username", &format!("secrets-key:{}", store.display())])
            .output()
            .expect("secret-tool (Debian package libsecret-tools) runs");
        (out.status.success() && !out.stdout.is_empty()).then(|| text(&out.stdout).trim().to_owned())
    }

    fn entry_in_secret_service(&self, store: &Path) -> bool {
        self.secret_service_lookup(store).is_some()
    }

    fn remove_entry_from_secret_service(&self, store: &Path) {
        let out = Command::new("secret-tool")
            .envs(self.env())
            .args(["clear", "service", "portcullis", "username", &format!("secrets-key:{}", store.display())])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    /// The key our entry holds (base64); the entry must exist.
    fn secret_service_value(&self, store: &Path) -> String {
        self.secret_service_lookup(store).expect("the Secret Service holds an entry for the store")
    }

    /// Replaces our entry with one holding `value`, as restoring an old keyring would.
    fn replace_secret_service_value(&self, store: &Path, value: &str) {
        self.remove_entry_from_secret_service(store);
        let user = format!("secrets-key:{}", store.display());
        let mut child = Command::new("secret-tool")
            .envs(self.env())
            .args(["store", "--label=restored", "service", "portcullis", "username", &user, "target", "default", "application", "rust-keyring"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(self.secret_service_value(store), value);
    }

    fn shut_down(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for child in self.keyring.iter_mut().chain(std::iter::once(&mut self.bus)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The kernel keyring's description of a store's key (the `keyring` crate's naming).
fn kernel_description(store: &Path) -> String {
    format!("keyring-rs:secrets-key:{}@portcullis", store.display())
}

/// Runs `script` (with the store key's description as `$1`) in a new session
/// keyring, as a new login session would, where the user's persistent keyring,
/// the one the kernel cache lives in, can be reached.
fn keyctl(store: &Path, script: &str) -> Output {
    Command::new("keyctl").args(["session", "-", "sh", "-c", script, "sh", &kernel_description(store)]).output().expect("keyctl (Debian package keyutils) runs")
}

fn kernel_key_id(store: &Path) -> Option<String> {
    let out = keyctl(store, r#"keyctl search "$(keyctl get_persistent @s)" user "$1""#);
    out.status.success().then(|| text(&out.stdout).trim().to_owned())
}

/// The kernel cache's copy of a store's key (base64), and a way to replace it.
fn kernel_value(store: &Path) -> String {
    let out = keyctl(store, r#"keyctl pipe "$(keyctl search "$(keyctl get_persistent @s)" user "$1")""#);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

fn replace_kernel_value(store: &Path, value: &str) {
    let script = format!(r#"keyctl update "$(keyctl search "$(keyctl get_persistent @s)" user "$1")" {value}"#);
    let out = keyctl(store, &script);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(kernel_value(store), value);
}

/// What a reboot does to the kernel keyring: our key is gone from it. (Only
/// ours: the rest of the user's persistent keyring is left alone.)
fn clear_kernel_key(store: &Path) {
    keyctl(store, r#"id=$(keyctl search "$(keyctl get_persistent @s)" user "$1") && keyctl invalidate "$id""#);
    let deadline = Instant::now() + Duration::from_secs(5);
    while kernel_key_id(store).is_some() {
        assert!(Instant::now() < deadline, "the kernel key was not cleared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the kernel-keyring copy a test left behind, whatever happened.
struct KernelKeyCleanup(PathBuf);
impl Drop for KernelKeyCleanup {
    fn drop(&mut self) {
        keyctl(&self.0, r#"id=$(keyctl search "$(keyctl get_persistent @s)" user "$1") && keyctl invalidate "$id""#);
    }
}

/// Runs the CLI as a process of a desktop session with `env` (no secrets
/// password unless given), in a new session keyring of its own, as a new login would.
fn cli(home: &Path, env: &[(&'static str, String)], password: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new("keyctl");
    command
        .args(["session", "-"])
        .arg(portcullis())
        .args(args)
        .env("PORTCULLIS_HOME", home)
        .env_remove("PORTCULLIS_SECRETS_PASSWORD")
        .env_remove("DISPLAY")
        .envs(env.iter().cloned());
    if let Some(password) = password {
        command.env("PORTCULLIS_SECRETS_PASSWORD", password);
    }
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    if let Some(input) = stdin {
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn ok(output: Output) -> Output {
    assert!(output.status.success(), "stdout: {}\nstderr: {}", text(&output.stdout), text(&output.stderr));
    output
}

fn protection(store: &Path) -> String {
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(store).unwrap()).unwrap();
    file["key"]["source"].as_str().unwrap().to_owned()
}

#[test]
fn a_keychain_store_survives_a_restart_and_a_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = home.join("secrets.json");
    let _cleanup = KernelKeyCleanup(store.clone());
    let desktop = Desktop::boot(dir.path(), true);

    let set = ok(cli(&home, &desktop.env(), None, &["secrets", "set", "mcp:key"], Some("k-0123456789")));
    assert!(text(&set.stderr).contains("portcullis secrets export-key"), "creation points to the recovery export: {}", text(&set.stderr));
    assert_eq!(protection(&store), "keychain");
    assert!(desktop.entry_in_secret_service(&store), "the key is in the Secret Service");
    assert!(kernel_key_id(&store).is_some(), "and cached in the kernel keyring");

    // A new process reads it back.
    let get = ok(cli(&home, &desktop.env(), None, &["secrets", "get", "mcp:key"], None));
    assert_eq!(text(&get.stdout), "k-0123456789\n");

    // Reboot: the session bus and the keyring daemon go, and so does the kernel keyring.
    desktop.shut_down();
    clear_kernel_key(&store);
    let desktop = Desktop::boot(dir.path(), true);
    let get = ok(cli(&home, &desktop.env(), None, &["secrets", "get", "mcp:key"], None));
    assert_eq!(text(&get.stdout), "k-0123456789\n", "the store opens from the Secret Service after a reboot");
    assert!(kernel_key_id(&store).is_some(), "the kernel cache is filled again");

    // The cache alone serves a process that cannot reach the Secret Service, and says so.
    let no_bus = [("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}", dir.path().join("no-bus").display()))];
    let get = ok(cli(&home, &no_bus, None, &["secrets", "get", "mcp:key"], None));
    assert_eq!(text(&get.stdout), "k-0123456789\n");
    assert!(text(&get.stderr).contains("cached in the kernel keyring"), "{}", text(&get.stderr));
}

// Issue 22, item 13: a store made again where one was removed gets a key of
// its own; a recovery copy of the old key (or anyone who kept it) does not open it.
#[test]
fn a_store_made_again_gets_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = home.join("secrets.json");
    let _cleanup = KernelKeyCleanup(store.clone());
    let desktop = Desktop::boot(dir.path(), true);
    ok(cli(&home, &desktop.env(), None, &["secrets", "set", "mcp:key"], Some("first-store")));
    let first = desktop.secret_service_value(&store);
    std::fs::remove_file(&store).unwrap();
    ok(cli(&home, &desktop.env(), None, &["secrets", "set", "mcp:key"], Some("second-store")));
    let second = desktop.secret_service_value(&store);
    assert_ne!(first, second, "the new store reuses the removed store's key");
    assert_eq!(kernel_value(&store), second, "the kernel cache holds the new key too");
    let get = ok(cli(&home, &desktop.env(), None, &["secrets", "get", "mcp:key"], None));
    assert_eq!(text(&get.stdout), "second-store\n");
}

#[test]
fn without_a_secret_service_a_new_store_is_refused_and_points_to_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = home.join("secrets.json");
    let _cleanup = KernelKeyCleanup(store.clone());
    // A session bus with nothing answering for the Secret Service (a headless
    // machine), and no session bus at all.
    let desktop = Desktop::boot(dir.path(), false);
    let no_bus = vec![("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}", dir.path().join("no-bus").display()))];
    for env in [desktop.env(), no_bus] {
        let set = cli(&home, &env, None, &["secrets", "set", "mcp:key"], Some("k-0123456789"));
        assert!(!set.status.success());
        let stderr = text(&set.stderr);
        assert!(stderr.contains("no Secret Service answered"), "{stderr}");
        assert!(stderr.contains("PORTCULLIS_SECRETS_PASSWORD"), "{stderr}");
        assert!(!stderr.contains("k-0123456789"));
        assert!(!store.exists(), "no store is written without a durable key");
        assert!(kernel_key_id(&store).is_none(), "and no key is left in the kernel keyring alone");
    }
    // The password is the way out, and needs no keychain.
    ok(cli(&home, &[], Some("pw"), &["secrets", "set", "mcp:key"], Some("k-0123456789")));
    assert_eq!(protection(&store), "password");
}

#[test]
fn a_key_kept_only_in_the_kernel_keyring_is_made_durable() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = home.join("secrets.json");
    let _cleanup = KernelKeyCleanup(store.clone());
    let desktop = Desktop::boot(dir.path(), true);
    ok(cli(&home, &desktop.env(), None, &["secrets", "set", "mcp:key"], Some("k-0123456789")));
    // What an earlier Portcullis left: the key in the kernel keyring and nowhere else.
    desktop.remove_entry_from_secret_service(&store);
    assert!(!desktop.entry_in_secret_service(&store));

    let get = ok(cli(&home, &desktop.env(), None, &["secrets", "get", "mcp:key"], None));
    assert_eq!(text(&get.stdout), "k-0123456789\n");
    assert!(text(&get.stderr).contains("copied the secret-store key from the kernel keyring into the Secret Service"), "{}", text(&get.stderr));
    assert!(desktop.entry_in_secret_service(&store));

    desktop.shut_down();
    clear_kernel_key(&store);
    let desktop = Desktop::boot(dir.path(), true);
    let get = ok(cli(&home, &desktop.env(), None, &["secrets", "get", "mcp:key"], None));
    assert_eq!(text(&get.stdout), "k-0123456789\n", "it survives the reboot that would have lost it");
}

#[test]
fn when_the_keychain_copies_disagree_the_one_that_opens_the_store_wins_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = home.join("secrets.json");
    let _cleanup = KernelKeyCleanup(store.clone());
    let desktop = Desktop::boot(dir.path(), true);
    ok(cli(&home, &desktop.env(), None, &["secrets", "set", "mcp:key"], Some("k-0123456789")));
    let right = desktop.secret_service_value(&store);
    assert_eq!(kernel_value(&store), right);
    // 32 zero bytes: a well-formed key that opens nothing.
    let stale = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    // An old keyring restored from a backup: the Secret Service's copy is
    // stale, the kernel cache still holds the key that opens the store.
    desktop.replace_secret_service_value(&store, stale);
    let get = ok(cli(&home, &desktop.env(), None, &["secrets", "get", "mcp:key"], None));
    assert_eq!(text(&get.stdout), "k-0123456789\n");
    assert!(text(&get.stderr).contains("hold different keys"), "{}", text(&get.stderr));
    assert_eq!(desktop.secret_service_value(&store), right, "the durable copy is corrected");
    assert_eq!(kernel_value(&store), right, "and the cache was not overwritten with the stale key");

    // The other way round: a stale cache, and the Secret Service right.
    replace_kernel_value(&store, stale);
    let get = ok(cli(&home, &desktop.env(), None, &["secrets", "get", "mcp:key"], None));
    assert_eq!(text(&get.stdout), "k-0123456789\n");
    assert_eq!((desktop.secret_service_value(&store), kernel_value(&store)), (right.clone(), right.clone()), "the cache is corrected");

    // While a writer holds the store (`secrets migrate`, a key import), a read
    // still answers but corrects no copy: the writer may be replacing the key.
    replace_kernel_value(&store, stale);
    let writer = std::fs::File::open(home.join("secrets.lock")).unwrap();
    writer.lock().unwrap();
    let get = ok(cli(&home, &desktop.env(), None, &["secrets", "get", "mcp:key"], None));
    assert_eq!(text(&get.stdout), "k-0123456789\n");
    assert_eq!(kernel_value(&store), stale, "nothing is written while a writer holds the store");
    drop(writer);
    ok(cli(&home, &desktop.env(), None, &["secrets", "get", "mcp:key"], None));
    assert_eq!(kernel_value(&store), right, "the next read corrects it");

    // A cache that holds no key at all is simply replaced.
    replace_kernel_value(&store, "not-a-key");
    ok(cli(&home, &desktop.env(), None, &["secrets", "get", "mcp:key"], None));
    assert_eq!(kernel_value(&store), right);

    // Neither opens it: the error says so, and neither copy is touched.
    desktop.replace_secret_service_value(&store, stale);
    replace_kernel_value(&store, "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
    let refused = cli(&home, &desktop.env(), None, &["secrets", "get", "mcp:key"], None);
    assert!(!refused.status.success());
    assert_eq!(desktop.secret_service_value(&store), stale);
    assert_eq!(kernel_value(&store), "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
}

#[test]
fn migrate_moves_a_store_between_keychain_and_password_keeping_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = home.join("secrets.json");
    let _cleanup = KernelKeyCleanup(store.clone());
    let desktop = Desktop::boot(dir.path(), true);
    let env = desktop.env();
    for (name, value) in [("a", "value-a"), ("b", "value-b"), ("registry:refresh", "rt-secret")] {
        ok(cli(&home, &env, None, &["secrets", "set", name], Some(value)));
    }
    let entries = |password: Option<&str>, env: &[(&'static str, String)]| -> Vec<String> {
        ["a", "b", "registry:refresh"].iter().map(|name| text(&ok(cli(&home, env, password, &["secrets", "get", name], None)).stdout)).collect()
    };
    let expected = vec!["value-a\n".to_string(), "value-b\n".into(), "rt-secret\n".into()];

    // To a password: it needs the new password, and refuses without one.
    let refused = cli(&home, &env, None, &["secrets", "migrate", "--to", "password"], None);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("PORTCULLIS_SECRETS_PASSWORD"), "{}", text(&refused.stderr));
    assert_eq!(protection(&store), "keychain");
    ok(cli(&home, &env, Some("new-pw"), &["secrets", "migrate", "--to", "password"], None));
    assert_eq!(protection(&store), "password");
    assert!(!desktop.entry_in_secret_service(&store), "the unused keychain key is deleted");
    assert!(kernel_key_id(&store).is_none());
    assert_eq!(entries(Some("new-pw"), &[]), expected, "every entry opens with the password alone");
    let again = ok(cli(&home, &env, Some("new-pw"), &["secrets", "migrate", "--to", "password"], None));
    assert!(text(&again.stderr).contains("nothing changed"));

    // And back to the keychain: the password opens it one last time.
    let wrong = cli(&home, &env, Some("not-it"), &["secrets", "migrate", "--to", "keychain"], None);
    assert!(!wrong.status.success());
    assert_eq!(protection(&store), "password", "a wrong password changes nothing");
    ok(cli(&home, &env, Some("new-pw"), &["secrets", "migrate", "--to", "keychain"], None));
    assert_eq!(protection(&store), "keychain");
    assert!(desktop.entry_in_secret_service(&store));
    assert_eq!(entries(None, &env), expected, "every entry opens from the keychain, without the password");
}

#[test]
fn an_exported_key_recovers_a_store_whose_keychain_entry_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = home.join("secrets.json");
    let other_home = dir.path().join("other");
    let _cleanup = (KernelKeyCleanup(store.clone()), KernelKeyCleanup(other_home.join("secrets.json")));
    let desktop = Desktop::boot(dir.path(), true);
    let env = desktop.env();
    ok(cli(&home, &env, None, &["secrets", "set", "mcp:key"], Some("k-0123456789")));
    ok(cli(&other_home, &env, None, &["secrets", "set", "x"], Some("y")));

    let export = dir.path().join("portcullis-key.json");
    ok(cli(&home, &env, None, &["secrets", "export-key", export.to_str().unwrap()], None));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&export).unwrap().permissions()) & 0o777;
    assert_eq!(mode, 0o600);
    let again = cli(&home, &env, None, &["secrets", "export-key", export.to_str().unwrap()], None);
    assert!(!again.status.success(), "an export never replaces a file");
    let other_export = dir.path().join("other-key.json");
    ok(cli(&other_home, &env, None, &["secrets", "export-key", other_export.to_str().unwrap()], None));

    // The keychain entry is lost (a new machine, a wiped keyring).
    desktop.remove_entry_from_secret_service(&store);
    clear_kernel_key(&store);
    let lost = cli(&home, &env, None, &["secrets", "get", "mcp:key"], None);
    assert!(!lost.status.success());
    assert!(text(&lost.stderr).contains("portcullis secrets import-key FILE"), "{}", text(&lost.stderr));

    let wrong = cli(&home, &env, None, &["secrets", "import-key", other_export.to_str().unwrap()], None);
    assert!(!wrong.status.success());
    assert!(text(&wrong.stderr).contains("does not open this store"), "{}", text(&wrong.stderr));
    assert!(!desktop.entry_in_secret_service(&store), "a wrong key is not stored");

    ok(cli(&home, &env, None, &["secrets", "import-key", export.to_str().unwrap()], None));
    assert!(desktop.entry_in_secret_service(&store));
    let get = ok(cli(&home, &env, None, &["secrets", "get", "mcp:key"], None));
    assert_eq!(text(&get.stdout), "k-0123456789\n");

    // A password store has no key to export: its password recovers it.
    let pw_home = dir.path().join("pw");
    ok(cli(&pw_home, &[], Some("pw"), &["secrets", "set", "a"], Some("b")));
    let refused = cli(&pw_home, &[], Some("pw"), &["secrets", "export-key", dir.path().join("pw-key.json").to_str().unwrap()], None);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("protected by a password"), "{}", text(&refused.stderr));
}

/// A gateway serving `sk` (shared key, its key in a keychain store) and `open`
/// (anonymous), as a process of a desktop session with `env`.
async fn gateway(dir: &Path, home: &Path, env: &[(&'static str, String)], log: &Path) -> (tokio::process::Child, String, String) {
    let upstream = portcullis_tests::upstream::TestUpstream::start().await;
    let (sk, open) = (portcullis_tests::upstream::closed_port().await.port(), portcullis_tests::upstream::closed_port().await.port());
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            r#"version = 1
[[workloads]]
name = "sk"
listen = "127.0.0.1:{sk}"
upstream = "{upstream}"
public_url = "http://127.0.0.1:{sk}"
  [[workloads.inbound]]
  component = "builtin:shared-key"
  grants = {{ secrets = ["workload:sk:shared-key"] }}
[[workloads]]
name = "open"
listen = "127.0.0.1:{open}"
upstream = "{upstream}"
public_url = "http://127.0.0.1:{open}"
anonymous = true
"#,
            upstream = upstream.url()
        ),
    )
    .unwrap();
    std::mem::forget(upstream); // serves until the test process ends
    let child = tokio::process::Command::new("keyctl")
        .args(["session", "-"])
        .arg(portcullis())
        .args(["run", "--policy", policy.to_str().unwrap()])
        .env("PORTCULLIS_HOME", home)
        .env_remove("PORTCULLIS_SECRETS_PASSWORD")
        .env_remove("DISPLAY")
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (sk, open) = (format!("http://127.0.0.1:{sk}/"), format!("http://127.0.0.1:{open}/"));
    let client = crate::client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(&open).send().await.is_err() {
        assert!(Instant::now() < deadline, "the gateway did not start: {}", std::fs::read_to_string(log).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, sk, open)
}

#[tokio::test]
async fn a_gateway_that_cannot_reach_its_keychain_fails_closed_and_keeps_serving_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = home.join("secrets.json");
    let _cleanup = KernelKeyCleanup(store.clone());
    let desktop = Desktop::boot(dir.path(), true);
    ok(cli(&home, &desktop.env(), None, &["secrets", "set", "workload:sk:shared-key"], Some("sk-0123456789abcdef")));

    // After a reboot, before the desktop keyring is up (or on a machine without one).
    desktop.shut_down();
    clear_kernel_key(&store);
    let no_bus = [("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}", dir.path().join("no-bus").display()))];
    let log = dir.path().join("gateway.log");
    let (child, sk, open) = gateway(dir.path(), &home, &no_bus, &log).await;
    let client = crate::client();
    let refused = client.get(&sk).header("x-portcullis-key", "sk-0123456789abcdef").send().await.unwrap();
    assert_eq!(refused.status(), 503, "no key, no admission");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "key_unavailable", "{body}");
    assert_eq!(client.get(&open).send().await.unwrap().status(), 200, "the other workload keeps serving");
    drop(child);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("the secret store cannot be opened"), "{log}");
    assert!(log.contains("no Secret Service answered") && log.contains("PORTCULLIS_SECRETS_PASSWORD"), "{log}");
    assert!(!log.contains("sk-0123456789abcdef"));

    // Once the desktop keyring is back, the same store serves.
    let desktop = Desktop::boot(dir.path(), true);
    let (_child, sk, _) = gateway(dir.path(), &home, &desktop.env(), &dir.path().join("gateway-2.log")).await;
    assert_eq!(client.get(&sk).header("x-portcullis-key", "sk-0123456789abcdef").send().await.unwrap().status(), 200);
    assert_eq!(client.get(&sk).header("x-portcullis-key", "wrong").send().await.unwrap().status(), 401);
}
