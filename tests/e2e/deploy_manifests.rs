//! The Kubernetes example in deploy/kubernetes/ agrees with itself and with
//! the gateway: the init container's script puts every secret the policy
//! names into the store from a key the Secret has, and `portcullis check`
//! accepts the ConfigMap's policy after that script ran. (The manifests'
//! schema is checked by `kubernetes-validate --strict` in scripts/test.)

use crate::cli::{cli, text};
use base64::Engine as _;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn kubernetes_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(kubernetes_dir().join(name)).unwrap()
}

/// The text of the YAML block scalar that `marker` (e.g. `key: |`) opens in
/// `yaml`, its lines indented by `indent`.
fn block(yaml: &str, marker: &str, indent: usize) -> String {
    let start = yaml.find(&format!("{marker}\n")).unwrap_or_else(|| panic!("no `{marker}` block"));
    let body = &yaml[start..].split_once('\n').unwrap().1;
    let mut out = String::new();
    for line in body.lines() {
        match line.get(..indent) {
            Some(lead) if lead.trim().is_empty() => out.push_str(&line[indent..]),
            _ if line.trim().is_empty() => {}
            _ => break,
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_kubernetes_policy_passes_check_after_the_init_container_stored_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let password = "k8s-example-test";
    // What the init container renders: the pod's IP into the admin listener's allowed hosts.
    let template = block(&read("policy.yaml"), "policy.toml: |", 4);
    assert!(template.contains("${POD_IP}"), "{template}");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, template.replace("${POD_IP}", "10.0.0.7")).unwrap();

    // Values of the Secret's keys, as an operator would create them.
    let secrets = read("secrets.yaml");
    let signing_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let token_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let value_of = |file: &str| -> String {
        assert!(secrets.contains(&format!("\n  {file}: ")), "the init container reads `{file}`, which secrets.yaml does not have");
        match file {
            "signing-key.pem" => signing_key.clone(),
            "token-key" => token_key.clone(),
            other => format!("value of {other}"),
        }
    };

    // The init container's `portcullis secrets set NAME < /run/secrets/portcullis/FILE` lines, run as written.
    let script = block(&read("deployment.yaml"), "- |", 14);
    let mut stored = BTreeSet::new();
    for line in script.lines().filter(|l| l.starts_with("portcullis secrets set ")) {
        let (name, file) = line["portcullis secrets set ".len()..].split_once(" < /run/secrets/portcullis/").unwrap_or_else(|| panic!("{line}"));
        run(&home, password, &["secrets", "set", name], Some(&value_of(file)));
        stored.insert(name.to_owned());
    }
    assert!(script.contains("portcullis check /etc/portcullis/policy.toml"), "{script}");
    // `check` reads some secrets only when first used: every name the policy
    // gives (`*_secret` values, `secret:` signing keys) must be one the script stores.
    let mut named = BTreeSet::new();
    secret_names(&toml::from_str(&template).unwrap(), &mut named);
    assert_eq!(named.len(), 4, "{named:?}");
    assert_eq!(named, stored, "the secrets the policy names, and those the init container stores");

    let checked = run(&home, password, &["check", policy.to_str().unwrap()], None);
    assert!(checked.contains("OK (1 workloads)"), "{checked}");
}

/// The secret names in a policy: the values of `*_secret` keys and the `secret:` entries of `signing_keys`.
fn secret_names(value: &toml::Value, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                match (key.as_str(), value) {
                    (key, toml::Value::String(name)) if key.ends_with("_secret") => {
                        out.insert(name.clone());
                    }
                    ("signing_keys", toml::Value::Array(keys)) => {
                        out.extend(keys.iter().filter_map(|k| k.as_str()?.strip_prefix("secret:")).map(str::to_owned));
                    }
                    _ => secret_names(value, out),
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|item| secret_names(item, out)),
        _ => {}
    }
}

/// Runs the gateway's CLI in `home`; panics unless it succeeds; gives stdout and stderr.
fn run(home: &Path, password: &str, args: &[&str], stdin: Option<&str>) -> String {
    let out = cli(home, password, args, stdin);
    let text = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "portcullis {args:?}: {text}");
    text
}
