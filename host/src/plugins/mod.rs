//! Drop-in plugin modules: third-party components installed by name.
//!
//! - [`store`]: the modules' bytes in `PORTCULLIS_HOME/plugins`, by sha256.
//! - [`lock`]: `portcullis.lock` beside the policy: name → source, digest, signer.
//! - [`source`]: where a module comes from (a file, an `https://` URL, an OCI
//!   reference) and fetching it, size-capped.
//! - [`oci`]: the CNCF Wasm OCI artifact layout, pulled and pushed.
//! - [`signature`]: minisign signatures checked against the policy's trusted keys.
//!
//! A policy names a module `plugin:NAME` (or `plugin:NAME@VERSION`); the loader
//! takes the digest from the lock file, the bytes from the store, and checks
//! both (and the signature) before compiling. The lock file is watched like the
//! policy, so `portcullis plugin add` or `update` reloads a running gateway.

pub mod lock;
pub mod oci;
pub mod signature;
pub mod source;
pub mod store;

/// The largest module accepted from any source.
pub const MAX_MODULE_BYTES: u64 = 64 * 1024 * 1024;
