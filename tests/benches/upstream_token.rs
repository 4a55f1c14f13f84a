//! The per-request cost of `builtin:upstream-token` when the session's token
//! is stored and fresh (nothing to renew): the component call, reading the
//! `sid` from the request's identity, one store read, opening the sealed
//! record, and the header edit. Once with the memory store, once with Redis
//! (a local `redis-server`: the round trip is most of it).
//!
//! `cargo bench -p portcullis-tests --bench upstream_token`; figures go in
//! docs/benchmarks.md (target: at most 5 µs with the memory store).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::runtime::Runtime;
use portcullis::runtime::bindings::types::Identity;
use portcullis::runtime::capabilities::{Grants, GrantsFile, Services};
use portcullis::runtime::verdict::Injection;
use portcullis::secrets::{SecretStore, SecretString};
use portcullis::store::{StoreFile, StoreSettings};
use portcullis_tests::plugin::{injector, mcp_request};
use portcullis_tests::redis::RedisServer;
use std::sync::Arc;

const KEY: [u8; 32] = [7; 32];
const SID: &str = "tawtkUGsAhTx16YXVicZcHnb9Y_eDTARgGW2We7Bk2Q";

/// A session record as `builtin:oauth-server` seals it (`provider-tokens`: version 1, nonce, AES-256-GCM, the key as associated data).
fn sealed_record(now: u64) -> Vec<u8> {
    let record = serde_json::json!({
        "access_token": "gho_16C7e42F292c6912E7710c838347Ae178B4a", "token_type": "bearer", "refresh_token": "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c3",
        "expires_at": now + 3600, "obtained_at": now, "session_expires_at": now + 86400,
        "renewal": {"token_endpoint": "https://github.com/login/oauth/access_token", "client_id": "Iv1.0123456789abcdef"},
    });
    let nonce = [3u8; 12];
    let associated = format!("session:{SID}:github");
    let sealed = Aes256Gcm::new_from_slice(&KEY)
        .unwrap()
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: record.to_string().as_bytes(), aad: associated.as_bytes() })
        .unwrap();
    [&[1u8][..], &nonce, &sealed].concat()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let runtime = Runtime::new(Some(portcullis_tests::gateway::shared_cache_dir())).unwrap();
    let builtin = portcullis::runtime::builtins::lookup("upstream-token").unwrap();
    let component = runtime.component(builtin.sha256(), builtin.wasm).unwrap();
    let redis = RedisServer::start();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // The caller as the verifier establishes it: the server's claims, with the session.
    let mut view = Arc::unwrap_or_clone(mcp_request(&[]));
    let claims = serde_json::json!({"iss": "http://127.0.0.1:8080", "sub": "alice", "aud": "http://127.0.0.1:8080/mcp", "client_id": "cli",
        "scope": "mcp", "iat": now, "exp": now + 900, "jti": "qDYg8ap50LldNTRTxYHBpaWLy8VrSA-n_MtJndbmEFg", "sid": SID});
    view.identity = Some(Identity { subject: "alice".into(), issuer: Some("http://127.0.0.1:8080".into()), claims_json: Some(claims.to_string()) });
    let view = Arc::new(view);
    let redis_store = format!("backend = \"redis\"\nurl = \"{}\"\n", redis.url());
    for (name, store) in [("memory", ""), ("redis", redis_store.as_str())] {
        let home = tempfile::tempdir().unwrap();
        let secrets = Arc::new(SecretStore::new(home.path(), Some(SecretString::from("bench".to_owned()))));
        secrets.set("oauth:token-key", SecretString::from(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, KEY))).unwrap();
        let services = Services::new(secrets.clone());
        let file: Option<StoreFile> = (!store.is_empty()).then(|| toml::from_str(store).unwrap());
        let settings = StoreSettings::parse(file.as_ref()).0.unwrap();
        // Redis connects on the runtime's threads.
        let _inside = rt.enter();
        services.store.open(&settings, &secrets).unwrap();
        let grants_file: GrantsFile = serde_json::from_value(serde_json::json!({"secrets": ["oauth:token-key"], "store": "sessions"})).unwrap();
        let grants = Grants::parse(&grants_file, false).0.unwrap();
        rt.block_on(services.store.namespace("bench", "@sessions").put(&format!("session:{SID}:github"), &sealed_record(now), 3600)).unwrap();
        let config = r#"{"provider":"github","token_key_secret":"oauth:token-key"}"#;
        let plugin = rt.block_on(injector(&runtime, component.clone(), "builtin:upstream-token", config, &grants, &services));
        c.bench_function(&format!("upstream-token/{name}"), |b| {
            b.to_async(&rt).iter(|| async {
                let injection = plugin.inject(&view).await.unwrap();
                assert!(matches!(injection, Injection::Forward(_)));
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
