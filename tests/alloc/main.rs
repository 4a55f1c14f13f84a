//! The allocation budget of the per-request path: a cheap regression check
//! for the performance work (docs/benchmarks.md), run by the test command.
//!
//! Timing a request in a test would be noise on a loaded CI machine; counting
//! heap allocations is deterministic. A counting global allocator sees every
//! allocation in this process: the client, the in-process test upstream and the
//! gateway between them. Requests sent straight to the upstream give the
//! client's and upstream's share, which is taken off. What is left is what the
//! gateway allocates per request: for an anonymous workload (the proxy alone)
//! and for one component call (the `behaviours` fixture allowing). A change
//! that adds a per-request copy of the headers, a label `String` or a boxed
//! future per step shows up here as a failure with the figures.

// A global allocator is an `unsafe impl`; it only counts and forwards to the system allocator.
#![allow(unsafe_code)]

use portcullis_tests::per_request::{KeptAlive, Phases};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Allocations per request the gateway may make. The figures of 2026-12-06
/// (the gateway's own upstream connection pool, issue 26; 59 and 19 before)
/// are in the comments; the budgets leave room for dependency updates, not
/// for a new per-request copy.
const PROXY_BUDGET: f64 = 57.0; // measured 52 (`cargo test -p portcullis-tests --test alloc -- --nocapture`)
const COMPONENT_BUDGET: f64 = 23.0; // measured 20 (one is the boxed call future), on top of the proxy

const WARM_UP: usize = 300;
const MEASURED: usize = 2000;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to the system allocator unchanged; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per request over one kept-alive HTTP/1.1 connection to `addr`.
async fn allocations_per_request(addr: SocketAddr) -> f64 {
    let mut connection = KeptAlive::open(addr).await;
    connection.send(WARM_UP).await;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    connection.send(MEASURED).await;
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / MEASURED as f64
}

#[tokio::test(flavor = "current_thread")]
async fn the_per_request_path_stays_within_its_allocation_budget() {
    // Logging at trace level (the suite's default) would count the formatting of every line:
    // this subscriber, installed first, keeps errors only.
    let _ = tracing_subscriber::fmt().with_max_level(tracing::Level::ERROR).try_init();
    let phases = Phases::start().await;
    let [direct, anonymous, component] = phases.targets;
    let direct = allocations_per_request(direct).await;
    let anonymous = allocations_per_request(anonymous).await;
    let component = allocations_per_request(component).await;
    let proxy = anonymous - direct;
    let call = component - anonymous;
    eprintln!("allocations per request: client + upstream {direct:.1}, the proxy {proxy:.1}, one component call {call:.1}");
    assert!(proxy <= PROXY_BUDGET, "the proxy allocates {proxy:.1} times per request, over its budget of {PROXY_BUDGET}");
    assert!(call <= COMPONENT_BUDGET, "a component call allocates {call:.1} times per request, over its budget of {COMPONENT_BUDGET}");
    // Far fewer would mean the call no longer happens per request, and the budget measures nothing.
    assert!(call >= 5.0, "a component call allocates only {call:.1} times per request: is it still called?");
}
