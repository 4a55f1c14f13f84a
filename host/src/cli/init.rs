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
    /// The gateway is the MCP server's own OAuth authorization server
    /// (`builtin:oauth-server`), federating logins to your identity provider.
    AuthorizationServer,
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
    /// The identity provider people log in at (`--mode authorization-server`):
    /// its OpenID Connect issuer URL.
    #[arg(long, required_if_eq("mode", "authorization-server"))]
    upstream_issuer: Option<url::Url>,
    /// The client id the gateway has at that identity provider (`--mode authorization-server`).
    #[arg(long, default_value = "portcullis")]
    upstream_client_id: String,
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
    // The keys the policy names, before it is checked (the check loads them).
    if args.mode == Mode::AuthorizationServer {
        create_server_secrets()?;
    }
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
        Mode::AuthorizationServer => authorization_server(args)?,
        Mode::Anonymous => "# No authentication: for local experiments only. The gateway still checks\n# Host and Origin (DNS-rebinding protection) and logs a warning at start.\nanonymous = true\n".to_owned(),
    };
    Ok(format!("{head}{chain}"))
}

/// The secret holding the starter authorization server's signing key, and the one sealing upstream tokens.
const SIGNING_KEY_SECRET: &str = "signing:oauth-server";
const TOKEN_KEY_SECRET: &str = "oauth:token-key";

/// The chain and server of `--mode authorization-server`: the workload's
/// verifier trusts its own server, which federates logins to `--upstream-issuer`.
fn authorization_server(args: &InitArgs) -> anyhow::Result<String> {
    let issuer = args.upstream_issuer.as_ref().ok_or_else(|| anyhow::anyhow!("--mode authorization-server needs --upstream-issuer URL"))?;
    anyhow::ensure!(crate::origin::Origin::of(issuer).is_some(), "--upstream-issuer must be an http:// or https:// URL");
    // Written into a TOML string: visible ASCII, no quote or escape.
    let client_id = &args.upstream_client_id;
    anyhow::ensure!(
        !client_id.is_empty() && client_id.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'),
        "--upstream-client-id {client_id:?}: use visible ASCII characters other than `\"` and `\\`"
    );
    let issuer_text = issuer.as_str().trim_end_matches('/');
    let origin = issuer.origin().ascii_serialization();
    let private =
        issuer.host_str().is_some_and(portcullis_contract::net::is_loopback_host) || matches!(issuer.host(), Some(url::Host::Ipv4(ip)) if ip.is_private());
    let private_line = if private { ", http_private = true" } else { "" };
    Ok(format!(
        r#"
  # Tokens are checked against the server below: the gateway fills in its issuer
  # (this workload's origin), `public_url` as the audience, and its keys.
  [[workloads.inbound]]
  component = "builtin:oidc-verifier"
  config = {{ embedded_server = true, scopes_supported = ["mcp"] }}

  # The MCP server's own OAuth authorization server; its routes are public and
  # never reach the upstream. docs/authorization-server.md describes it.
  [workloads.server]
  component = "builtin:oauth-server"
  # A login calls the identity provider within one call.
  limits = {{ deadline_ms = 5000 }}

    [workloads.server.grants]
    # The identity provider, and (`https://*`) the Client ID Metadata Documents
    # clients name: any https origin on a public address, never loopback or the LAN.
    http = ["{origin}", "https://*"]{private_line}
    secrets = ["oauth:*"]
    store = true
    # Created by `portcullis init` in the secret store. The first key signs, every
    # key listed is published: to rotate, add a key first, drop the old one later.
    signing_keys = ["secret:{SIGNING_KEY_SECRET}"]

    [workloads.server.config]
    scopes = ["mcp"]
    # Seals the identity provider's tokens before they are stored (created by `portcullis init`).
    token_key_secret = "{TOKEN_KEY_SECRET}"

    # Where people log in. Register <public_url's origin>/oauth/callback there as a redirect URI.
    [[workloads.server.config.upstreams]]
    name = "idp"
    issuer = "{issuer_text}"
    client_id = "{client_id}"
    # A confidential client: `printf %s SECRET | portcullis secrets set oauth:idp-client-secret`, then:
    # client_secret_secret = "oauth:idp-client-secret"
    scopes = ["openid", "email"]
"#
    ))
}

/// Creates the starter authorization server's signing key (ECDSA P-256,
/// PKCS#8 PEM) and token-sealing key (32 random bytes, base64) in the secret
/// store, each only if it is not there: a second `init` keeps the keys that
/// signed tokens already. Neither is ever printed.
fn create_server_secrets() -> anyhow::Result<()> {
    use base64::Engine;
    use ring::rand::{SecureRandom, SystemRandom};
    let store = crate::secrets::SecretStore::in_home(&crate::home::dir()?);
    let rng = SystemRandom::new();
    let fresh =
        |name: &str| -> anyhow::Result<bool> { Ok(store.get(name).map_err(|e| anyhow::anyhow!("cannot read the secret store for `{name}`: {e}"))?.is_none()) };
    if fresh(SIGNING_KEY_SECRET)? {
        let der = ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("cannot generate a signing key"))?;
        let pem = pem("PRIVATE KEY", der.as_ref());
        store.set(SIGNING_KEY_SECRET, crate::secrets::SecretString::from(pem))?;
        writeln!(std::io::stdout(), "created the signing key `{SIGNING_KEY_SECRET}` in the secret store")?;
    }
    if fresh(TOKEN_KEY_SECRET)? {
        let mut key = [0u8; 32];
        rng.fill(&mut key).map_err(|_| anyhow::anyhow!("cannot generate a key"))?;
        store.set(TOKEN_KEY_SECRET, crate::secrets::SecretString::from(base64::engine::general_purpose::STANDARD.encode(key)))?;
        writeln!(std::io::stdout(), "created the token-sealing key `{TOKEN_KEY_SECRET}` in the secret store")?;
    }
    Ok(())
}

/// `der` as PEM with `label`, in 64-column lines.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        init: InitArgs,
    }

    fn args(line: &[&str]) -> InitArgs {
        Cli::try_parse_from(std::iter::once("init").chain(line.iter().copied())).unwrap().init
    }

    /// The starter policy has the server and the verifier that trusts it
    /// (`portcullis init` checks the whole policy before it returns).
    #[test]
    fn the_authorization_server_starter_policy_has_its_server_and_embedded_verifier() {
        let text = policy(&args(&["--mode", "authorization-server", "--upstream-issuer", "https://idp.example.com/realms/corp/"])).unwrap();
        let policy: toml::Value = toml::from_str(&text).unwrap();
        let workload = &policy["workloads"][0];
        let server = &workload["server"];
        assert_eq!(server["component"].as_str(), Some("builtin:oauth-server"));
        assert_eq!(server["config"]["upstreams"][0]["issuer"].as_str(), Some("https://idp.example.com/realms/corp"));
        assert_eq!(server["grants"]["signing_keys"][0].as_str(), Some("secret:signing:oauth-server"));
        assert_eq!(workload["inbound"][0]["config"]["embedded_server"].as_bool(), Some(true));
        assert_eq!(workload["public_url"].as_str(), Some("http://127.0.0.1:8080/mcp"));
        assert!(text.contains("http = [\"https://idp.example.com\", \"https://*\"]\n"), "{text}");
        let local = policy_text(&["--mode", "authorization-server", "--upstream-issuer", "http://127.0.0.1:9000"]);
        assert!(local.contains("http = [\"http://127.0.0.1:9000\", \"https://*\"], http_private = true"), "{local}");
        assert!(Cli::try_parse_from(["init", "--mode", "authorization-server"]).is_err(), "--upstream-issuer is required");
    }

    fn policy_text(line: &[&str]) -> String {
        policy(&args(line)).unwrap()
    }

    #[test]
    fn keys_are_pem_in_64_columns() {
        let text = pem("PRIVATE KEY", &[7u8; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!((lines[0], lines[lines.len() - 1]), ("-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----"));
        assert!(lines[1..lines.len() - 1].iter().all(|l| l.len() <= 64) && lines[1].len() == 64);
    }
}
