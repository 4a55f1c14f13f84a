//! `portcullis keys create|show|rotate|delete WORKLOAD`, `portcullis bridge` and
//! `portcullis client-config`: the shared-key workflow.

use crate::client_config::{self, Client};
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
    policy: Option<PathBuf>,
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

fn settings(workload: &str, policy: &PolicyArg) -> anyhow::Result<KeySettings> {
    let loaded = match &policy.policy {
        Some(path) => Some(crate::policy::load_file(path).map_err(anyhow::Error::new)?),
        None => None,
    };
    keys::settings_for(loaded.as_ref(), workload)
}

fn store() -> anyhow::Result<SecretStore> {
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

#[derive(Args)]
pub struct BridgeArgs {
    /// The workload to reach.
    workload: String,
    #[command(flatten)]
    policy: PolicyArg,
    /// The workload's MCP endpoint (default: its `public_url` from --policy).
    #[arg(long)]
    url: Option<String>,
}

/// The MCP endpoint of a workload: `--url`, or `public_url` from the policy.
fn endpoint(workload: &str, url: Option<String>, policy: &PolicyArg) -> anyhow::Result<String> {
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

pub fn bridge(args: BridgeArgs) -> anyhow::Result<ExitCode> {
    let settings = settings(&args.workload, &args.policy)?;
    let url = endpoint(&args.workload, args.url, &args.policy)?;
    let Some(key) = store()?.get(&settings.secret)? else {
        anyhow::bail!("workload `{}` has no key; create one with `portcullis keys create {}`", args.workload, args.workload);
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(crate::bridge::run(crate::bridge::BridgeOptions { url, key, settings }));
    // A read of stdin may still be pending on a blocking thread: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("portcullis bridge: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[derive(Args)]
pub struct ClientConfigArgs {
    workload: String,
    #[arg(long, value_enum)]
    client: Client,
    #[command(flatten)]
    policy: PolicyArg,
    /// The workload's MCP endpoint (default: its `public_url` from --policy).
    #[arg(long)]
    url: Option<String>,
    /// Merge the entry into the client's config file (a backup is kept).
    #[arg(long)]
    write: bool,
    /// The config file to write (default: the client's user-level file).
    #[arg(long)]
    config_file: Option<PathBuf>,
}

pub fn client_config(args: ClientConfigArgs) -> anyhow::Result<ExitCode> {
    let settings = settings(&args.workload, &args.policy)?;
    let url = endpoint(&args.workload, args.url, &args.policy)?;
    let mut bridge = vec![std::env::current_exe()?.display().to_string(), "bridge".into(), args.workload.clone()];
    match &args.policy.policy {
        Some(policy) => bridge.extend(["--policy".into(), std::path::absolute(policy)?.display().to_string()]),
        None => bridge.extend(["--url".into(), url.clone()]),
    }
    // Only clients that send headers need the key itself.
    let key = match args.client {
        Client::ClaudeDesktop => String::new(),
        _ => match store()?.get(&settings.secret)? {
            Some(key) => settings.header_value(key.expose_secret()),
            None => anyhow::bail!("workload `{}` has no key; create one with `portcullis keys create {}`", args.workload, args.workload),
        },
    };
    let target = client_config::Target { workload: &args.workload, url: &url, header: (&settings.header, &key), bridge };
    if !args.write {
        writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&client_config::snippet(args.client, &target))?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let path = match args.config_file {
        Some(path) => path,
        None => {
            let home = std::env::var_os("HOME").ok_or_else(|| anyhow::anyhow!("HOME is not set; give --config-file"))?;
            args.client.config_path(std::path::Path::new(&home))
        }
    };
    let backup = client_config::write(args.client, &target, &path)?;
    eprintln!("wrote `{}` into {}", args.workload, path.display());
    if let Some(backup) = backup {
        eprintln!("the previous file is saved as {}", backup.display());
    }
    Ok(ExitCode::SUCCESS)
}
