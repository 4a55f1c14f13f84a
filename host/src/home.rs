//! Where Portcullis keeps its data: the secret store and the compiled-component cache.

use std::path::PathBuf;

/// `PORTCULLIS_HOME` if set (tests use it), else the platform data directory
/// (`$XDG_DATA_HOME/portcullis` or `~/.local/share/portcullis` on Linux).
pub fn dir() -> anyhow::Result<PathBuf> {
    if let Some(home) = std::env::var_os("PORTCULLIS_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(data).join("portcullis"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/portcullis")),
        None => anyhow::bail!("cannot tell where to keep data: set PORTCULLIS_HOME"),
    }
}

/// Creates `path` (and parents) readable only by this user.
pub fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    // `mode` applies only to directories this call created; tighten an existing one too.
    let meta = std::fs::metadata(path)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
