//! `portcullis logout` and `status` after a real login (the real binary, a
//! real browser, a real OpenID Provider): logout revokes the refresh token at
//! the provider and removes the stored tokens, and `status` never shows a token.

use crate::cli::text;
use crate::registry_token::{command, log_in, policy, stored_tokens};
use portcullis::secrets::{SecretStore, SecretString};
use portcullis_tests::gateway::PASSWORD;
use portcullis_tests::login::RegistryIdp;
use std::path::Path;

/// Everything `portcullis status` prints, stdout and stderr.
async fn status(home: &Path, policy: &Path) -> String {
    let out = command(home, &["status", "--policy", policy.to_str().unwrap()]).output().await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    format!("{}\n{}", text(&out.stdout), text(&out.stderr))
}

/// What the provider answers a refresh with `refresh_token`, as the gateway would ask.
async fn refresh_at(issuer: &str, refresh_token: &str) -> (u16, serde_json::Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", "portcullis-cli"), ("resource", "http://127.0.0.1/registry")];
    let r = crate::client().post(format!("{issuer}/token")).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn logout_revokes_the_refresh_token_and_removes_the_stored_tokens_and_status_never_shows_them() {
    let idp = RegistryIdp::start(3600).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy("http://127.0.0.1:9", &idp.issuer, None)).unwrap();
    log_in(&home, &policy_path, "frank").await;
    let (secret, record) = stored_tokens(&home);
    let tokens = ["access_token", "refresh_token"].map(|key| record[key].as_str().unwrap().to_owned());

    let shown = status(&home, &policy_path).await;
    assert!(shown.contains("authenticated"), "{shown}");
    for token in &tokens {
        assert!(!shown.contains(token.as_str()), "status shows a token");
    }

    let out = command(&home, &["logout", "registry", "--policy", policy_path.to_str().unwrap()]).output().await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    for token in &tokens {
        assert!(!printed.contains(token.as_str()), "logout printed a token: {printed}");
    }
    let store = SecretStore::new(&home, Some(SecretString::from(PASSWORD.to_owned())));
    assert!(store.get(&secret).unwrap().is_none(), "the stored tokens are gone");
    // Revoked at the provider: the refresh token no longer renews anything.
    let (code, answer) = refresh_at(&idp.issuer, &tokens[1]).await;
    assert_eq!((code, answer["error"].as_str()), (400, Some("invalid_grant")), "the refresh token still renews");

    let shown = status(&home, &policy_path).await;
    assert!(shown.contains("configured, not logged in"), "{shown}");
}
