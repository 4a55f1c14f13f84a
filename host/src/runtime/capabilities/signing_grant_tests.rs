use super::*;
use crate::policy::{Policy, load_str};
use crate::secrets::SecretString;
use crate::signing::key::tests::{EC_KID, EC_PEM, EC_SEC1_PEM, RSA_KID, RSA_PEM};
use crate::signing::key_ring::tests::verify;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;

/// A key file with `mode` (on Unix).
fn write_key(path: &Path, pem: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, pem).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    #[cfg(not(unix))]
    let _ = mode;
}

/// A policy in `dir` whose one chain entry has these grants.
fn load(dir: &Path, grants: &str) -> Result<Policy, crate::policy::error::PolicyErrors> {
    let source = format!(
        r#"
version = 1
[[workloads]]
name = "demo"
listen = "127.0.0.1:8080"
upstream = "http://127.0.0.1:3001"
public_url = "http://127.0.0.1:8080"
  [[workloads.inbound]]
  component = "builtin:shared-key"
  grants = {{ {grants} }}
"#
    );
    load_str(&dir.join("policy.toml"), source)
}

fn store(dir: &Path) -> SecretStore {
    SecretStore::new(dir, Some(SecretString::from("pw".to_owned())))
}

/// The key ring of the policy's one entry.
fn ring_of(policy: &Policy, secrets: &SecretStore) -> Result<Option<Arc<KeyRing>>, GrantProblem> {
    policy.workloads[0].grants[0][0].signing.key_ring(secrets, &EphemeralKeys::default(), "demo", "builtin:shared-key")
}

fn errors(result: Result<Policy, crate::policy::error::PolicyErrors>) -> Vec<(String, String)> {
    result.unwrap_err().0.into_iter().map(|e| (e.key.to_string(), format!("{}  hint: {}", e.message, e.hint.unwrap_or_default()))).collect()
}

#[test]
fn file_keys_resolve_against_the_policy_file_and_sign_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write_key(&dir.path().join("keys/a.pem"), EC_PEM, 0o600);
    write_key(&dir.path().join("b.pem"), RSA_PEM, 0o400);
    let absolute = dir.path().join("b.pem");
    let policy = load(dir.path(), &format!(r#"signing_keys = ["file:keys/a.pem", "file:{}"]"#, absolute.display())).unwrap();
    let ring = ring_of(&policy, &store(dir.path())).unwrap().unwrap();
    assert_eq!(ring.kids().collect::<Vec<_>>(), [EC_KID, RSA_KID]);
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused_at_its_grant() {
    let dir = tempfile::tempdir().unwrap();
    write_key(&dir.path().join("a.pem"), EC_PEM, 0o600);
    write_key(&dir.path().join("b.pem"), RSA_PEM, 0o644);
    let located = load(dir.path(), r#"signing_keys = ["file:a.pem", "file:b.pem"]"#).unwrap_err();
    assert_eq!(located.0[0].line, Some(10), "the line of the grant");
    let found = errors(Err(located));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "workloads[0].inbound[0].grants.signing_keys[1]");
    assert!(found[0].1.contains("b.pem is readable by other users than its owner (mode 0644)"), "{found:?}");
    assert!(found[0].1.contains("chmod 600"), "{found:?}");
    // Group-readable is as bad.
    std::fs::set_permissions(dir.path().join("b.pem"), std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(load(dir.path(), r#"signing_keys = ["file:b.pem"]"#).is_err());
    std::fs::set_permissions(dir.path().join("b.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(load(dir.path(), r#"signing_keys = ["file:b.pem"]"#).is_ok());
}

#[test]
fn missing_or_unusable_keys_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_key(&dir.path().join("cert.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 0o600);
    let found = errors(load(dir.path(), r#"signing_keys = ["file:nope.pem", "file:cert.pem", "nope", "secret:"]"#));
    let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    // The source syntax first (the files are not read while a source is wrong).
    assert_eq!(keys, ["workloads[0].inbound[0].grants.signing_keys[2]", "workloads[0].inbound[0].grants.signing_keys[3]"], "{found:?}");
    let found = errors(load(dir.path(), r#"signing_keys = ["file:nope.pem", "file:cert.pem"]"#));
    assert!(found[0].1.contains("cannot read the key file") && found[0].0.ends_with("signing_keys[0]"), "{found:?}");
    assert!(found[1].1.contains("no PEM private key") && found[1].1.contains("openssl pkcs8 -topk8"), "{found:?}");
}

#[test]
fn keys_both_listed_and_ephemeral_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let found = errors(load(dir.path(), r#"signing_keys = ["secret:signing:a"], ephemeral_keys = true"#));
    assert_eq!(found[0].0, "workloads[0].inbound[0].grants.signing_keys[0]");
    assert!(found[0].1.contains("both set"), "{found:?}");
}

#[test]
fn a_key_the_component_may_read_as_a_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let found = errors(load(dir.path(), r#"secrets = ["oauth:*"], signing_keys = ["secret:signing:a", "secret:oauth:key"]"#));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "workloads[0].inbound[0].grants.signing_keys[1]");
    assert!(load(dir.path(), r#"secrets = ["oauth:*"], signing_keys = ["secret:signing:oauth:key"]"#).is_ok());
    // Nor one it could replace with a key it knows.
    let found = errors(load(dir.path(), r#"secrets_write = ["signing:*"], signing_keys = ["secret:signing:a"]"#));
    assert_eq!(found[0].0, "workloads[0].inbound[0].grants.signing_keys[0]", "{found:?}");
}

#[test]
fn secret_keys_come_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = store(dir.path());
    secrets.set("signing:a", SecretString::from(EC_SEC1_PEM.to_owned())).unwrap();
    let policy = load(dir.path(), r#"signing_keys = ["secret:signing:a", "secret:signing:b"]"#).unwrap();
    let missing = ring_of(&policy, &secrets).unwrap_err();
    assert_eq!((missing.field, missing.index), ("signing_keys", 1));
    assert!(missing.message.contains("no `signing:b`") && missing.hint.as_deref().unwrap().contains("portcullis secrets set signing:b"), "{missing:?}");
    secrets.set("signing:b", SecretString::from("not a key".to_owned())).unwrap();
    let unusable = ring_of(&policy, &secrets).unwrap_err();
    assert!(unusable.message.starts_with("the secret `signing:b`: no PEM private key"), "{unusable:?}");
    secrets.set("signing:b", SecretString::from(RSA_PEM.to_owned())).unwrap();
    let ring = ring_of(&policy, &secrets).unwrap().unwrap();
    assert_eq!(ring.kids().collect::<Vec<_>>(), [EC_KID, RSA_KID]);
    // The same key twice (by any route) is refused at the second.
    secrets.set("signing:b", SecretString::from(EC_PEM.to_owned())).unwrap();
    assert_eq!(ring_of(&policy, &secrets).unwrap_err().index, 1);
}

#[test]
fn a_reload_rotates_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = store(dir.path());
    write_key(&dir.path().join("old.pem"), EC_PEM, 0o600);
    write_key(&dir.path().join("new.pem"), RSA_PEM, 0o600);
    let reload = |list: &str| ring_of(&load(dir.path(), &format!("signing_keys = [{list}]")).unwrap(), &secrets).unwrap().unwrap();
    // The new key added second: published, not signing.
    let old_token = reload(r#""file:old.pem", "file:new.pem""#).sign("{}", "JWT").unwrap();
    // Moved first: it signs, and the old key's tokens still verify.
    let moved = reload(r#""file:new.pem", "file:old.pem""#);
    let new_token = moved.sign("{}", "JWT").unwrap();
    assert_eq!(moved.signer().kid(), RSA_KID);
    assert_eq!(verify(&old_token, moved.jwks()), Some(Ok(true)));
    // The old key dropped: its tokens find no key; the new key's still verify.
    let dropped = reload(r#""file:new.pem""#);
    assert_eq!(verify(&old_token, dropped.jwks()), None);
    assert_eq!(verify(&new_token, dropped.jwks()), Some(Ok(true)));
}

#[test]
fn ephemeral_keys_are_one_per_entry_and_outlive_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = store(dir.path());
    let policy = load(dir.path(), "ephemeral_keys = true").unwrap();
    let ephemeral = EphemeralKeys::default();
    let grant = &policy.workloads[0].grants[0][0].signing;
    let ring = |component| grant.key_ring(&secrets, &ephemeral, "demo", component).unwrap().unwrap();
    let first = ring("builtin:a");
    // A reload builds the capabilities again, with the same services.
    assert_eq!(ring("builtin:a").signer().kid(), first.signer().kid());
    assert_ne!(ring("builtin:b").signer().kid(), first.signer().kid());
    assert_eq!(first.signer().alg(), "ES256");
    // Neither listed nor ephemeral: not granted.
    let none = load(dir.path(), "").unwrap();
    assert!(ring_of(&none, &secrets).unwrap().is_none());
    assert!(!none.workloads[0].grants[0][0].signing.granted());
}

#[cfg(unix)]
#[test]
fn the_server_s_key_files_are_read_at_load_too() {
    let dir = tempfile::tempdir().unwrap();
    write_key(&dir.path().join("as.pem"), EC_PEM, 0o644);
    let source = r#"
version = 1
[[workloads]]
name = "demo"
listen = "127.0.0.1:8080"
upstream = "http://127.0.0.1:3001"
public_url = "http://127.0.0.1:8080"
anonymous = true
  [workloads.server]
  component = "builtin:oauth-server"
  grants = { signing_keys = ["file:as.pem"] }
"#;
    let found = errors(load_str(&dir.path().join("policy.toml"), source.to_owned()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "workloads[0].server.grants.signing_keys[0]");
    std::fs::set_permissions(dir.path().join("as.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let policy = load_str(&dir.path().join("policy.toml"), source.to_owned()).unwrap();
    let grant = &policy.workloads[0].server.as_ref().unwrap().signing;
    assert!(matches!(&grant.sources[..], [KeySource::Loaded { key, .. }] if key.kid() == EC_KID));
}
