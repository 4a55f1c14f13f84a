//! The `portcullis` command line. Each subcommand is a small function over the
//! library; output meant for people goes to stdout, logs go to stderr.

mod keys;
mod plugin;
mod secrets;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "portcullis", version, about = "A WebAssembly-extensible auth gateway for MCP servers and registries")]
struct Cli {
    /// Log format (logs go to stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// The policy file.
        #[arg(long)]
        policy: PathBuf,
    },
    /// Validate a policy (and compile and configure its components) without serving.
    Check {
        /// The policy file.
        policy: PathBuf,
    },
    /// Print the policy file's JSON Schema (for editors).
    Schema,
    /// Manage the secret store.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Work with component files.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Manage shared keys of `builtin:shared-key` workloads.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Speak MCP over stdio and forward to a workload over HTTP, adding its key.
    Bridge(keys::BridgeArgs),
    /// Print (or write) an MCP client's configuration for a workload.
    ClientConfig(keys::ClientConfigArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { policy } => {
            let options = crate::gateway::Options::new(policy, crate::home::dir()?);
            runtime()?.block_on(crate::gateway::run(options))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { policy } => check(&policy),
        Command::Schema => {
            let schema = serde_json::to_string_pretty(&crate::policy::json_schema())?;
            writeln!(std::io::stdout(), "{schema}")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Secrets(command) => secrets::run(command),
        Command::Plugin(command) => plugin::run(command),
        Command::Keys(command) => keys::run(command),
        Command::Bridge(args) => keys::bridge(args),
        Command::ClientConfig(args) => keys::client_config(args),
    }
}

fn check(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let loaded = match crate::policy::load_file(path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let home = crate::home::dir()?;
    let compiled = runtime()?.block_on(async {
        let runtime = crate::runtime::Runtime::new(Some(home.join("cache/components")))?;
        // `check` changes nothing: components may not send requests or write secrets.
        let services = crate::runtime::capabilities::Services::for_check(std::sync::Arc::new(crate::secrets::SecretStore::in_home(&home)));
        let metrics = crate::admin::metrics::Metrics::new();
        anyhow::Ok(crate::policy::compile::compile(&loaded, &runtime, &services, &metrics).await)
    })?;
    match compiled {
        Ok(snapshot) => {
            writeln!(std::io::stdout(), "{}: OK ({} workloads)", path.display(), snapshot.workloads.len())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
