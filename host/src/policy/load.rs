//! Reading a policy file and parsing every value in it, before anything is
//! compiled or bound. Each value is parsed once, by the module that uses it
//! (`Grants::parse`, `RequestGuard::parse`, `WorkloadLimits::resolve`); this
//! module collects their errors with the file, line and key they come from.

use super::error::{PolicyError, PolicyErrors, Problems};
use super::file::{ChainEntryFile, LimitsFile, PolicyFile, WorkloadFile};
use super::location::KeyPath;
use super::snapshot::Admin;
use crate::plugins::lock::{self, Lockfile};
use crate::plugins::signature::TrustedKeys;
use crate::proxy::guard::RequestGuard;
use crate::proxy::workload::WorkloadLimits;
use crate::runtime::builtins;
use crate::runtime::capabilities::{GrantProblem, Grants};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A policy with every value parsed; compile it with [`super::compile`].
#[derive(Debug)]
pub struct Policy {
    /// The file it came from (for relative paths and error messages).
    pub path: PathBuf,
    pub source: String,
    /// The file as written (`portcullis status` shows it; components get their `config` from it).
    pub file: PolicyFile,
    /// The parsed values of `file.workloads`, in the same order.
    pub workloads: Vec<ParsedWorkload>,
    /// The admin listener, its guard parsed.
    pub admin: Option<Admin>,
    /// Things that work but deserve attention (`anonymous = true`, ...).
    pub warnings: Vec<PolicyError>,
    /// `portcullis.lock` beside the policy: what each `plugin:NAME` is.
    pub lock: Lockfile,
    /// The keys `[plugins] trusted_keys` names, parsed.
    pub trusted_keys: TrustedKeys,
    /// `[store]`, parsed (the memory store when absent).
    pub store: crate::store::StoreSettings,
    /// `[telemetry]`, parsed (read by `portcullis run` at start).
    pub telemetry: crate::telemetry::TelemetrySettings,
}

impl Policy {
    /// Resolves a path from the policy relative to the policy file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_owned(),
        }
    }

    /// An error about `key`, located in this file.
    pub fn error_at(&self, key: &KeyPath, message: impl Into<String>, hint: Option<String>) -> PolicyError {
        Problems::new(self.path.clone(), &self.source).make(key, message, hint)
    }
}

/// What loading parses out of a workload's table, so nothing after it parses again.
#[derive(Debug, Clone)]
pub struct ParsedWorkload {
    pub upstream: url::Url,
    pub public_url: url::Url,
    pub strip_request_headers: Vec<http::HeaderName>,
    /// Whether POSTs are read as MCP messages (`mcp`, or its default).
    pub mcp: bool,
    /// `public_url`'s host, `allowed_hosts` and `allowed_origins`.
    pub guard: RequestGuard,
    pub limits: WorkloadLimits,
    /// Each chain entry's grants: `inbound`, `outbound`, `authorize`, in the file's order.
    pub grants: [Vec<Grants>; 3],
    /// `[workloads.server]`'s grants, when the workload has a server.
    pub server: Option<Grants>,
}

pub fn load_file(path: &Path) -> Result<Policy, PolicyErrors> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        PolicyErrors(vec![PolicyError {
            file: path.to_owned(),
            line: None,
            key: KeyPath::root(),
            message: format!("cannot read the policy file: {e}"),
            hint: Some("check the path given with --policy".into()),
        }])
    })?;
    load_str(path, source)
}

pub fn load_str(path: &Path, source: String) -> Result<Policy, PolicyErrors> {
    let file = parse(path, &source)?;
    let mut problems = Problems::new(path.to_owned(), &source);
    let (admin, mut parsed) = validate(&file, &mut problems);
    load_signing_keys(path, &mut parsed, &mut problems);
    let (lock, trusted_keys) = check_plugins(path, &file, &mut problems);
    let store = check_store(&file, &mut problems);
    let telemetry = check_telemetry(&file, &mut problems);
    // Every value parsed exactly when no error was found.
    let workloads = match parsed.into_iter().collect::<Option<Vec<_>>>() {
        Some(workloads) if problems.errors.is_empty() => workloads,
        _ => return Err(PolicyErrors(problems.errors)),
    };
    let warnings = problems.warnings;
    Ok(Policy { path: path.to_owned(), source, file, workloads, admin, warnings, lock, trusted_keys, store: store.unwrap_or_default(), telemetry })
}

/// Parses `[telemetry]`, each problem located at its key.
fn check_telemetry(file: &PolicyFile, p: &mut Problems<'_>) -> crate::telemetry::TelemetrySettings {
    crate::telemetry::TelemetrySettings::parse(file.telemetry.as_ref()).unwrap_or_else(|problems| {
        for problem in problems {
            let mut at = KeyPath::root().key("telemetry");
            for part in problem.field.splitn(2, '.') {
                at = at.key(part);
            }
            p.error(&at, problem.message, problem.hint);
        }
        Default::default()
    })
}

/// Parses `[store]`, each problem located at its key.
fn check_store(file: &PolicyFile, p: &mut Problems<'_>) -> Option<crate::store::StoreSettings> {
    let (settings, problems) = crate::store::StoreSettings::parse(file.store.as_ref());
    for problem in problems {
        let at = KeyPath::root().key("store").key(problem.field);
        if problem.warning { p.warn(&at, problem.message, problem.hint) } else { p.error(&at, problem.message, problem.hint) }
    }
    settings
}

/// Reads the signing keys the grants name in files (relative to the policy
/// file), at every load: a missing, unreadable or exposed key is an error
/// located at its grant, and a reload picks up a rotated list.
fn load_signing_keys(path: &Path, workloads: &mut [Option<ParsedWorkload>], p: &mut Problems<'_>) {
    let dir = path.parent().unwrap_or(Path::new(""));
    for (w, workload) in workloads.iter_mut().enumerate() {
        let Some(workload) = workload else { continue };
        let key = KeyPath::root().key("workloads").index(w);
        let mut entries: Vec<(KeyPath, &mut Grants)> = Vec::new();
        for (chain, chained) in ["inbound", "outbound", "authorize"].into_iter().zip(&mut workload.grants) {
            entries.extend(chained.iter_mut().enumerate().map(|(n, grants)| (key.key(chain).index(n), grants)));
        }
        entries.extend(workload.server.as_mut().map(|grants| (key.key("server"), grants)));
        for (at, grants) in entries {
            for problem in grants.signing.load_files(dir) {
                p.error(&grant_key(&at.key("grants"), &problem), problem.message, problem.hint);
            }
        }
    }
}

/// Reads the lock file and the trusted keys, and checks that every
/// `plugin:NAME` the chains use is pinned.
fn check_plugins(path: &Path, file: &PolicyFile, p: &mut Problems<'_>) -> (Lockfile, TrustedKeys) {
    let root = KeyPath::root();
    let lock_path = lock::beside(path);
    let lock = Lockfile::read(&lock_path).unwrap_or_else(|e| {
        p.error(&root, format!("{e:#}"), "fix or delete the lock file, then `portcullis plugin add` again".to_string());
        Lockfile::default()
    });
    let settings = file.plugins.as_ref();
    let trusted_keys = TrustedKeys::parse(settings.map_or(&[][..], |s| &s.trusted_keys)).unwrap_or_else(|e| {
        p.error(&root.key("plugins").key("trusted_keys"), e, "the second line of the key's `minisign.pub`".to_string());
        TrustedKeys::default()
    });
    if settings.is_some_and(|s| s.require_signatures && s.trusted_keys.is_empty()) {
        p.error(&root.key("plugins").key("trusted_keys"), "`require_signatures = true` needs at least one trusted key", None);
    }
    for (w, workload) in file.workloads.iter().enumerate() {
        let workload_key = root.key("workloads").index(w);
        let mut entries: Vec<(KeyPath, &ChainEntryFile)> = Vec::new();
        for (chain, chained) in [("inbound", &workload.inbound), ("outbound", &workload.outbound), ("authorize", &workload.authorize)] {
            entries.extend(chained.iter().enumerate().map(|(n, entry)| (workload_key.key(chain).index(n), entry)));
        }
        entries.extend(workload.server.iter().map(|entry| (workload_key.key("server"), entry)));
        for (key, entry) in entries {
            let Some(reference) = entry.component.strip_prefix("plugin:") else { continue };
            if lock.find(reference).is_none() {
                let name = reference.split('@').next().unwrap_or(reference);
                p.error(
                    &key.key("component"),
                    format!("the plugin `{reference}` is not installed: {} does not pin it", lock_path.display()),
                    format!("install it beside the policy: `portcullis plugin add SOURCE --name {name} --policy {}`", path.display()),
                );
            }
        }
    }
    (lock, trusted_keys)
}

fn parse(path: &Path, source: &str) -> Result<PolicyFile, PolicyErrors> {
    let deserializer = toml::de::Deserializer::parse(source).map_err(|e| PolicyErrors(vec![toml_error(path, source, &e, KeyPath::root())]))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = KeyPath::from(e.path());
        PolicyErrors(vec![toml_error(path, source, e.inner(), key)])
    })
}

fn toml_error(path: &Path, source: &str, error: &toml::de::Error, key: KeyPath) -> PolicyError {
    let line = error.span().map(|span| source[..span.start.min(source.len())].matches('\n').count() + 1).or_else(|| key.line_in(source));
    PolicyError {
        file: path.to_owned(),
        line,
        key,
        message: error.message().trim().to_owned(),
        hint: Some("`portcullis schema` prints every key the policy accepts".into()),
    }
}

/// Checks the whole file, and returns the admin listener's and each
/// workload's parsed values (complete when `p` holds no error).
fn validate(file: &PolicyFile, p: &mut Problems<'_>) -> (Option<Admin>, Vec<Option<ParsedWorkload>>) {
    let root = KeyPath::root();
    let mut parsed = Vec::with_capacity(file.workloads.len());
    if file.version != 1 {
        p.error(&root.key("version"), format!("unsupported policy version {}", file.version), "write `version = 1`".to_string());
    }
    let mut listens = HashSet::new();
    let mut admin_parsed = None;
    if let Some(admin) = &file.admin {
        listens.insert(admin.listen);
        admin_parsed = guard(None, &admin.allowed_hosts, &[], &root.key("admin"), p).map(|guard| Admin { listen: admin.listen, guard });
        if !admin.listen.ip().is_loopback() {
            p.warn(&root.key("admin").key("listen"), "the admin listener is not on loopback; /metrics is not authenticated", None);
        }
    }
    for (name, component) in &file.components {
        let key = root.key("components").key(name);
        if name.starts_with("builtin:") || name.starts_with("plugin:") {
            p.error(&key, "component names starting with `builtin:` or `plugin:` are reserved", "rename the entry".to_string());
        }
        if !is_sha256_hex(&component.sha256) {
            p.error(
                &key.key("sha256"),
                "`sha256` must be 64 hex digits",
                "`sha256sum FILE.wasm` or `portcullis plugin inspect FILE.wasm` prints it".to_string(),
            );
        }
        check_limits(&component.limits, &key.key("limits"), p);
    }
    if file.workloads.is_empty() {
        p.error(&root.key("workloads"), "the policy has no workloads", "add a `[[workloads]]` table".to_string());
    }
    let mut names = HashSet::new();
    for (n, workload) in file.workloads.iter().enumerate() {
        let key = root.key("workloads").index(n);
        if !names.insert(workload.name.as_str()) {
            p.error(&key.key("name"), format!("a workload named {:?} already exists", workload.name), "names must be unique".to_string());
        }
        // Port 0 asks the OS for a free port (tests use it), so it never collides.
        if workload.listen.port() != 0 && !listens.insert(workload.listen) {
            p.error(&key.key("listen"), format!("{} is already used by another listener", workload.listen), "give each workload its own port".to_string());
        }
        parsed.push(validate_workload(file, workload, &key, p));
    }
    (admin_parsed, parsed)
}

/// The request guard of a workload (or, without `public_url`, the admin listener at `key`).
fn guard(public_url: Option<&url::Url>, hosts: &[String], origins: &[String], key: &KeyPath, p: &mut Problems<'_>) -> Option<RequestGuard> {
    RequestGuard::parse(public_url, hosts, origins)
        .map_err(|errors| {
            for error in errors {
                p.error(&key.key(error.field).index(error.index), error.message, error.hint);
            }
        })
        .ok()
}

/// An `http`/`https` URL with a host and no query or fragment; `None` (and an error) otherwise.
fn http_url(text: &str, key: &KeyPath, example: &str, p: &mut Problems<'_>) -> Option<url::Url> {
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            if u.query().is_some() || u.fragment().is_some() {
                p.error(key, "the URL must not have a query or fragment", None);
                return None;
            }
            Some(u)
        }
        _ => {
            p.error(key, format!("{text:?} is not an http:// or https:// URL"), example.to_string());
            None
        }
    }
}

/// Validates a workload and returns its parsed values (`None` when something is wrong).
fn validate_workload(file: &PolicyFile, w: &WorkloadFile, key: &KeyPath, p: &mut Problems<'_>) -> Option<ParsedWorkload> {
    if !portcullis_contract::names::is_valid_name(&w.name) {
        p.error(&key.key("name"), format!("invalid workload name {:?}", w.name), "use 1-64 lower-case letters, digits, `-` or `_`".to_string());
    }
    let upstream = http_url(&w.upstream, &key.key("upstream"), "e.g. `upstream = \"http://127.0.0.1:3001\"`", p);
    let public_url = http_url(&w.public_url, &key.key("public_url"), "the URL clients use, e.g. `public_url = \"http://127.0.0.1:8080\"`", p);
    let guard = guard(public_url.as_ref(), &w.allowed_hosts, &w.allowed_origins, key, p);
    let mut strip_request_headers = Vec::new();
    for (n, name) in w.strip_request_headers.iter().enumerate() {
        match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) if crate::runtime::verdict::gateway_managed(&header) => p.error(
                &key.key("strip_request_headers").index(n),
                format!("`{header}` is managed by the gateway"),
                "list only headers your upstream reads as identity".to_string(),
            ),
            Ok(header) => strip_request_headers.push(header),
            Err(_) => p.error(&key.key("strip_request_headers").index(n), format!("{name:?} is not a header name"), None),
        }
    }
    if w.inbound.is_empty() && !w.anonymous {
        p.error(
            &key.key("inbound"),
            format!("workload {:?} has no authenticator", w.name),
            "add an `[[workloads.inbound]]` component, or set `anonymous = true` to serve it unauthenticated on purpose".to_string(),
        );
    } else if w.inbound.is_empty() {
        p.warn(&key.key("anonymous"), format!("workload {:?} is served without authentication", w.name), None);
    } else if w.anonymous {
        p.warn(&key.key("anonymous"), "`anonymous = true` has no effect on a workload with authenticators", None);
    }
    let limits = WorkloadLimits::resolve(&w.limits)
        .map_err(|errors| {
            for error in errors {
                p.error(&key.key("limits").key(error.field), error.message, None);
            }
        })
        .ok();
    // The server has a bound of its own, as large (see `compile`).
    let positions = w.inbound.len() + w.outbound.len() + w.authorize.len();
    if let Some(n) = w.limits.max_instances
        && (n as usize) < positions
    {
        p.error(
            &key.key("limits").key("max_instances"),
            format!("{n} instances cannot serve {positions} chain positions"),
            format!("use at least {positions}"),
        );
    }
    // Every entry is checked (collected first: an `Option` collect would stop at the first error).
    let grants = [("inbound", &w.inbound), ("outbound", &w.outbound), ("authorize", &w.authorize)].map(|(chain, entries)| {
        entries.iter().enumerate().map(|(n, entry)| validate_entry(file, entry, w.allow_cleartext, &key.key(chain).index(n), p)).collect::<Vec<_>>()
    });
    let [inbound, outbound, authorize] = grants.map(|chain| chain.into_iter().collect::<Option<Vec<_>>>());
    // The server's entry is checked like a chain entry; `None` when it is wrong (or absent: then `Some(None)`).
    let server = match &w.server {
        Some(entry) => validate_entry(file, entry, w.allow_cleartext, &key.key("server"), p).map(Some),
        None => Some(None),
    };
    check_embedded_server(w, key, p);
    if let Some(upstream) = &upstream {
        check_cleartext(w, upstream, key, p);
    }
    let public_url = public_url?;
    // The documented default: an endpoint named `/mcp` speaks MCP.
    let mcp = w.mcp.unwrap_or_else(|| public_url.path().trim_end_matches('/').ends_with("/mcp"));
    if !w.authorize.is_empty() && !mcp {
        p.error(
            &key.key("authorize"),
            "authorizers decide MCP calls, and this workload is not an MCP workload",
            "set `mcp = true` (the default when `public_url`'s path ends in `/mcp`)".to_string(),
        );
    }
    Some(ParsedWorkload {
        upstream: upstream?,
        public_url,
        strip_request_headers,
        mcp,
        guard: guard?,
        limits: limits?,
        grants: [inbound?, outbound?, authorize?],
        server: server?,
    })
}

/// An OIDC verifier that trusts the workload's own server
/// (`embedded_server = true`) needs that server, and takes its issuer,
/// audience and keys from it: the keys that would name another are refused.
fn check_embedded_server(w: &WorkloadFile, key: &KeyPath, p: &mut Problems<'_>) {
    for (n, entry) in w.inbound.iter().enumerate() {
        let at = key.key("inbound").index(n).key("config");
        match super::builtins::embedded_server(entry) {
            Ok(false) => {}
            Ok(true) if w.server.is_none() => p.error(
                &at.key(super::builtins::EMBEDDED_SERVER),
                "`embedded_server = true` trusts the workload's own server, and this workload has none",
                "add a `[workloads.server]` table (e.g. `component = \"builtin:oauth-server\"`), or name an `issuer`".to_string(),
            ),
            Ok(true) => {}
            Err((field, message)) => p.error(&at.key(field), message, None),
        }
    }
}

/// Injectors send credentials (a registry token, an API key) to the upstream:
/// over plain `http` only to loopback, or where the policy says so on purpose.
fn check_cleartext(w: &WorkloadFile, upstream: &url::Url, key: &KeyPath, p: &mut Problems<'_>) {
    let cleartext = upstream.scheme() == "http" && !upstream.host_str().is_some_and(portcullis_contract::net::is_loopback_authority);
    if w.outbound.is_empty() || !cleartext {
        return;
    }
    let host = upstream.host_str().unwrap_or_default();
    if w.allow_cleartext {
        p.warn(&key.key("allow_cleartext"), format!("the outbound injectors send credentials in clear to {host} (`http://`, not loopback)"), None);
    } else {
        p.error(
            &key.key("upstream"),
            format!("the outbound injectors would send credentials in clear to {host}: the upstream is `http://` and not loopback"),
            format!("use an https:// upstream (`upstream_ca` for a private CA), or set `allow_cleartext = true` on workload {:?} if the network to {host} is trusted", w.name),
        );
    }
}

/// Checks a chain entry, and returns its grants, parsed (`None` when one is wrong).
fn validate_entry(file: &PolicyFile, entry: &ChainEntryFile, allow_cleartext: bool, key: &KeyPath, p: &mut Problems<'_>) -> Option<Grants> {
    let name = entry.component.as_str();
    let known = match name.strip_prefix("builtin:") {
        Some(builtin) => builtins::lookup(builtin).is_some(),
        // Checked against the lock file by `check_plugins`.
        None if name.starts_with("plugin:") => true,
        None => file.components.contains_key(name),
    };
    if !known {
        let hint = if name.starts_with("builtin:") {
            format!("the built-in components are: {}", builtins::names().map(|n| format!("builtin:{n}")).collect::<Vec<_>>().join(", "))
        } else {
            format!("add a `[components.{name}]` table with `path` and `sha256`")
        };
        p.error(&key.key("component"), format!("unknown component {name:?}"), hint);
    }
    if let Some(limits) = &entry.limits {
        check_limits(limits, &key.key("limits"), p);
    }
    if super::builtins::audience_check_off(entry) {
        p.warn(
            &key.key("config").key("audiences"),
            "`audiences = []` turns the audience check off: tokens issued for any other service are accepted",
            "list this resource's identifier (the default is the workload's public_url)".to_string(),
        );
    }
    let (grants, problems) = Grants::parse(&entry.grants, allow_cleartext);
    for problem in problems {
        let at = grant_key(&key.key("grants"), &problem);
        if problem.warning { p.warn(&at, problem.message, problem.hint) } else { p.error(&at, problem.message, problem.hint) }
    }
    grants
}

/// Where a grant's problem is: an item of a list (`secrets`, `http`,
/// `signing_keys`, ...), or `store`, which is one value.
fn grant_key(grants: &KeyPath, problem: &GrantProblem) -> KeyPath {
    match problem.field {
        "store" => grants.key("store"),
        field => grants.key(field).index(problem.index),
    }
}

fn check_limits(limits: &LimitsFile, key: &KeyPath, p: &mut Problems<'_>) {
    if let Some(ms) = limits.deadline_ms
        && (ms == 0 || ms > crate::runtime::plugin::MAX_DEADLINE_MS)
    {
        p.error(&key.key("deadline_ms"), format!("deadline {ms} ms is out of range"), format!("use 1 to {}", crate::runtime::plugin::MAX_DEADLINE_MS));
    }
    if let Some(mib) = limits.memory_mib
        && (mib == 0 || mib > crate::runtime::MAX_MEMORY_MIB)
    {
        p.error(&key.key("memory_mib"), format!("memory cap {mib} MiB is out of range"), format!("use 1 to {}", crate::runtime::MAX_MEMORY_MIB));
    }
    if limits.max_uses == Some(0) {
        p.error(&key.key("max_uses"), "`max_uses` must be at least 1", None);
    }
    use crate::runtime::capabilities::cache::{MAX_CACHE_ENTRIES, MAX_CACHE_MIB};
    if let Some(mib) = limits.cache_mib
        && !(1..=MAX_CACHE_MIB).contains(&mib)
    {
        p.error(&key.key("cache_mib"), format!("cache quota {mib} MiB is out of range"), format!("use 1 to {MAX_CACHE_MIB}"));
    }
    if let Some(entries) = limits.cache_entries
        && !(1..=MAX_CACHE_ENTRIES).contains(&entries)
    {
        p.error(&key.key("cache_entries"), format!("cache quota of {entries} entries is out of range"), format!("use 1 to {MAX_CACHE_ENTRIES}"));
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
