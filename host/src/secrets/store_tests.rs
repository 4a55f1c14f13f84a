use super::*;

fn store(dir: &Path, password: &str) -> SecretStore {
    SecretStore::new(dir, Some(SecretString::from(password.to_owned())))
}

#[test]
fn round_trip_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "correct horse");
    assert!(s.get("a").unwrap().is_none());
    s.set("a", SecretString::from("one".to_owned())).unwrap();
    s.set("b", SecretString::from("two".to_owned())).unwrap();
    assert_eq!(s.get("a").unwrap().unwrap().expose_secret(), "one");
    let again = store(dir.path(), "correct horse");
    assert_eq!(again.list().unwrap(), vec!["a", "b"]);
    assert!(again.delete("a").unwrap());
    assert!(!again.delete("a").unwrap());
    // The first handle sees the other's change (at its next look at the file).
    std::thread::sleep(RECHECK + Duration::from_millis(50));
    assert!(s.get("a").unwrap().is_none());
}

#[test]
fn the_file_does_not_contain_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "pw");
    s.set("token", SecretString::from("very-secret-value".to_owned())).unwrap();
    let text = std::fs::read_to_string(s.path()).unwrap();
    assert!(!text.contains("very-secret-value"));
    assert!(!text.contains("token"), "names are encrypted too");
}

#[test]
fn wrong_password_is_clear_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path(), "right").set("a", SecretString::from("1".to_owned())).unwrap();
    let before = std::fs::read(dir.path().join("secrets.json")).unwrap();
    let wrong = store(dir.path(), "wrong");
    let err = wrong.set("b", SecretString::from("2".to_owned())).unwrap_err();
    assert!(matches!(err, SecretStoreError::WrongPassword { .. }), "{err}");
    assert!(err.to_string().contains("wrong password"));
    assert!(matches!(wrong.get("a"), Err(SecretStoreError::WrongPassword { .. })));
    assert_eq!(before, std::fs::read(dir.path().join("secrets.json")).unwrap());
}

#[test]
fn tampered_header_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "pw");
    s.set("a", SecretString::from("1".to_owned())).unwrap();
    let path = dir.path().join("secrets.json");
    let text = std::fs::read_to_string(&path).unwrap().replace("\"iterations\": 2", "\"iterations\": 3");
    std::fs::write(&path, text).unwrap();
    assert!(store(dir.path(), "pw").get("a").is_err());
}

#[test]
fn another_process_change_is_seen_within_the_recheck_interval() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = store(dir.path(), "pw");
    let cli = store(dir.path(), "pw");
    cli.set("k", SecretString::from("old".to_owned())).unwrap();
    assert_eq!(gateway.get("k").unwrap().unwrap().expose_secret(), "old");
    cli.set("k", SecretString::from("new".to_owned())).unwrap();
    // A sleep can only make the interval pass, never not: this cannot trip under load.
    std::thread::sleep(RECHECK + Duration::from_millis(50));
    assert_eq!(gateway.get("k").unwrap().unwrap().expose_secret(), "new");
    std::fs::remove_file(dir.path().join("secrets.json")).unwrap();
    std::thread::sleep(RECHECK + Duration::from_millis(50));
    assert!(gateway.get("k").unwrap().is_none());
}

#[test]
fn reads_between_checks_are_served_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    // An interval no pause of a loaded machine reaches, so that "in between" holds.
    let gateway = SecretStore { recheck: Duration::from_secs(60), ..store(dir.path(), "pw") };
    store(dir.path(), "pw").set("k", SecretString::from("v".to_owned())).unwrap();
    assert_eq!(gateway.get("k").unwrap().unwrap().expose_secret(), "v");
    // Even a removed file is not noticed until the next check...
    std::fs::remove_file(dir.path().join("secrets.json")).unwrap();
    assert_eq!(gateway.get("k").unwrap().unwrap().expose_secret(), "v");
    // ...which `recheck` (taking a named lock does) brings forward.
    gateway.recheck();
    assert!(gateway.get("k").unwrap().is_none());
}

#[test]
fn a_bounded_write_waits_for_another_writer_only_until_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "pw");
    s.set("a", SecretString::from("1".to_owned())).unwrap();
    let other = s.lock_writers().unwrap();
    let started = Instant::now();
    let err = s.set_within("b", SecretString::from("2".to_owned()), started + Duration::from_millis(200)).unwrap_err();
    assert!(matches!(err, SecretStoreError::Busy { .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(200) && started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(matches!(s.delete_within("a", Instant::now()), Err(SecretStoreError::Busy { .. })));
    drop(other);
    s.set_within("b", SecretString::from("2".to_owned()), Instant::now() + Duration::from_secs(30)).unwrap();
    assert!(s.delete_within("a", Instant::now()).unwrap(), "a free lock is taken even at the deadline");
    assert_eq!(store(dir.path(), "pw").list().unwrap(), vec!["b"]);
}

#[test]
fn a_hostile_header_cannot_ask_for_terabytes() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path(), "pw").set("a", SecretString::from("1".to_owned())).unwrap();
    let path = dir.path().join("secrets.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let hostile = text.replace("\"memory_kib\": 19456", "\"memory_kib\": 4294967295");
    assert_ne!(text, hostile);
    std::fs::write(&path, hostile).unwrap();
    let started = std::time::Instant::now();
    let err = store(dir.path(), "pw").get("a").unwrap_err();
    assert!(matches!(err, SecretStoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("exceed"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused before any derivation");
}

#[test]
fn invalid_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "pw");
    assert!(matches!(s.set("", SecretString::from("x".to_owned())), Err(SecretStoreError::InvalidName(_))));
    assert!(matches!(s.set("a b", SecretString::from("x".to_owned())), Err(SecretStoreError::InvalidName(_))));
}

#[test]
fn a_change_that_writes_nothing_creates_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "pw");
    assert!(!s.delete("absent").unwrap());
    assert!(!s.path().exists(), "no file (and so no key) for a store nothing was written to");
}

#[test]
fn a_failed_open_is_not_retried_on_every_read() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path(), "pw").set("a", SecretString::from("1".to_owned())).unwrap();
    let wrong = store(dir.path(), "not-it");
    assert!(matches!(wrong.get("a"), Err(SecretStoreError::WrongPassword { .. })));
    let again = wrong.get("a").unwrap_err();
    assert!(matches!(again, SecretStoreError::StillUnavailable { .. }), "{again}");
    assert!(again.to_string().contains("does not open"), "the reason is kept: {again}");
}
