//! What a component file is: its world, imports and exports (`portcullis plugin inspect`).

use super::bindings::{AUTHENTICATE_EXPORT, AUTHORIZE_EXPORT, DEVICE_LOGIN_EXPORT, INJECT_EXPORT, LOGIN_EXPORT, RETRY_EXPORT, SERVE_EXPORT};
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub sha256: String,
    pub size_bytes: usize,
    /// `authenticator`, `authorizer`, `credential-injector`, `interactive-injector`, `device-injector`, `authorization-server`, or `unknown`.
    pub world: &'static str,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// What the policy entry's `grants` must give for the imports to work.
    pub grants: Vec<&'static str>,
}

/// The grant each capability import needs; the others (`types`, `cache`,
/// `log`, `crypto`, WASI) need none.
const GRANTS: [(&str, &str); 2] = [
    ("portcullis:auth/secrets@", "secrets = [\"NAME\", ...]: the secret names it reads (and secrets_write for those it stores)"),
    ("portcullis:auth/http-client@", "http = [\"https://ORIGIN\", ...]: the origins it calls (http_private = true for loopback or private addresses)"),
];

/// An engine for reading what a component is (CLI commands; not the gateway's engine).
pub fn engine() -> anyhow::Result<Engine> {
    Ok(Engine::new(wasmtime::Config::new().wasm_component_model(true))?)
}

pub fn inspect(engine: &Engine, wasm: &[u8]) -> anyhow::Result<Inspection> {
    let component = Component::new(engine, wasm).map_err(|e| anyhow::anyhow!("not a valid WebAssembly component: {e:#}"))?;
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_owned()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_owned()).collect();
    let has = |n: &str| exports.iter().any(|e| e == n);
    let world = if has(AUTHENTICATE_EXPORT) {
        "authenticator"
    } else if has(AUTHORIZE_EXPORT) {
        "authorizer"
    } else if has(INJECT_EXPORT) && has(LOGIN_EXPORT) && has(DEVICE_LOGIN_EXPORT) {
        "device-injector"
    } else if has(INJECT_EXPORT) && has(LOGIN_EXPORT) {
        "interactive-injector"
    } else if has(INJECT_EXPORT) && has(RETRY_EXPORT) {
        "session-injector"
    } else if has(INJECT_EXPORT) {
        "credential-injector"
    } else if has(SERVE_EXPORT) {
        "authorization-server"
    } else {
        "unknown"
    };
    let grants = GRANTS.iter().filter(|(prefix, _)| imports.iter().any(|i| i.starts_with(prefix))).map(|(_, grant)| *grant).collect();
    Ok(Inspection { sha256: hex::encode(Sha256::digest(wasm)), size_bytes: wasm.len(), world, imports, exports, grants })
}
