//! The host assembled once, the same way for every command that runs
//! components: `run`, `check`, `login`/`logout` and `plugin test` differ only
//! in their [`Purpose`]. And one chain entry set up once, the same way for the
//! gateway's policy and for `plugin test` ([`set_up`]): grants made
//! capabilities, then the plugin, whose `init` runs.

use super::Runtime;
use super::capabilities::{Capabilities, Grants, PluginLabel, Services, cache};
use super::plugin::{FaultKind, Isolation, Limits, Plugin, PluginSpec, Role, SetupError};
use crate::admin::metrics::Metrics;
use crate::secrets::{SecretStore, SecretString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::component::Component;

/// The runtime, the services behind the grants, and the metrics.
pub struct Host {
    pub runtime: Arc<Runtime>,
    pub services: Services,
    pub metrics: Arc<Metrics>,
}

/// What the host is assembled for.
pub enum Purpose<'a> {
    /// A running gateway: the process-wide instance pool, pool gauges in the metrics.
    Serve {
        home: &'a Path,
        /// Where compiled components are cached; `None` for `<home>/cache/components`.
        cache_dir: Option<PathBuf>,
        /// The secret store's password; `None` reads `PORTCULLIS_SECRETS_PASSWORD`.
        secrets_password: Option<SecretString>,
        instance_pool: u32,
    },
    /// `portcullis check`: components may not send requests or write secrets.
    Check { home: &'a Path },
    /// `portcullis login`/`logout`: the store may be written, nothing is served.
    Login { home: &'a Path },
    /// `portcullis plugin test`: a small pool and traps with the guest's frames.
    /// The trial brings its own stubbed services ([`super::capabilities::trial`]).
    Author { home: Option<&'a Path> },
}

impl Host {
    pub fn assemble(purpose: Purpose<'_>) -> anyhow::Result<Host> {
        let cache_of = |home: &Path| home.join("cache/components");
        let metrics = Arc::new(Metrics::new());
        let (runtime, services) = match purpose {
            Purpose::Serve { home, cache_dir, secrets_password, instance_pool } => {
                let runtime = Runtime::with_pool(Some(cache_dir.unwrap_or_else(|| cache_of(home))), instance_pool)?;
                let store = match secrets_password {
                    Some(password) => SecretStore::new(home, Some(password)),
                    None => SecretStore::in_home(home),
                };
                metrics.add_collector(Box::new(super::engine::PoolGauges(runtime.engine().clone())));
                metrics.slow_lane(runtime.slow_lane().metrics());
                let services = Services::new(Arc::new(store));
                metrics.add_collector(Box::new(cache::CacheMetrics(services.cache.clone())));
                metrics.store(services.store.unavailable());
                (runtime, services)
            }
            Purpose::Check { home } => (Runtime::new(Some(cache_of(home)))?, Services::for_check(Arc::new(SecretStore::in_home(home)))),
            Purpose::Login { home } => (Runtime::new(Some(cache_of(home)))?, Services::new(Arc::new(SecretStore::in_home(home)))),
            Purpose::Author { home } => {
                let trial = Arc::new(super::capabilities::trial::Trial::new(Default::default()));
                (Runtime::for_authors(home.map(cache_of))?, Services::for_trial(trial))
            }
        };
        Ok(Host { runtime, services, metrics })
    }
}

/// What one chain entry may use: its grants, its cache, and what the host provides it.
pub struct Access<'a> {
    pub label: PluginLabel,
    pub grants: &'a Grants,
    /// The cache namespace's position part (`inbound[0]@<fingerprint>`).
    pub cache_scope: &'a str,
    pub quota: cache::Quota,
    /// A value the host serves this entry under a reserved name (a static token).
    pub provided: Option<(&'static str, SecretString)>,
}

impl Access<'_> {
    /// The capabilities that enforce it, on `services`.
    pub fn capabilities(self, services: &Services) -> Capabilities {
        let mut caps = Capabilities::new(self.label, self.grants, services, self.cache_scope, self.quota);
        if let Some((name, value)) = self.provided {
            caps.secrets.provide(name, value);
        }
        caps
    }
}

/// One chain entry, ready to set up.
pub struct Entry<'a> {
    pub access: Access<'a>,
    pub role: Role,
    pub component: Component,
    pub config_json: String,
    /// The workload's resource identifier, as `init` sees it.
    pub public_url: String,
    pub limits: Limits,
    pub isolation: Isolation,
    /// The workload's bound on live instances, and this position's share kept idle.
    pub instances: Arc<tokio::sync::Semaphore>,
    pub max_idle: usize,
}

/// Sets up one chain entry: its capabilities from its grants, then its
/// plugin, whose `init` runs with them.
pub async fn set_up(runtime: &Runtime, services: &Services, metrics: &Metrics, entry: Entry<'_>) -> Result<Arc<Plugin>, SetupError> {
    let label = entry.access.label.clone();
    let spec = PluginSpec {
        metrics: metrics.plugin(&label.workload, &label.component, &FaultKind::labels()),
        label,
        role: entry.role,
        component: entry.component,
        config_json: entry.config_json,
        public_url: entry.public_url,
        limits: entry.limits,
        isolation: entry.isolation,
        caps: Arc::new(crate::runtime::capabilities::Capabilities {
            events: metrics.events(&entry.access.label.workload, &entry.access.label.component),
            ..entry.access.capabilities(services)
        }),
        instances: entry.instances,
        max_idle: entry.max_idle,
    };
    Plugin::new(runtime, spec).await
}
