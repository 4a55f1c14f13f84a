//! Runtimes on threads of their own, for the benches: the gateway, its
//! upstream and each client run apart, as separate processes would, so that a
//! client waiting behind the gateway's guest code is the gateway's doing and
//! not the benchmark's.

/// A runtime named `name` on `threads` threads (1: a current-thread runtime).
pub fn runtime(name: &str, threads: usize) -> tokio::runtime::Runtime {
    let mut builder = if threads == 1 { tokio::runtime::Builder::new_current_thread() } else { tokio::runtime::Builder::new_multi_thread() };
    if threads > 1 {
        builder.worker_threads(threads);
    }
    builder.thread_name(name).enable_all().build().unwrap()
}

/// Runs `future` to completion on a new thread with a current-thread runtime of its own.
pub fn on_own_thread<F: std::future::Future + Send + 'static>(name: &str, future: F) -> std::thread::JoinHandle<F::Output>
where
    F::Output: Send + 'static,
{
    let rt = runtime(name, 1);
    std::thread::Builder::new().name(name.into()).spawn(move || rt.block_on(future)).unwrap()
}
