// Shared by host/build.rs and tests/build.rs (through `include!`).

/// Runs `cargo build --release --target wasm32-wasip2` on the workspace at
/// `workspace` with its own target directory (the outer build holds the lock on
/// ours), then copies each named component into `out`.
fn build_guests(workspace: &std::path::Path, target_dir: &std::path::Path, out: &std::path::Path, names: &[&str]) {
    // Without the target the guest build fails deep inside `core`; say what to do instead.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = std::process::Command::new(&rustc).args(["--print", "sysroot"]).output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Some(sysroot) = sysroot
        && !sysroot.is_empty()
        && !std::path::Path::new(&sysroot).join("lib/rustlib/wasm32-wasip2").exists()
    {
        fail("the Rust target wasm32-wasip2 is not installed; the built-in components need it. Run: rustup target add wasm32-wasip2");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        // Only what is embedded (the SDK and work in progress are not).
        .args(names.iter().flat_map(|name| ["-p".to_owned(), name.replace('_', "-")]))
        // Flags meant for the host build must not leak into the guest build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        // `cargo clippy` runs build scripts with clippy as the compiler wrapper;
        // the guests are linted on their own, not as a side effect of the host's lint.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS");
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(_) => fail(&format!("building the guest components in {} failed (the errors are above)", workspace.display())),
        Err(e) => fail(&format!("cannot run cargo to build the guest components: {e}")),
    }
    if let Err(e) = std::fs::create_dir_all(out) {
        fail(&format!("cannot create {}: {e}", out.display()));
    }
    for name in names {
        let built = target_dir.join("wasm32-wasip2/release").join(format!("{name}.wasm"));
        if let Err(e) = std::fs::copy(&built, out.join(format!("{name}.wasm"))) {
            fail(&format!("copying {}: {e}", built.display()));
        }
    }
}

/// Stops the build with one clear line, not a panic and a backtrace.
fn fail(message: &str) -> ! {
    println!("cargo::error={message}");
    std::process::exit(1)
}
