//! The running gateway: the current [`Snapshot`], the listeners that serve it,
//! reloads (SIGHUP and file changes) and graceful shutdown.
//!
//! A reload builds a complete new snapshot beside the old one and swaps it in
//! atomically; requests in flight finish on the snapshot they started with. A
//! policy that does not load or compile leaves the old snapshot serving.

mod memory;
mod sites;
mod watch;

use crate::admin::metrics::Metrics;
use crate::policy::snapshot::Snapshot;
use crate::policy::{self, error::PolicyErrors};
use crate::proxy::server::{self, ListenerHandle};
use crate::proxy::workload::Workload;
use crate::runtime::Runtime;
use crate::runtime::setup::{Host, Purpose};
use anyhow::Context;
use arc_swap::ArcSwap;
use sites::{AdminSite, WorkloadSite};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Mutex;

/// What the listeners share.
pub struct Shared {
    snapshot: ArcSwap<Snapshot>,
    pub metrics: Arc<Metrics>,
    ready: AtomicBool,
}

impl Shared {
    pub fn workload(&self, name: &str) -> Option<Arc<Workload>> {
        self.snapshot.load().workloads.get(name).cloned()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }
}

/// How to start a gateway.
pub struct Options {
    pub policy: PathBuf,
    /// Data directory (secret store, component cache).
    pub home: PathBuf,
    /// Where compiled components are cached; `None` for `<home>/cache/components`.
    pub cache_dir: Option<PathBuf>,
    /// The secret store's password; `None` reads `PORTCULLIS_SECRETS_PASSWORD`.
    pub secrets_password: Option<crate::secrets::SecretString>,
    /// Component instances in the process-wide pool (default 1000).
    pub instance_pool: u32,
}

impl Options {
    /// The defaults for a policy file and data directory.
    pub fn new(policy: PathBuf, home: PathBuf) -> Self {
        Options { policy, home, cache_dir: None, secrets_password: None, instance_pool: crate::runtime::engine::POOL_INSTANCES }
    }
}

pub struct Gateway {
    shared: Arc<Shared>,
    host: Host,
    policy_path: PathBuf,
    listeners: Mutex<HashMap<Arc<str>, ListenerHandle>>,
    admin: Mutex<Option<ListenerHandle>>,
    /// One reload at a time, so the file read last is the policy installed last.
    reloading: Mutex<()>,
}

impl Gateway {
    /// Loads and compiles the policy, then binds every listener.
    pub async fn start(options: Options) -> anyhow::Result<Arc<Gateway>> {
        crate::proxy::tls::install_crypto_provider();
        let host = Host::assemble(Purpose::Serve {
            home: &options.home,
            cache_dir: options.cache_dir,
            secrets_password: options.secrets_password,
            instance_pool: options.instance_pool,
        })?;
        let snapshot = build(&options.policy, &host).await?;
        let empty = Snapshot { workloads: HashMap::new(), admin: None };
        let shared = Arc::new(Shared { snapshot: ArcSwap::from_pointee(empty), metrics: host.metrics.clone(), ready: AtomicBool::new(false) });
        let gateway = Arc::new(Gateway {
            shared,
            host,
            policy_path: options.policy,
            listeners: Mutex::new(HashMap::new()),
            admin: Mutex::new(None),
            reloading: Mutex::new(()),
        });
        gateway.install(snapshot).await?;
        tokio::task::spawn_blocking(memory::release_free_heap);
        gateway.shared.ready.store(true, Ordering::Relaxed);
        Ok(gateway)
    }

    /// The address a workload's listener is bound to (useful with port 0).
    pub async fn local_addr(&self, workload: &str) -> Option<SocketAddr> {
        self.listeners.lock().await.get(workload).map(|l| l.addr)
    }

    pub async fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.lock().await.as_ref().map(|l| l.addr)
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.host.runtime
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Re-reads the policy file. On success the new snapshot serves new requests;
    /// on failure the old one keeps serving and the error says why.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let _one_at_a_time = self.reloading.lock().await;
        let generation = self.host.runtime.begin_generation();
        let result = async {
            let snapshot = build(&self.policy_path, &self.host).await?;
            self.install(snapshot).await
        }
        .await;
        match result {
            Ok(()) => self.host.runtime.forget_components_before(generation),
            Err(_) => self.host.runtime.forget_components_of_failed(generation),
        }
        // It walks every allocator arena under their locks: not on a worker thread.
        tokio::task::spawn_blocking(memory::release_free_heap);
        self.shared.metrics.reload(result.is_ok());
        match &result {
            Ok(()) => tracing::info!(policy = %self.policy_path.display(), "policy reloaded"),
            Err(error) => tracing::error!(policy = %self.policy_path.display(), error = %format!("{error:#}"),
                "policy reload failed; the previous policy keeps serving"),
        }
        result
    }

    /// Stops accepting, drains in-flight requests, and returns.
    pub async fn shutdown(&self) {
        self.shared.ready.store(false, Ordering::Relaxed);
        let listeners: Vec<_> = self.listeners.lock().await.drain().map(|(_, l)| l).collect();
        // Tell every listener first, then wait: they drain in parallel.
        let mut draining = tokio::task::JoinSet::new();
        for listener in listeners {
            draining.spawn(listener.stop());
        }
        draining.join_all().await;
        if let Some(admin) = self.admin.lock().await.take() {
            admin.stop().await;
        }
    }

    /// Installs `snapshot`: binds the listeners it needs first (so a port that
    /// cannot be bound fails the reload before anything changes), then swaps the
    /// snapshot in, then stops the listeners of removed or moved workloads.
    async fn install(&self, snapshot: Snapshot) -> anyhow::Result<()> {
        let snapshot = Arc::new(snapshot);
        let mut listeners = self.listeners.lock().await;
        let mut admin = self.admin.lock().await;
        let keeps = |name: &Arc<str>, handle: &ListenerHandle| snapshot.workloads.get(name).is_some_and(|w| same_listen(w.listen, handle.addr));

        let mut bound = Vec::new();
        for (name, workload) in &snapshot.workloads {
            if listeners.get(name).is_some_and(|h| keeps(name, h)) {
                continue;
            }
            let listener =
                tokio::net::TcpListener::bind(workload.listen).await.with_context(|| format!("workload `{name}`: cannot listen on {}", workload.listen))?;
            bound.push((name.clone(), listener));
        }
        let admin_keeps = |handle: &ListenerHandle| snapshot.admin.as_ref().is_some_and(|a| same_listen(a.listen, handle.addr));
        let new_admin = match (snapshot.admin.as_ref().map(|a| a.listen), admin.as_ref().filter(|h| admin_keeps(h))) {
            (Some(addr), None) => Some(tokio::net::TcpListener::bind(addr).await.with_context(|| format!("admin: cannot listen on {addr}"))?),
            _ => None,
        };

        // Everything is bound: the new policy takes over from here.
        self.shared.snapshot.store(snapshot.clone());
        // What the previous policy cached (verified tokens, key sets) goes with it.
        let live: std::collections::HashSet<&str> =
            snapshot.workloads.values().flat_map(|w| w.inbound.plugins.iter().chain(&w.outbound)).map(|p| p.cache_namespace()).collect();
        self.host.services.cache.retain_namespaces(|namespace| live.contains(namespace));
        let stale: Vec<Arc<str>> = listeners.iter().filter(|(n, h)| !keeps(n, h)).map(|(n, _)| n.clone()).collect();
        for name in stale {
            if let Some(handle) = listeners.remove(&name) {
                tokio::spawn(handle.stop());
            }
        }
        for (name, listener) in bound {
            let site = Arc::new(WorkloadSite { name: name.clone(), shared: self.shared.clone() });
            let handle = server::spawn(listener, site)?;
            let workload = &snapshot.workloads[&name];
            tracing::info!(workload = %name, addr = %handle.addr, upstream = %workload.upstream.base(), "listening");
            if workload.inbound.is_empty() {
                tracing::warn!(workload = %name, "serving WITHOUT authentication (anonymous = true)");
            }
            listeners.insert(name, handle);
        }
        if admin.as_ref().is_some_and(|h| !admin_keeps(h))
            && let Some(old) = admin.take()
        {
            tokio::spawn(old.stop());
        }
        if let Some(listener) = new_admin {
            let handle = server::spawn(listener, Arc::new(AdminSite { shared: self.shared.clone() }))?;
            tracing::info!(addr = %handle.addr, "admin listener");
            *admin = Some(handle);
        }
        Ok(())
    }
}

/// Whether a listener bound at `bound` serves the policy's `wanted` address
/// (port 0 in the policy means "any port", as tests use).
fn same_listen(wanted: SocketAddr, bound: SocketAddr) -> bool {
    wanted.ip() == bound.ip() && (wanted.port() == 0 || wanted.port() == bound.port())
}

async fn build(path: &std::path::Path, host: &Host) -> anyhow::Result<Snapshot> {
    let loaded = policy::load_file(path).map_err(anyhow::Error::new)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    // Only a running gateway creates keys; `portcullis check` has no side effects.
    crate::keys::ensure_auto(&host.services.secret_store, &loaded).context("creating the shared keys the policy asks for (`key = \"auto\"`)")?;
    // Derive the store's key now, not inside a component's deadline.
    if let Err(error) = host.services.secret_store.warm() {
        tracing::error!(%error, "the secret store cannot be opened; components that read secrets will be refused");
    }
    policy::compile::compile(&loaded, host).await.map_err(|e: PolicyErrors| anyhow::Error::new(e))
}

pub use watch::run;
