//! `portcullis plugin new|test|hash|inspect`: the tools of a component's author;
//! `plugin add|update|remove|list|push`: installed modules (`plugin:NAME`).

use crate::plugin_kit::{install, scaffold, trial};
use crate::runtime::plugin::Limits;
use anyhow::Context as _;
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Create a component project in ./NAME that `cargo build --release` turns into a component.
    New {
        name: String,
        #[arg(long, value_enum, default_value = "authenticator")]
        world: scaffold::World,
        /// Where to create the project (default: the current directory).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Run init and one call on a request, without a proxy; print the verdict and every host call as JSON.
    Test {
        component: PathBuf,
        /// The component's `config` table as a JSON object (default `{}`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The request: {"method", "path", "query", "authority", "headers": [[name, value], ...]}.
        #[arg(long)]
        request: PathBuf,
        /// Host responses: {"secrets": {name: value | null}, "http": [{"method", "url", "status", "headers", "body"}]}.
        #[arg(long)]
        stub: Option<PathBuf>,
        /// The workload's name, as `init` sees it.
        #[arg(long, default_value = "demo")]
        workload: String,
        /// The workload's public URL, as `init` sees it.
        #[arg(long, default_value = "http://127.0.0.1:8080/mcp")]
        public_url: String,
        /// The memory cap, as `limits.memory_mib` in a policy.
        #[arg(long, default_value_t = 16)]
        memory_mib: u32,
        /// The call's deadline, as `limits.deadline_ms` in a policy.
        #[arg(long, default_value_t = 100)]
        deadline_ms: u64,
        /// Exit with status 1 unless the outcome is this: allow, abstain, forward, deny, deny:STATUS.
        #[arg(long)]
        expect: Option<String>,
    },
    /// Print a component's sha256, the value a policy pins.
    Hash { file: PathBuf },
    /// Show a component's world, imports, exports, sha256 and the grants a policy must give it.
    Inspect {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Install a module from a file, an https:// URL or oci://registry/repo:tag (or @sha256:...) and pin it in portcullis.lock.
    Add {
        source: String,
        /// The name policies use (`plugin:NAME`); default: from the source.
        #[arg(long)]
        name: Option<String>,
        /// The version policies may ask for (`plugin:NAME@VERSION`); default: the OCI tag.
        #[arg(long)]
        version: Option<String>,
        /// The policy whose lock file (portcullis.lock beside it) records the pin.
        #[arg(long, default_value = "policy.toml")]
        policy: PathBuf,
    },
    /// Fetch a module again from its locked source and move its pin (a new tag's digest, say).
    Update {
        name: String,
        #[arg(long, default_value = "policy.toml")]
        policy: PathBuf,
        /// Accept a build signed with an older version than the pinned one (or with none).
        #[arg(long)]
        allow_downgrade: bool,
    },
    /// Remove a module's pin from portcullis.lock.
    Remove {
        name: String,
        #[arg(long, default_value = "policy.toml")]
        policy: PathBuf,
    },
    /// List the modules portcullis.lock pins: name, version, world, digest, source, signature.
    List {
        #[arg(long, default_value = "policy.toml")]
        policy: PathBuf,
    },
    /// Publish a component to an OCI registry (CNCF Wasm artifact layout), with FILE.minisig when present.
    Push {
        file: PathBuf,
        /// oci://registry/repository:tag
        reference: String,
        /// The minisign signature to publish with it (default: FILE.minisig, when it exists).
        #[arg(long)]
        signature: Option<PathBuf>,
    },
}

pub fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::New { name, world, dir } => {
            let root = scaffold::create(&dir, &name, world)?;
            eprintln!("created {}; next: cd {} && cargo build --release && ./test.sh", root.display(), root.display());
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Test { component, config, request, stub, workload, public_url, memory_mib, deadline_ms, expect } => {
            anyhow::ensure!(memory_mib > 0 && memory_mib <= crate::runtime::MAX_MEMORY_MIB, "--memory-mib must be 1..={}", crate::runtime::MAX_MEMORY_MIB);
            let max = crate::runtime::plugin::MAX_DEADLINE_MS;
            anyhow::ensure!((1..=max).contains(&deadline_ms), "--deadline-ms must be 1..={max}, as `limits.deadline_ms` in a policy");
            let spec = trial::TrialSpec {
                wasm: read(&component)?,
                config_json: match &config {
                    Some(path) => json_object(path)?,
                    None => "{}".into(),
                },
                request: parse(&request)?,
                stubs: match &stub {
                    Some(path) => parse(path)?,
                    None => Default::default(),
                },
                workload,
                public_url,
                limits: Limits { deadline: Duration::from_millis(deadline_ms), memory_bytes: memory_mib as usize * 1024 * 1024, ..Limits::default() },
            };
            let report = super::runtime()?.block_on(async {
                let home = crate::home::dir().ok();
                let host = crate::runtime::setup::Host::assemble(crate::runtime::setup::Purpose::Author { home: home.as_deref() })?;
                trial::run(&host.runtime, spec).await
            })?;
            writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&report)?)?;
            match expect {
                Some(expected) => expectation(&report, &expected),
                None if report.outcome() == "init-failed" || report.outcome() == "fault" => Ok(ExitCode::FAILURE),
                None => Ok(ExitCode::SUCCESS),
            }
        }
        PluginCommand::Hash { file } => {
            use sha2::{Digest, Sha256};
            writeln!(std::io::stdout(), "{}", hex::encode(Sha256::digest(read(&file)?)))?;
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Inspect { file, json } => inspect(&file, json),
        PluginCommand::Add { source, name, version, policy } => super::runtime()?.block_on(install::add(&source, name, version, &policy)),
        PluginCommand::Update { name, policy, allow_downgrade } => super::runtime()?.block_on(install::update(&name, &policy, allow_downgrade)),
        PluginCommand::Remove { name, policy } => install::remove(&name, &policy),
        PluginCommand::List { policy } => install::list(&policy),
        PluginCommand::Push { file, reference, signature } => super::runtime()?.block_on(install::push(&file, &reference, signature)),
    }
}

fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn parse<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| anyhow::anyhow!("{}: {} at `{}`", path.display(), e.inner(), e.path()))?;
    deserializer.end().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(value)
}

fn json_object(path: &std::path::Path) -> anyhow::Result<String> {
    let value: serde_json::Value = parse(path)?;
    anyhow::ensure!(value.is_object(), "{}: the configuration must be a JSON object", path.display());
    Ok(value.to_string())
}

/// Compares the outcome with `--expect`; a mismatch is said on stderr.
fn expectation(report: &trial::Report, expected: &str) -> anyhow::Result<ExitCode> {
    let (kind, status) = match expected.split_once(':') {
        Some((kind, status)) => (kind, Some(status.parse::<u16>().with_context(|| format!("--expect {expected}: the status is not a number"))?)),
        None => (expected, None),
    };
    anyhow::ensure!(
        matches!(kind, "allow" | "abstain" | "forward" | "deny"),
        "--expect must be allow, abstain, forward, deny or deny:STATUS (got {expected:?})"
    );
    let met = report.outcome() == kind && (status.is_none() || status == report.status());
    if met {
        return Ok(ExitCode::SUCCESS);
    }
    let actual = match report.status() {
        Some(status) => format!("{}:{status}", report.outcome()),
        None => report.outcome().to_owned(),
    };
    eprintln!("expected {expected}, got {actual}");
    Ok(ExitCode::FAILURE)
}

fn inspect(file: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let wasm = read(file)?;
    let engine = crate::runtime::inspect::engine()?;
    let inspection = crate::runtime::inspect::inspect(&engine, &wasm)?;
    let mut out = std::io::stdout();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&inspection)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "file:    {}", file.display())?;
    writeln!(out, "sha256:  {}", inspection.sha256)?;
    writeln!(out, "size:    {} bytes", inspection.size_bytes)?;
    writeln!(out, "world:   {}", inspection.world)?;
    writeln!(out, "imports:")?;
    for import in &inspection.imports {
        writeln!(out, "  {import}")?;
    }
    writeln!(out, "exports:")?;
    for export in &inspection.exports {
        writeln!(out, "  {export}")?;
    }
    writeln!(out, "grants the policy must give:")?;
    if inspection.grants.is_empty() {
        writeln!(out, "  none")?;
    }
    for grant in &inspection.grants {
        writeln!(out, "  {grant}")?;
    }
    Ok(ExitCode::SUCCESS)
}
