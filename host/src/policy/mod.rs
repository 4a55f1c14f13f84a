//! The policy file: which components guard each workload, and what each may touch.
//!
//! Two forms, as in every config we compile: [`file`] is the serde form of the
//! TOML (unknown keys refused, a JSON Schema for editors), and [`compile`] turns
//! a loaded policy into the runtime [`snapshot::Snapshot`] with components
//! loaded ([`components`]), compiled, configured and linked with exactly their
//! grants. [`load`] reads the file and parses every value once, by the module
//! that uses it (`Grants::parse`, `RequestGuard::parse`,
//! `WorkloadLimits::resolve`); every error it returns is a [`PolicyError`]
//! naming the file, the line and the key, with a hint on how to fix it.

pub mod builtins;
pub mod compile;
pub mod components;
pub mod error;
pub mod file;
pub mod load;
mod location;
pub mod snapshot;

pub use compile::{LoginTarget, login_target};
pub use error::PolicyError;
pub use file::PolicyFile;
pub use load::{Policy, load_file, load_str};

/// The JSON Schema of the policy file, for editors (`portcullis schema`).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(PolicyFile)).expect("schema serialises")
}
