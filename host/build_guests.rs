// Shared by host/build.rs and tests/build.rs (through `include!`).

/// Runs `cargo build --release --target wasm32-wasip2` on the workspace at
/// `workspace` with its own target directory (the outer build holds the lock on
/// ours), then copies each named component into `out`.
fn build_guests(workspace: &std::path::Path, target_dir: &std::path::Path, out: &std::path::Path, names: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
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
    let status = command.status().expect("running cargo for the guest components");
    if !status.success() {
        panic!(
            "building the guest components in {} failed; is the wasm32-wasip2 target installed? \
             (`rustup target add wasm32-wasip2`; rust-toolchain.toml lists it)",
            workspace.display()
        );
    }
    std::fs::create_dir_all(out).unwrap();
    for name in names {
        let built = target_dir.join("wasm32-wasip2/release").join(format!("{name}.wasm"));
        std::fs::copy(&built, out.join(format!("{name}.wasm")))
            .unwrap_or_else(|e| panic!("copying {}: {e}", built.display()));
    }
}
