//! Compiled components cached on disk, keyed by the component's SHA-256 and the
//! engine's compatibility hash, so a restart with a warm cache compiles nothing.
//!
//! Loading native code from disk is `unsafe` in wasmtime: whoever can write the
//! cache can run code in the gateway. The cache directory is therefore created
//! 0700 inside the Portcullis home and checked before every use (ours, not a
//! symlink, writable by nobody else); files are written atomically with mode
//! 0600 (`home::write_private_atomically`), and read through one descriptor
//! opened without following symlinks and checked with `fstat`
//! (`home::open_private`), so the file checked is the file loaded. Anything
//! else is ignored and recompiled.

use std::hash::{Hash, Hasher};
use std::io::Read;
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
        if dir.exists() && !crate::home::is_private_dir(dir) {
            tracing::warn!(dir = %dir.display(), "the component cache directory is not private to this user; not using it");
            return Ok((Component::new(engine, wasm)?, true));
        }
        match cached_bytes(&path) {
            Ok(Some(bytes)) => match deserialize(engine, &bytes) {
                Ok(component) => return Ok((component, false)),
                Err(error) => tracing::warn!(path = %path.display(), %error, "ignoring an unusable cached component"),
            },
            Ok(None) => {}
            Err(error) => tracing::warn!(path = %path.display(), %error, "ignoring an untrusted cached component"),
        }
        let component = Component::new(engine, wasm)?;
        if let Err(error) = store(dir, &path, &component) {
            // A cache that cannot be written costs start-up time, nothing else.
            tracing::warn!(path = %path.display(), %error, "cannot write the component cache");
        }
        Ok((component, true))
    }
}

/// The cached file's bytes, read from a descriptor checked with `fstat`.
fn cached_bytes(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let Some(mut file) = crate::home::open_private(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> anyhow::Result<Component> {
    // SAFETY: the bytes were read through a descriptor on a regular file in our
    // private cache directory, owned by this user and writable by nobody else
    // (`home::open_private` checks the descriptor, not the path); it was written
    // by `store` from `Component::serialize` of an engine with the same
    // compatibility hash.
    Ok(unsafe { Component::deserialize(engine, bytes)? })
}

fn store(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    crate::home::create_private_dir(dir)?;
    crate::home::write_private_atomically(path, &component.serialize()?)?;
    Ok(())
}
