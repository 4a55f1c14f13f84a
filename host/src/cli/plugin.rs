//! `portcullis plugin inspect FILE.wasm`.

use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Show a component's world, imports, exports and sha256 (for the policy pin).
    Inspect {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    let PluginCommand::Inspect { file, json } = command;
    let wasm = std::fs::read(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let engine = wasmtime::Engine::new(wasmtime::Config::new().wasm_component_model(true))?;
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
    Ok(ExitCode::SUCCESS)
}
