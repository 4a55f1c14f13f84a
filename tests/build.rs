//! Builds the fixture components in `tests/components/` for wasm32-wasip2 and
//! tells the tests where they are.

use std::path::PathBuf;

include!("../host/build_guests.rs");

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("fixtures");
    build_guests(
        &manifest_dir.join("components"),
        &root.join("target/guests"),
        &out,
        &["behaviours", "inject_header", "method_gate", "serve", "test_authorizer"],
    );
    println!("cargo:rustc-env=FIXTURES_DIR={}", out.display());
    println!("cargo:rustc-env=TEST_COMPONENT_CACHE={}", root.join("target/test-component-cache").display());
    println!("cargo:rerun-if-changed={}", manifest_dir.join("components").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
}
