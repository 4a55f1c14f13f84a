//! Write Portcullis auth components in Rust.
//!
//! A component is a type that implements [`Authenticator`] (inbound: decides
//! about each request) or [`Injector`] (outbound: adds credentials toward the
//! upstream), exported with [`export_authenticator!`] or [`export_injector!`]:
//!
//! ```ignore
//! use portcullis_plugin::prelude::*;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { header: String }
//!
//! struct HeaderPresent { header: String }
//!
//! impl Authenticator for HeaderPresent {
//!     type Config = Config;
//!     fn init(config: Config, _context: &Context) -> Result<Self, String> {
//!         Ok(HeaderPresent { header: config.header })
//!     }
//!     fn manifest(&self) -> Manifest {
//!         Manifest::new().consumes(&self.header)
//!     }
//!     fn authenticate(&self, request: &Request) -> Verdict {
//!         match request.single_header(&self.header) {
//!             Ok(Some(_)) => allow("someone").into(),
//!             _ => deny(401).error("missing_header", "Send the header.").into(),
//!         }
//!     }
//! }
//!
//! export_authenticator!(HeaderPresent);
//! ```
//!
//! A [`Server`] answers requests itself, on the [`Route`]s it declares (the
//! embedded OAuth authorization server), with [`Response`]s; it is exported
//! with [`export_server!`]:
//!
//! ```ignore
//! use portcullis_plugin::prelude::*;
//!
//! struct Hello;
//!
//! impl Server for Hello {
//!     type Config = serde_json::Value;
//!     fn init(_config: serde_json::Value, _context: &Context) -> Result<Self, String> {
//!         Ok(Hello)
//!     }
//!     fn routes(&self) -> Vec<Route> {
//!         vec![Route::get("/hello")]
//!     }
//!     fn handle(&self, _request: &Request) -> Response {
//!         Response::new(200).json(&serde_json::json!({ "hello": "world" }))
//!     }
//! }
//!
//! export_server!(Hello);
//! ```
//!
//! What the SDK does for you: it parses the policy's `config` table into your
//! `Config` type (errors name the key), keeps your instance between calls,
//! declares your [`Manifest`] to the gateway once, turns the verdict builders
//! into the contract's records, and wraps the host imports ([`secrets`],
//! [`http`], [`cache`], [`log`], [`crypto`], and for servers [`signing`] and
//! [`store`]) in functions that return `Result`s.
//!
//! The contract is `portcullis:auth@0.2.0`, in `wit/` beside this crate.

// The generated bindings name this crate by path, from inside it too.
extern crate self as portcullis_plugin;

mod authorize;
mod config;
mod export;
pub mod host;
pub mod jwk;
mod manifest;
mod request;
mod response;
pub mod strict_json;
mod verdict;

pub use authorize::{Decision, Identity, McpCall, forbid, permit, step_up};
pub use config::{Context, parse_config};
pub use export::{Authenticator, Authorizer, DeviceLogin, DevicePoll, DeviceStart, Injector, Login, LoginStart, Retry, Server};
pub use host::{cache, crypto, events, http, log, secrets, signing, store};
pub use manifest::Manifest;
/// The rules the gateway and components share, written once
/// ([`portcullis_contract`]): what "loopback" means, the MCP method kinds, the
/// name rule. Decide by these instead of copying them.
pub use portcullis_contract as contract;
pub use portcullis_contract::mcp::{CallKind, Feature, McpMethod};
pub use request::{RepeatedHeader, Request};
pub use response::{Response, Route};
pub use verdict::{Allow, Deny, Forward, Injection, Verdict, abstain, allow, deny, forward};

/// Everything a component usually needs, for `use portcullis_plugin::prelude::*`.
pub mod prelude {
    pub use crate::{
        Allow, Authenticator, Authorizer, CallKind, Context, Decision, Deny, DeviceLogin, DevicePoll, DeviceStart, Forward, Identity, Injection, Injector,
        Login, LoginStart, Manifest, McpCall, Request, Response, Retry, Route, Server, Verdict, abstain, allow, cache, constant_time_eq, crypto, deny, events,
        export_authenticator, export_authorizer, export_device_injector, export_injector, export_interactive_injector, export_server, export_session_injector,
        forbid, forward, http, log, permit, secrets, signing, step_up, store,
    };
    pub use serde::Deserialize;
}

/// Compares two secrets in time that depends only on their lengths, never on
/// where they first differ. Use it for every comparison with a secret value.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

/// The generated bindings and what the export macros expand to. Not part of
/// the SDK's API: it changes with the contract.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{
        authenticate, authorize, begin_device_login, begin_login, finish_login, handle, init_authenticator, init_authorizer, init_injector, init_server,
        inject, logout, poll_device_login, routes, upstream_refused,
    };
    pub use wit_bindgen;

    // `__bindings!(world)`: the export side of one world, generated in the
    // component's own crate (one world per crate) with the host imports and
    // `types` taken from `capabilities` below. Written by build.rs, which knows
    // where this crate's `wit/` is.
    include!(concat!(env!("OUT_DIR"), "/bindings_macro.rs"));

    /// The host imports and the shared `types` interface.
    pub mod capabilities {
        wit_bindgen::generate!({
            path: "wit",
            world: "portcullis:auth/host-capabilities",
            runtime_path: "portcullis_plugin::__private::wit_bindgen::rt",
            generate_all,
        });
    }

    /// The contract's own types, for code that needs them.
    pub use capabilities::portcullis::auth::types as wit;
}
