//! The `signing` import: JWS signing with keys the gateway holds
//! (`grants.signing_keys`, see [`crate::signing`]). The private keys never
//! enter a component: it hands over claims and gets a compact JWS back.

use super::{Grants, HostState, PluginLabel, Services};
use crate::runtime::bindings::host::portcullis::auth::signing::{Host, SigningError};
use crate::signing::{KeyRing, SignError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The key ring of a chain entry, built with its capabilities. File keys were
/// read (and checked) by the policy loader; keys from the secret store are
/// read here. A key that cannot be read leaves signing refused (fails closed),
/// with an error naming the grant.
pub(super) fn key_ring(label: &PluginLabel, grants: &Grants, services: &Services) -> Option<Arc<KeyRing>> {
    match grants.signing.key_ring(&services.secret_store, &services.ephemeral_keys, &label.workload, &label.component) {
        Ok(ring) => ring,
        Err(problem) => {
            tracing::error!(workload = %label.workload, component = %label.component,
                "signing refused: `grants.signing_keys[{}]`: {}", problem.index, problem.message);
            None
        }
    }
}

/// A refusal is a policy fact: worth one warning per process, not one per token.
static REFUSAL_REPORTED: AtomicBool = AtomicBool::new(false);

impl HostState {
    fn key_ring(&self) -> Result<&KeyRing, SigningError> {
        match &self.caps.signing {
            Some(ring) => Ok(ring),
            None => {
                let label = &self.caps.label;
                if !REFUSAL_REPORTED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(workload = %label.workload, component = %label.component,
                        "refused signing: the policy grants this component no signing keys (reported once)");
                }
                Err(SigningError::NotGranted)
            }
        }
    }
}

impl Host for HostState {
    fn sign(&mut self, claims_json: String, typ: String) -> Result<String, SigningError> {
        self.key_ring()?.sign(&claims_json, &typ).map_err(|error| match error {
            SignError::InvalidClaims | SignError::InvalidType => SigningError::InvalidClaims,
            // The WIT has no variant for it: the system's RNG failed, which
            // a component cannot fix; it is told signing is unavailable.
            SignError::Crypto => {
                tracing::error!(workload = %self.caps.label.workload, "signing failed: {error}");
                SigningError::NotGranted
            }
        })
    }

    fn jwks(&mut self) -> Result<String, SigningError> {
        self.key_ring().map(KeyRing::jwks_json)
    }
}

#[cfg(test)]
#[path = "signing_tests.rs"]
mod tests;
