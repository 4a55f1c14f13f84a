use super::*;
use crate::runtime::capabilities::{Capabilities, GrantsFile};
use crate::secrets::{SecretStore, SecretString};
use crate::signing::key::tests::{EC_KID, EC_PEM};

/// A component's host state, with `grants`, on a fresh secret store holding `signing:a`.
fn host(grants: GrantsFile) -> HostState {
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(dir.path(), Some(SecretString::from("pw".to_owned())));
    store.set("signing:a", SecretString::from(EC_PEM.to_owned())).unwrap();
    let services = Services::new(Arc::new(store));
    let grants = Grants::parse(&grants, false).0.unwrap();
    let label = PluginLabel { workload: "demo".into(), component: "builtin:oauth-server".into() };
    let caps = Capabilities::new(label, &grants, &services, "server", Default::default());
    HostState::new(Arc::new(caps), 1 << 20)
}

#[test]
fn a_granted_component_signs_and_reads_the_jwks() {
    let mut state = host(GrantsFile { signing_keys: vec!["secret:signing:a".into()], ..Default::default() });
    let jws = state.sign(r#"{"sub":"alice"}"#.into(), "at+jwt".into()).unwrap();
    assert_eq!(jws.split('.').count(), 3);
    assert!(state.jwks().unwrap().contains(EC_KID));
    assert_eq!(state.sign("[]".into(), "at+jwt".into()), Err(SigningError::InvalidClaims));
    assert_eq!(state.sign("{}".into(), "at jwt".into()), Err(SigningError::InvalidClaims));
}

#[test]
fn without_keys_signing_is_refused() {
    let mut state = host(GrantsFile::default());
    assert_eq!(state.sign("{}".into(), "JWT".into()), Err(SigningError::NotGranted));
    assert_eq!(state.jwks(), Err(SigningError::NotGranted));
    // A key that cannot be read refuses too (fails closed), not a half ring.
    let mut state = host(GrantsFile { signing_keys: vec!["secret:signing:a".into(), "secret:signing:missing".into()], ..Default::default() });
    assert_eq!(state.sign("{}".into(), "JWT".into()), Err(SigningError::NotGranted));
}
