//! A user's session, once the login at the identity provider completed: its
//! info record (`portcullis_contract::sessions`), beside the sealed upstream
//! tokens. Ending it (`portcullis sessions revoke`) deletes both; refresh
//! tokens of the session then stop working.

use crate::authorize::Pending;
use crate::kv::Kv;
use portcullis_contract::sessions;
use portcullis_plugin::store::StoreError;
use serde_json::json;

/// Writes the info of the session a completed login opens: its user, its
/// client, and the providers it holds tokens of (the login's own first).
pub fn start(kv: &dyn Kv, login: &Pending, now: u64, ttl: u32) -> Result<(), StoreError> {
    let info = json!({
        "sub": login.subject,
        "client_id": login.client_id,
        "providers": login.connected,
        "created_at": now,
        "expires_at": now + u64::from(ttl),
    });
    kv.put(&sessions::info_key(&login.session), info.to_string().as_bytes(), ttl)
}

/// Whether session `sid` still lives (an operator has not ended it, and it has not expired).
pub fn lives(kv: &dyn Kv, sid: &str) -> Result<bool, StoreError> {
    Ok(kv.get(&sessions::info_key(sid))?.is_some())
}
