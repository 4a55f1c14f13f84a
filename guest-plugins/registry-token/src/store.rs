//! The OAuth tokens in the secret store, as one secret under `token_key`.

use crate::token::StoredToken;
use portcullis_plugin::log;
use portcullis_plugin::secrets::{self, SecretError};

/// The stored tokens; `None` when nothing (or nothing of ours) is stored.
pub fn read(key: &str) -> Result<Option<StoredToken>, SecretError> {
    match secrets::get(key) {
        Ok(text) => {
            let token = StoredToken::parse(&text);
            if token.is_none() {
                log::warn(&format!("the secret `{key}` does not hold registry tokens in the expected form; the next login replaces it"));
            }
            Ok(token)
        }
        Err(SecretError::NotFound) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Stores `token` with one write: the refresh token and the access token it
/// came with change together.
pub fn write(key: &str, token: &StoredToken) -> Result<(), SecretError> {
    secrets::set(key, &token.to_json())
}

pub fn delete(key: &str) -> Result<(), SecretError> {
    secrets::delete(key)
}
