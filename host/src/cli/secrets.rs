//! `portcullis secrets set|get|list|delete`.

use crate::secrets::{ExposeSecret, SecretStore, SecretString};
use clap::Subcommand;
use std::io::{Read, Write};
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
    }
    Ok(ExitCode::SUCCESS)
}
