//! Host capabilities: what a component may reach beyond its own memory.
//!
//! Each capability is a small module with the same shape: a grant type parsed
//! once from the policy entry's [`GrantsFile`] (at load, so `portcullis check`
//! sees the same errors, located by the policy loader), and the WIT host trait
//! implemented on [`HostState`] that enforces the grant on every call.
//! Everything not granted is refused, and the refusal is logged with the
//! component's and workload's names.
//!
//! [`Services`] are the process-wide parts behind the grants (the secret store,
//! the outbound HTTP client, the cache); they outlive policy reloads.

pub mod cache;
pub mod crypto;
pub mod events;
pub mod http;
pub mod log;
pub mod request;
pub mod secrets;
pub mod signing;
pub mod signing_grant;
pub mod store;
pub mod trial;

use crate::secrets::SecretStore;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

pub use super::state::HostState;

/// Whether grants may act on the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A running gateway: grants are used as written.
    Serve,
    /// `portcullis check`: components are initialised to validate their
    /// configuration, and must leave no trace. Outbound HTTP and secret writes
    /// are refused, even when granted; secret reads and the (in-memory) cache work,
    /// and so does the store, in memory whatever `[store]` says.
    Check,
}

/// The process-wide services that grants give access to.
pub struct Services {
    pub secret_store: Arc<SecretStore>,
    pub http: Arc<http::OutboundHttp>,
    pub cache: Arc<cache::SharedCache>,
    pub mode: Mode,
    /// `plugin test`: stubs instead of the store and the network, and a record of calls.
    pub trial: Option<Arc<trial::Trial>>,
    /// Installed plugin modules (`plugin:NAME`), in the same home as the secret store.
    pub plugins: Arc<crate::plugins::store::PluginStore>,
    /// The key-value store behind `grants.store`, as `[store]` configures it (see [`crate::store::Stores`]).
    pub store: crate::store::Stores,
    /// The ephemeral signing keys (`ephemeral_keys = true`): kept across reloads.
    pub ephemeral_keys: Arc<signing_grant::EphemeralKeys>,
}

impl Services {
    /// The services of a running gateway.
    pub fn new(secret_store: Arc<SecretStore>) -> Self {
        Self::with_mode(secret_store, Mode::Serve)
    }

    /// The services of `portcullis check`: see [`Mode::Check`].
    pub fn for_check(secret_store: Arc<SecretStore>) -> Self {
        Self::with_mode(secret_store, Mode::Check)
    }

    fn with_mode(secret_store: Arc<SecretStore>, mode: Mode) -> Self {
        let home = secret_store.path().parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        Services {
            plugins: Arc::new(crate::plugins::store::PluginStore::in_home(&home)),
            secret_store,
            http: Arc::new(http::OutboundHttp::new()),
            cache: Arc::new(cache::SharedCache::default()),
            mode,
            trial: None,
            store: crate::store::Stores::new(mode == Mode::Check),
            ephemeral_keys: Arc::default(),
        }
    }

    /// The services of `portcullis plugin test`: see [`trial`].
    pub fn for_trial(trial: Arc<trial::Trial>) -> Self {
        // The store is never opened: the trial answers every secret.
        let store = Arc::new(SecretStore::new(std::path::Path::new("/nonexistent/portcullis-plugin-test"), None));
        Services { trial: Some(trial), ..Self::with_mode(store, Mode::Serve) }
    }
}

/// Who a component instance is, for logs, metrics and cache namespaces.
#[derive(Clone, Debug)]
pub struct PluginLabel {
    pub workload: Arc<str>,
    /// The component as named in the policy (`builtin:shared-key`, `api-key-db`).
    pub component: Arc<str>,
}

/// Capabilities granted to one component in one workload, as the policy writes them.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantsFile {
    /// Secret names it may read; a trailing `*` matches any suffix (`workload:demo:*`).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Secret names it may write (e.g. refresh tokens); same pattern syntax.
    #[serde(default)]
    pub secrets_write: Vec<String>,
    /// Origins it may send HTTP requests to, e.g. `https://idp.example.com` (scheme, host, optional port);
    /// `https://*` for any https origin on a public address (never a private one, whatever `http_private` says).
    /// `http://` only to loopback (127.0.0.0/8, `::1`, `localhost`), unless the workload sets `allow_cleartext`.
    #[serde(default)]
    pub http: Vec<String>,
    /// Allow those origins to resolve to loopback or private addresses (refused by default).
    #[serde(default)]
    pub http_private: bool,
    /// The key-value store (`[store]`). `true`: in a namespace of its own (this component in this workload).
    /// A name (`"sessions"`): in the namespace of that name, shared by every entry of this workload that
    /// gives it (the authorization server and `builtin:upstream-token` share the sealed upstream tokens).
    #[serde(default)]
    pub store: StoreGrantFile,
    /// Private keys for the `signing` import, in order: the first signs, every one is published in the JWKS.
    /// `file:PATH` (PEM PKCS#8, P-256 or RSA; relative to the policy file; readable by its owner only) or
    /// `secret:NAME` (the PEM text in the secret store, under a name `secrets` does not grant).
    #[serde(default)]
    pub signing_keys: Vec<String>,
    /// Sign with one P-256 key made when the process starts (no `signing_keys`): the tokens it signs stop
    /// verifying when the process exits. For trying things out.
    #[serde(default)]
    pub ephemeral_keys: bool,
}

/// `grants.store` as written: `true`/`false`, or a shared namespace's name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StoreGrantFile {
    Own(bool),
    Shared(String),
}

impl Default for StoreGrantFile {
    fn default() -> Self {
        StoreGrantFile::Own(false)
    }
}

/// Which namespace of the store an entry may use.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum StoreGrant {
    #[default]
    None,
    /// The component's own, in its workload.
    Own,
    /// The workload's namespace of this name (letters, digits, `-`, `_`).
    Shared(String),
}

impl StoreGrant {
    fn parse(file: &StoreGrantFile, problems: &mut Vec<GrantProblem>) -> Option<StoreGrant> {
        match file {
            StoreGrantFile::Own(false) => Some(StoreGrant::None),
            StoreGrantFile::Own(true) => Some(StoreGrant::Own),
            StoreGrantFile::Shared(name) if (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {
                Some(StoreGrant::Shared(name.clone()))
            }
            StoreGrantFile::Shared(name) => {
                problems.push(GrantProblem {
                    field: "store",
                    index: 0,
                    message: format!("`{name}` is not a namespace name"),
                    hint: Some("use `true`, or a name of letters, digits, `-` and `_` (at most 64) that the entries sharing it all give".into()),
                    warning: false,
                });
                None
            }
        }
    }

    /// The namespace's second part under the workload: the component's
    /// label, or `@name` for a shared one (which no component label starts with).
    pub fn owner(&self, component: &str) -> Option<String> {
        match self {
            StoreGrant::None => None,
            StoreGrant::Own => Some(component.to_owned()),
            StoreGrant::Shared(name) => Some(format!("@{name}")),
        }
    }
}

/// A [`GrantsFile`] parsed: what [`Capabilities::new`] enforces. Only
/// [`Grants::parse`] makes one from the file, so nothing granted is parsed twice.
#[derive(Debug, Default, Clone)]
pub struct Grants {
    pub secrets: Vec<secrets::Pattern>,
    pub secrets_write: Vec<secrets::Pattern>,
    pub http: http::HttpGrant,
    pub store: StoreGrant,
    /// The signing key sources; the file keys are read by the policy loader.
    pub signing: signing_grant::SigningGrant,
}

/// Something wrong with (or worth a warning about) one value of a grant: the
/// list it is in and its index, for the policy loader to locate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantProblem {
    /// `secrets`, `secrets_write` or `http`.
    pub field: &'static str,
    pub index: usize,
    pub message: String,
    pub hint: Option<String>,
    /// It loads, with this warning.
    pub warning: bool,
}

impl Grants {
    /// Parses a chain entry's grants. `allow_cleartext` is the workload's
    /// consent to plain `http://` beyond loopback (see [`http::HttpGrant::parse`]).
    /// The grants are `Some` exactly when no problem is an error.
    pub fn parse(file: &GrantsFile, allow_cleartext: bool) -> (Option<Grants>, Vec<GrantProblem>) {
        let mut problems = Vec::new();
        let secrets = secrets::Pattern::parse_all("secrets", &file.secrets, &mut problems);
        let secrets_write = secrets::Pattern::parse_all("secrets_write", &file.secrets_write, &mut problems);
        let http = http::HttpGrant::parse(&file.http, file.http_private, allow_cleartext, &mut problems);
        // Secret names the component may read or replace: never a signing key's.
        let reachable: Vec<secrets::Pattern> = secrets.iter().chain(&secrets_write).flatten().cloned().collect();
        let signing = signing_grant::SigningGrant::parse(&file.signing_keys, file.ephemeral_keys, &reachable, &mut problems);
        let store = StoreGrant::parse(&file.store, &mut problems);
        let grants = match (secrets, secrets_write, http, signing, store) {
            (Some(secrets), Some(secrets_write), Some(http), Some(signing), Some(store)) => Some(Grants { secrets, secrets_write, http, store, signing }),
            _ => None,
        };
        (grants, problems)
    }
}

/// Everything one component in one workload was granted.
pub struct Capabilities {
    pub label: PluginLabel,
    pub secrets: secrets::SecretGrants,
    pub http: http::HttpGrants,
    pub cache: cache::CacheSpace,
    /// How many log lines it may still write (shared by its instances).
    pub log_budget: log::Budget,
    pub trial: Option<Arc<trial::Trial>>,
    /// Its namespace in the store; `None`: not granted.
    pub store: Option<crate::store::Namespace>,
    /// The signing keys (`None`: `signing` is not granted).
    pub signing: Option<Arc<crate::signing::KeyRing>>,
    /// Where its `events` reports are counted (nowhere until the gateway sets them up).
    pub events: crate::admin::metrics::EventCounters,
}

impl Capabilities {
    /// Builds the grants of one chain entry, parsed at load.
    /// `position` (`inbound[0]`) keeps the cache of two uses of one component
    /// apart; each use has its own cache `quota`.
    pub fn new(label: PluginLabel, grants: &Grants, services: &Services, position: &str, quota: cache::Quota) -> Self {
        Capabilities {
            secrets: secrets::SecretGrants::new(grants.secrets.clone(), grants.secrets_write.clone(), services.secret_store.clone(), services.mode),
            http: http::HttpGrants::new(grants.http.clone(), services.http.clone(), services.mode),
            cache: cache::CacheSpace::new(&cache_namespace(&label.workload, position, &label.component), quota, &services.cache),
            log_budget: log::Budget::default(),
            trial: services.trial.clone(),
            store: grants.store.owner(&label.component).map(|owner| services.store.namespace(&label.workload, &owner)),
            signing: signing::key_ring(&label, grants, services),
            events: Default::default(),
            label,
        }
    }
}

/// The cache namespace of one chain entry: `workload/inbound[0]/component`.
/// After a reload, keep the namespaces of the entries that still exist with
/// [`cache::SharedCache::retain_namespaces`].
pub fn cache_namespace(workload: &str, position: &str, component: &str) -> String {
    format!("{workload}/{position}/{component}")
}

impl crate::runtime::bindings::types::Host for HostState {}
