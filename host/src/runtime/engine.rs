//! The one wasmtime engine: component model, pooling allocator where the address
//! space allows, epoch interruption for deadlines.

use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. Guest code that runs this long yields to the
/// executor, and a deadline is met to within about one tick.
pub const EPOCH_TICK: Duration = Duration::from_micros(500);

/// The largest memory cap a component may be given, in MiB.
pub const MAX_MEMORY_MIB: u32 = 64;

/// Component instances in the process-wide pool (each workload is bounded by
/// its `limits.max_instances`, so one workload cannot take them all).
pub const POOL_INSTANCES: u32 = 1000;

/// Unused pool slots that may keep resident memory (up to 1 MiB each) before
/// warm slots are reused instead of new ones warmed (wasmtime's default: 100).
const MAX_UNUSED_WARM_SLOTS: u32 = 16;

/// Builds the engine with a pool of `instances` component instances;
/// `pooled` says whether the pooling allocator was available. `backtraces`:
/// traps record the innermost wasm frames (for authors: `plugin test`, or
/// `PORTCULLIS_WASM_BACKTRACE=1`).
pub fn build(instances: u32, backtraces: bool) -> anyhow::Result<(Engine, bool)> {
    let backtraces = backtraces || std::env::var_os("PORTCULLIS_WASM_BACKTRACE").is_some_and(|v| v == "1");
    match Engine::new(&config(Some(instances), backtraces)) {
        Ok(engine) => Ok((engine, true)),
        Err(error) => {
            // A small or restricted address space (ulimit -v, some containers)
            // cannot reserve the pool; on-demand allocation still works.
            tracing::warn!(%error, "pooling allocator unavailable; allocating instances on demand");
            Ok((Engine::new(&config(None, backtraces))?, false))
        }
    }
}

fn config(pool: Option<u32>, backtraces: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // Fuel would bound CPU exactly but costs ~20-30% of guest speed; epochs suffice.
    config.consume_fuel(false);
    // A trap walks and records every frame on the stack before keeping the
    // first few: a component that recurses until its stack runs out made each
    // call walk tens of thousands of frames (measured). Fault logs carry the
    // trap's message either way.
    config.wasm_backtrace_max_frames(if backtraces { std::num::NonZeroUsize::new(20) } else { None });
    if let Some(instances) = pool {
        let mut pool = PoolingAllocationConfig::new();
        let keep = if PoolingAllocationConfig::is_pagemap_scan_available() { 1 << 20 } else { 128 << 10 };
        pool.total_component_instances(instances)
            .total_core_instances(2 * instances)
            .total_memories(2 * instances)
            .total_tables(2 * instances)
            .total_stacks(instances)
            .max_memory_size(MAX_MEMORY_MIB as usize * 1024 * 1024)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(1 << 20)
            .max_core_instances_per_component(50)
            .max_memories_per_component(50)
            .max_tables_per_component(50)
            // Reset reused slots with memset instead of madvise: page faults and
            // TLB shootdowns (an interrupt on every core) dominated per-request
            // instantiation and the cost of a component that dirties its stack
            // on every call (measured). With PAGEMAP_SCAN (Linux 6.7+) only the
            // pages resident in the slot are reset, so up to 1 MiB of them can
            // be kept; without it the first `keep` bytes are memset whole.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(keep)
            // Slots keep that memory while unused: reuse the least recently
            // used warm slot rather than warm a new one once this many wait,
            // so what is kept tracks the peak of concurrent instances.
            .max_unused_warm_slots(MAX_UNUSED_WARM_SLOTS)
            .table_keep_resident(16 << 10)
            .async_stack_keep_resident(64 << 10);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // Reserve only what the largest cap needs, so 2000 memories fit in the address space.
        config.memory_reservation(MAX_MEMORY_MIB as u64 * 1024 * 1024);
        config.memory_guard_size(64 * 1024);
    }
    config
}

/// The instance pool on each metrics scrape: instances in use and the memory
/// unused slots keep resident (what a burst of instances leaves behind).
#[derive(Debug)]
pub struct PoolGauges(pub Engine);

impl prometheus_client::collector::Collector for PoolGauges {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::gauge::ConstGauge;
        let Some(pool) = self.0.pooling_allocator_metrics() else { return Ok(()) };
        let gauges = [
            ("pool_component_instances", "Component instances in use in the pool", pool.component_instances() as i64),
            ("pool_unused_warm_memories", "Unused pool slots whose memory is kept resident", i64::from(pool.unused_warm_memories())),
            ("pool_unused_memory_bytes_resident", "Bytes of memory unused pool slots keep resident", pool.unused_memory_bytes_resident() as i64),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("portcullis-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
