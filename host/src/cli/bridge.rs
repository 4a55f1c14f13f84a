//! `portcullis bridge WORKLOAD`: MCP over stdio, to the workload with its key.

use super::keys::{PolicyArg, endpoint, settings, store};
use clap::Args;
use std::process::ExitCode;

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

pub fn run(args: BridgeArgs) -> anyhow::Result<ExitCode> {
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
