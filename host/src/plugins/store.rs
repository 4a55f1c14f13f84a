//! The modules' bytes in `PORTCULLIS_HOME/plugins/<sha256>.wasm` (and the
//! module's minisign signature in `<sha256>.minisig`, when it came with one).
//!
//! The directory is 0700 and its files 0600, written atomically and read
//! through one descriptor that is checked (`home::open_private`); a module whose
//! bytes no longer hash to its name is refused, so the store cannot be a way
//! to swap code under a pin.

use crate::home;
use anyhow::Context as _;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

pub struct PluginStore {
    dir: PathBuf,
}

/// A module read from the store.
pub struct Module {
    pub wasm: Vec<u8>,
    /// The minisign signature stored with it, if any.
    pub signature: Option<String>,
}

impl PluginStore {
    pub fn in_home(home: &Path) -> Self {
        PluginStore { dir: home.join("plugins") }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores a module (and its signature); returns its sha256 in hex.
    pub fn put(&self, wasm: &[u8], signature: Option<&str>) -> anyhow::Result<String> {
        home::create_private_dir(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        let digest = hex::encode(Sha256::digest(wasm));
        home::write_private_atomically(&self.dir.join(format!("{digest}.wasm")), wasm).context("cannot store the module")?;
        if let Some(signature) = signature {
            home::write_private_atomically(&self.dir.join(format!("{digest}.minisig")), signature.as_bytes()).context("cannot store the signature")?;
        }
        Ok(digest)
    }

    /// The module with this sha256 (hex), checked against it.
    pub fn get(&self, digest: &str) -> anyhow::Result<Option<Module>> {
        anyhow::ensure!(digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()), "{digest:?} is not a sha256 in hex");
        if !self.dir.exists() {
            return Ok(None);
        }
        anyhow::ensure!(
            home::is_private_dir(&self.dir),
            "{} must be a directory of this user with mode 0700 (it holds code the gateway runs)",
            self.dir.display()
        );
        let Some(wasm) = read_private(&self.dir.join(format!("{digest}.wasm")))? else { return Ok(None) };
        let actual = hex::encode(Sha256::digest(&wasm));
        anyhow::ensure!(
            actual.eq_ignore_ascii_case(digest),
            "the stored module {digest} was changed on disk (its bytes hash to {actual}); run `portcullis plugin update`"
        );
        let signature = read_private(&self.dir.join(format!("{digest}.minisig")))?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        Ok(Some(Module { wasm, signature }))
    }
}

fn read_private(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(mut file) = home::open_private(path).with_context(|| format!("cannot open {}", path.display()))? else { return Ok(None) };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(bytes))
}
