//! The `signing` import: JWS signing with keys the gateway holds
//! (`grants.signing_keys`). The private keys never enter a component.

use super::HostState;
use crate::runtime::bindings::host::portcullis::auth::signing::{Host, SigningError};

impl Host for HostState {
    fn sign(&mut self, _claims_json: String, _typ: String) -> Result<String, SigningError> {
        Err(SigningError::NotGranted)
    }

    fn jwks(&mut self) -> Result<String, SigningError> {
        Err(SigningError::NotGranted)
    }
}
