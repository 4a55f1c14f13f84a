//! `portcullis plugin new NAME`: a component crate that builds with nothing but
//! Rust, the `wasm32-wasip2` target and crates.io.
//!
//! The crate carries its own copy of the SDK, the WIT and the rules the SDK
//! shares with the gateway (`portcullis-contract`), all embedded in this
//! binary, so it builds anywhere on disk and pins the contract it was made
//! for; `Cargo.lock` pins the crates.io versions this project tests with.

use anyhow::Context as _;
use std::path::Path;

/// Which world the new component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum World {
    /// Inbound: decides about each request (`allow`, `deny`, `abstain`).
    Authenticator,
    /// Outbound: adds credentials to requests on their way upstream.
    CredentialInjector,
}

/// The SDK crate, written to `portcullis-plugin/` in every new project.
const SDK: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../../guest-plugins/portcullis-plugin/Cargo.toml")),
    ("build.rs", include_str!("../../../guest-plugins/portcullis-plugin/build.rs")),
    ("src/lib.rs", include_str!("../../../guest-plugins/portcullis-plugin/src/lib.rs")),
    ("src/authorize.rs", include_str!("../../../guest-plugins/portcullis-plugin/src/authorize.rs")),
    ("src/config.rs", include_str!("../../../guest-plugins/portcullis-plugin/src/config.rs")),
    ("src/export.rs", include_str!("../../../guest-plugins/portcullis-plugin/src/export.rs")),
    ("src/host.rs", include_str!("../../../guest-plugins/portcullis-plugin/src/host.rs")),
    ("src/jwk.rs", include_str!("../../../guest-plugins/portcullis-plugin/src/jwk.rs")),
    ("src/manifest.rs", include_str!("../../../guest-plugins/portcullis-plugin/src/manifest.rs")),
    ("src/request.rs", include_str!("../../../guest-plugins/portcullis-plugin/src/request.rs")),
    ("src/strict_json.rs", include_str!("../../../guest-plugins/portcullis-plugin/src/strict_json.rs")),
    ("src/response.rs", include_str!("../../../guest-plugins/portcullis-plugin/src/response.rs")),
    ("src/verdict.rs", include_str!("../../../guest-plugins/portcullis-plugin/src/verdict.rs")),
    ("wit/types.wit", include_str!("../../../wit/types.wit")),
    ("wit/host.wit", include_str!("../../../wit/host.wit")),
    ("wit/worlds.wit", include_str!("../../../wit/worlds.wit")),
];

/// The rules the SDK shares with the gateway, written to `portcullis-contract/`.
const CONTRACT: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../../contract/Cargo.toml")),
    ("src/lib.rs", include_str!("../../../contract/src/lib.rs")),
    ("src/mcp.rs", include_str!("../../../contract/src/mcp.rs")),
    ("src/names.rs", include_str!("../../../contract/src/names.rs")),
    ("src/net.rs", include_str!("../../../contract/src/net.rs")),
    ("src/resource_metadata.rs", include_str!("../../../contract/src/resource_metadata.rs")),
    ("src/secrets.rs", include_str!("../../../contract/src/secrets.rs")),
    ("src/sessions.rs", include_str!("../../../contract/src/sessions.rs")),
    ("src/shared_key.rs", include_str!("../../../contract/src/shared_key.rs")),
];

/// The SDK's dependency on the contract: a path in this repository, and the
/// path in a new project, where the contract sits beside the SDK.
const CONTRACT_PATH_IN_REPO: &str = r#"portcullis-contract = { path = "../../contract" }"#;
const CONTRACT_PATH_IN_PROJECT: &str = r#"portcullis-contract = { path = "../portcullis-contract" }"#;

/// The versions the built-in components are built and tested with.
const LOCK: &str = include_str!("../../../guest-plugins/Cargo.lock");

const AUTHENTICATOR: &str = include_str!("templates/authenticator.rs");
const INJECTOR: &str = include_str!("templates/injector.rs");

/// Writes the project `name` into `dir/name`, which must not exist.
/// Returns the project's directory.
pub fn create(dir: &Path, name: &str, world: World) -> anyhow::Result<std::path::PathBuf> {
    check_name(name)?;
    let root = dir.join(name);
    if root.exists() {
        anyhow::bail!("{} already exists; choose another name or remove it", root.display());
    }
    let lib = name.replace('-', "_");
    let mut files: Vec<(String, String)> =
        SDK.iter().map(|(path, text)| (format!("portcullis-plugin/{path}"), text.replace(CONTRACT_PATH_IN_REPO, CONTRACT_PATH_IN_PROJECT))).collect();
    files.extend(CONTRACT.iter().map(|(path, text)| (format!("portcullis-contract/{path}"), (*text).to_owned())));
    let source = match world {
        World::Authenticator => AUTHENTICATOR,
        World::CredentialInjector => INJECTOR,
    };
    files.push(("src/lib.rs".into(), source.replace("{{name}}", name)));
    files.push(("Cargo.toml".into(), cargo_toml(name)));
    files.push(("Cargo.lock".into(), LOCK.to_owned()));
    files.push((
        ".cargo/config.toml".into(),
        "# Components are WebAssembly: `cargo build --release` targets WASI 0.2.\n[build]\ntarget = \"wasm32-wasip2\"\n".into(),
    ));
    files.push((".gitignore".into(), "/target\n".into()));
    files.extend(tests(world));
    files.push(("test.sh".into(), test_script(&lib, world)));
    files.push(("README.md".into(), readme(name, &lib, world)));
    for (path, text) in &files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in the project")).with_context(|| format!("creating {}", path.display()))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    make_executable(&root.join("test.sh"))?;
    Ok(root)
}

/// A crate name that is also a fine file name: lower-case letters, digits, `-` and `_`.
fn check_name(name: &str) -> anyhow::Result<()> {
    // A crate name also starts with a letter.
    let ok = portcullis_contract::names::is_valid_name(name) && name.starts_with(|c: char| c.is_ascii_lowercase());
    anyhow::ensure!(ok, "{name:?} is not a usable name: start with a lower-case letter, then lower-case letters, digits, `-` or `_`");
    // A package cannot depend on a crate of its own name.
    let crate_name = name.replace('-', "_");
    let taken = ["portcullis_plugin", "portcullis_contract", "serde", "serde_json", "serde_path_to_error", "subtle", "wit_bindgen"];
    anyhow::ensure!(!taken.contains(&crate_name.as_str()), "{name:?} is the name of a crate the component depends on; choose another");
    Ok(())
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
# The SDK, with the WIT contract (portcullis:auth@0.2.0) it was written for.
portcullis-plugin = {{ path = "portcullis-plugin" }}
serde = {{ version = "1", features = ["derive"] }}

# Small, fast components: what the gateway loads and instantiates.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
panic = "abort"

# A project of its own, even inside another workspace.
[workspace]
"#
    )
}

/// A configuration, stubs and two requests: one the component must allow (or
/// forward), one it must refuse.
fn tests(world: World) -> Vec<(String, String)> {
    let file = |path: &str, text: &str| (path.to_owned(), text.to_owned());
    match world {
        World::Authenticator => vec![
            file("tests/config.json", "{ \"header\": \"x-api-key\" }\n"),
            file("tests/stubs.json", "{ \"secrets\": { \"workload:demo:api-key\": \"test-key-0123456789\" } }\n"),
            file("tests/allowed.json", "{\n  \"method\": \"POST\",\n  \"path\": \"/mcp\",\n  \"headers\": [[\"x-api-key\", \"test-key-0123456789\"]]\n}\n"),
            file("tests/denied.json", "{\n  \"method\": \"POST\",\n  \"path\": \"/mcp\",\n  \"headers\": [[\"x-api-key\", \"wrong-key\"]]\n}\n"),
        ],
        World::CredentialInjector => vec![
            file("tests/config.json", "{}\n"),
            file("tests/stubs.json", "{ \"secrets\": { \"workload:demo:upstream-token\": \"test-token\" } }\n"),
            file("tests/stubs-empty.json", "{ \"secrets\": {} }\n"),
            file("tests/request.json", "{\n  \"method\": \"GET\",\n  \"path\": \"/v0/servers\",\n  \"headers\": []\n}\n"),
        ],
    }
}

fn test_script(lib: &str, world: World) -> String {
    let checks = match world {
        World::Authenticator => {
            "\
portcullis plugin test \"$wasm\" --config tests/config.json --stub tests/stubs.json --request tests/allowed.json --expect allow
portcullis plugin test \"$wasm\" --config tests/config.json --stub tests/stubs.json --request tests/denied.json --expect deny:401
"
        }
        World::CredentialInjector => {
            "\
portcullis plugin test \"$wasm\" --config tests/config.json --stub tests/stubs.json --request tests/request.json --expect forward
portcullis plugin test \"$wasm\" --config tests/config.json --stub tests/stubs-empty.json --request tests/request.json --expect deny:503
"
        }
    };
    format!(
        "#!/usr/bin/env bash\n# Builds the component and checks its verdicts with `portcullis plugin test`.\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\ncargo build --release\nwasm=target/wasm32-wasip2/release/{lib}.wasm\n{checks}echo \"ok: $wasm\"\n"
    )
}

fn readme(name: &str, lib: &str, world: World) -> String {
    let (kind, what) = match world {
        World::Authenticator => ("authenticator", "decides about each request the workload receives"),
        World::CredentialInjector => ("credential injector", "adds a credential to each request the workload sends upstream"),
    };
    format!(
        "# {name}\n\nA Portcullis {kind}: it {what}. Made with `portcullis plugin new`.\n\n\
         - `src/lib.rs`: the component.\n\
         - `portcullis-plugin/`: the SDK and the WIT contract (`portcullis:auth@0.2.0`) it implements.\n\
         - `portcullis-contract/`: the rules the SDK shares with the gateway (MCP method kinds, loopback, names).\n\
         - `tests/`: a configuration, stubbed secrets and requests for `portcullis plugin test`.\n\n\
         ## Build\n\n    rustup target add wasm32-wasip2   # once\n    cargo build --release\n\n\
         The component is `target/wasm32-wasip2/release/{lib}.wasm`.\n\n\
         ## Test\n\n    ./test.sh\n\n\
         builds it and runs one call per request file with `portcullis plugin test`, which prints the verdict and every host call as JSON.\n\n\
         ## Use\n\n    portcullis plugin hash target/wasm32-wasip2/release/{lib}.wasm\n\n\
         prints the policy entry to pin it; `portcullis plugin inspect` lists the grants the policy must give. \
         See the Portcullis guide `docs/plugin-authoring.md`.\n"
    )
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).with_context(|| format!("making {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of the SDK is written out, so a new one cannot be forgotten here.
    #[test]
    fn the_scaffold_carries_the_whole_sdk() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-plugins/portcullis-plugin");
        let mut on_disk = vec!["Cargo.toml".to_owned(), "build.rs".to_owned()];
        for dir in ["src", "wit"] {
            for entry in std::fs::read_dir(sdk.join(dir)).unwrap() {
                on_disk.push(format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy()));
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = SDK.iter().map(|(path, _)| (*path).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    /// Every file of the contract is written out, and the SDK finds it beside itself.
    #[test]
    fn the_scaffold_carries_the_contract_beside_the_sdk() {
        let contract = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contract");
        let mut on_disk = vec!["Cargo.toml".to_owned()];
        for entry in std::fs::read_dir(contract.join("src")).unwrap() {
            on_disk.push(format!("src/{}", entry.unwrap().file_name().to_string_lossy()));
        }
        on_disk.sort();
        let mut embedded: Vec<String> = CONTRACT.iter().map(|(path, _)| (*path).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);

        let dir = tempfile::tempdir().unwrap();
        let root = create(dir.path(), "demo", World::Authenticator).unwrap();
        let sdk = std::fs::read_to_string(root.join("portcullis-plugin/Cargo.toml")).unwrap();
        assert!(sdk.contains(CONTRACT_PATH_IN_PROJECT) && !sdk.contains(CONTRACT_PATH_IN_REPO), "{sdk}");
        assert!(root.join("portcullis-contract/src/mcp.rs").is_file());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("api-key_check2").is_ok());
        for bad in ["", "Api", "2fa", "a b", "../x", "a/b", "portcullis-plugin", "serde"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
