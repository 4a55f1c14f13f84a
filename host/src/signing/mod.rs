//! Signing with keys the gateway holds: the `signing` import's keys
//! (`grants.signing_keys`), which never enter a component.
//!
//! - [`key`]: one private key (ES256 on P-256, or RS256), read from PEM, with
//!   its public JWK and its RFC 7638 thumbprint as `kid`.
//! - [`key_ring`]: the keys of one grant, in order: the first signs, every one
//!   is published, so a token signed by a key still listed keeps verifying
//!   after a reload that adds, reorders or drops other keys.
//! - [`source`]: where the keys come from (`file:PATH`, `secret:NAME`, or one
//!   ephemeral key per process with `ephemeral_keys = true`) and their checks.

pub mod key;
pub mod key_ring;
pub mod source;

pub use key::{KeyError, SigningKey};
pub use key_ring::{KeyRing, SignError};
pub use source::{EphemeralKeys, KeySource, SigningGrant};
