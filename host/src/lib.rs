//! Portcullis: a WebAssembly-extensible auth gateway.
//!
//! A request arrives on a workload's listener and passes its stages in order
//! ([`proxy::pipeline`]): admission (target, Host and Origin checks, header
//! rules), the MCP read, the inbound chain of Wasm authenticators, MCP
//! authorization, the outbound chain of credential injectors, the upstream
//! (the response streamed back unbuffered), and the MCP response filter. The
//! three MCP stages do nothing on a workload that is not MCP.
//!
//! # A map of the modules, in reading order
//! - [`policy`]: the policy file — its serde form ([`policy::file`]), loaded
//!   into a [`policy::Policy`] with every value parsed once by the module that
//!   uses it, the errors that name file, line and key, and the compile step
//!   into a runtime [`policy::snapshot::Snapshot`].
//! - [`runtime`]: the Wasm plugin runtime — one wasmtime engine, the on-disk
//!   compile cache, the WIT bindings, instance strategies (pooled or per-request)
//!   with deadlines and memory caps, each call in a `plugin.call` span, and the
//!   host capabilities each component is granted ([`runtime::capabilities`]);
//!   [`runtime::setup`] assembles it the one way for run, check, login and
//!   `plugin test`.
//! - [`proxy`]: the data plane — listeners (plain and TLS), the request guard,
//!   the pipeline ([`proxy::pipeline`]: `run` is the list of stages, read it
//!   first), the chain rule, the upstream forwarder and the one place errors
//!   become responses ([`proxy::error`]). A body is read only for a caller the
//!   inbound chain admitted. [`proxy::mcp_stage`] is the one place the path
//!   calls into MCP; skip it to read the plain proxy.
//! - [`mcp`]: MCP workloads — each message read once and checked, calls decided
//!   by authorizers, lists filtered, SSE events split; it knows nothing of the proxy.
//! - [`gateway`]: the running gateway — the current snapshot, reload on SIGHUP
//!   and file change, graceful shutdown.
//! - [`admin`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`telemetry`]: OpenTelemetry export (OTLP/HTTP) of the request's spans
//!   and the metrics, W3C trace context; off unless an endpoint is configured.
//! - [`secrets`]: the encrypted secret store (AES-256-GCM; key from the OS
//!   keychain or Argon2id from a password).
//! - [`store`]: the key-value store behind the `store` import (memory or
//!   Redis), one per process, a namespace per workload and component.
//! - [`plugins`]: installed third-party components (`plugin:NAME`) — the store,
//!   `portcullis.lock`, sources and downloads, minisign signatures.
//! - [`plugin_kit`]: the author's tools — `plugin new`, `plugin test` (the
//!   gateway's own code with stubs), `plugin add`/`update`/`remove`.
//! - [`keys`]: shared keys for `builtin:shared-key` (create, rotate, delete).
//! - [`bridge`]: `portcullis bridge`, MCP stdio ↔ Streamable HTTP with the key added.
//! - [`client_config`]: MCP client configuration entries for a workload.
//! - [`cli`]: the `portcullis` command line; `main.rs` only calls [`cli::main`].
//! - [`home`]: the data directory (`PORTCULLIS_HOME`) and private files in it.
//! - [`platform`]: what differs per OS (conventions, Windows ACLs).
//! - [`origin`]: the one `Origin` type (policy, request guard, HTTP grants).
//! - [`paths`]: the one path rule (request targets, MCP resource URIs).
//! - [`body`]: the one body type of the proxy, the admin listener and MCP.
//! - [`error_chain`]: an error with its causes on one line.
//! - [`http_client`]: the one way to make an HTTP client (its TLS: ring, Mozilla roots).

pub mod admin;
pub mod body;
pub mod bridge;
pub mod cli;
pub mod client_config;
pub mod error_chain;
pub mod gateway;
pub mod home;
pub mod http_client;
pub mod keys;
pub mod mcp;
pub mod origin;
pub mod paths;
pub mod platform;
pub mod plugin_kit;
pub mod plugins;
pub mod policy;
pub mod proxy;
pub mod runtime;
pub mod secrets;
pub mod signing;
pub mod store;
mod task;
pub mod telemetry;
