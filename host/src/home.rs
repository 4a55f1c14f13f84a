//! Where Portcullis keeps its data (the secret store, the compiled-component
//! cache), and the one way it writes and reads private files there.
//!
//! Every private file is written through a temporary file created with
//! `O_EXCL | O_NOFOLLOW` under a random name, mode 0600, then renamed over the
//! target: a symlink planted at a predictable path redirects nothing, and a
//! rename replaces a planted symlink rather than writing through it. Private
//! files are read through a descriptor opened with `O_NOFOLLOW` and checked
//! with `fstat`, so the file checked is the file read.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

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

/// `O_NOFOLLOW | O_CLOEXEC`, for `OpenOptionsExt::custom_flags`.
fn no_follow() -> i32 {
    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32
}

/// Writes `bytes` to `path` atomically, mode 0600: a new temporary file beside
/// it (exclusive, never through a symlink), fsync, rename, fsync of the directory.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(no_follow()).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Opens `path` for reading only if it is a regular file (not a symlink), owned
/// by this user and writable by nobody else; the checks are made on the open
/// descriptor. `Ok(None)` when the file does not exist.
pub fn open_private(path: &Path) -> std::io::Result<Option<File>> {
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(no_follow()).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() || meta.uid() != rustix::process::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is not a regular file owned by this user and writable only by it", path.display()),
        ));
    }
    Ok(Some(file))
}

/// Whether `dir` is a directory (not a symlink) owned by this user and writable by nobody else.
pub fn is_private_dir(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir).is_ok_and(|meta| meta.file_type().is_dir() && meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o022 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_symlink_redirects_no_write() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        let target = dir.path().join("config.json");
        // A symlink where the file goes: replaced by the rename, its target untouched.
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_private_atomically(&target, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert!(!std::fs::symlink_metadata(&target).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o777, 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn private_files_are_checked_on_the_descriptor() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        assert!(open_private(&file).unwrap().is_none());
        write_private_atomically(&file, b"x").unwrap();
        assert!(open_private(&file).unwrap().is_some());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(open_private(&link).is_err(), "a symlink is not followed");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(open_private(&file).is_err(), "a world-writable file is refused");
        assert!(is_private_dir(dir.path()) || std::fs::metadata(dir.path()).unwrap().mode() & 0o022 != 0);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!is_private_dir(dir.path()));
    }
}
