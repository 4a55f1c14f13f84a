//! `portcullis keys create|show|rotate|delete WORKLOAD`: the shared-key
//! workflow, and what `portcullis bridge` and `portcullis client-config`
//! share with it (the workload's key settings, its endpoint).

use crate::keys::{self, KeySettings};
use crate::secrets::{ExposeSecret, SecretStore};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct PolicyArg {
    /// The policy that configures the workload (its secret name, header and URL).
    #[arg(long)]
    pub(super) policy: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create the workload's key (fails if it exists).
    Create {
        workload: String,
        #[command(flatten)]
        policy: PolicyArg,
    },
    /// Print the workload's key, for pasting into a client.
    Show {
        workload: String,
        #[command(flatten)]
        policy: PolicyArg,
    },
    /// Replace the key; the previous one stays valid for the component's `grace` period.
    Rotate {
        workload: String,
        #[command(flatten)]
        policy: PolicyArg,
    },
    /// Delete the key (and the previous key).
    Delete {
        workload: String,
        #[command(flatten)]
        policy: PolicyArg,
    },
}

pub(super) fn settings(workload: &str, policy: &PolicyArg) -> anyhow::Result<KeySettings> {
    let loaded = match &policy.policy {
        Some(path) => Some(crate::policy::load_file(path).map_err(anyhow::Error::new)?),
        None => None,
    };
    keys::settings_for(loaded.as_ref(), workload)
}

pub(super) fn store() -> anyhow::Result<SecretStore> {
    Ok(SecretStore::in_home(&crate::home::dir()?))
}

pub fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create { workload, policy } => {
            let settings = settings(&workload, &policy)?;
            if !keys::ensure(&store()?, &settings)? {
                anyhow::bail!("workload `{workload}` already has a key; use `portcullis keys rotate {workload}` to replace it");
            }
            eprintln!("created the key for `{workload}`; `portcullis keys show {workload}` prints it");
        }
        KeysCommand::Show { workload, policy } => {
            let settings = settings(&workload, &policy)?;
            match store()?.get(&settings.secret)? {
                Some(key) => writeln!(std::io::stdout(), "{}", key.expose_secret())?,
                None => anyhow::bail!("workload `{workload}` has no key; create one with `portcullis keys create {workload}`"),
            }
        }
        KeysCommand::Rotate { workload, policy } => {
            let settings = settings(&workload, &policy)?;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
            keys::rotate(&store()?, &settings, now)?;
            eprintln!("rotated the key for `{workload}`; the previous key stays valid for the component's `grace` period");
        }
        KeysCommand::Delete { workload, policy } => {
            let settings = settings(&workload, &policy)?;
            if !keys::delete(&store()?, &settings)? {
                anyhow::bail!("workload `{workload}` has no key");
            }
            eprintln!("deleted the key for `{workload}`");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The MCP endpoint of a workload: `--url`, or `public_url` from the policy.
pub(super) fn endpoint(workload: &str, url: Option<String>, policy: &PolicyArg) -> anyhow::Result<String> {
    if let Some(url) = url {
        return Ok(url);
    }
    let Some(path) = &policy.policy else {
        anyhow::bail!("give --policy FILE (to use the workload's public_url) or --url URL");
    };
    let loaded = crate::policy::load_file(path).map_err(anyhow::Error::new)?;
    loaded
        .file
        .workloads
        .iter()
        .find(|w| w.name == workload)
        .map(|w| w.public_url.clone())
        .ok_or_else(|| anyhow::anyhow!("no workload `{workload}` in {}", path.display()))
}
