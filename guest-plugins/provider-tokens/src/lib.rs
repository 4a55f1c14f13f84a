//! An OAuth client's tokens from an upstream provider. Two components share
//! them: `builtin:oauth-server` obtains them when a user logs in
//! (federation) and `builtin:upstream-token` renews them and injects the
//! user's access token toward the MCP server. What they agree on is here, once:
//!
//! - [`tokens`]: the record, sealed ([`seal`]) under `session:{sid}:{provider}`
//!   in the store namespace both are granted;
//! - [`exchange`]: the provider's token endpoint (code exchange, refresh);
//! - [`placement`]: the header a token goes in, and the provider-name rule;
//! - [`session`]: the caller's session, from the identity the chain verified;
//! - [`fetch`], [`text`]: one bounded request, and reading its answer.

pub mod exchange;
pub mod fetch;
pub mod placement;
pub mod seal;
pub mod session;
pub mod text;
pub mod tokens;
