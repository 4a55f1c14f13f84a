//! Compiled components cached on disk, keyed by the component's SHA-256 and the
//! engine's compatibility hash, so a restart with a warm cache compiles nothing.
//!
//! Loading native code from disk is `unsafe` in wasmtime: whoever can write the
//! cache can run code in the gateway. The cache directory is therefore created
//! 0700 inside the Portcullis home, files are written atomically with mode 0600,
//! and a file not owned by this user, or writable by others, is ignored and
//! recompiled.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_hash: String,
}

impl ComponentCache {
    /// A cache in `dir`, or none (always compile) when `dir` is `None`.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache { dir, engine_hash: format!("{:016x}", hasher.finish()) }
    }

    /// The compiled component for `wasm` whose SHA-256 is `sha256` (already
    /// checked by the caller), and whether it had to be compiled.
    pub fn load(&self, engine: &Engine, sha256: &str, wasm: &[u8]) -> anyhow::Result<(Component, bool)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, wasm)?, true));
        };
        let path = dir.join(format!("{sha256}-{}-{}.cwasm", self.engine_hash, env!("CARGO_PKG_VERSION")));
        if trusted_file(&path) {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, false)),
                Err(error) => tracing::warn!(path = %path.display(), %error, "ignoring an unusable cached component"),
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(error) = store(dir, &path, &component) {
            // A cache that cannot be written costs start-up time, nothing else.
            tracing::warn!(path = %path.display(), %error, "cannot write the component cache");
        }
        Ok((component, true))
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: the file is in our private cache directory, owned by this user and
    // not writable by anyone else (`trusted_file`); it was written by `store`
    // from `Component::serialize` of an engine with the same compatibility hash.
    Ok(unsafe { Component::deserialize_file(engine, path)? })
}

fn trusted_file(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        // SAFETY-relevant: a regular file, ours, with no group/other write bit.
        Ok(meta) => {
            meta.file_type().is_file() && meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o022 == 0
        }
        Err(_) => false,
    }
}

fn store(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    crate::home::create_private_dir(dir)?;
    let bytes = component.serialize()?;
    let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), rand::random::<u32>()));
    let mut file = std::fs::OpenOptions::new().create_new(true).write(true).mode(0o600).open(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
