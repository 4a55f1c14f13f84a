//! Portcullis: a WebAssembly-extensible auth gateway.
//!
//! A request arrives on a workload's listener, passes the request guard (Host and
//! Origin checks, size limits), then the workload's inbound chain of Wasm
//! authenticators, then its outbound chain of credential injectors, and is
//! forwarded to the upstream with the response streamed back unbuffered.
//!
//! # A map of the modules, in reading order
//! - [`policy`]: the policy file — its serde form ([`policy::file`]), the errors
//!   that name file, line and key, and the compile step into a runtime
//!   [`policy::snapshot::Snapshot`].
//! - [`runtime`]: the Wasm plugin runtime — one wasmtime engine, the on-disk
//!   compile cache, the WIT bindings, instance strategies (pooled or per-request)
//!   with deadlines and memory caps, and the host capabilities each component is
//!   granted ([`runtime::capabilities`]).
//! - [`proxy`]: the data plane — listeners (plain and TLS), the request guard,
//!   the pipeline ([`proxy::pipeline`], read it top to bottom), the chain rule,
//!   the upstream forwarder and the one place errors become responses. A body
//!   is read only for a caller the inbound chain admitted.
//! - [`mcp`]: MCP workloads — each message read once and checked, calls decided
//!   by authorizers, lists filtered; [`mcp::stage`] is the one place the
//!   pipeline calls into it.
//! - [`gateway`]: the running gateway — the current snapshot, reload on SIGHUP
//!   and file change, graceful shutdown.
//! - [`admin`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`secrets`]: the encrypted secret store (AES-256-GCM; key from the OS
//!   keychain or Argon2id from a password).
//! - [`keys`]: shared keys for `builtin:shared-key` (create, rotate, delete).
//! - [`bridge`]: `portcullis bridge`, MCP stdio ↔ Streamable HTTP with the key added.
//! - [`client_config`]: MCP client configuration entries for a workload.
//! - [`cli`]: the `portcullis` command line; `main.rs` only calls [`cli::main`].
//! - [`origin`]: the one `Origin` type (policy, request guard, HTTP grants).
//! - [`paths`]: the one path rule (request targets, MCP resource URIs).
//! - [`body`]: the one body type of the proxy, the admin listener and MCP.
//! - [`http_client`]: the one way to make an HTTP client (its TLS: ring, Mozilla roots).

pub mod admin;
pub mod body;
pub mod bridge;
pub mod cli;
pub mod client_config;
pub mod gateway;
pub mod home;
pub mod http_client;
pub mod keys;
pub mod mcp;
pub mod origin;
pub mod paths;
pub mod plugin_kit;
pub mod plugins;
pub mod policy;
pub mod proxy;
pub mod runtime;
pub mod secrets;
