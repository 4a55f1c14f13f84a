//! The clients this server knows: listed in the policy, registered (RFC
//! 7591, kept in the store), or described by a Client ID Metadata Document
//! (fetched, see `cimd`). All are public clients that use PKCE.

use crate::config::Config;
pub use crate::register::Client;
use portcullis_plugin::store::{self, StoreError};

/// How long a registered client is kept (the store's cap): a client that
/// comes back after that registers again.
pub const REGISTERED_TTL: u32 = 90 * 24 * 3600;

/// The store key of a registered client.
pub fn registered_key(client_id: &str) -> String {
    format!("client:{client_id}")
}

/// The client `client_id`, if this server trusts it. `Err` only when the store failed.
pub fn lookup(config: &Config, client_id: &str) -> Result<Option<Client>, StoreError> {
    if let Some(listed) = config.clients.iter().find(|c| c.client_id == client_id) {
        return Ok(Some(Client {
            client_id: listed.client_id.clone(),
            redirect_uris: listed.redirect_uris.clone(),
            application_type: None,
            client_name: None,
        }));
    }
    if crate::cimd::is_cimd_client_id(client_id) {
        return if config.cimd { crate::cimd::resolve(client_id) } else { Ok(None) };
    }
    // Registered clients stay valid until their TTL when `registration` is
    // switched off: switching it off stops new registrations.
    // A registered client's id is what `/oauth/register` hands out: nothing else is looked up.
    if crate::random::is_value(client_id) {
        return Ok(store::get(&registered_key(client_id))?.and_then(|bytes| serde_json::from_slice(&bytes).ok()));
    }
    Ok(None)
}

/// Whether a client that was trusted when its login began still is, at a
/// refresh or a code's redemption: still listed, or still registered, or a
/// CIMD client while `cimd` is on. A CIMD document is not fetched again
/// here: its redirect URIs were checked at the authorization, and an outage
/// of the client's site must not end its users' logins. `Err`: the store failed.
pub fn still_trusted(config: &Config, client_id: &str) -> Result<bool, StoreError> {
    if crate::cimd::is_cimd_client_id(client_id) && !config.clients.iter().any(|c| c.client_id == client_id) {
        return Ok(config.cimd);
    }
    lookup(config, client_id).map(|client| client.is_some())
}
