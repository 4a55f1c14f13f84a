//! Writes the `__bindings!` macro with the absolute path of this crate's `wit/`,
//! so that a component crate generates its exports from the same WIT files
//! wherever the SDK sits on disk.

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let wit = std::path::Path::new(&manifest_dir).join("wit");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("bindings_macro.rs");
    let imports = ["types", "mcp", "secrets", "http-client", "cache", "log", "crypto", "signing", "store", "events"]
        .map(|name| format!("\"portcullis:auth/{name}@0.2.0\": ::portcullis_plugin::__private::capabilities::portcullis::auth::{},", name.replace('-', "_")))
        .join("\n                ");
    let source = format!(
        r#"#[doc(hidden)]
#[macro_export]
macro_rules! __bindings {{
    ($world:literal) => {{
        ::portcullis_plugin::__private::wit_bindgen::generate!({{
            path: {wit:?},
            world: $world,
            runtime_path: "::portcullis_plugin::__private::wit_bindgen::rt",
            with: {{
                {imports}
            }},
        }});
    }};
}}
"#,
        wit = wit.display().to_string(),
    );
    std::fs::write(&out, source).expect("write the bindings macro");
    // The macro names this directory: build again when it moves or the contract changes.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=wit");
    println!("cargo:rerun-if-env-changed=CARGO_MANIFEST_DIR");
}
