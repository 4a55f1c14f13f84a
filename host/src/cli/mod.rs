//! The `portcullis` command line. Each subcommand is a small function over the
//! library; output meant for people goes to stdout, logs go to stderr.

mod bridge;
mod callback;
mod client_config;
mod init;
mod keys;
mod login;
mod plugin;
mod secrets;
mod sessions;
mod status;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
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
    /// Write a commented starter policy for one workload, and check it.
    Init(init::InitArgs),
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
    /// List or end users' sessions at a workload's authorization server (a shared store).
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Speak MCP over stdio and forward to a workload over HTTP, adding its key.
    Bridge(bridge::BridgeArgs),
    /// Print (or write) an MCP client's configuration for a workload.
    ClientConfig(client_config::ClientConfigArgs),
    /// What a policy serves (listeners, upstreams, chains) and whether a gateway runs it.
    Status(status::StatusArgs),
    /// Log a workload's outbound injector in (OAuth in the browser), e.g. to a private MCP registry.
    Login(login::LoginArgs),
    /// Forget a workload's stored login (its configuration stays).
    Logout(login::LogoutArgs),
    /// Print a shell completion script (e.g. `portcullis completions bash > /etc/bash_completion.d/portcullis`).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), e.g. `portcullis man > portcullis.1`.
    Man,
}

pub fn main() -> ExitCode {
    let matches = cli_command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let result = match cli.command {
        Command::Run { policy } => serve(policy, cli.log_format),
        command => {
            init_logging(cli.log_format);
            run(command)
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command line, with a `--version` that also names the contract and the
/// built-in components' pins (what a bug report or a policy needs).
fn cli_command() -> clap::Command {
    Cli::command().long_version(long_version())
}

pub fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let mut text = format!("{}\ncontract {}", env!("CARGO_PKG_VERSION"), crate::runtime::bindings::CONTRACT);
        for name in crate::runtime::builtins::names() {
            let builtin = crate::runtime::builtins::lookup(name).expect("a listed built-in");
            text.push_str(&format!("\nbuiltin:{name} sha256:{}", builtin.sha256()));
        }
        text
    })
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Init(args) => init::run(args),
        Command::Status(args) => status::run(args),
        Command::Login(args) => login::login(args),
        Command::Logout(args) => login::logout(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut cli_command(), "portcullis", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(cli_command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { policy } => unreachable!("`main` runs {} itself", policy.display()),
        Command::Check { policy } => check(&policy),
        Command::Schema => {
            let schema = serde_json::to_string_pretty(&crate::policy::json_schema())?;
            writeln!(std::io::stdout(), "{schema}")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Secrets(command) => secrets::run(command),
        Command::Plugin(command) => plugin::run(command),
        Command::Keys(command) => keys::run(command),
        Command::Sessions(command) => sessions::run(command),
        Command::Bridge(args) => bridge::run(args),
        Command::ClientConfig(args) => client_config::run(args),
    }
}

pub(crate) fn check(path: &std::path::Path) -> anyhow::Result<ExitCode> {
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
        // `check` changes nothing: components may not send requests or write secrets.
        let host = crate::runtime::setup::Host::assemble(crate::runtime::setup::Purpose::Check { home: &home })?;
        anyhow::Ok(crate::policy::compile::compile(&loaded, &host).await)
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

/// `portcullis run`. Telemetry is flushed after the gateway stops, while the
/// runtime its exports run on still runs.
fn serve(policy: PathBuf, format: LogFormat) -> anyhow::Result<ExitCode> {
    let home = crate::home::dir()?;
    let runtime = runtime()?;
    init_logging(format);
    let telemetry = telemetry(&policy, &home, runtime.handle().clone())?;
    let served = runtime.block_on(crate::gateway::run(crate::gateway::Options::new(policy, home)));
    if let Some(telemetry) = telemetry {
        // The flush waits on the SDK's threads, whose requests run on this
        // runtime: it waits on a blocking thread while `block_on` drives the
        // runtime (a current-thread runtime runs nothing outside `block_on`).
        let _ = runtime.block_on(runtime.spawn_blocking(move || telemetry.shutdown()));
    }
    served?;
    Ok(ExitCode::SUCCESS)
}

/// What `portcullis run` exports, from the policy's `[telemetry]` and the
/// environment, with header values from the secret store in `home`. `None`:
/// nothing is exported (also when the policy does not load: the gateway
/// reports why as it starts).
fn telemetry(policy: &std::path::Path, home: &std::path::Path, runtime: tokio::runtime::Handle) -> anyhow::Result<Option<crate::telemetry::Telemetry>> {
    let settings = crate::policy::load_file(policy).map(|p| p.telemetry).unwrap_or_default();
    let store = crate::secrets::SecretStore::in_home(home);
    let secret = |name: &str| -> anyhow::Result<String> {
        let value = store.get(name)?.ok_or_else(|| anyhow::anyhow!("no secret {name:?} in the store"))?;
        Ok(secrecy::ExposeSecret::expose_secret(&value).to_owned())
    };
    let Some(export) = crate::telemetry::Export::resolve(&settings, &|name: &str| std::env::var(name).ok(), secret)? else { return Ok(None) };
    crate::telemetry::Telemetry::start(&export, runtime).map(Some)
}

/// The gateway's runtime: tokio's multi-thread scheduler, one worker per
/// core unless `TOKIO_WORKER_THREADS` says otherwise. Told one worker (a
/// sidecar given one core), the current-thread scheduler instead: the same
/// one thread for every task, without the work-stealing machinery, which the
/// proxy benchmark measured 12 % faster (docs/benchmarks.md, issue 26).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    if std::env::var("TOKIO_WORKER_THREADS").is_ok_and(|n| n.trim() == "1") {
        return Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?);
    }
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// The log on stderr.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: never in a file or a pipe, never with NO_COLOR (no-color.org).
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
