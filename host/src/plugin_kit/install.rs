//! `portcullis plugin add|update|remove|list|push`: modules installed in the
//! store (`PORTCULLIS_HOME/plugins`) and pinned in the lock file beside a
//! policy. A running gateway watches the lock file, so `add` and `update`
//! take effect with the same atomic reload as a policy change.

use crate::plugins::lock::{self, LockedPlugin, Lockfile};
use crate::plugins::signature::TrustedKeys;
use crate::plugins::source::{Fetched, Source};
use crate::plugins::store::PluginStore;
use crate::policy::file::PluginsFile;
use crate::secrets::SecretStore;
use anyhow::Context as _;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub async fn add(source: &str, name: Option<String>, version: Option<String>, policy: &Path) -> anyhow::Result<ExitCode> {
    let parsed = Source::parse(source)?;
    let name = match name {
        Some(name) => name,
        None => default_name(&parsed)?,
    };
    check_name(&name)?;
    let lock_path = lock::beside(policy);
    let mut lock = Lockfile::read(&lock_path)?;
    let fetched = fetch(&parsed).await?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&fetched.wasm)));
    if let Some(pinned) = lock.plugins.iter().find(|p| p.name == name)
        && pinned.digest != digest
    {
        anyhow::bail!(
            "`{name}` is pinned to {} in {}, and {source} is now {digest}; `portcullis plugin update {name} --policy {}` moves the pin deliberately",
            pinned.digest,
            lock_path.display(),
            policy.display()
        );
    }
    let version = version.or_else(|| fetched.tag.clone());
    let entry = install(&name, version, parsed.describe(), fetched, policy, Floor::None)?;
    lock.upsert(entry.clone());
    lock.write(&lock_path)?;
    report("installed", &entry, &lock_path)?;
    Ok(ExitCode::SUCCESS)
}

/// `allow_downgrade`: accept a build signed with a lower version than the pin's (or with none).
pub async fn update(name: &str, policy: &Path, allow_downgrade: bool) -> anyhow::Result<ExitCode> {
    let lock_path = lock::beside(policy);
    let mut lock = Lockfile::read(&lock_path)?;
    let pinned =
        lock.plugins.iter().find(|p| p.name == name).cloned().ok_or_else(|| anyhow::anyhow!("{} pins no plugin named `{name}`", lock_path.display()))?;
    // A relative file source (a lock committed with its module) is relative to the lock's directory.
    let source = match Source::parse(&pinned.source)? {
        Source::File(path) if path.is_relative() => Source::File(lock_path.parent().unwrap_or(Path::new(".")).join(path)),
        source => source,
    };
    let fetched = fetch(&source).await?;
    let version = fetched.tag.clone().or(pinned.version.clone());
    let floor = if allow_downgrade { Floor::None } else { Floor::Pinned(&pinned) };
    let entry = install(name, version, pinned.source.clone(), fetched, policy, floor)?;
    if entry == pinned {
        // Nothing to write: a rewrite would reload a running gateway for nothing.
        writeln!(std::io::stdout(), "{name}: unchanged ({})", entry.digest)?;
        return Ok(ExitCode::SUCCESS);
    }
    if entry.digest == pinned.digest {
        writeln!(std::io::stdout(), "{name}: {} (version or signer updated)", entry.digest)?;
    } else {
        writeln!(std::io::stdout(), "{name}: {} -> {}", pinned.digest, entry.digest)?;
    }
    lock.upsert(entry);
    lock.write(&lock_path)?;
    Ok(ExitCode::SUCCESS)
}

pub fn remove(name: &str, policy: &Path) -> anyhow::Result<ExitCode> {
    let lock_path = lock::beside(policy);
    let mut lock = Lockfile::read(&lock_path)?;
    let before = lock.plugins.len();
    lock.plugins.retain(|p| p.name != name);
    anyhow::ensure!(lock.plugins.len() < before, "{} pins no plugin named `{name}`", lock_path.display());
    lock.write(&lock_path)?;
    tracing::info!(lock = %lock_path.display(), "removed `{name}` (its bytes stay in the store)");
    Ok(ExitCode::SUCCESS)
}

pub fn list(policy: &Path) -> anyhow::Result<ExitCode> {
    let lock = Lockfile::read(&lock::beside(policy))?;
    let store = PluginStore::in_home(&crate::home::dir()?);
    let engine = crate::runtime::inspect::engine()?;
    let mut out = std::io::stdout();
    writeln!(out, "{:<20} {:<10} {:<21} {:<19} {:<9} SOURCE", "NAME", "VERSION", "WORLD", "DIGEST", "SIGNED")?;
    for plugin in &lock.plugins {
        let world = match store.get(plugin.sha256()) {
            Ok(Some(module)) => crate::runtime::inspect::inspect(&engine, &module.wasm).map(|i| i.world).unwrap_or("invalid"),
            Ok(None) => "NOT IN STORE",
            Err(_) => "DAMAGED",
        };
        let signed = if plugin.signed_by.is_some() { "yes" } else { "no" };
        let digest = &plugin.digest[..plugin.digest.len().min(19)];
        writeln!(out, "{:<20} {:<10} {:<21} {:<19} {:<9} {}", plugin.name, plugin.version.as_deref().unwrap_or("-"), world, digest, signed, plugin.source)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn push(file: &Path, reference: &str, signature: Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    let parsed = crate::plugins::oci::parse(reference)?;
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let engine = crate::runtime::inspect::engine()?;
    let inspection = crate::runtime::inspect::inspect(&engine, &wasm)?;
    anyhow::ensure!(inspection.world != "unknown", "{} is not a Portcullis component (see `portcullis plugin inspect`)", file.display());
    let signature_path = signature.unwrap_or_else(|| {
        let mut path = file.as_os_str().to_owned();
        path.push(".minisig");
        path.into()
    });
    let signature = std::fs::read_to_string(&signature_path).ok();
    let description = serde_json::json!({ "world": inspection.world, "imports": inspection.imports, "exports": inspection.exports });
    let secrets = SecretStore::in_home(&crate::home::dir()?);
    let auth = crate::plugins::source::registry_auth(parsed.registry(), &secrets);
    let url = crate::plugins::oci::push(&parsed, &auth, wasm, signature.clone(), description).await?;
    writeln!(std::io::stdout(), "pushed {} ({}) to {url}{}", file.display(), inspection.sha256, if signature.is_some() { " with its signature" } else { "" })?;
    Ok(ExitCode::SUCCESS)
}

async fn fetch(source: &Source) -> anyhow::Result<Fetched> {
    let secrets = SecretStore::in_home(&crate::home::dir()?);
    source.fetch(&secrets).await
}

/// The version an update may not go below.
enum Floor<'a> {
    None,
    /// The pin being moved: its signed version, if it has one.
    Pinned(&'a LockedPlugin),
}

/// Checks the module (a component of a known world; its signature, when
/// present or required, from a trusted key and for this name; not older than
/// `floor`) and stores it; returns its lock entry.
fn install(name: &str, version: Option<String>, source: String, fetched: Fetched, policy: &Path, floor: Floor<'_>) -> anyhow::Result<LockedPlugin> {
    let engine = crate::runtime::inspect::engine()?;
    let inspection = crate::runtime::inspect::inspect(&engine, &fetched.wasm).with_context(|| format!("{source} is not a component"))?;
    anyhow::ensure!(inspection.world != "unknown", "{source} exports neither `authenticate` nor `inject` of portcullis:auth (see `portcullis plugin inspect`)");
    let settings = plugin_settings(policy)?;
    let trusted = TrustedKeys::parse(&settings.trusted_keys).map_err(|e| anyhow::anyhow!("{}: [plugins] trusted_keys: {e}", policy.display()))?;
    let signed = trusted.check(&fetched.wasm, fetched.signature.as_deref(), settings.require_signatures, name).map_err(|why| {
        if settings.require_signatures {
            anyhow::anyhow!("{source} is refused: {why}, and {} requires signatures", policy.display())
        } else {
            anyhow::anyhow!(
                "{source} is refused: {why}; a module that carries a signature must be signed by a key in `[plugins] trusted_keys` of {}",
                policy.display()
            )
        }
    })?;
    let signed_version = signed.as_ref().and_then(|s| s.version.as_ref());
    if let Floor::Pinned(pinned) = floor {
        not_older(pinned, signed_version)?;
    }
    let store = PluginStore::in_home(&crate::home::dir()?);
    let digest = store.put(&fetched.wasm, fetched.signature.as_deref())?;
    Ok(LockedPlugin {
        name: name.to_owned(),
        version,
        source,
        digest: format!("sha256:{digest}"),
        signed_version: signed_version.map(ToString::to_string),
        signed_by: signed.map(|s| s.key),
    })
}

/// A pin with a signed version moves only to a build signed with that version or a
/// later one: a registry (or whoever can move its tag) cannot roll it back to an
/// older, vulnerable, build that is still validly signed.
fn not_older(pinned: &LockedPlugin, new: Option<&semver::Version>) -> anyhow::Result<()> {
    let Some(floor) = pinned.signed_version.as_deref() else { return Ok(()) };
    let name = &pinned.name;
    let floor = semver::Version::parse(floor).with_context(|| format!("the lock's signed_version {floor:?} of `{name}` is not a semantic version"))?;
    let deliberately = format!("`portcullis plugin update {name} --allow-downgrade` installs it on purpose");
    match new {
        Some(version) if *version >= floor => Ok(()),
        Some(version) => {
            anyhow::bail!("`{name}` is pinned to a build signed as version {floor}, and the source now serves version {version}, an older one; {deliberately}")
        }
        None => {
            anyhow::bail!("`{name}` is pinned to a build signed as version {floor}, and the source now serves a build with no signed version; {deliberately}")
        }
    }
}

/// The policy's `[plugins]` table, read on its own: the policy may not load
/// yet (it may name the very plugin being added).
fn plugin_settings(policy: &Path) -> anyhow::Result<PluginsFile> {
    let Ok(text) = std::fs::read_to_string(policy) else { return Ok(PluginsFile::default()) };
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not valid TOML", policy.display()))?;
    match table.get("plugins") {
        Some(plugins) => plugins.clone().try_into().with_context(|| format!("{}: [plugins]", policy.display())),
        None => Ok(PluginsFile::default()),
    }
}

fn report(what: &str, entry: &LockedPlugin, lock_path: &Path) -> anyhow::Result<()> {
    let signed = match &entry.signed_by {
        Some(_) => ", signed by a trusted key",
        None => "",
    };
    writeln!(
        std::io::stdout(),
        "{what} `{}` ({}{signed}); pinned in {}; use it as component = \"plugin:{}\"",
        entry.name,
        entry.digest,
        lock_path.display(),
        entry.name
    )?;
    Ok(())
}

/// The last path segment of the source, without extension or tag.
fn default_name(source: &Source) -> anyhow::Result<String> {
    let text = match source {
        Source::File(path) => path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        Source::Url(url) => url.path_segments().and_then(|mut s| s.next_back()).unwrap_or_default().trim_end_matches(".wasm").to_owned(),
        Source::Oci(reference) => reference.rsplit('/').next().unwrap_or_default().split([':', '@']).next().unwrap_or_default().to_owned(),
    };
    let name = text.to_ascii_lowercase().replace('_', "-");
    check_name(&name).map_err(|_| anyhow::anyhow!("cannot make a plugin name from {}; pass --name", source.describe()))?;
    Ok(name)
}

fn check_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(portcullis_contract::names::is_valid_name(name), "{name:?} is not a plugin name: lower-case letters, digits, `-` and `_`");
    Ok(())
}
