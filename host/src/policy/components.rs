//! The components a policy names, loaded: a built-in from the binary, a
//! `[components]` file checked against its `sha256` pin, or an installed
//! `plugin:` module checked against the lock file (and its signature) — each
//! check before the bytes reach the compiler.

use super::error::PolicyError;
use super::load::Policy;
use super::location::KeyPath;
use crate::runtime::Runtime;
use crate::runtime::builtins;
use crate::runtime::capabilities::Services;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

/// An installed module: the lock's digest, the store's bytes (checked against
/// it), the signature when the policy requires one, then the compiler.
fn load_plugin(policy: &Policy, reference: &str, key: &KeyPath, runtime: &Runtime, services: &Services) -> Result<Component, PolicyError> {
    let err = |message: String, hint: Option<String>| policy.error_at(key, message, hint);
    let locked = policy.lock.find(reference).ok_or_else(|| err(format!("the plugin `{reference}` is not in portcullis.lock"), None))?;
    let update = Some(format!("`portcullis plugin update {} --policy {}` fetches it again from {}", locked.name, policy.path.display(), locked.source));
    let module = match services.plugins.get(locked.sha256()) {
        Ok(Some(module)) => module,
        Ok(None) => {
            return Err(err(
                format!("the module the lock pins for `{}` ({}) is not in {}", locked.name, locked.digest, services.plugins.dir().display()),
                update,
            ));
        }
        Err(e) => return Err(err(format!("the module the lock pins for `{}` cannot be used: {e:#}", locked.name), update)),
    };
    // The same rule as `plugin add`: a signature, when present, must be good.
    let required = policy.file.plugins.as_ref().is_some_and(|p| p.require_signatures);
    policy.trusted_keys.check(&module.wasm, module.signature.as_deref(), required, &locked.name).map_err(|why| {
        let and = if required { ", and `[plugins] require_signatures = true`" } else { "" };
        err(
            format!("the plugin `{}` is refused: {why}{and}", locked.name),
            Some("its author signs it with `minisign -S -s KEY -m FILE.wasm`; add their public key to `[plugins] trusted_keys`".into()),
        )
    })?;
    runtime.component(locked.sha256(), &module.wasm).map_err(|e| err(format!("the plugin `{}` is not a usable component: {e:#}", locked.name), None))
}

/// The pinned SHA-256 of a component named in the policy.
pub fn component_sha256<'a>(policy: &'a Policy, name: &str) -> &'a str {
    if let Some(reference) = name.strip_prefix("plugin:") {
        return policy.lock.find(reference).map(|p| p.sha256()).unwrap_or_default();
    }
    match name.strip_prefix("builtin:").and_then(builtins::lookup) {
        Some(builtin) => builtin.sha256(),
        None => policy.file.components.get(name).map(|c| c.sha256.as_str()).unwrap_or_default(),
    }
}

/// Reads a component, checks its pin, and compiles it (or takes it from the cache).
pub fn load_component(policy: &Policy, name: &str, key: &KeyPath, runtime: &Runtime, services: &Services) -> Result<Component, PolicyError> {
    let err = |message: String, hint: Option<String>| policy.error_at(key, message, hint);
    if let Some(reference) = name.strip_prefix("plugin:") {
        return load_plugin(policy, reference, key, runtime, services);
    }
    if let Some(builtin) = name.strip_prefix("builtin:") {
        let builtin = builtins::lookup(builtin).ok_or_else(|| err(format!("there is no built-in component `{builtin}`"), None))?;
        return runtime.component(builtin.sha256(), builtin.wasm).map_err(|e| err(format!("the built-in component failed to compile: {e:#}"), None));
    }
    let declared = policy.file.components.get(name).ok_or_else(|| err(format!("no `[components.{name}]` table"), None))?;
    let path = policy.resolve(&declared.path);
    let component_key = KeyPath::root().key("components").key(name);
    let wasm = std::fs::read(&path).map_err(|e| {
        policy.error_at(&component_key.key("path"), format!("cannot read {}: {e}", path.display()), Some("the path is relative to the policy file".into()))
    })?;
    // The pin is checked before the bytes go anywhere near the compiler.
    let actual = hex::encode(Sha256::digest(&wasm));
    if !actual.eq_ignore_ascii_case(&declared.sha256) {
        return Err(policy.error_at(
            &component_key.key("sha256"),
            format!("{} does not match its pin: the policy pins sha256 {}, the file's is {actual}", path.display(), declared.sha256),
            Some("if you rebuilt the component on purpose, update `sha256` (`portcullis plugin hash FILE`); otherwise the file was changed".into()),
        ));
    }
    runtime
        .component(&actual, &wasm)
        .map_err(|e| policy.error_at(&component_key.key("path"), format!("{} is not a usable component: {e:#}", path.display()), None))
}
