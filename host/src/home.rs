//! Where Portcullis keeps its data (the secret store, the compiled-component
//! cache), and the one way it writes and reads private files there.
//!
//! Every private file is written through a temporary file created with
//! `O_EXCL | O_NOFOLLOW` under a random name, mode 0600, then renamed over the
//! target: a symlink planted at a predictable path redirects nothing, and a
//! rename replaces a planted symlink rather than writing through it. Private
//! files are read through a descriptor opened with `O_NOFOLLOW` and checked
//! with `fstat`, so the file checked is the file read.
//!
//! On Windows the same rules hold with ACLs for mode bits (see
//! [`crate::platform::acl`]): a private file or directory gets a DACL that
//! grants the user alone full access, protected from inheritance, set on the
//! open handle before anything is written, while the file is open with no
//! sharing (so no other process can have opened it in between). "Writable by
//! nobody else" means the DACL grants no write right outside the user, SYSTEM
//! and Administrators. Paths are opened with `FILE_FLAG_OPEN_REPARSE_POINT`,
//! so a symbolic link or junction is opened as itself and refused as not a file.

use crate::platform::{self, Env, Os};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `PORTCULLIS_HOME` if set (tests use it), else the platform data directory:
/// `$XDG_DATA_HOME/portcullis` or `~/.local/share/portcullis` on Linux and
/// macOS, `%LOCALAPPDATA%\portcullis` on Windows.
pub fn dir() -> anyhow::Result<PathBuf> {
    dir_for(Os::CURRENT, &platform::process_env)
}

/// [`dir`] for `os` with the environment `env`.
///
/// Windows: `%LOCALAPPDATA%` (not the roaming `%APPDATA%`): the compiled
/// component cache is for this machine's CPU, and the directory under the
/// user's profile grants only the user, SYSTEM and Administrators by default.
pub fn dir_for(os: Os, env: Env<'_>) -> anyhow::Result<PathBuf> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(home) = env("PORTCULLIS_HOME") {
        return Ok(PathBuf::from(home));
    }
    if os == Os::Windows {
        return match env("LOCALAPPDATA") {
            Some(local) => Ok(PathBuf::from(local).join("portcullis")),
            None => anyhow::bail!("cannot tell where to keep data: set PORTCULLIS_HOME (LOCALAPPDATA is not set)"),
        };
    }
    if let Some(data) = env("XDG_DATA_HOME") {
        return Ok(PathBuf::from(data).join("portcullis"));
    }
    match env("HOME") {
        Some(home) => Ok(platform::under(home, &[".local", "share", "portcullis"])),
        None => anyhow::bail!("cannot tell where to keep data: set PORTCULLIS_HOME"),
    }
}

/// Creates `path` (and parents) readable only by this user.
#[cfg(unix)]
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

/// Creates `path` (and parents) readable only by this user: a directory whose
/// DACL lets anyone else read or write gets the user's alone, inherited by
/// what is created in it.
#[cfg(windows)]
pub fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use platform::acl;
    std::fs::create_dir_all(path)?;
    let dir = windows::open_dir(path, platform::windows::WRITE_DAC)?;
    let security = platform::windows::security(&dir)?;
    if security.others_rights(platform::windows::current_user()?) & (acl::READ | acl::WRITE) != 0 {
        platform::windows::restrict_to_user(&dir, true)?;
    }
    Ok(())
}

/// `O_NOFOLLOW | O_CLOEXEC`, for `OpenOptionsExt::custom_flags`.
#[cfg(unix)]
fn no_follow() -> i32 {
    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32
}

/// Creates `path`, which must not exist, for writing, readable and writable
/// by this user only from the start (mode 0600; on Windows an owner-only DACL,
/// set while no other process can open the file) and never through a symlink.
pub fn create_new_private(path: &Path) -> std::io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(no_follow()).open(path)
    }
    #[cfg(windows)]
    {
        windows::create_new_private(path)
    }
}

/// Writes `bytes` to `path` atomically, mode 0600: a new temporary file beside
/// it (exclusive, never through a symlink), fsync, rename, fsync of the directory.
/// (Windows: no directory fsync, which it does not offer; NTFS journals the rename.)
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut file = create_new_private(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(windows)]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Opens `path` for reading only if it is a regular file (not a symlink), owned
/// by this user and writable by nobody else; the checks are made on the open
/// descriptor. `Ok(None)` when the file does not exist.
pub fn open_private(path: &Path) -> std::io::Result<Option<File>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, no_follow());
    #[cfg(windows)]
    std::os::windows::fs::OpenOptionsExt::custom_flags(&mut options, platform::windows::FILE_FLAG_OPEN_REPARSE_POINT);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() || !owned_and_not_writable_by_others(&file, &meta)? {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is not a regular file owned by this user and writable only by it", path.display()),
        ));
    }
    Ok(Some(file))
}

#[cfg(unix)]
fn owned_and_not_writable_by_others(_file: &File, meta: &std::fs::Metadata) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    Ok(meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o022 == 0)
}

#[cfg(windows)]
fn owned_and_not_writable_by_others(file: &File, _meta: &std::fs::Metadata) -> std::io::Result<bool> {
    let user = platform::windows::current_user()?;
    let security = platform::windows::security(file)?;
    Ok(security.owner_trusted(user) && security.others_rights(user) & platform::acl::WRITE == 0)
}

/// Whether `dir` is a directory (not a symlink) owned by this user and writable by nobody else.
#[cfg(unix)]
pub fn is_private_dir(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(dir).is_ok_and(|meta| meta.file_type().is_dir() && meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o022 == 0)
}

/// Whether `dir` is a directory (not a symlink or junction) owned by this user and writable by nobody else.
#[cfg(windows)]
pub fn is_private_dir(dir: &Path) -> bool {
    windows::open_dir(dir, 0)
        .and_then(|handle| {
            let meta = handle.metadata()?;
            Ok(meta.file_type().is_dir() && owned_and_not_writable_by_others(&handle, &meta)?)
        })
        .unwrap_or(false)
}

/// Opens the audit file `path` for appending; a new one is created private
/// (0600, or an owner-only DACL). An existing file keeps its permissions.
pub fn open_private_append(path: &Path) -> std::io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)
    }
    #[cfg(windows)]
    {
        // Created private (and closed, since it was opened with no sharing),
        // then opened again to append, shared, so the file can be read while
        // the gateway writes it.
        match create_new_private(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        std::fs::OpenOptions::new().append(true).open(path)
    }
}

#[cfg(windows)]
mod windows {
    use crate::platform::windows::{FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_GENERIC_READ, FILE_GENERIC_WRITE, WRITE_DAC};
    use std::fs::File;
    use std::os::windows::fs::OpenOptionsExt;
    use std::path::Path;

    /// A handle on the directory itself (never what a junction or link points
    /// to), with read access and `extra` rights.
    pub fn open_dir(path: &Path, extra: u32) -> std::io::Result<File> {
        std::fs::OpenOptions::new()
            .read(true)
            .access_mode(FILE_GENERIC_READ | extra)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
            .open(path)
    }

    /// `CREATE_NEW` (an existing file or link at `path` fails it) with no
    /// sharing, so no other process can open the file until it is closed; the
    /// DACL is made the user's alone before a byte is written.
    pub fn create_new_private(path: &Path) -> std::io::Result<File> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .access_mode(FILE_GENERIC_READ | FILE_GENERIC_WRITE | WRITE_DAC)
            .share_mode(0)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(path)?;
        if let Err(e) = crate::platform::windows::restrict_to_user(&file, false) {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn the_data_directory_per_os() {
        let env = |name: &str| match name {
            "HOME" => Some(OsString::from("/home/u")),
            "LOCALAPPDATA" => Some(OsString::from(r"C:\Users\u\AppData\Local")),
            "APPDATA" => Some(OsString::from(r"C:\Users\u\AppData\Roaming")),
            _ => None,
        };
        assert_eq!(dir_for(Os::Linux, &env).unwrap(), PathBuf::from("/home/u/.local/share/portcullis"));
        assert_eq!(dir_for(Os::MacOs, &env).unwrap(), PathBuf::from("/home/u/.local/share/portcullis"));
        assert_eq!(dir_for(Os::Windows, &env).unwrap(), PathBuf::from(r"C:\Users\u\AppData\Local").join("portcullis"));
        let xdg = |name: &str| if name == "XDG_DATA_HOME" { Some(OsString::from("/data")) } else { env(name) };
        assert_eq!(dir_for(Os::Linux, &xdg).unwrap(), PathBuf::from("/data/portcullis"));
        // XDG is not a Windows convention.
        assert_eq!(dir_for(Os::Windows, &xdg).unwrap(), PathBuf::from(r"C:\Users\u\AppData\Local").join("portcullis"));
        let set = |name: &str| if name == "PORTCULLIS_HOME" { Some(OsString::from("/p")) } else { env(name) };
        for os in [Os::Linux, Os::MacOs, Os::Windows] {
            assert_eq!(dir_for(os, &set).unwrap(), PathBuf::from("/p"));
        }
        // Windows without LOCALAPPDATA does not fall back to HOME (Git Bash sets it; its data would be elsewhere).
        let bare = |name: &str| (name == "HOME").then(|| OsString::from("/c/Users/u"));
        assert!(dir_for(Os::Windows, &bare).is_err());
        let empty = |_: &str| Some(OsString::new());
        assert!(dir_for(Os::Linux, &empty).is_err(), "an empty value counts as unset");
    }

    #[cfg(unix)]
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
        assert_eq!(std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(&target).unwrap()) & 0o777, 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[cfg(unix)]
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
        assert!(is_private_dir(dir.path()) || std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(dir.path()).unwrap()) & 0o022 != 0);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!is_private_dir(dir.path()));
    }
}
