//! Compiling a loaded policy into the runtime [`Snapshot`]: its parsed values
//! consumed as they are, components loaded ([`super::components`]), linked
//! with exactly their grants, and initialised with their configuration.

use super::builtins as builtins_config;
use super::components::{component_sha256, load_component};
use super::error::{PolicyError, PolicyErrors};
use super::file::{ChainEntryFile, Isolation, LimitsFile, WorkloadFile};
use super::load::{ParsedWorkload, Policy};
use super::location::KeyPath;
use super::snapshot::Snapshot;
use crate::mcp::annotations::{self, ToolAnnotations};
use crate::mcp::audit::AuditFile;
use crate::mcp::authorize::Authorizers;
use crate::proxy::chain::InboundChain;
use crate::proxy::error::GatewayError;
use crate::proxy::headers::HeaderRules;
use crate::proxy::resource_metadata::ProtectedResource;
use crate::proxy::routes::{MAX_ROUTE_BODY_BYTES, Routes};
use crate::proxy::server::ConnectionLimits;
use crate::proxy::upstream::Upstream;
use crate::proxy::workload::{McpSettings, Workload};
use crate::runtime::capabilities::{Grants, Mode, PluginLabel, Services, cache};
use crate::runtime::plugin::{Limits, Plugin, Role};
use crate::runtime::setup::{Access, Entry, Host, set_up};
use crate::secrets::SecretString;
use crate::telemetry::trace::FixedAttributes;
use opentelemetry::KeyValue;
use portcullis_contract::resource_metadata;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::Component;

/// Builds a snapshot. All components are compiled before any is instantiated,
/// and each distinct component is compiled once however often it is used.
pub async fn compile(policy: &Policy, host: &Host) -> Result<Snapshot, PolicyErrors> {
    let mut errors = Vec::new();
    let mut components: HashMap<String, Component> = HashMap::new();
    let mut workloads = HashMap::new();
    open_store(policy, host)?;
    let audit = match audit_file(policy, &host.services) {
        Ok(audit) => audit,
        Err(error) => return Err(PolicyErrors(vec![error])),
    };
    for (n, (file, parsed)) in policy.file.workloads.iter().zip(&policy.workloads).enumerate() {
        let key = KeyPath::root().key("workloads").index(n);
        match compile_workload(policy, file, parsed, &key, host, &mut components, audit.as_ref()).await {
            Ok(workload) => {
                workloads.insert(workload.name.clone(), Arc::new(workload));
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(PolicyErrors(errors));
    }
    Ok(Snapshot { workloads, admin: policy.admin.clone() })
}

#[allow(clippy::too_many_arguments)]
async fn compile_workload(
    policy: &Policy,
    file: &WorkloadFile,
    parsed: &ParsedWorkload,
    key: &KeyPath,
    host: &Host,
    components: &mut HashMap<String, Component>,
    audit: Option<&Arc<AuditFile>>,
) -> Result<Workload, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let name: Arc<str> = file.name.as_str().into();
    let ParsedWorkload { public_url, upstream: upstream_url, strip_request_headers, mcp, guard, limits, grants, server: server_grants } = parsed;

    let tls = match &file.tls {
        Some(tls) => match crate::proxy::tls::server_config(&policy.resolve(&tls.cert), &policy.resolve(&tls.key)) {
            Ok(config) => Some(config),
            Err(e) => {
                errors.push(policy.error_at(&key.key("tls"), format!("{e:#}"), Some("`cert` and `key` are PEM files, relative to the policy file".into())));
                None
            }
        },
        None => None,
    };
    let upstream = match crate::proxy::tls::client_config(file.upstream_ca.as_deref().map(|p| policy.resolve(p)).as_deref())
        .and_then(|tls| Upstream::new(upstream_url, tls, limits.upstream_timeout))
    {
        Ok(upstream) => Some(upstream),
        Err(e) => {
            errors.push(policy.error_at(&key.key("upstream_ca"), format!("{e:#}"), None));
            None
        }
    };

    // One bound on the instances of the workload's chain components; each
    // position keeps at most its share idle (the loader checked there is one each).
    let max_instances = limits.max_instances;
    let instances = Arc::new(tokio::sync::Semaphore::new(max_instances));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let positions = file.inbound.len() + file.outbound.len() + file.authorize.len();
    let max_idle = (max_instances / positions.max(1)).clamp(1, cores * 4);
    // The server first: an inbound verifier may trust its keys (`embedded_server`).
    let mut routes = None;
    let mut server_jwks = None;
    if let (Some(entry), Some(grants)) = (&file.server, server_grants) {
        let server_key = key.key("server");
        // A bound of its own, as large: its routes are public, and callers
        // without credentials keeping it busy must not take the instances
        // the chain needs to admit anyone.
        let own = Arc::new(tokio::sync::Semaphore::new(max_instances));
        let place = Place { key: &server_key, role: Role::Server, position: 0, instances: own, max_idle };
        match compile_entry(policy, file, entry, grants, place, host, components, None).await {
            Ok(server) => {
                server_jwks = server.signing_jwks();
                match Routes::new(server, |path| reserved_path(public_url, path), limits.max_pending_body_bytes as usize) {
                    Ok(mounted) => routes = Some(mounted),
                    Err(why) => {
                        errors.push(policy.error_at(&server_key, format!("the component's routes are refused: {why}"), Some(setup_hint(&entry.component))))
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    let mut chains: [Vec<Arc<Plugin>>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for (chain, role, entries) in [(0, Role::Authenticator, &file.inbound), (1, Role::Injector, &file.outbound), (2, Role::Authorizer, &file.authorize)] {
        let chain_key = key.key(chain_name(role));
        for (position, (entry, grants)) in entries.iter().zip(&grants[chain]).enumerate() {
            // A verifier that trusts a server which failed has its error already (the server's).
            if file.server.is_some() && routes.is_none() && builtins_config::embedded_server(entry) == Ok(true) {
                continue;
            }
            let entry_key = chain_key.index(position);
            let place = Place { key: &entry_key, role, position, instances: instances.clone(), max_idle };
            match compile_entry(policy, file, entry, grants, place, host, components, server_jwks.as_deref()).await {
                Ok(plugin) => chains[chain].push(plugin),
                Err(e) => errors.push(e),
            }
        }
    }
    let upstream = match upstream {
        Some(upstream) if errors.is_empty() => upstream,
        _ => return Err(errors),
    };
    let [inbound, outbound, authorize] = chains;
    let outbound_logs_in =
        file.outbound.iter().any(|e| components.get(&e.component).is_some_and(|c| crate::runtime::login::LoginSession::offered_by(&host.runtime, c)));
    // Produced headers are stripped from the client's request before the chain:
    // a header one authenticator produces cannot be another's credential.
    for plugin in &inbound {
        if let Some(clash) = plugin.manifest().produces.iter().find(|h| inbound.iter().any(|p| p.manifest().consumes.contains(h))) {
            return Err(vec![policy.error_at(
                &key.key("inbound"),
                format!("`{}` produces the header `{clash}`, which an authenticator of this workload consumes as a credential", plugin.label.component),
                Some("give the produced identity header another name in the component's config".into()),
            )]);
        }
    }
    let max_message_bytes = limits.max_mcp_message_bytes;
    Ok(Workload {
        metrics: host.metrics.workload(&file.name, &GatewayError::OUTCOMES),
        guard: guard.clone(),
        headers: HeaderRules::new(inbound.iter().map(|p| p.manifest()), outbound.iter().map(|p| p.manifest()), strip_request_headers),
        protected_resource: builtins_config::oidc_metadata(&file.inbound, routes.is_some().then(|| builtins_config::server_issuer(public_url)).as_deref())
            .map(|(issuers, scopes)| ProtectedResource::new(public_url, &file.public_url, &issuers, &scopes)),
        inbound: InboundChain { rule: file.chain_rule, plugins: inbound, anonymous: file.anonymous },
        outbound,
        outbound_logs_in,
        mcp: mcp.then(|| {
            let tools = Arc::new(ToolAnnotations::default());
            let reads_annotations = authorize.iter().any(|p| annotations::read_by(p.config_json()));
            McpSettings {
                max_message_bytes,
                authorizers: Authorizers {
                    plugins: authorize.into(),
                    audit: audit.cloned(),
                    annotations: reads_annotations.then(|| tools.clone()),
                    arguments: limits.arguments,
                },
                tools,
                held_before_decision: tokio::sync::Semaphore::new(limits.max_pending_body_bytes.min(tokio::sync::Semaphore::MAX_PERMITS as u64) as usize),
            }
        }),
        upstream,
        tls,
        listen: file.listen,
        trust_request_id: file.trust_request_id,
        trust_trace_context: file.trust_trace_context,
        span_attributes: FixedAttributes::new(&[KeyValue::new("workload", name.clone())]),
        public_url: public_url.clone(),
        max_body_bytes: limits.max_body_bytes,
        body_pace: limits.body_pace,
        connections: ConnectionLimits {
            max_connections: limits.max_connections,
            header_timeout: limits.header_timeout,
            idle_timeout: limits.idle_timeout,
            // One MCP message, or one route's body, per connection.
            held_before_decision: if *mcp { max_message_bytes } else { 0 }.max(if routes.is_some() { MAX_ROUTE_BODY_BYTES } else { 0 }),
        },
        routes,
        name,
    })
}

/// Whose `path` is, if a workload's server may not declare it as a route:
/// the metadata paths are the gateway's, and the resource's own path is the
/// upstream's (the MCP endpoint).
fn reserved_path(public_url: &url::Url, path: &str) -> Option<&'static str> {
    if path == resource_metadata::WELL_KNOWN || path.strip_prefix(resource_metadata::WELL_KNOWN).is_some_and(|rest| rest.starts_with('/')) {
        Some("the gateway's own (the protected-resource metadata)")
    } else if path.trim_end_matches('/') == public_url.path().trim_end_matches('/') {
        Some("the resource's own path (`public_url`), which the upstream serves")
    } else {
        None
    }
}

/// Where a chain entry sits: its policy key, role and position, and its workload's instance bound.
struct Place<'a> {
    key: &'a KeyPath,
    role: Role,
    position: usize,
    instances: Arc<tokio::sync::Semaphore>,
    max_idle: usize,
}

/// Sets up one entry at `place`; `server_jwks` is the workload's server's key
/// set, for a verifier that trusts it (`embedded_server`).
#[allow(clippy::too_many_arguments)]
async fn compile_entry(
    policy: &Policy,
    workload: &WorkloadFile,
    entry: &ChainEntryFile,
    grants: &Grants,
    place: Place<'_>,
    host: &Host,
    components: &mut HashMap<String, Component>,
    server_jwks: Option<&str>,
) -> Result<Arc<Plugin>, PolicyError> {
    let Place { key, role, position, instances, max_idle } = place;
    let component = match components.get(&entry.component) {
        Some(c) => c.clone(),
        None => {
            let c = load_component(policy, &entry.component, key, &host.runtime, &host.services)?;
            components.insert(entry.component.clone(), c.clone());
            c
        }
    };
    let declared = policy.file.components.get(&entry.component);
    let isolation = entry.isolation.or(declared.and_then(|c| c.isolation)).unwrap_or(Isolation::Pooled);
    let prepared = prepare_entry(policy, workload, entry, key, &format!("{}[{position}]", chain_name(role)), server_jwks)?;
    let entry_spec = Entry {
        access: prepared.access(grants),
        role,
        component,
        config_json: prepared.config_json.clone(),
        // As written in the policy: it is the resource identifier tokens are issued for.
        public_url: workload.public_url.clone(),
        limits: prepared.limits,
        isolation,
        instances,
        max_idle,
    };
    set_up(&host.runtime, &host.services, &host.metrics, entry_spec).await.map_err(|e| policy.error_at(key, e.to_string(), Some(setup_hint(&entry.component))))
}

/// `[audit] file`, opened for appending; not during `portcullis check`, which changes nothing.
fn audit_file(policy: &Policy, services: &Services) -> Result<Option<Arc<AuditFile>>, PolicyError> {
    let Some(settings) = &policy.file.audit else {
        return Ok(None);
    };
    if services.mode == Mode::Check {
        return Ok(None);
    }
    let path = policy.resolve(&settings.file);
    AuditFile::open(&path, settings.arguments.clone())
        .map(|file| Some(Arc::new(file)))
        .map_err(|e| policy.error_at(&KeyPath::root().key("audit").key("file"), format!("cannot open {} for appending: {e}", path.display()), None))
}

/// Opens the store `[store]` names, before any component is granted a namespace in it.
fn open_store(policy: &Policy, host: &Host) -> Result<(), PolicyErrors> {
    host.services.store.open(&policy.store, &host.services.secret_store).map(drop).map_err(|e| {
        let hint = Some("set the secret with `portcullis secret set NAME`, or fix `[store]`".to_string());
        PolicyErrors(vec![policy.error_at(&KeyPath::root().key("store").key(e.field), e.message, hint)])
    })
}

/// The policy key of a role's chain.
fn chain_name(role: Role) -> &'static str {
    match role {
        Role::Authenticator => "inbound",
        Role::Injector => "outbound",
        Role::Authorizer => "authorize",
        Role::Server => "server",
    }
}

/// What a chain entry's component is set up with, besides its grants.
struct Prepared {
    label: PluginLabel,
    config_json: String,
    cache_scope: String,
    quota: cache::Quota,
    static_token: Option<SecretString>,
    limits: Limits,
}

impl Prepared {
    /// What the entry may use, with its `grants`.
    fn access<'a>(&'a self, grants: &'a Grants) -> Access<'a> {
        Access {
            label: self.label.clone(),
            grants,
            cache_scope: &self.cache_scope,
            quota: self.quota,
            provided: self.static_token.clone().map(|token| (builtins_config::STATIC_TOKEN_SECRET, token)),
        }
    }
}

/// The configuration, cache scope and limits of the chain entry at `key`
/// (`position` is its chain and index, e.g. `outbound[0]`).
fn prepare_entry(
    policy: &Policy,
    workload: &WorkloadFile,
    entry: &ChainEntryFile,
    key: &KeyPath,
    position: &str,
    server_jwks: Option<&str>,
) -> Result<Prepared, PolicyError> {
    let declared = policy.file.components.get(&entry.component);
    let base_limits = declared.map(|c| &c.limits);
    let (mut limits, quota) = merge_limits(entry.limits.as_ref(), base_limits);
    if let Some(deadline) = builtins_config::default_deadline(entry)
        && entry.limits.as_ref().and_then(|l| l.deadline_ms).or(base_limits.and_then(|l| l.deadline_ms)).is_none()
    {
        limits.deadline = deadline;
    }
    let label = PluginLabel { workload: workload.name.as_str().into(), component: entry.component.as_str().into() };
    let config_json = component_config(policy, workload, entry, key, server_jwks)?;
    // The cache scope names the chain position and fingerprints what the
    // component is and may do: after a reload that changes any of it, nothing
    // the old configuration cached (verified tokens, key sets) is visible.
    let fingerprint = {
        let mut hash = Sha256::new();
        for part in [component_sha256(policy, &entry.component).as_bytes(), config_json.as_bytes(), format!("{:?}", entry.grants).as_bytes()] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        hex::encode(&hash.finalize()[..8])
    };
    let registries = policy.file.workloads.iter().flat_map(|w| &w.outbound).filter(|e| e.component == builtins_config::REGISTRY_TOKEN).count();
    let static_token = builtins_config::static_token(entry, registries, |file| policy.resolve(std::path::Path::new(file)))
        .map_err(|e| policy.error_at(&key.key("config").key("token_file"), e, None))?;
    Ok(Prepared { label, config_json, cache_scope: format!("{position}@{fingerprint}"), quota, static_token, limits })
}

/// An outbound entry whose component offers an interactive login, ready for
/// `portcullis login` / `logout`.
pub struct LoginTarget {
    pub session: crate::runtime::login::LoginSession,
    /// The loopback port the callback listener binds (`callback_port`).
    pub callback_port: u16,
}

/// Sets up the first outbound entry of `workload_name` whose component offers
/// a login, and calls its `init`.
pub async fn login_target(policy: &Policy, workload_name: &str, host: &Host) -> anyhow::Result<LoginTarget> {
    use crate::runtime::login::{LoginSession, LoginSettings};
    let (n, workload) = policy.file.workloads.iter().enumerate().find(|(_, w)| w.name == workload_name).ok_or_else(|| {
        let names: Vec<&str> = policy.file.workloads.iter().map(|w| w.name.as_str()).collect();
        anyhow::anyhow!("the policy has no workload `{workload_name}` (it has: {})", names.join(", "))
    })?;
    for (position, entry) in workload.outbound.iter().enumerate() {
        let key = KeyPath::root().key("workloads").index(n).key("outbound").index(position);
        let component = load_component(policy, &entry.component, &key, &host.runtime, &host.services)?;
        if !LoginSession::offered_by(&host.runtime, &component) {
            continue;
        }
        let prepared = prepare_entry(policy, workload, entry, &key, &format!("outbound[{position}]"), None)?;
        open_store(policy, host)?;
        let caps = Arc::new(prepared.access(&policy.workloads[n].grants[1][position]).capabilities(&host.services));
        let settings = LoginSettings {
            config_json: prepared.config_json,
            workload: workload.name.clone(),
            public_url: workload.public_url.clone(),
            memory_bytes: prepared.limits.memory_bytes,
        };
        let session = LoginSession::start(&host.runtime, &component, caps, settings).await?;
        return Ok(LoginTarget { session, callback_port: builtins_config::callback_port(entry) });
    }
    anyhow::bail!("workload `{workload_name}` has no outbound component with an interactive login (such as builtin:registry-token)")
}

/// The component's config as JSON: the files a built-in names read inline
/// ([`builtins_config::inline_files`]: components have no file access), the
/// registry token's secret name added, and a verifier that trusts the
/// workload's server given its issuer, audience and keys (`server_jwks`).
fn component_config(policy: &Policy, workload: &WorkloadFile, entry: &ChainEntryFile, key: &KeyPath, server_jwks: Option<&str>) -> Result<String, PolicyError> {
    let mut config = entry.config.clone();
    if entry.component == builtins_config::REGISTRY_TOKEN {
        builtins_config::registry_token_config(&mut config, &workload.upstream);
    }
    if entry.component == builtins_config::OIDC_VERIFIER {
        let public_url = url::Url::parse(&workload.public_url).map_err(|e| policy.error_at(key, format!("public_url: {e}"), None))?;
        builtins_config::embedded_verifier_config(&mut config, &public_url, &workload.public_url, server_jwks)
            .map_err(|why| policy.error_at(&key.key("config").key(builtins_config::EMBEDDED_SERVER), why, None))?;
    }
    builtins_config::inline_files(&entry.component, &mut config, &key.key("config"), |file| policy.resolve(std::path::Path::new(file)))
        .map_err(|(key, message, hint)| policy.error_at(&key, message, hint))?;
    Ok(serde_json::Value::Object(config).to_string())
}

fn setup_hint(component: &str) -> String {
    format!("check the `config` and `grants` of `{component}` against its documentation")
}

/// A chain entry's limits, each taken from the entry, else the component, else
/// the default: those of its calls, and its host cache quota.
fn merge_limits(entry: Option<&LimitsFile>, component: Option<&LimitsFile>) -> (Limits, cache::Quota) {
    let pick = |f: fn(&LimitsFile) -> Option<u64>| entry.and_then(f).or(component.and_then(f));
    let defaults = Limits::default();
    let limits = Limits {
        deadline: pick(|l| l.deadline_ms).map(Duration::from_millis).unwrap_or(defaults.deadline),
        memory_bytes: pick(|l| l.memory_mib.map(u64::from)).map(|mib| mib as usize * 1024 * 1024).unwrap_or(defaults.memory_bytes),
        max_uses: pick(|l| l.max_uses.map(u64::from)).map(|n| n as u32).unwrap_or(defaults.max_uses),
    };
    let pick = |f: fn(&LimitsFile) -> Option<u32>, default: u32| entry.and_then(f).or(component.and_then(f)).unwrap_or(default);
    let quota = cache::Quota::new(pick(|l| l.cache_mib, cache::DEFAULT_CACHE_MIB), pick(|l| l.cache_entries, cache::DEFAULT_CACHE_ENTRIES));
    (limits, quota)
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
