//! `portcullis client-config WORKLOAD --client C`: an MCP client's entry for
//! the workload, printed or merged into the client's config file.

use super::keys::{PolicyArg, endpoint, settings, store};
use crate::client_config::{self, Client};
use crate::secrets::ExposeSecret;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

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

pub fn run(args: ClientConfigArgs) -> anyhow::Result<ExitCode> {
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
        None => args.client.config_path(crate::platform::Os::CURRENT, &crate::platform::process_env)?,
    };
    let backup = client_config::write(args.client, &target, &path)?;
    eprintln!("wrote `{}` into {}", args.workload, path.display());
    if let Some(backup) = backup {
        eprintln!("the previous file is saved as {}", backup.display());
    }
    Ok(ExitCode::SUCCESS)
}
