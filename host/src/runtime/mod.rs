//! The Wasm plugin runtime.
//!
//! - [`engine`]: the one wasmtime engine (pooling allocator, epochs).
//! - [`component_cache`]: compiled components on disk, by content hash.
//! - [`builtins`]: the components embedded in the binary.
//! - [`bindings`]: the WIT contract as Rust types and traits.
//! - [`capabilities`]: the host imports and the grants that gate them.
//! - [`request`]: the `request` resource components query (the lazy request view).
//! - [`verdict`]: manifests and verdicts, checked once into forms the proxy
//!   applies without further checks.
//! - [`plugin`]: one component in one chain position (or a workload's server),
//!   with its instance strategy, deadline and memory cap; this is what the proxy calls. `fault`: why a
//!   call produced no verdict.
//! - [`slow_lane`]: the low-priority threads where expensive or faulting
//!   guest work runs.
//! - [`inspect`]: what a `.wasm` file is (`portcullis plugin inspect`).
//! - [`setup`]: the runtime and its services assembled for a command, and one
//!   chain entry set up from its grants (the gateway's way, and `plugin test`'s).

pub mod bindings;
pub mod builtins;
pub mod capabilities;
pub mod component_cache;
mod deadline;
pub mod engine;
mod fault;
pub mod inspect;
pub mod login;
pub mod plugin;
pub mod request;
pub mod setup;
pub mod slow_lane;
mod state;
pub mod verdict;

pub use engine::MAX_MEMORY_MIB;

use component_cache::ComponentCache;
use state::HostState;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

/// The engine, the linker with every host import, and the compile cache.
/// One per process; policy reloads reuse it.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: ComponentCache,
    /// Components in memory, by SHA-256, with the generation that last used
    /// them. A reload that keeps a component reuses its code, and instances of
    /// the same component reuse the pooled memory slots they had (the pooling
    /// allocator keeps per-component affinity); a fresh copy per reload would
    /// map its code again and warm new slots, which is how reloads grew RSS.
    loaded: Mutex<HashMap<String, Loaded>>,
    generation: AtomicU64,
    pooling: bool,
    compilations: AtomicU64,
    loads: AtomicU64,
    /// Where expensive guest work runs (see [`slow_lane`]).
    slow_lane: slow_lane::SlowLane,
}

/// A component held in memory: the generation that first loaded it and the last that used it.
struct Loaded {
    component: Component,
    first: u64,
    used: u64,
}

impl Runtime {
    /// `cache_dir`: where compiled components are kept (`None`: compile every time).
    pub fn new(cache_dir: Option<std::path::PathBuf>) -> anyhow::Result<Arc<Self>> {
        Self::with_pool(cache_dir, engine::POOL_INSTANCES)
    }

    /// Like [`Runtime::new`] with a pool of `instances` component instances (tests use small pools).
    pub fn with_pool(cache_dir: Option<std::path::PathBuf>, instances: u32) -> anyhow::Result<Arc<Self>> {
        Self::build(cache_dir, instances, false)
    }

    /// For `portcullis plugin test`: a small pool, and traps that carry the
    /// innermost wasm frames for the component's author.
    pub fn for_authors(cache_dir: Option<std::path::PathBuf>) -> anyhow::Result<Arc<Self>> {
        Self::build(cache_dir, 4, true)
    }

    fn build(cache_dir: Option<std::path::PathBuf>, instances: u32, backtraces: bool) -> anyhow::Result<Arc<Self>> {
        let (engine, pooling) = engine::build(instances, backtraces)?;
        let slow_lane = slow_lane::SlowLane::new();
        engine::start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::host::HostCapabilities::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
        let cache = ComponentCache::new(&engine, cache_dir);
        Ok(Arc::new(Runtime {
            engine,
            linker,
            cache,
            loaded: Mutex::default(),
            generation: AtomicU64::new(0),
            pooling,
            compilations: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            slow_lane,
        }))
    }

    pub fn slow_lane(&self) -> &slow_lane::SlowLane {
        &self.slow_lane
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// How many components this runtime compiled (rather than loaded from the cache).
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// The component whose SHA-256 the caller checked: the one already in
    /// memory, or compiled (or loaded from the cache).
    pub fn component(&self, sha256: &str, wasm: &[u8]) -> anyhow::Result<Component> {
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some(loaded) = self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get_mut(sha256) {
            loaded.used = generation;
            return Ok(loaded.component.clone());
        }
        self.loads.fetch_add(1, Ordering::Relaxed);
        let (component, compiled) = self.cache.load(&self.engine, sha256, wasm)?;
        if compiled {
            self.compilations.fetch_add(1, Ordering::Relaxed);
        }
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sha256.to_owned(), Loaded { component: component.clone(), first: generation, used: generation });
        Ok(component)
    }

    /// Starts a new policy build: components it uses are marked with a new generation.
    pub fn begin_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// After `generation`'s policy took over: forgets components it did not use
    /// (the old policy's instances keep their own until they drain).
    pub fn forget_components_before(&self, generation: u64) {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, loaded| loaded.used >= generation);
    }

    /// After `generation`'s policy failed to build: forgets the components
    /// only it loaded (the serving policy's were loaded before it), so a run
    /// of failed reloads, each with new bytes, does not pile them up.
    pub fn forget_components_of_failed(&self, generation: u64) {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, loaded| loaded.first != generation);
    }

    /// How many components this runtime compiled or loaded from the cache (not found in memory).
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// How many components are held in memory.
    pub fn components_in_memory(&self) -> usize {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }
}
