//! Secret names the gateway provides itself, outside the secret store.

/// The secret under which the gateway serves a component its static bearer
/// token, when it has one for it (`PORTCULLIS_REGISTRY_TOKEN`, or the entry's
/// `token_file`). `builtin:registry-token` reads it.
pub const STATIC_TOKEN: &str = "portcullis:static-token";
