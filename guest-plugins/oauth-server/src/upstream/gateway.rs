//! The gateway's capabilities as a login uses them, behind one trait, so
//! that the order of the steps (persist first, remove on failure, take the
//! `state` once) is tested natively with a fake, and runs in the gateway
//! with [`Gateway`].

use crate::upstream::{discovery, exchange, jwks, subject};
use portcullis_plugin::{crypto, log, secrets, store};
use serde_json::{Map, Value};

pub trait Host {
    /// Unix seconds.
    fn now(&self) -> u64;
    /// A fresh [`crate::random::value`].
    fn random(&self) -> Result<String, String>;
    fn warn(&self, message: &str);

    fn put_new(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<bool, String>;
    fn put(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<(), String>;
    fn take(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn delete(&self, key: &str) -> Result<(), String>;
    fn secret(&self, name: &str) -> Result<String, String>;

    fn metadata(&self, issuer: &str, issuer_is_local: bool) -> Result<discovery::Metadata, String>;
    fn forget_metadata(&self, issuer: &str);
    fn jwk(&self, jwks_uri: &str, alg: &str, kid: Option<&str>) -> Result<String, String>;
    fn verify_jws(&self, alg: &str, jwk: &str, signing_input: &str, signature: &str) -> Result<bool, String>;
    fn exchange(&self, token_endpoint: &str, client: &exchange::Client, code: &str, redirect_uri: &str, verifier: &str) -> Result<Map<String, Value>, String>;
    fn userinfo(&self, endpoint: &str, access_token: &str) -> Result<Map<String, Value>, String>;
}

/// The real capabilities.
pub struct Gateway;

impl Host for Gateway {
    fn now(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
    fn random(&self) -> Result<String, String> {
        crate::random::value()
    }
    fn warn(&self, message: &str) {
        log::warn(message)
    }
    fn put_new(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<bool, String> {
        store::put_new(key, value, ttl_seconds).map_err(|e| e.to_string())
    }
    fn put(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<(), String> {
        store::put(key, value, ttl_seconds).map_err(|e| e.to_string())
    }
    fn take(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        store::take(key).map_err(|e| e.to_string())
    }
    fn delete(&self, key: &str) -> Result<(), String> {
        store::delete(key).map_err(|e| e.to_string())
    }
    fn secret(&self, name: &str) -> Result<String, String> {
        secrets::get(name).map_err(|e| e.to_string())
    }
    fn metadata(&self, issuer: &str, issuer_is_local: bool) -> Result<discovery::Metadata, String> {
        discovery::metadata(issuer, issuer_is_local)
    }
    fn forget_metadata(&self, issuer: &str) {
        discovery::forget(issuer)
    }
    fn jwk(&self, jwks_uri: &str, alg: &str, kid: Option<&str>) -> Result<String, String> {
        jwks::key(jwks_uri, alg, kid)
    }
    fn verify_jws(&self, alg: &str, jwk: &str, signing_input: &str, signature: &str) -> Result<bool, String> {
        crypto::verify_jws(alg, jwk, signing_input, signature).map_err(|e| e.to_string())
    }
    fn exchange(&self, token_endpoint: &str, client: &exchange::Client, code: &str, redirect_uri: &str, verifier: &str) -> Result<Map<String, Value>, String> {
        exchange::exchange(token_endpoint, client, code, redirect_uri, verifier)
    }
    fn userinfo(&self, endpoint: &str, access_token: &str) -> Result<Map<String, Value>, String> {
        subject::userinfo(endpoint, access_token)
    }
}
