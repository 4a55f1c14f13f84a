//! What third-party authors use besides the SDK (`guest-plugins/portcullis-plugin`):
//!
//! - [`scaffold`]: `portcullis plugin new`, a ready-to-build component crate.
//! - [`trial`]: `portcullis plugin test`, one call without a proxy.

pub mod scaffold;
pub mod trial;
