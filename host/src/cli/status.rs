//! `portcullis status`: what a policy serves, and whether a gateway runs it.

use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct StatusArgs {
    /// The policy file.
    #[arg(long, default_value = "portcullis.toml")]
    policy: PathBuf,
}

pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let loaded = match crate::policy::load_file(&args.policy) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "policy {}", args.policy.display())?;
    for workload in &loaded.file.workloads {
        let chain = |entries: &[crate::policy::file::ChainEntryFile]| match entries {
            [] => "none".to_owned(),
            entries => entries.iter().map(|e| e.component.as_str()).collect::<Vec<_>>().join(", "),
        };
        let inbound = if workload.anonymous && workload.inbound.is_empty() { "none (anonymous)".to_owned() } else { chain(&workload.inbound) };
        writeln!(out, "workload {}", workload.name)?;
        writeln!(out, "  listen    {}  (clients use {})", workload.listen, workload.public_url)?;
        writeln!(out, "  upstream  {}", workload.upstream)?;
        writeln!(out, "  inbound   {inbound}")?;
        writeln!(out, "  outbound  {}", chain(&workload.outbound))?;
    }
    match &loaded.file.admin {
        Some(admin) => {
            let state = super::runtime()?.block_on(readiness(admin.listen));
            writeln!(out, "gateway   {state}  (admin {}/readyz)", admin.listen)?;
        }
        None => writeln!(out, "gateway   unknown: the policy has no [admin] listener to ask")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// What the admin listener's `/readyz` says.
async fn readiness(admin: std::net::SocketAddr) -> String {
    let host = if admin.ip().is_unspecified() { std::net::SocketAddr::from(([127, 0, 0, 1], admin.port())) } else { admin };
    let client = match reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(2)).build() {
        Ok(client) => client,
        Err(error) => return format!("unknown ({error})"),
    };
    match client.get(format!("http://{host}/readyz")).send().await {
        Ok(r) if r.status().is_success() => "running, ready".to_owned(),
        Ok(r) => format!("running, not ready ({})", r.status()),
        Err(error) if error.is_connect() => "not running".to_owned(),
        Err(error) => format!("not answering ({error})"),
    }
}
