//! `portcullis plugin test`: host responses stubbed from a file, and a record
//! of every host call the component made.
//!
//! When a component's [`super::Capabilities`] carry a [`Trial`], the host
//! imports answer from it instead of the secret store and the network: every
//! secret and origin counts as granted (the record shows which ones the
//! component used, so its author knows what to grant), a secret that is not
//! stubbed is `not-found`, and a request with no stub fails with `connection`.
//! The cache, the log and the crypto import work as in the gateway, and are recorded.

use super::super::bindings::host::portcullis::auth::http_client::{HttpError, IncomingResponse, OutgoingRequest};
use super::super::bindings::host::portcullis::auth::secrets::SecretError;
use super::super::bindings::types::Header;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The stubs file (`--stub STUBS.json`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stubs {
    /// Secret values by name; `null` makes the name not granted.
    #[serde(default)]
    pub secrets: BTreeMap<String, Option<String>>,
    /// Responses to outbound requests, matched by method and exact URL.
    #[serde(default)]
    pub http: Vec<HttpStub>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStub {
    #[serde(default = "get")]
    pub method: String,
    pub url: String,
    #[serde(default = "ok")]
    pub status: u16,
    /// `[name, value]` pairs.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body as text, or any JSON value (sent as its JSON text).
    #[serde(default)]
    pub body: serde_json::Value,
}

fn get() -> String {
    "GET".into()
}

fn ok() -> u16 {
    200
}

/// One host call, as `plugin test` prints it. Secret values never appear.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "call")]
pub enum HostCall {
    #[serde(rename = "secrets.get")]
    SecretGet { name: String, result: &'static str },
    #[serde(rename = "secrets.set")]
    SecretSet { name: String },
    #[serde(rename = "secrets.delete")]
    SecretDelete { name: String },
    #[serde(rename = "secrets.lock")]
    SecretLock { name: String },
    #[serde(rename = "http.send")]
    HttpSend { method: String, url: String, result: String },
    #[serde(rename = "cache.get")]
    CacheGet { key: String, hit: bool },
    #[serde(rename = "cache.set")]
    CacheSet { key: String, bytes: usize, ttl_seconds: u32, stored: bool },
    #[serde(rename = "cache.delete")]
    CacheDelete { key: String },
    #[serde(rename = "log")]
    Log { level: String, message: String },
    #[serde(rename = "crypto.verify-jws")]
    VerifyJws { alg: String, result: String },
}

/// The stubs and the record of one `plugin test` run.
#[derive(Debug, Default)]
pub struct Trial {
    secrets: Mutex<BTreeMap<String, Option<String>>>,
    http: Vec<HttpStub>,
    calls: Mutex<Vec<HostCall>>,
}

impl Trial {
    pub fn new(stubs: Stubs) -> Self {
        Trial { secrets: Mutex::new(stubs.secrets), http: stubs.http, calls: Mutex::new(Vec::new()) }
    }

    pub fn record(&self, call: HostCall) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(call);
    }

    /// The calls recorded since the last `take`.
    pub fn take(&self) -> Vec<HostCall> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn secret_get(&self, name: &str) -> Result<String, SecretError> {
        let result = match self.secrets.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            Some(Some(value)) => Ok(value.clone()),
            Some(None) => Err(SecretError::NotGranted),
            None => Err(SecretError::NotFound),
        };
        let outcome = match &result {
            Ok(_) => "found",
            Err(SecretError::NotGranted) => "not-granted",
            Err(_) => "not-found (no stub)",
        };
        self.record(HostCall::SecretGet { name: name.to_owned(), result: outcome });
        result
    }

    pub fn secret_set(&self, name: &str, value: String) -> Result<(), SecretError> {
        self.record(HostCall::SecretSet { name: name.to_owned() });
        let mut secrets = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(secrets.get(name), Some(None)) {
            return Err(SecretError::NotGranted);
        }
        secrets.insert(name.to_owned(), Some(value));
        Ok(())
    }

    pub fn secret_delete(&self, name: &str) -> Result<(), SecretError> {
        self.record(HostCall::SecretDelete { name: name.to_owned() });
        let mut secrets = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(secrets.get(name), Some(None)) {
            return Err(SecretError::NotGranted);
        }
        secrets.remove(name);
        Ok(())
    }

    /// One call runs at a time in `plugin test`: a lock is always free.
    pub fn secret_lock(&self, name: &str) -> Result<(), SecretError> {
        self.record(HostCall::SecretLock { name: name.to_owned() });
        Ok(())
    }

    pub fn http_send(&self, request: &OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        let stub = self.http.iter().find(|s| s.method.eq_ignore_ascii_case(&request.method) && s.url == request.url);
        let result = match stub {
            Some(stub) => Ok(IncomingResponse {
                status: stub.status,
                headers: stub.headers.iter().map(|(name, value)| Header { name: name.to_ascii_lowercase(), value: value.clone() }).collect(),
                body: match &stub.body {
                    serde_json::Value::Null => Vec::new(),
                    serde_json::Value::String(text) => text.clone().into_bytes(),
                    json => json.to_string().into_bytes(),
                },
            }),
            None => Err(HttpError::Connection(format!("plugin test: no stub for {} {}", request.method, request.url))),
        };
        let outcome = match &result {
            Ok(response) => format!("{} (stub)", response.status),
            Err(_) => "no stub".to_owned(),
        };
        self.record(HostCall::HttpSend { method: request.method.clone(), url: request.url.clone(), result: outcome });
        result
    }
}
