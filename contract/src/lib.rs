//! The rules the Portcullis gateway and its WebAssembly components must agree
//! on, written once. A security rule kept in two places drifts, and a reader
//! cannot tell which copy wins; every rule here is used on both sides of the
//! Wasm boundary (the host, the built-in components and the SDK that
//! third-party components are written with).
//!
//! `std` only, no dependencies, so it builds for the host and for
//! `wasm32-wasip2` alike and costs a component nothing. Rules that need a URL
//! take its parsed parts: both sides parse with the `url` crate, so they agree
//! on URLs however they are written.
//!
//! - [`net`]: what "loopback" means, and the other rules on a URL's parts.
//! - [`mcp`]: the MCP methods the gateway reads, which ones it authorizes, and
//!   how a list's items are asked about.
//! - [`names`]: the one rule for workload and plugin names.
//! - [`shared_key`]: `builtin:shared-key`'s defaults and its previous-key format.
//! - [`secrets`]: secret names the gateway itself provides.
//! - [`resource_metadata`]: where RFC 9728 protected-resource metadata lives.
//! - [`sessions`]: a user's session at the embedded authorization server, in the store.

pub mod mcp;
pub mod names;
pub mod net;
pub mod resource_metadata;
pub mod secrets;
pub mod sessions;
pub mod shared_key;
