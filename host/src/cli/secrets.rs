//! `portcullis secrets set|get|list|delete|migrate|export-key|import-key`.

use crate::secrets::{ExposeSecret, ProtectionKind, SecretStore, SecretString};
use clap::{Subcommand, ValueEnum};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Store a secret; the value is read from standard input (never from the command line,
    /// where other users could see it in the process list).
    Set { name: String },
    /// Print a secret's value.
    Get { name: String },
    /// List the secrets' names.
    List,
    /// Delete a secret.
    Delete { name: String },
    /// Move the store to another protection, keeping every secret: a random key in the
    /// OS keychain, or a key derived from PORTCULLIS_SECRETS_PASSWORD (which also
    /// opens a password-protected store being moved to the keychain).
    Migrate {
        #[arg(long, value_enum)]
        to: Protection,
    },
    /// Write the keychain key of the store to a new file (0600; on Windows readable by you alone) to keep somewhere safe,
    /// outside the keychain; `import-key` restores it. Anyone with the file can read the store.
    ExportKey { file: PathBuf },
    /// Put a key written by `export-key` back into the OS keychain, after checking that it opens the store.
    ImportKey { file: PathBuf },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Protection {
    Keychain,
    Password,
}

pub fn run(command: SecretsCommand) -> anyhow::Result<ExitCode> {
    let store = SecretStore::in_home(&crate::home::dir()?);
    let mut out = std::io::stdout();
    match command {
        SecretsCommand::Set { name } => {
            let mut value = String::new();
            std::io::stdin().read_to_string(&mut value)?;
            let value = value.strip_suffix('\n').map(|v| v.strip_suffix('\r').unwrap_or(v)).unwrap_or(&value).to_owned();
            if value.is_empty() {
                anyhow::bail!("no value on standard input; try: printf %s VALUE | portcullis secrets set {name}");
            }
            store.set(&name, SecretString::from(value))?;
            eprintln!("stored `{name}`");
        }
        SecretsCommand::Get { name } => match store.get(&name)? {
            Some(value) => writeln!(out, "{}", value.expose_secret())?,
            None => {
                eprintln!("no secret named `{name}`");
                return Ok(ExitCode::FAILURE);
            }
        },
        SecretsCommand::List => {
            for name in store.list()? {
                writeln!(out, "{name}")?;
            }
        }
        SecretsCommand::Delete { name } => {
            if !store.delete(&name)? {
                eprintln!("no secret named `{name}`");
                return Ok(ExitCode::FAILURE);
            }
            eprintln!("deleted `{name}`");
        }
        SecretsCommand::Migrate { to } => {
            let (kind, what) = match to {
                Protection::Keychain => (ProtectionKind::Keychain, "a key in the OS keychain"),
                Protection::Password => (ProtectionKind::Password, "a key derived from PORTCULLIS_SECRETS_PASSWORD"),
            };
            if matches!(to, Protection::Password) && !std::env::var(crate::secrets::PASSWORD_ENV).is_ok_and(|p| !p.is_empty()) {
                anyhow::bail!("set {} to the new password first (and keep it: it is then the only way to open the store)", crate::secrets::PASSWORD_ENV);
            }
            if store.change_protection(kind)? {
                eprintln!("{} is now protected by {what}; every secret was kept", store.path().display());
            } else {
                eprintln!("{} already is protected by {what}; nothing changed", store.path().display());
            }
        }
        SecretsCommand::ExportKey { file } => {
            let document = store.export_key()?;
            write_new_private(&file, document.as_bytes())?;
            eprintln!("wrote the key of {} to {}; keep it offline or in a password manager", store.path().display(), file.display());
        }
        SecretsCommand::ImportKey { file } => {
            let document =
                secrecy::zeroize::Zeroizing::new(std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?);
            store.import_key(&document)?;
            eprintln!("the key from {} opens {} and is back in the OS keychain", file.display(), store.path().display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a file that must not exist yet, readable by its owner only: an export
/// never replaces another file, and is never world-readable even for a moment.
fn write_new_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file =
        crate::home::create_new_private(path).map_err(|e| anyhow::anyhow!("cannot create {} ({e}); the key is written only to a new file", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
