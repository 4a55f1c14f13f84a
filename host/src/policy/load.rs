//! Reading and validating a policy file, before anything is compiled or bound.

use super::error::{PolicyError, PolicyErrors, Problems};
use super::file::{ChainEntryFile, GrantsFile, LimitsFile, PolicyFile, WorkloadFile};
use super::location::KeyPath;
use crate::plugins::lock::{self, Lockfile};
use crate::plugins::signature::TrustedKeys;
use crate::runtime::builtins;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A parsed policy whose values are all checked; compile it with [`super::compile`].
#[derive(Debug)]
pub struct LoadedPolicy {
    /// The file it came from (for relative paths and error messages).
    pub path: PathBuf,
    pub source: String,
    pub file: PolicyFile,
    /// The parsed values of `file.workloads`, in the same order.
    pub workloads: Vec<ParsedWorkload>,
    /// Things that work but deserve attention (`anonymous = true`, ...).
    pub warnings: Vec<PolicyError>,
    /// `portcullis.lock` beside the policy: what each `plugin:NAME` is.
    pub lock: Lockfile,
    /// The keys `[plugins] trusted_keys` names, parsed.
    pub trusted_keys: TrustedKeys,
}

impl LoadedPolicy {
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
}

pub fn load_file(path: &Path) -> Result<LoadedPolicy, PolicyErrors> {
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

pub fn load_str(path: &Path, source: String) -> Result<LoadedPolicy, PolicyErrors> {
    let file = parse(path, &source)?;
    let mut problems = Problems::new(path.to_owned(), &source);
    let parsed = validate(&file, &mut problems);
    let (lock, trusted_keys) = check_plugins(path, &file, &mut problems);
    // Every workload parsed exactly when no error was found.
    let workloads = match parsed.into_iter().collect::<Option<Vec<_>>>() {
        Some(workloads) if problems.errors.is_empty() => workloads,
        _ => return Err(PolicyErrors(problems.errors)),
    };
    let warnings = problems.warnings;
    Ok(LoadedPolicy { path: path.to_owned(), source, file, workloads, warnings, lock, trusted_keys })
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
        for (chain, entries) in [("inbound", &workload.inbound), ("outbound", &workload.outbound), ("authorize", &workload.authorize)] {
            for (n, entry) in entries.iter().enumerate() {
                let Some(reference) = entry.component.strip_prefix("plugin:") else { continue };
                if lock.find(reference).is_none() {
                    let name = reference.split('@').next().unwrap_or(reference);
                    p.error(
                        &root.key("workloads").index(w).key(chain).index(n).key("component"),
                        format!("the plugin `{reference}` is not installed: {} does not pin it", lock_path.display()),
                        format!("install it beside the policy: `portcullis plugin add SOURCE --name {name} --policy {}`", path.display()),
                    );
                }
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

/// Checks the whole file, and returns each workload's parsed values.
fn validate(file: &PolicyFile, p: &mut Problems<'_>) -> Vec<Option<ParsedWorkload>> {
    let root = KeyPath::root();
    let mut parsed = Vec::with_capacity(file.workloads.len());
    if file.version != 1 {
        p.error(&root.key("version"), format!("unsupported policy version {}", file.version), "write `version = 1`".to_string());
    }
    let mut listens = HashSet::new();
    if let Some(admin) = &file.admin {
        listens.insert(admin.listen);
        check_hosts(&admin.allowed_hosts, &root.key("admin").key("allowed_hosts"), p);
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
    parsed
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
    for (n, origin) in w.allowed_origins.iter().enumerate() {
        if crate::origin::Origin::parse(origin).is_none() {
            p.error(
                &key.key("allowed_origins").index(n),
                format!("{origin:?} is not an origin"),
                "write scheme://host[:port], e.g. `https://app.example.com`".to_string(),
            );
        }
    }
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
    check_hosts(&w.allowed_hosts, &key.key("allowed_hosts"), p);
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
    if let Some(kib) = w.limits.max_request_body_kib
        && (kib == 0 || kib > 1024 * 1024)
    {
        p.error(&key.key("limits").key("max_request_body_kib"), "must be between 1 and 1048576", None);
    }
    for (field, value, max) in
        [("max_connections", w.limits.max_connections, 65_536), ("max_instances", w.limits.max_instances, crate::runtime::engine::POOL_INSTANCES)]
    {
        if let Some(n) = value
            && (n == 0 || n > max)
        {
            p.error(&key.key("limits").key(field), format!("must be between 1 and {max}"), None);
        }
    }
    for (field, value, max) in
        [("min_body_rate_kib", w.limits.min_body_rate_kib, 1024 * 1024), ("max_pending_body_kib", w.limits.max_pending_body_kib, 16 * 1024 * 1024)]
    {
        if let Some(n) = value
            && (n == 0 || n > max)
        {
            p.error(&key.key("limits").key(field), format!("must be between 1 and {max}"), None);
        }
    }
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
    for (field, value) in [
        ("upstream_timeout_ms", w.limits.upstream_timeout_ms),
        ("header_timeout_ms", w.limits.header_timeout_ms),
        ("idle_timeout_ms", w.limits.idle_timeout_ms),
        ("body_timeout_ms", w.limits.body_timeout_ms),
    ] {
        if let Some(ms) = value
            && (ms == 0 || ms > 3_600_000)
        {
            p.error(&key.key("limits").key(field), "must be between 1 and 3600000 ms", None);
        }
    }
    for (chain, entries) in [("inbound", &w.inbound), ("outbound", &w.outbound), ("authorize", &w.authorize)] {
        for (n, entry) in entries.iter().enumerate() {
            validate_entry(file, entry, &key.key(chain).index(n), p);
        }
    }
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
    if let Some(bytes) = w.limits.max_mcp_message_bytes
        && (bytes == 0 || bytes > 64 * 1024 * 1024)
    {
        p.error(&key.key("limits").key("max_mcp_message_bytes"), "must be between 1 and 67108864", None);
    }
    for (name, value) in [("max_mcp_arguments_bytes", w.limits.max_mcp_arguments_bytes), ("max_mcp_arguments_elements", w.limits.max_mcp_arguments_elements)] {
        if value.is_some_and(|n| n == 0 || n > 64 * 1024 * 1024) {
            p.error(&key.key("limits").key(name), "must be between 1 and 67108864", None);
        }
    }
    Some(ParsedWorkload { upstream: upstream?, public_url, strip_request_headers, mcp })
}

/// Injectors send credentials (a registry token, an API key) to the upstream:
/// over plain `http` only to loopback, or where the policy says so on purpose.
fn check_cleartext(w: &WorkloadFile, upstream: &url::Url, key: &KeyPath, p: &mut Problems<'_>) {
    let cleartext = upstream.scheme() == "http" && !upstream.host_str().is_some_and(crate::plugins::is_loopback_authority);
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

fn check_hosts(hosts: &[String], key: &KeyPath, p: &mut Problems<'_>) {
    for (n, host) in hosts.iter().enumerate() {
        if host.is_empty() || host.contains(['/', ' ', '@']) {
            p.error(&key.index(n), format!("{host:?} is not a host name"), "write `host` or `host:port`".to_string());
        }
    }
}

fn validate_entry(file: &PolicyFile, entry: &ChainEntryFile, key: &KeyPath, p: &mut Problems<'_>) {
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
    check_grants(&entry.grants, &key.key("grants"), p);
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

fn check_grants(grants: &GrantsFile, key: &KeyPath, p: &mut Problems<'_>) {
    for (field, patterns) in [("secrets", &grants.secrets), ("secrets_write", &grants.secrets_write)] {
        for (n, pattern) in patterns.iter().enumerate() {
            let body = pattern.strip_suffix('*').unwrap_or(pattern);
            if body.contains('*') || (body.is_empty() && pattern != "*") {
                p.error(&key.key(field).index(n), format!("bad secret pattern {pattern:?}"), "a name, or a prefix followed by one `*` at the end".to_string());
            } else if pattern == "*" {
                p.warn(&key.key(field).index(n), "`*` grants every secret in the store", "grant only the names the component needs".to_string());
            }
        }
    }
    for (n, origin) in grants.http.iter().enumerate() {
        if crate::origin::Origin::parse(origin).is_none() {
            p.error(
                &key.key("http").index(n),
                format!("{origin:?} is not an origin"),
                "write scheme://host[:port], e.g. `https://idp.example.com`".to_string(),
            );
        }
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(src: &str) -> Result<LoadedPolicy, PolicyErrors> {
        load_str(Path::new("policy.toml"), src.to_owned())
    }

    const GOOD: &str = r#"
version = 1
[[workloads]]
name = "demo"
listen = "127.0.0.1:8080"
upstream = "http://127.0.0.1:3001"
public_url = "http://127.0.0.1:8080"
  [[workloads.inbound]]
  component = "builtin:shared-key"
  grants = { secrets = ["workload:demo:shared-key*"] }
"#;

    #[test]
    fn a_good_policy_loads() {
        let policy = load(GOOD).unwrap();
        assert_eq!(policy.file.workloads[0].name, "demo");
        assert!(policy.warnings.is_empty());
    }

    #[test]
    fn unknown_keys_name_line_and_key() {
        let src = GOOD.replace("upstream =", "upstrem =");
        let err = load(&src).unwrap_err().to_string();
        assert!(err.starts_with("policy.toml:"), "{err}");
        assert!(err.contains("upstrem"), "{err}");
        assert!(err.contains("workloads[0]"), "{err}");
    }

    #[test]
    fn bad_values_name_line_and_key() {
        let src = GOOD.replace("http://127.0.0.1:3001", "ftp://x");
        let err = load(&src).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].line, Some(6));
        assert_eq!(err.0[0].key.to_string(), "workloads[0].upstream");
    }

    #[test]
    fn empty_inbound_needs_anonymous() {
        let src = GOOD.split("  [[workloads.inbound]]").next().unwrap().to_owned();
        let err = load(&src).unwrap_err().to_string();
        assert!(err.contains("anonymous = true"), "{err}");
        let ok = load(&format!("{src}anonymous = true\n")).unwrap();
        assert_eq!(ok.warnings.len(), 1);
    }

    #[test]
    fn unknown_component_and_bad_grant() {
        let src = GOOD.replace("builtin:shared-key", "builtin:nope").replace("shared-key*\"]", "a*b\"], http = [\"nota url\"]");
        let errors = load(&src).unwrap_err().0;
        let keys: Vec<String> = errors.iter().map(|e| e.key.to_string()).collect();
        assert!(keys.contains(&"workloads[0].inbound[0].component".to_string()), "{keys:?}");
        assert!(keys.contains(&"workloads[0].inbound[0].grants.secrets[0]".to_string()), "{keys:?}");
        assert!(keys.contains(&"workloads[0].inbound[0].grants.http[0]".to_string()), "{keys:?}");
    }

    #[test]
    fn cache_quotas_are_checked_on_components_and_entries() {
        let with = |component_limits: &str, entry_limits: &str| {
            let declared = format!("[components.c]\npath = \"c.wasm\"\nsha256 = \"{}\"\nlimits = {{ {component_limits} }}\n", "a".repeat(64));
            let src = GOOD
                .replace("version = 1\n", &format!("version = 1\n{declared}"))
                .replace("  grants = ", &format!("  limits = {{ {entry_limits} }}\n  grants = "));
            load(&src).map(|_| ()).map_err(|e| e.0.iter().map(|e| e.key.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(with("cache_mib = 1, cache_entries = 1", ""), Ok(()));
        assert_eq!(with("cache_mib = 1024, cache_entries = 1000000", "cache_mib = 8, cache_entries = 10000"), Ok(()));
        assert_eq!(
            with("cache_mib = 0, cache_entries = 1000001", ""),
            Err(vec!["components.c.limits.cache_mib".to_owned(), "components.c.limits.cache_entries".to_owned()])
        );
        assert_eq!(
            with("", "cache_mib = 1025, cache_entries = 0"),
            Err(vec!["workloads[0].inbound[0].limits.cache_mib".to_owned(), "workloads[0].inbound[0].limits.cache_entries".to_owned()])
        );
    }

    #[test]
    fn an_injector_toward_a_cleartext_upstream_is_refused_unless_allowed() {
        let injector = "  [[workloads.outbound]]\n  component = \"builtin:registry-token\"\n";
        let with = |upstream: &str, extra: &str| {
            GOOD.replace("http://127.0.0.1:3001", upstream).replace("  [[workloads.inbound]]", &format!("{extra}{injector}  [[workloads.inbound]]"))
        };
        let errors = load(&with("http://registry.example.com/api", "")).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        let error = &errors[0];
        assert_eq!((error.line, error.key.to_string()), (Some(6), "workloads[0].upstream".to_owned()));
        assert!(error.message.contains("in clear") && error.message.contains("registry.example.com"), "{}", error.message);
        assert!(error.hint.as_deref().is_some_and(|h| h.contains("https://") && h.contains("allow_cleartext = true")), "{:?}", error.hint);
        // Loopback (127.0.0.0/8, ::1, localhost) and https need nothing.
        for upstream in ["http://127.0.0.1:3001", "http://127.1.2.3:3001", "http://[::1]:3001", "http://LOCALHOST:3001", "https://registry.example.com"] {
            let policy = load(&with(upstream, "")).unwrap_or_else(|e| panic!("{upstream}: {e}"));
            assert!(policy.warnings.is_empty(), "{upstream}: {:?}", policy.warnings);
        }
        // Names that only look local are not loopback.
        for upstream in ["http://localhost.example.com", "http://10.0.0.1", "http://[::ffff:8.8.8.8]"] {
            assert!(load(&with(upstream, "")).is_err(), "{upstream}");
        }
        // An explicit opt-in loads, with a warning at the key.
        let policy = load(&with("http://registry.example.com/api", "allow_cleartext = true\n")).unwrap();
        assert_eq!(policy.warnings.len(), 1, "{:?}", policy.warnings);
        assert_eq!(policy.warnings[0].key.to_string(), "workloads[0].allow_cleartext");
        assert!(policy.warnings[0].message.contains("in clear"), "{}", policy.warnings[0].message);
        // Without an injector there is no token to leak.
        assert!(load(&GOOD.replace("http://127.0.0.1:3001", "http://10.0.0.1")).is_ok());
    }

    #[test]
    fn duplicate_names_and_ports() {
        let src = format!("{GOOD}{}", GOOD.replace("version = 1", ""));
        let errors = load(&src).unwrap_err().0;
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}
