//! A user's session, once the login at the identity provider completed: its
//! info record (`portcullis_contract::sessions`), beside the sealed upstream
//! tokens. Ending it (`portcullis sessions revoke`) deletes both; refresh
//! tokens of the session then stop working.

use crate::kv::Kv;
use portcullis_contract::sessions;
use portcullis_plugin::store::StoreError;
use serde_json::json;

/// Writes session `sid`'s info: `sub` logged in through `provider` for `client_id`.
pub fn start(kv: &dyn Kv, sid: &str, sub: &str, client_id: &str, provider: &str, now: u64, ttl: u32) -> Result<(), StoreError> {
    let info = json!({
        "sub": sub,
        "client_id": client_id,
        "providers": [provider],
        "created_at": now,
        "expires_at": now + u64::from(ttl),
    });
    kv.put(&sessions::info_key(sid), info.to_string().as_bytes(), ttl)
}

/// Whether session `sid` still lives (an operator has not ended it, and it has not expired).
pub fn lives(kv: &dyn Kv, sid: &str) -> Result<bool, StoreError> {
    Ok(kv.get(&sessions::info_key(sid))?.is_some())
}
