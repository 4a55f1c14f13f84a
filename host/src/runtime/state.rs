//! What a component's store holds: its WASI context (clocks and randomness only),
//! its memory cap, the capabilities its policy entry granted, and, during a
//! call, the request it is deciding on and the call's deadline.

use super::capabilities::Capabilities;
use super::request::RequestData;
use super::slow_lane::LaneTicket;
use crate::secrets::NamedLock;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryCap,
    pub(crate) caps: Arc<Capabilities>,
    /// The request of the call in flight (`None` between calls and during `init`).
    pub(crate) request: Option<Arc<RequestData>>,
    /// When the call in flight must end: host imports that wait (HTTP) stop before it.
    pub(crate) deadline: Option<Instant>,
    /// Named locks the call in flight holds (`secrets.lock`): released by
    /// [`HostState::end_call`], so no lock outlives the call that took it.
    pub(crate) locks: Vec<(String, NamedLock)>,
    /// The CPU time the call in flight is known to have computed (see `slow_lane::SLOW_AFTER`).
    pub(crate) computed: Duration,
    /// What its calls tell the slow lane (`None`: nothing, as in `portcullis login`).
    pub(crate) lane: Option<LaneTicket>,
}

impl HostState {
    pub fn new(caps: Arc<Capabilities>, memory_bytes: usize) -> Self {
        // WASI without files, sockets, environment or arguments: std's runtime
        // imports these interfaces, so they are linked, but every use is refused.
        // Standard output and error go nowhere.
        let wasi = WasiCtx::builder().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap::new(memory_bytes),
            caps,
            request: None,
            deadline: None,
            locks: Vec::new(),
            computed: Duration::ZERO,
            lane: None,
        }
    }

    /// Starts a call that must end by `deadline`.
    pub(crate) fn begin_call(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
        self.resume();
    }

    /// The guest goes on computing now (its call starts, or an awaited host
    /// import returned): the next tick does not count as its computing.
    pub(crate) fn resume(&mut self) {
        if let Some(lane) = &self.lane {
            lane.resumed();
        }
    }

    /// Forgets what belongs to the call that just ended: its request, its
    /// deadline, and any lock it still holds.
    pub(crate) fn end_call(&mut self) {
        self.request = None;
        self.deadline = None;
        self.locks.clear();
        self.computed = Duration::ZERO;
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps linear memory and tables, and remembers that a cap was hit so the
/// resulting trap is reported as a limit rather than a bug in the component.
pub struct MemoryCap {
    max_bytes: usize,
    pub(crate) hit: bool,
}

/// Table elements per instance; generous for any real component.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryCap {
    fn new(max_bytes: usize) -> Self {
        MemoryCap { max_bytes, hit: false }
    }
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            // An error (rather than `Ok(false)`) traps at once: a component that
            // ignores a failed `memory.grow` cannot go on with a corrupt heap.
            return Err(wasmtime::format_err!("memory cap of {} bytes reached", self.max_bytes));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.hit = true;
            return Err(wasmtime::format_err!("table cap of {MAX_TABLE_ELEMENTS} elements reached"));
        }
        Ok(true)
    }
}
