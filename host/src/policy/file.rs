//! The policy file's serde form. Field docs become the JSON Schema's descriptions.

// The runtime and the proxy own these types, and parse them; the file names them.
pub use crate::proxy::chain::ChainRule;
pub use crate::proxy::workload::WorkloadLimitsFile;
pub use crate::runtime::capabilities::GrantsFile;
pub use crate::runtime::plugin::Isolation;
pub use crate::store::{StoreBackend, StoreFile};
pub use crate::telemetry::TelemetryFile;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A Portcullis policy (`portcullis check FILE` validates one).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// The policy format version; only `1` exists.
    pub version: u32,
    /// The admin listener (`/healthz`, `/readyz`, `/metrics`); none when absent.
    pub admin: Option<AdminFile>,
    /// Third-party components by name, referenced from chains as `component = "<name>"`.
    /// Built-in components (`builtin:...`) need no entry.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentFile>,
    /// The workloads: one listener each, in front of one upstream.
    #[serde(default)]
    pub workloads: Vec<WorkloadFile>,
    /// Installed plugin modules (`component = "plugin:NAME"`): signature requirements.
    pub plugins: Option<PluginsFile>,
    /// An audit file of authorization decisions, besides the log.
    pub audit: Option<AuditFileSettings>,
    /// Where the `store` import keeps values (components granted `grants.store`); memory when absent.
    pub store: Option<StoreFile>,
    /// OpenTelemetry export (OTLP/HTTP traces and metrics); none unless an endpoint is set here or in `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub telemetry: Option<TelemetryFile>,
}

/// `[audit]`: where authorization decisions are appended, one JSON line each.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditFileSettings {
    /// The file, relative to the policy file; created with mode 0600, appended to.
    pub file: PathBuf,
    /// Names of tool arguments whose values may be written (none by default:
    /// arguments can hold secrets or personal data).
    #[serde(default)]
    pub arguments: Vec<String>,
}

/// `[plugins]`: what an installed module (`plugin:NAME`, pinned in `portcullis.lock`) must satisfy.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginsFile {
    /// Refuse any `plugin:` module without a valid minisign signature from a trusted key.
    #[serde(default)]
    pub require_signatures: bool,
    /// Minisign public keys (base64, the second line of `minisign.pub`) whose signatures are trusted.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    /// Address to listen on, e.g. `127.0.0.1:9901`. Keep it on loopback: metrics are not authenticated.
    pub listen: SocketAddr,
    /// `Host` values accepted besides the loopback names (`host` or `host:port`),
    /// e.g. the address a metrics scraper uses. Others get 403 (DNS rebinding).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentFile {
    /// Path to the `.wasm` component, relative to the policy file.
    pub path: PathBuf,
    /// The component's SHA-256 (hex). Checked before the component is compiled or run.
    pub sha256: String,
    /// Resource limits for every use of this component.
    #[serde(default)]
    pub limits: LimitsFile,
    /// How instances are reused; see `Isolation`.
    pub isolation: Option<Isolation>,
}

/// Per-component resource limits. A call that exceeds one fails closed.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Wall-clock deadline for one call, in milliseconds (default 100, at most 10000).
    pub deadline_ms: Option<u64>,
    /// Linear-memory cap per instance, in MiB (default 16, at most 64).
    pub memory_mib: Option<u32>,
    /// Calls a pooled instance serves before it is replaced (default 10000).
    pub max_uses: Option<u32>,
    /// Host cache quota of each use of the component, in MiB of keys and values (default 8, 1 to 1024).
    /// Over it, the component's own least recently used entries are dropped (expired ones first).
    pub cache_mib: Option<u32>,
    /// Host cache entries each use of the component may keep (default 10000, 1 to 1000000).
    /// Over it, the component's own least recently used entries are dropped (expired ones first).
    pub cache_entries: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    /// A unique name: used in logs, metrics, secret names and the CLI.
    pub name: String,
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The upstream's base URL (`http://` or `https://`).
    pub upstream: String,
    /// The URL clients use to reach this workload: the resource identifier. Never taken from request headers.
    pub public_url: String,
    /// Extra `Host` values accepted besides `public_url`'s host and the loopback names (`host` or `host:port`).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Extra browser origins accepted (e.g. `https://app.example.com`); requests without `Origin` are fine.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Headers removed from every client request before the chain runs, besides
    /// the defaults (`Forwarded`, every `X-Forwarded-*` and `X-Envoy-*`, `X-Real-IP`,
    /// `X-Client-IP`, `True-Client-IP`, the CDNs' client-address headers, `X-Host`,
    /// `X-Original-URL` and the method overrides: docs/policy.md lists them; and
    /// every header a component of the workload produces). Each is removed in
    /// every spelling (any case, `_` for `-`). For headers your upstream trusts.
    #[serde(default)]
    pub strip_request_headers: Vec<String>,
    /// Keep a client's `X-Request-Id` (when it is 1-128 visible ASCII characters) instead
    /// of replacing it with the gateway's own. Only behind a proxy that sets it.
    #[serde(default)]
    pub trust_request_id: bool,
    /// Continue a client's W3C trace context (`traceparent`, `tracestate`) in the
    /// exported trace instead of starting a new one. Only behind a proxy or mesh that sets it.
    #[serde(default)]
    pub trust_trace_context: bool,
    /// Serve without any authenticator. Required for an empty inbound chain; logged as a warning at start.
    #[serde(default)]
    pub anonymous: bool,
    /// How the inbound chain's verdicts combine.
    #[serde(default)]
    pub chain_rule: ChainRule,
    /// Authenticators, in order.
    #[serde(default)]
    pub inbound: Vec<ChainEntryFile>,
    /// Credential injectors toward the upstream, in order. With an `http://`
    /// upstream that is not loopback (127.0.0.0/8, `::1`, `localhost`) they would
    /// send their credentials in clear: refused unless `allow_cleartext`.
    #[serde(default)]
    pub outbound: Vec<ChainEntryFile>,
    /// Let `outbound` injectors send credentials to an `http://` upstream that is
    /// not loopback, in clear (a trusted private network). Logged as a warning at load.
    #[serde(default)]
    pub allow_cleartext: bool,
    /// Read each POST as an MCP JSON-RPC message (components see its calls;
    /// authorizers decide them). Default: true when `public_url`'s path ends in `/mcp`.
    pub mcp: Option<bool>,
    /// Authorizers (MCP workloads), after `inbound`: every MCP call, and every
    /// item of a list response, needs each of them to allow.
    #[serde(default)]
    pub authorize: Vec<ChainEntryFile>,
    /// A component that answers requests itself on routes it declares (the
    /// embedded OAuth authorization server, `builtin:oauth-server`): it must
    /// export `serve`. Its routes are public, answered ahead of `inbound`,
    /// and never reach the upstream.
    pub server: Option<ChainEntryFile>,
    /// Serve TLS with these PEM files instead of plain HTTP.
    pub tls: Option<TlsFile>,
    /// Extra CA certificates (PEM) trusted for an `https` upstream, besides the system and bundled roots.
    pub upstream_ca: Option<PathBuf>,
    /// Request size and time limits.
    #[serde(default)]
    pub limits: WorkloadLimitsFile,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChainEntryFile {
    /// `builtin:<name>` or the name of an entry in `[components]`.
    pub component: String,
    /// The component's own settings, handed to it as JSON once per instance.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// What this component may use. Everything not granted is refused.
    #[serde(default)]
    pub grants: GrantsFile,
    /// Overrides the component's limits for this use.
    pub limits: Option<LimitsFile>,
    /// Overrides the component's isolation for this use.
    pub isolation: Option<Isolation>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// PEM certificate chain, relative to the policy file.
    pub cert: PathBuf,
    /// PEM private key, relative to the policy file.
    pub key: PathBuf,
}
