//! Compiling a validated policy into the runtime [`Snapshot`]: components
//! loaded (sha256 checked first), compiled or taken from the cache, linked with
//! exactly their grants, and initialised with their configuration.

use super::builtins as builtins_config;
use super::error::{PolicyError, PolicyErrors};
use super::file::{ChainEntryFile, Isolation, LimitsFile, WorkloadFile};
use super::load::{LoadedPolicy, ParsedWorkload};
use super::location::KeyPath;
use super::snapshot::{Admin, Snapshot};
use crate::admin::metrics::Metrics;
use crate::mcp::annotations::{self, ToolAnnotations};
use crate::mcp::audit::AuditFile;
use crate::mcp::authorize::{ArgumentLimits, Authorizers};
use crate::proxy::body_read::BodyPace;
use crate::proxy::chain::InboundChain;
use crate::proxy::error::GatewayError;
use crate::proxy::guard::RequestGuard;
use crate::proxy::headers::HeaderRules;
use crate::proxy::resource_metadata::ProtectedResource;
use crate::proxy::server::ConnectionLimits;
use crate::proxy::upstream::Upstream;
use crate::proxy::workload::{McpSettings, Workload};
use crate::runtime::Runtime;
use crate::runtime::builtins;
use crate::runtime::capabilities::{Capabilities, Mode, PluginLabel, Services, cache};
use crate::runtime::plugin::{FaultKind, Limits, Plugin, PluginSpec, Role};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::Component;

const DEFAULT_MAX_BODY_KIB: u64 = 4096;
const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;
const DEFAULT_MAX_CONNECTIONS: u32 = 1024;
const DEFAULT_MAX_INSTANCES: u32 = 64;
const DEFAULT_MAX_MCP_MESSAGE_BYTES: u64 = 1024 * 1024;
const DEFAULT_BODY_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_MIN_BODY_RATE_KIB: u64 = 16;
const DEFAULT_MAX_PENDING_BODY_KIB: u64 = 64 * 1024;

/// Builds a snapshot. All components are compiled before any is instantiated,
/// and each distinct component is compiled once however often it is used.
pub async fn compile(policy: &LoadedPolicy, runtime: &Runtime, services: &Services, metrics: &Metrics) -> Result<Snapshot, PolicyErrors> {
    let mut errors = Vec::new();
    let mut components: HashMap<String, Component> = HashMap::new();
    let mut workloads = HashMap::new();
    let audit = match audit_file(policy, services) {
        Ok(audit) => audit,
        Err(error) => return Err(PolicyErrors(vec![error])),
    };
    for (n, (file, parsed)) in policy.file.workloads.iter().zip(&policy.workloads).enumerate() {
        let key = KeyPath::root().key("workloads").index(n);
        match compile_workload(policy, file, parsed, &key, runtime, services, metrics, &mut components, audit.as_ref()).await {
            Ok(workload) => {
                workloads.insert(workload.name.clone(), Arc::new(workload));
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(PolicyErrors(errors));
    }
    let admin = policy.file.admin.as_ref().map(|a| Admin { listen: a.listen, guard: RequestGuard::new(None, &a.allowed_hosts, &[]) });
    Ok(Snapshot { workloads, admin })
}

#[allow(clippy::too_many_arguments)]
async fn compile_workload(
    policy: &LoadedPolicy,
    file: &WorkloadFile,
    parsed: &ParsedWorkload,
    key: &KeyPath,
    runtime: &Runtime,
    services: &Services,
    metrics: &Metrics,
    components: &mut HashMap<String, Component>,
    audit: Option<&Arc<AuditFile>>,
) -> Result<Workload, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let name: Arc<str> = file.name.as_str().into();
    let ParsedWorkload { public_url, upstream: upstream_url, strip_request_headers, mcp } = parsed;

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
    let upstream_timeout = Duration::from_millis(file.limits.upstream_timeout_ms.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT_MS));
    let upstream = match crate::proxy::tls::client_config(file.upstream_ca.as_deref().map(|p| policy.resolve(p)).as_deref())
        .and_then(|tls| Upstream::new(upstream_url, tls, upstream_timeout))
    {
        Ok(upstream) => Some(upstream),
        Err(e) => {
            errors.push(policy.error_at(&key.key("upstream_ca"), format!("{e:#}"), None));
            None
        }
    };

    // One bound on the instances of all this workload's components; each
    // position keeps at most its share idle (the loader checked there is one each).
    let max_instances = file.limits.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES) as usize;
    let instances = Arc::new(tokio::sync::Semaphore::new(max_instances));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let max_idle = (max_instances / (file.inbound.len() + file.outbound.len() + file.authorize.len()).max(1)).clamp(1, cores * 4);
    let mut chains: [Vec<Arc<Plugin>>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for (chain, role, entries) in [(0, Role::Authenticator, &file.inbound), (1, Role::Injector, &file.outbound), (2, Role::Authorizer, &file.authorize)] {
        let chain_key = key.key(chain_name(role));
        for (position, entry) in entries.iter().enumerate() {
            let entry_key = chain_key.index(position);
            let place = Place { key: &entry_key, role, position, instances: instances.clone(), max_idle };
            match compile_entry(policy, file, entry, place, runtime, services, metrics, components).await {
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
        file.outbound.iter().any(|e| components.get(&e.component).is_some_and(|c| crate::runtime::login::LoginSession::offered_by(runtime, c)));
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
    let max_message_bytes = file.limits.max_mcp_message_bytes.unwrap_or(DEFAULT_MAX_MCP_MESSAGE_BYTES) as usize;
    Ok(Workload {
        metrics: metrics.workload(&file.name, &GatewayError::OUTCOMES),
        guard: RequestGuard::new(Some(public_url), &file.allowed_hosts, &file.allowed_origins),
        headers: HeaderRules::new(inbound.iter().map(|p| p.manifest()), outbound.iter().map(|p| p.manifest()), strip_request_headers),
        protected_resource: builtins_config::oidc_metadata(&file.inbound)
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
                    arguments: ArgumentLimits::new(file.limits.max_mcp_arguments_bytes, file.limits.max_mcp_arguments_elements),
                },
                tools,
                held_before_decision: tokio::sync::Semaphore::new(
                    (file.limits.max_pending_body_kib.unwrap_or(DEFAULT_MAX_PENDING_BODY_KIB) * 1024).min(tokio::sync::Semaphore::MAX_PERMITS as u64) as usize,
                ),
            }
        }),
        upstream,
        tls,
        listen: file.listen,
        trust_request_id: file.trust_request_id,
        public_url: public_url.clone(),
        max_body_bytes: file.limits.max_request_body_kib.unwrap_or(DEFAULT_MAX_BODY_KIB) * 1024,
        body_pace: BodyPace {
            timeout: Duration::from_millis(file.limits.body_timeout_ms.unwrap_or(DEFAULT_BODY_TIMEOUT_MS)),
            min_bytes_per_sec: file.limits.min_body_rate_kib.unwrap_or(DEFAULT_MIN_BODY_RATE_KIB) * 1024,
        },
        connections: ConnectionLimits {
            max_connections: file.limits.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS) as usize,
            header_timeout: Duration::from_millis(file.limits.header_timeout_ms.unwrap_or(DEFAULT_HEADER_TIMEOUT_MS)),
            idle_timeout: Duration::from_millis(file.limits.idle_timeout_ms.unwrap_or(DEFAULT_IDLE_TIMEOUT_MS)),
            held_before_decision: if *mcp { max_message_bytes } else { 0 },
        },
        name,
    })
}

/// Where a chain entry sits: its policy key, role and position, and its workload's instance bound.
struct Place<'a> {
    key: &'a KeyPath,
    role: Role,
    position: usize,
    instances: Arc<tokio::sync::Semaphore>,
    max_idle: usize,
}

#[allow(clippy::too_many_arguments)]
async fn compile_entry(
    policy: &LoadedPolicy,
    workload: &WorkloadFile,
    entry: &ChainEntryFile,
    place: Place<'_>,
    runtime: &Runtime,
    services: &Services,
    metrics: &Metrics,
    components: &mut HashMap<String, Component>,
) -> Result<Arc<Plugin>, PolicyError> {
    let Place { key, role, position, instances, max_idle } = place;
    let component = match components.get(&entry.component) {
        Some(c) => c.clone(),
        None => {
            let c = load_component(policy, &entry.component, key, runtime, services)?;
            components.insert(entry.component.clone(), c.clone());
            c
        }
    };
    let declared = policy.file.components.get(&entry.component);
    let isolation = entry.isolation.or(declared.and_then(|c| c.isolation)).unwrap_or(Isolation::Pooled);
    let chain = chain_name(role);
    let Prepared { config_json, caps, limits } = prepare_entry(policy, workload, entry, key, &format!("{chain}[{position}]"), services)?;
    let spec = PluginSpec {
        metrics: metrics.plugin(&workload.name, &entry.component, &FaultKind::labels()),
        label: caps.label.clone(),
        role,
        component,
        config_json,
        // As written in the policy: it is the resource identifier tokens are issued for.
        public_url: workload.public_url.clone(),
        limits,
        isolation,
        caps,
        instances,
        max_idle,
    };
    Plugin::new(runtime, spec).await.map_err(|e| policy.error_at(key, e.to_string(), Some(setup_hint(&entry.component))))
}

/// `[audit] file`, opened for appending; not during `portcullis check`, which changes nothing.
fn audit_file(policy: &LoadedPolicy, services: &Services) -> Result<Option<Arc<AuditFile>>, PolicyError> {
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

/// The policy key of a role's chain.
fn chain_name(role: Role) -> &'static str {
    match role {
        Role::Authenticator => "inbound",
        Role::Injector => "outbound",
        Role::Authorizer => "authorize",
    }
}

/// What a chain entry's component is set up with.
struct Prepared {
    config_json: String,
    caps: Arc<Capabilities>,
    limits: Limits,
}

/// The configuration, capabilities and limits of the chain entry at `key`
/// (`position` is its chain and index, e.g. `outbound[0]`).
fn prepare_entry(
    policy: &LoadedPolicy,
    workload: &WorkloadFile,
    entry: &ChainEntryFile,
    key: &KeyPath,
    position: &str,
    services: &Services,
) -> Result<Prepared, PolicyError> {
    let declared = policy.file.components.get(&entry.component);
    let base_limits = declared.map(|c| &c.limits);
    let (mut limits, cache_quota) = merge_limits(entry.limits.as_ref(), base_limits);
    if let Some(deadline) = builtins_config::default_deadline(entry)
        && entry.limits.as_ref().and_then(|l| l.deadline_ms).or(base_limits.and_then(|l| l.deadline_ms)).is_none()
    {
        limits.deadline = deadline;
    }
    let label = PluginLabel { workload: workload.name.as_str().into(), component: entry.component.as_str().into() };
    let config_json = component_config(policy, workload, entry, key)?;
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
    let mut caps = Capabilities::new(label, &entry.grants, services, &format!("{position}@{fingerprint}"), cache_quota);
    let registries = policy.file.workloads.iter().flat_map(|w| &w.outbound).filter(|e| e.component == builtins_config::REGISTRY_TOKEN).count();
    let static_token = builtins_config::static_token(entry, registries, |file| policy.resolve(std::path::Path::new(file)))
        .map_err(|e| policy.error_at(&key.key("config").key("token_file"), e, None))?;
    if let Some(token) = static_token {
        caps.secrets.provide(builtins_config::STATIC_TOKEN_SECRET, token);
    }
    Ok(Prepared { config_json, caps: Arc::new(caps), limits })
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
pub async fn login_target(policy: &LoadedPolicy, workload_name: &str, runtime: &Runtime, services: &Services) -> anyhow::Result<LoginTarget> {
    use crate::runtime::login::{LoginSession, LoginSettings};
    let (n, workload) = policy.file.workloads.iter().enumerate().find(|(_, w)| w.name == workload_name).ok_or_else(|| {
        let names: Vec<&str> = policy.file.workloads.iter().map(|w| w.name.as_str()).collect();
        anyhow::anyhow!("the policy has no workload `{workload_name}` (it has: {})", names.join(", "))
    })?;
    for (position, entry) in workload.outbound.iter().enumerate() {
        let key = KeyPath::root().key("workloads").index(n).key("outbound").index(position);
        let component = load_component(policy, &entry.component, &key, runtime, services)?;
        if !LoginSession::offered_by(runtime, &component) {
            continue;
        }
        let Prepared { config_json, caps, limits } = prepare_entry(policy, workload, entry, &key, &format!("outbound[{position}]"), services)?;
        let settings =
            LoginSettings { config_json, workload: workload.name.clone(), public_url: workload.public_url.clone(), memory_bytes: limits.memory_bytes };
        let session = LoginSession::start(runtime, &component, caps, settings).await?;
        return Ok(LoginTarget { session, callback_port: builtins_config::callback_port(entry) });
    }
    anyhow::bail!("workload `{workload_name}` has no outbound component with an interactive login (such as builtin:registry-token)")
}

/// The component's config as JSON. For the OIDC verifier, `jwks_file` entries
/// are read here (components have no file access) and passed inline as `jwks`,
/// and Cedar's `policies_file`/`schema_file`/`entities_file` as `policies`/`schema`/`entities`; the
/// registry token gets the secret name its tokens live under.
fn component_config(policy: &LoadedPolicy, workload: &WorkloadFile, entry: &ChainEntryFile, key: &KeyPath) -> Result<String, PolicyError> {
    let mut config = entry.config.clone();
    if entry.component == builtins_config::REGISTRY_TOKEN {
        builtins_config::registry_token_config(&mut config, &workload.upstream);
    }
    if entry.component == builtins_config::CEDAR {
        for (file_key, text_key) in [("policies_file", "policies"), ("schema_file", "schema"), ("entities_file", "entities")] {
            inline_text_file(policy, &mut config, file_key, text_key, &key.key("config"))?;
        }
    }
    if entry.component == builtins_config::OIDC_VERIFIER {
        inline_jwks_file(policy, &mut config, &key.key("config"))?;
        if let Some(serde_json::Value::Array(providers)) = config.get_mut("providers") {
            for (n, provider) in providers.iter_mut().enumerate() {
                if let serde_json::Value::Object(provider) = provider {
                    inline_jwks_file(policy, provider, &key.key("config").key("providers").index(n))?;
                }
            }
        }
    }
    Ok(serde_json::Value::Object(config).to_string())
}

/// Replaces `file_key` (a path relative to the policy) by `text_key` holding
/// the file's text: components have no file access.
fn inline_text_file(
    policy: &LoadedPolicy,
    config: &mut serde_json::Map<String, serde_json::Value>,
    file_key: &str,
    text_key: &str,
    key: &KeyPath,
) -> Result<(), PolicyError> {
    let Some(file) = config.remove(file_key) else {
        return Ok(());
    };
    let key = key.key(file_key);
    if config.contains_key(text_key) {
        return Err(policy.error_at(&key, format!("give `{file_key}` or `{text_key}`, not both"), None));
    }
    let path = policy.resolve(std::path::Path::new(file.as_str().unwrap_or_default()));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| policy.error_at(&key, format!("cannot read {}: {e}", path.display()), Some("the path is relative to the policy file".into())))?;
    config.insert(text_key.into(), serde_json::Value::String(text));
    Ok(())
}

fn inline_jwks_file(policy: &LoadedPolicy, config: &mut serde_json::Map<String, serde_json::Value>, key: &KeyPath) -> Result<(), PolicyError> {
    let Some(file) = config.remove("jwks_file") else {
        return Ok(());
    };
    let key = key.key("jwks_file");
    let path = policy.resolve(std::path::Path::new(file.as_str().unwrap_or_default()));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| policy.error_at(&key, format!("cannot read {}: {e}", path.display()), Some("the path is relative to the policy file".into())))?;
    let jwks: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| policy.error_at(&key, format!("{} is not a JSON key set: {e}", path.display()), None))?;
    config.insert("jwks".into(), jwks);
    Ok(())
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

/// An installed module: the lock's digest, the store's bytes (checked against
/// it), the signature when the policy requires one, then the compiler.
fn load_plugin(policy: &LoadedPolicy, reference: &str, key: &KeyPath, runtime: &Runtime, services: &Services) -> Result<Component, PolicyError> {
    let err = |message: String, hint: Option<String>| policy.error_at(key, message, hint);
    let locked = policy.lock.find(reference).ok_or_else(|| err(format!("the plugin `{reference}` is not in portcullis.lock"), None))?;
    let update = Some(format!("`portcullis plugin update {} --policy {}` fetches it again from {}", locked.name, policy.path.display(), locked.source));
    let module = match services.plugins.get(locked.sha256()) {
        Ok(Some(module)) => module,
        Ok(None) => {
            return Err(err(
                format!("the module the lock pins for `{}` ({}) is not in {}", locked.name, locked.digest, services.plugins.dir().display()),
                update,
            ));
        }
        Err(e) => return Err(err(format!("the module the lock pins for `{}` cannot be used: {e:#}", locked.name), update)),
    };
    // The same rule as `plugin add`: a signature, when present, must be good.
    let required = policy.file.plugins.as_ref().is_some_and(|p| p.require_signatures);
    policy.trusted_keys.check(&module.wasm, module.signature.as_deref(), required, &locked.name).map_err(|why| {
        let and = if required { ", and `[plugins] require_signatures = true`" } else { "" };
        err(
            format!("the plugin `{}` is refused: {why}{and}", locked.name),
            Some("its author signs it with `minisign -S -s KEY -m FILE.wasm`; add their public key to `[plugins] trusted_keys`".into()),
        )
    })?;
    runtime.component(locked.sha256(), &module.wasm).map_err(|e| err(format!("the plugin `{}` is not a usable component: {e:#}", locked.name), None))
}

/// The pinned SHA-256 of a component named in the policy.
fn component_sha256<'a>(policy: &'a LoadedPolicy, name: &str) -> &'a str {
    if let Some(reference) = name.strip_prefix("plugin:") {
        return policy.lock.find(reference).map(|p| p.sha256()).unwrap_or_default();
    }
    match name.strip_prefix("builtin:").and_then(builtins::lookup) {
        Some(builtin) => builtin.sha256(),
        None => policy.file.components.get(name).map(|c| c.sha256.as_str()).unwrap_or_default(),
    }
}

/// Reads a component, checks its pin, and compiles it (or takes it from the cache).
fn load_component(policy: &LoadedPolicy, name: &str, key: &KeyPath, runtime: &Runtime, services: &Services) -> Result<Component, PolicyError> {
    let err = |message: String, hint: Option<String>| policy.error_at(key, message, hint);
    if let Some(reference) = name.strip_prefix("plugin:") {
        return load_plugin(policy, reference, key, runtime, services);
    }
    if let Some(builtin) = name.strip_prefix("builtin:") {
        let builtin = builtins::lookup(builtin).ok_or_else(|| err(format!("there is no built-in component `{builtin}`"), None))?;
        return runtime.component(builtin.sha256(), builtin.wasm).map_err(|e| err(format!("the built-in component failed to compile: {e:#}"), None));
    }
    let declared = policy.file.components.get(name).ok_or_else(|| err(format!("no `[components.{name}]` table"), None))?;
    let path = policy.resolve(&declared.path);
    let component_key = KeyPath::root().key("components").key(name);
    let wasm = std::fs::read(&path).map_err(|e| {
        policy.error_at(&component_key.key("path"), format!("cannot read {}: {e}", path.display()), Some("the path is relative to the policy file".into()))
    })?;
    // The pin is checked before the bytes go anywhere near the compiler.
    let actual = hex::encode(Sha256::digest(&wasm));
    if !actual.eq_ignore_ascii_case(&declared.sha256) {
        return Err(policy.error_at(
            &component_key.key("sha256"),
            format!("{} does not match its pin: the policy pins sha256 {}, the file's is {actual}", path.display(), declared.sha256),
            Some("if you rebuilt the component on purpose, update `sha256` (`portcullis plugin hash FILE`); otherwise the file was changed".into()),
        ));
    }
    runtime
        .component(&actual, &wasm)
        .map_err(|e| policy.error_at(&component_key.key("path"), format!("{} is not a usable component: {e:#}", path.display()), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_merge_entry_over_component_over_default() {
        let (limits, quota) = merge_limits(None, None);
        assert_eq!(limits.max_uses, Limits::default().max_uses);
        assert_eq!(quota, cache::Quota { bytes: 8 * 1024 * 1024, entries: 10_000 });
        let component = LimitsFile { cache_mib: Some(2), cache_entries: Some(50), max_uses: Some(7), ..LimitsFile::default() };
        let entry = LimitsFile { cache_entries: Some(5), ..LimitsFile::default() };
        let (limits, quota) = merge_limits(Some(&entry), Some(&component));
        assert_eq!(limits.max_uses, 7);
        assert_eq!(quota, cache::Quota { bytes: 2 * 1024 * 1024, entries: 5 });
    }
}
