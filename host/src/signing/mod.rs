//! Signing with keys the gateway holds: the `signing` import's keys
//! (`grants.signing_keys`), which never enter a component.
//!
//! - [`key`]: one private key (ES256 on P-256, or RS256), read from PEM, with
//!   its public JWK and its RFC 7638 thumbprint as `kid`.
//! - [`key_ring`]: the keys of one grant, in order: the first signs, every one
//!   is published, so a token signed by a key still listed keeps verifying
//!   after a reload that adds, reorders or drops other keys.
//!
//! Where a grant's keys come from (`file:PATH`, `secret:NAME`, ephemeral) is
//! the capability's business: `runtime::capabilities::signing_grant`.

pub mod key;
pub mod key_ring;

pub use key::{KeyError, SigningKey};
pub use key_ring::{KeyRing, SignError};
