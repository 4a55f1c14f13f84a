//! `portcullis.lock`, beside the policy: what each installed module resolved
//! to, the way `Cargo.lock` pins crates. `plugin add` and `plugin update`
//! write it; loading a policy uses exactly what it pins.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "portcullis.lock";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    pub version: u32,
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<LockedPlugin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPlugin {
    /// The name a policy uses: `component = "plugin:NAME"`.
    pub name: String,
    /// The version a policy may ask for (`plugin:NAME@VERSION`): the OCI tag, or `--version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where it came from: a file, an `https://` URL or an `oci://` reference.
    pub source: String,
    /// `sha256:<hex>` of the module's bytes.
    pub digest: String,
    /// The minisign public key (base64) whose signature verified when it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// The version that signature's trusted comment binds (`version:`): `plugin update`
    /// refuses a build signed with an older one, or with none, without `--allow-downgrade`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_version: Option<String>,
}

impl LockedPlugin {
    /// The hex sha256 of `digest`.
    pub fn sha256(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }
}

/// The lock file that belongs to `policy`.
pub fn beside(policy: &Path) -> PathBuf {
    policy.parent().map(|dir| dir.join(FILE_NAME)).unwrap_or_else(|| PathBuf::from(FILE_NAME))
}

impl Lockfile {
    /// Reads `path`; an absent file is an empty lock.
    pub fn read(path: &Path) -> anyhow::Result<Lockfile> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lockfile { version: 1, plugins: Vec::new() }),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut lock: Lockfile = toml::from_str(&text).with_context(|| format!("{} is not a valid lock file", path.display()))?;
        anyhow::ensure!(lock.version == 1, "{}: version {} is not one this gateway reads (1)", path.display(), lock.version);
        for plugin in &lock.plugins {
            let hex = plugin.sha256();
            anyhow::ensure!(
                plugin.digest.starts_with("sha256:") && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}: plugin `{}` has digest {:?}, not sha256:<64 hex digits>",
                path.display(),
                plugin.name,
                plugin.digest
            );
        }
        // One digest, one spelling: modules are stored and kept in memory by it.
        for plugin in &mut lock.plugins {
            plugin.digest.make_ascii_lowercase();
        }
        Ok(lock)
    }

    /// Writes the lock atomically (a reader or the gateway's watcher never sees half a file).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = format!("# Written by `portcullis plugin add|update|remove`; the gateway uses exactly these modules.\n{}", toml::to_string_pretty(self)?);
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{FILE_NAME}.{:016x}.tmp", rand::random::<u64>()));
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
    }

    /// The entry a policy reference `NAME` or `NAME@VERSION` means.
    pub fn find(&self, reference: &str) -> Option<&LockedPlugin> {
        let (name, version) = match reference.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (reference, None),
        };
        self.plugins.iter().find(|p| p.name == name && (version.is_none() || p.version.as_deref() == version))
    }

    /// Adds or replaces the entry named `plugin.name`.
    pub fn upsert(&mut self, plugin: LockedPlugin) {
        self.plugins.retain(|p| p.name != plugin.name);
        self.plugins.push(plugin);
        self.plugins.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(Lockfile::read(&path).unwrap().plugins.len(), 0, "no file: an empty lock");
        let mut lock = Lockfile { version: 1, plugins: Vec::new() };
        let digest = format!("sha256:{}", "ab".repeat(32));
        lock.upsert(LockedPlugin {
            name: "api-key".into(),
            version: Some("1.0.0".into()),
            source: "oci://r/x:1.0.0".into(),
            digest,
            signed_by: None,
            signed_version: None,
        });
        lock.write(&path).unwrap();
        let read = Lockfile::read(&path).unwrap();
        assert_eq!(read, lock);
        assert!(read.find("api-key").is_some() && read.find("api-key@1.0.0").is_some());
        assert!(read.find("api-key@2.0.0").is_none() && read.find("other").is_none());
        std::fs::write(&path, "version = 1\n[[plugin]]\nname = \"x\"\nsource = \"s\"\ndigest = \"md5:00\"\n").unwrap();
        assert!(Lockfile::read(&path).unwrap_err().to_string().contains("not sha256"));
        let upper = format!("version = 1\n[[plugin]]\nname = \"x\"\nsource = \"s\"\ndigest = \"sha256:{}\"\n", "AB".repeat(32));
        std::fs::write(&path, upper).unwrap();
        assert_eq!(Lockfile::read(&path).unwrap().plugins[0].sha256(), "ab".repeat(32), "one digest, one spelling");
    }
}
