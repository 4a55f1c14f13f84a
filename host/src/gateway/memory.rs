//! Giving the system back the heap a policy build freed.
//!
//! Compiling components (cranelift, on several threads) and parsing a policy
//! allocate tens of MiB that are freed at the end of the build, but glibc
//! keeps freed memory in its per-thread arenas: a gateway started on a cold
//! component cache stayed at ~70 MiB RSS, ~45 after `malloc_trim`, which
//! returns free pages to the system (a warm start: ~22; docs/benchmarks.md).

/// Returns the allocator's free memory to the system (glibc only; elsewhere nothing).
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    trim();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: `malloc_trim` takes no pointers and only walks glibc's own free
    // lists under its locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
