//! What third-party authors use besides the SDK (`guest-plugins/portcullis-plugin`):
//!
//! - [`scaffold`]: `portcullis plugin new`, a ready-to-build component crate.
//! - [`trial`]: `portcullis plugin test`, one call without a proxy.
//! - [`install`]: `portcullis plugin add|update|remove|list|push`, installed
//!   modules ([`crate::plugins`]).

pub mod install;
pub mod scaffold;
pub mod trial;
