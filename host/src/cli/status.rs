//! `portcullis status`: what a policy serves, and whether a gateway runs it.

use crate::policy::builtins;
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
        if !workload.authorize.is_empty() {
            writeln!(out, "  authorize {}", chain(&workload.authorize))?;
        }
        for entry in workload.outbound.iter().filter(|e| e.component == builtins::REGISTRY_TOKEN) {
            writeln!(out, "  login     {}", registry_auth_state(workload, entry))?;
        }
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
    let client = match crate::http_client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(2)).build() {
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

/// A registry-token entry's auth state: none, configured, authenticated
/// (with the access token's expiry) or expired, from the record the
/// component keeps in the secret store (`docs/registry-token.md`).
fn registry_auth_state(workload: &crate::policy::file::WorkloadFile, entry: &crate::policy::file::ChainEntryFile) -> String {
    use crate::secrets::ExposeSecret;
    if std::env::var(builtins::STATIC_TOKEN_ENV).is_ok_and(|t| !t.trim().is_empty()) {
        return format!("static token (from {})", builtins::STATIC_TOKEN_ENV);
    }
    if entry.config.contains_key("token_file") {
        return "static token (from token_file)".to_owned();
    }
    let Some(issuer) = entry.config.get("issuer").and_then(serde_json::Value::as_str) else {
        return "none (no issuer configured)".to_owned();
    };
    let key = builtins::registry_token_key(&workload.upstream, issuer);
    let login = format!("run `portcullis login {}`", workload.name);
    let store = match crate::home::dir() {
        Ok(home) => crate::secrets::SecretStore::in_home(&home),
        Err(e) => return format!("unknown ({e})"),
    };
    let record = match store.get(&key) {
        Ok(Some(record)) => record,
        Ok(None) => return format!("configured, not logged in ({login})"),
        Err(e) => return format!("unknown: the secret store cannot be read ({e})"),
    };
    let record: serde_json::Value = serde_json::from_str(record.expose_secret()).unwrap_or_default();
    let expires_at = record.get("expires_at").and_then(serde_json::Value::as_u64).unwrap_or(0);
    let refreshable = record.get("refresh_token").and_then(serde_json::Value::as_str).is_some_and(|t| !t.is_empty());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    match (expires_at.checked_sub(now), refreshable) {
        (Some(left), _) if left > 0 => format!("authenticated (tokens in secret {key}); the access token expires in {left} s"),
        (_, true) => format!("authenticated (tokens in secret {key}); the access token expired and is refreshed on the next request"),
        (_, false) => format!("expired: the access token expired and there is no refresh token ({login})"),
    }
}
