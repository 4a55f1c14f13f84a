//! What the host knows of the built-in components' configuration, in one place.
//!
//! Components validate their own `config`; the host reads a few keys of the
//! built-ins' tables for jobs a component cannot do: serving the RFC 9728
//! metadata, reading `jwks_file` (components have no file access), warning
//! about `audiences = []`. (`builtin:shared-key`'s keys are read by [`crate::keys`].)

use super::file::ChainEntryFile;
use serde_json::{Map, Value};

pub const OIDC_VERIFIER: &str = "builtin:oidc-verifier";

/// The issuers and advertised scopes of every OIDC verifier in `inbound`;
/// `None` when no verifier guards the workload.
pub fn oidc_metadata(inbound: &[ChainEntryFile]) -> Option<(Vec<String>, Vec<String>)> {
    let verifiers: Vec<&Map<String, Value>> = inbound.iter().filter(|e| e.component == OIDC_VERIFIER).map(|e| &e.config).collect();
    if verifiers.is_empty() {
        return None;
    }
    let mut issuers: Vec<String> = Vec::new();
    let mut scopes: Vec<String> = Vec::new();
    for config in verifiers {
        for provider in providers(config) {
            if let Some(issuer) = provider.get("issuer").and_then(Value::as_str)
                && !issuers.iter().any(|i| i == issuer)
            {
                issuers.push(issuer.to_owned());
            }
        }
        for key in ["scopes_supported", "required_scopes"] {
            let listed = config.get(key).and_then(Value::as_array).into_iter().flatten();
            scopes.extend(listed.filter_map(|s| s.as_str().map(str::to_owned)));
        }
    }
    scopes.sort();
    scopes.dedup();
    Some((issuers, scopes))
}

/// Whether an OIDC verifier's table turns the audience check off (`audiences = []`).
pub fn audience_check_off(entry: &ChainEntryFile) -> bool {
    entry.component == OIDC_VERIFIER && providers(&entry.config).any(|p| p.get("audiences").and_then(Value::as_array).is_some_and(|a| a.is_empty()))
}

/// The provider tables of a verifier's config: the top level (single-provider
/// form) and each of `providers`.
fn providers(config: &Map<String, Value>) -> impl Iterator<Item = &Map<String, Value>> {
    let listed = config.get("providers").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object);
    std::iter::once(config).chain(listed)
}
