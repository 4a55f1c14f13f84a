//! The embedded authorization server's signing keys across reloads: every
//! listed key is published and trusted, the first one signs, a dropped key's
//! tokens are refused; and a rotation (add, move first, drop after the token
//! lifetime) under a steady stream of requests fails none of them.

use crate::oauth_server::Setup;
use portcullis_tests::oauth::{Discovered, Pkce, jwt_parts, listed_code, mcp_status, redeem, refresh};
use reqwest::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

async fn kids_published(server: &Discovered) -> Vec<String> {
    let jwks: serde_json::Value = portcullis_tests::oauth::client().get(server.endpoint("jwks_uri")).send().await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

async fn fresh_token(server: &Discovered) -> (String, String) {
    let pkce = Pkce::new();
    let (request, code) = listed_code(server, &pkce, "alice").await;
    let answer = redeem(server, &request, &code, &pkce.verifier).await;
    (answer.access_token(), answer.refresh_token())
}

fn kid(token: &str) -> String {
    jwt_parts(token).0["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_token_signed_by_a_dropped_key_is_refused() {
    let mut setup = Setup::start(|p| p.keys = keys(&["as-1"])).await;
    let mcp = setup.mcp_url();
    let (old, _) = fresh_token(&setup.server).await;
    let old_kid = kid(&old);
    assert_eq!(kids_published(&setup.server).await, std::slice::from_ref(&old_kid));
    assert_eq!(mcp_status(&mcp, &old).await, StatusCode::OK);

    // The new key first: it signs, both are published, the old key's token still passes.
    setup.policy.keys = keys(&["as-2", "as-1"]);
    setup.gw.reload_with(&setup.policy.toml()).await.unwrap();
    let (new, _) = fresh_token(&setup.server).await;
    let new_kid = kid(&new);
    assert_ne!(new_kid, old_kid, "the first listed key signs");
    assert_eq!(kids_published(&setup.server).await, [new_kid.clone(), old_kid.clone()], "every listed key, signer first");
    assert_eq!(mcp_status(&mcp, &old).await, StatusCode::OK, "a listed key's token stays valid");

    // The old key dropped: its token is refused, the new one passes.
    setup.policy.keys = keys(&["as-2"]);
    setup.gw.reload_with(&setup.policy.toml()).await.unwrap();
    assert_eq!(kids_published(&setup.server).await, [new_kid]);
    assert_eq!(mcp_status(&mcp, &old).await, StatusCode::UNAUTHORIZED, "a dropped key's token is refused");
    assert_eq!(mcp_status(&mcp, &new).await, StatusCode::OK);
}

/// Add a key, move it first, drop the old one once no token in use is signed
/// by it, while a client keeps calling and refreshing: no request fails.
///
/// "After the token lifetime" is what guarantees, in production, that no
/// token in use is the old key's; the server's shortest `access_token_ttl` is
/// 60 s, too long to wait here, so the client refreshes every 0.7 s and the
/// old key is dropped once the client has used only new-key tokens for a
/// second (that a token of a dropped key is refused is the test above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_under_load_without_a_failed_request() {
    let mut setup = Setup::start(|p| p.keys = keys(&["as-1"])).await;
    let (access, refresh_token) = fresh_token(&setup.server).await;
    let first_kid = kid(&access);

    // The client: calls the MCP server continuously and refreshes well before expiry.
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let kids_seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let load = {
        let (server, mcp, stop, calls, failures, kids_seen) =
            (setup.server.clone(), setup.mcp_url(), stop.clone(), calls.clone(), failures.clone(), kids_seen.clone());
        tokio::spawn(async move {
            let (mut access, mut refresh_token, mut issued) = (access, refresh_token, Instant::now());
            let mut problems = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if issued.elapsed() > Duration::from_millis(700) {
                    let answer = refresh(&server, &refresh_token).await;
                    if answer.status != StatusCode::OK {
                        failures.fetch_add(1, Ordering::Relaxed);
                        problems.push(format!("refresh: {answer:?}"));
                        break;
                    }
                    (access, refresh_token, issued) = (answer.access_token(), answer.refresh_token(), Instant::now());
                    let kid = kid(&access);
                    let mut seen = kids_seen.lock().unwrap();
                    if seen.last() != Some(&kid) {
                        seen.push(kid);
                    }
                }
                let status = mcp_status(&mcp, &access).await;
                calls.fetch_add(1, Ordering::Relaxed);
                if status != StatusCode::OK {
                    failures.fetch_add(1, Ordering::Relaxed);
                    problems.push(format!("call with kid {}: {status}", kid(&access)));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            problems
        })
    };

    tokio::time::sleep(Duration::from_secs(1)).await;
    setup.policy.keys = keys(&["as-1", "as-2"]); // add
    setup.gw.reload_with(&setup.policy.toml()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    setup.policy.keys = keys(&["as-2", "as-1"]); // move first
    setup.gw.reload_with(&setup.policy.toml()).await.unwrap();
    // Wait until the client's tokens are the new key's, then a second more.
    for _ in 0..100 {
        if kids_seen.lock().unwrap().last().is_some_and(|k| *k != first_kid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    setup.policy.keys = keys(&["as-2"]); // drop
    setup.gw.reload_with(&setup.policy.toml()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let problems = load.await.unwrap();

    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(calls.load(Ordering::Relaxed) > 50, "the load ran: {} calls", calls.load(Ordering::Relaxed));
    let seen = kids_seen.lock().unwrap().clone();
    // The first token was the old key's; by the end the new key signed (no third kid in between).
    let last = seen.last().expect("the client refreshed");
    assert_ne!(*last, first_kid, "the new key signs by the end: {seen:?}");
    assert!(seen.iter().all(|k| *k == first_kid || k == last), "{seen:?}");
}

/// `signing_keys = ["file:keys/as-1.pem"]` is relative to the policy file (not
/// the working directory), for the server entry as for every chain entry.
#[tokio::test]
async fn a_relative_key_path_is_the_policy_files() {
    let setup = Setup::start(|p| p.key_dir = "keys".into()).await;
    assert_eq!(kids_published(&setup.server).await.len(), 1);
}
