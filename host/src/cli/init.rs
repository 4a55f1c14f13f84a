//! `portcullis init`: a commented starter policy for one workload, checked
//! before the command returns.

use clap::{Args, ValueEnum};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// A per-workload 256-bit key, for MCP servers on this machine.
    SharedKey,
    /// Bearer JWT access tokens from an OpenID Provider (the MCP authorization spec).
    Oidc,
    /// No authentication (local experiments only).
    Anonymous,
}

#[derive(Args)]
pub struct InitArgs {
    /// How clients authenticate.
    #[arg(long, value_enum, default_value_t = Mode::SharedKey)]
    mode: Mode,
    /// The MCP server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:3001")]
    upstream: url::Url,
    /// The OpenID Provider's issuer URL (`--mode oidc`).
    #[arg(long, required_if_eq("mode", "oidc"))]
    issuer: Option<url::Url>,
    /// Where the gateway listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The workload's name (used in logs, metrics, secret names and the CLI).
    #[arg(long, default_value = "mcp")]
    name: String,
    /// The file to write.
    #[arg(long, short, default_value = "portcullis.toml")]
    output: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let text = policy(&args)?;
    // Refuse to overwrite unless told to; `create_new` makes the check and the write one step.
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = match options.open(&args.output) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            anyhow::bail!("{} already exists; choose another file with --output, or pass --force to overwrite it", args.output.display())
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot write {}", args.output.display()))),
    };
    file.write_all(text.as_bytes())?;
    drop(file);
    writeln!(std::io::stdout(), "wrote {}", args.output.display())?;
    let checked = super::check(&args.output)?;
    if checked == ExitCode::SUCCESS {
        let next = match args.mode {
            Mode::SharedKey => format!(
                "next: portcullis run --policy {policy}   (creates the key), then: portcullis keys show {name}",
                policy = args.output.display(),
                name = args.name
            ),
            _ => format!("next: portcullis run --policy {}", args.output.display()),
        };
        writeln!(std::io::stdout(), "{next}")?;
    }
    Ok(checked)
}

/// The starter policy's text.
fn policy(args: &InitArgs) -> anyhow::Result<String> {
    let name = &args.name;
    anyhow::ensure!(portcullis_contract::names::is_valid_name(name), "--name {name:?}: use {}", portcullis_contract::names::NAME_RULE);
    let upstream = args.upstream.as_str().trim_end_matches('/');
    let listen = args.listen;
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let public_url = format!("http://{host}:{}/mcp", listen.port());
    let head = format!(
        r#"# Written by `portcullis init --mode {mode}`. Check it with `portcullis check FILE`,
# serve it with `portcullis run --policy FILE`; docs/policy.md describes every key.
version = 1

# Liveness, readiness and Prometheus metrics. Keep it on loopback: it is not authenticated.
[admin]
listen = "127.0.0.1:9901"

[[workloads]]
name = "{name}"
listen = "{listen}"
# The MCP server behind the gateway.
upstream = "{upstream}"
# The URL clients use: the resource identifier. Never taken from request headers.
public_url = "{public_url}"
"#,
        mode = args.mode.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default(),
    );
    let chain = match args.mode {
        Mode::SharedKey => format!(
            r#"
  [[workloads.inbound]]
  component = "builtin:shared-key"
  # `key = "auto"` creates the key at the first start (`portcullis keys show {name}`
  # prints it); after `portcullis keys rotate {name}` the previous key stays valid for `grace`.
  config = {{ key = "auto", grace = "10m" }}
  # The key and, during a rotation, the previous key; nothing else.
  grants = {{ secrets = ["workload:{name}:shared-key", "workload:{name}:shared-key:previous"] }}
"#
        ),
        Mode::Oidc => {
            let issuer = args.issuer.as_ref().ok_or_else(|| anyhow::anyhow!("--mode oidc needs --issuer URL"))?;
            let issuer_text = issuer.as_str().trim_end_matches('/');
            anyhow::ensure!(crate::origin::Origin::of(issuer).is_some(), "--issuer must be an http:// or https:// URL");
            let origin = issuer.origin().ascii_serialization();
            let private = issuer.host_str().is_some_and(portcullis_contract::net::is_loopback_host)
                || matches!(issuer.host(), Some(url::Host::Ipv4(ip)) if ip.is_private());
            let private_line = if private { ", http_private = true" } else { "" };
            format!(
                r#"
  [[workloads.inbound]]
  component = "builtin:oidc-verifier"
  # The verifier fetches the issuer's discovery document and keys, and nothing else.
  grants = {{ http = ["{origin}"]{private_line} }}
  # Fetching keys can take longer than a local check: allow it within the call.
  limits = {{ deadline_ms = 2000 }}

  [workloads.inbound.config]
  # Tokens must come from this issuer (exactly) and carry `public_url` in `aud`
  # (request them with `resource=` per RFC 8707). docs/oidc.md has provider notes.
  issuer = "{issuer_text}"
  algorithms = ["RS256", "ES256"]
  # required_scopes = ["mcp:read"]
  # claims_to_headers = {{ sub = "x-user-id", email = "x-forwarded-email" }}
"#
            )
        }
        Mode::Anonymous => "# No authentication: for local experiments only. The gateway still checks\n# Host and Origin (DNS-rebinding protection) and logs a warning at start.\nanonymous = true\n".to_owned(),
    };
    Ok(format!("{head}{chain}"))
}
