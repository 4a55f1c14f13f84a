//! `portcullis sessions list|revoke`: the users' sessions at a workload's
//! embedded authorization server, for an operator. A session is listed by
//! its info record (`portcullis_contract::sessions`): who, through which
//! providers, until when; never a token (the tokens are sealed, and this
//! command does not read them). Revoking deletes the info and the sealed
//! upstream tokens: the session's next call upstream is answered 401 (log
//! in again), and its refresh tokens stop working.
//!
//! The command reads the store the policy's `[store]` names. The memory store
//! lives inside the gateway process, out of reach: sessions are listed only
//! with a shared store (Redis).

use crate::policy::Policy;
use crate::runtime::capabilities::StoreGrant;
use crate::secrets::SecretStore;
use crate::store::{Namespace, Stores};
use clap::Subcommand;
use portcullis_contract::sessions;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// List the sessions (subject, providers, expiry); never a token.
    List {
        /// The policy the gateway runs (its `[store]` and workloads).
        #[arg(long)]
        policy: PathBuf,
        /// Only this workload's sessions.
        #[arg(long)]
        workload: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End sessions: their upstream tokens are deleted and their refresh tokens stop working.
    Revoke {
        #[arg(long)]
        policy: PathBuf,
        #[arg(long)]
        workload: String,
        /// The session's id (as `list` shows it).
        #[arg(required_unless_present = "subject", conflicts_with = "subject")]
        session: Option<String>,
        /// Every session of this subject instead.
        #[arg(long)]
        subject: Option<String>,
    },
}

/// One session as listed.
struct Session {
    workload: String,
    id: String,
    info: Value,
}

impl Session {
    fn text(&self, field: &str) -> &str {
        self.info[field].as_str().unwrap_or("?")
    }

    fn providers(&self) -> Vec<String> {
        self.info["providers"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
    }
}

pub fn run(command: SessionsCommand) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime()?;
    match command {
        SessionsCommand::List { policy, workload, json } => runtime.block_on(async {
            let namespaces = namespaces(&policy, workload.as_deref())?;
            let mut out = std::io::stdout().lock();
            if !json {
                writeln!(out, "{:<12} {:<43} {:<24} {:<16} EXPIRES", "WORKLOAD", "SESSION", "SUBJECT", "PROVIDERS")?;
            }
            let now = now();
            for (name, namespace) in &namespaces {
                for session in list(name, namespace).await? {
                    let expires = session.info["expires_at"].as_u64().unwrap_or(0);
                    if json {
                        let line = serde_json::json!({
                            "workload": session.workload, "session": session.id, "subject": session.text("sub"),
                            "client_id": session.text("client_id"), "providers": session.providers(),
                            "created_at": session.info["created_at"], "expires_at": expires,
                        });
                        writeln!(out, "{line}")?;
                    } else {
                        let left = expires.saturating_sub(now);
                        let expires = format!("in {}h{:02}m", left / 3600, left % 3600 / 60);
                        writeln!(
                            out,
                            "{:<12} {:<43} {:<24} {:<16} {expires}",
                            session.workload,
                            session.id,
                            session.text("sub"),
                            session.providers().join(",")
                        )?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }),
        SessionsCommand::Revoke { policy, workload, session, subject } => runtime.block_on(async {
            let namespaces = namespaces(&policy, Some(&workload))?;
            let (name, namespace) = &namespaces[0];
            let chosen: Vec<Session> = match (&session, &subject) {
                (Some(id), _) => {
                    anyhow::ensure!(sessions::is_session_id(id), "{id:?} is not a session id (43 characters, as `portcullis sessions list` shows them)");
                    let Some(bytes) = namespace.get(&sessions::info_key(id)).await? else {
                        anyhow::bail!("workload `{name}` has no session {id}");
                    };
                    vec![Session { workload: name.clone(), id: id.clone(), info: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }]
                }
                (None, Some(subject)) => list(name, namespace).await?.into_iter().filter(|s| s.text("sub") == subject).collect(),
                (None, None) => unreachable!("clap requires one"),
            };
            for session in &chosen {
                // The tokens first: a session whose info is gone but whose tokens remain would still reach upstream.
                for provider in session.providers() {
                    namespace.delete(&sessions::record_key(&session.id, &provider)).await?;
                }
                namespace.delete(&sessions::info_key(&session.id)).await?;
                tracing::info!(workload = %name, session = %session.id, subject = %session.text("sub"), "session revoked by an operator");
            }
            eprintln!("revoked {} session(s) of workload `{name}`", chosen.len());
            Ok(if chosen.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }),
    }
}

/// The sessions in one workload's namespace.
async fn list(workload: &str, namespace: &Namespace) -> anyhow::Result<Vec<Session>> {
    let mut found = Vec::new();
    for key in namespace.keys(sessions::INFO_PREFIX).await? {
        let Some(id) = key.strip_prefix(sessions::INFO_PREFIX) else { continue };
        // Expired between the listing and the read: not a session any more.
        let Some(bytes) = namespace.get(&key).await? else { continue };
        found.push(Session { workload: workload.to_owned(), id: id.to_owned(), info: serde_json::from_slice(&bytes).unwrap_or(Value::Null) });
    }
    found.sort_by(|a, b| (a.text("sub"), &a.id).cmp(&(b.text("sub"), &b.id)));
    Ok(found)
}

/// The store namespaces of the workloads (all, or `only`) whose server keeps sessions there.
fn namespaces(path: &std::path::Path, only: Option<&str>) -> anyhow::Result<Vec<(String, Namespace)>> {
    let policy = crate::policy::load_file(path).map_err(anyhow::Error::new)?;
    anyhow::ensure!(
        !matches!(policy.store.backend, crate::store::Backend::Memory),
        "the policy keeps its store in memory, inside the gateway process: sessions can be listed only with a shared store (`[store] backend = \"redis\"`)"
    );
    let stores = Stores::new(false);
    let secrets = SecretStore::in_home(&crate::home::dir()?);
    stores.open(&policy.store, &secrets).map_err(|e| anyhow::anyhow!("the store: {}", e.message))?;
    let found = servers(&policy, only).into_iter().map(|(workload, owner)| (workload.clone(), stores.namespace(&workload, &owner))).collect::<Vec<_>>();
    match only {
        Some(name) if found.is_empty() => anyhow::bail!("workload `{name}` has no server with the store in this policy"),
        _ => Ok(found),
    }
}

/// Each workload's name and its server's store namespace owner.
fn servers(policy: &Policy, only: Option<&str>) -> Vec<(String, String)> {
    policy
        .file
        .workloads
        .iter()
        .zip(&policy.workloads)
        .filter(|(file, _)| only.is_none_or(|name| file.name == name))
        .filter_map(|(file, parsed)| {
            let entry = file.server.as_ref()?;
            let grants = parsed.server.as_ref()?;
            let owner = match &grants.store {
                StoreGrant::None => return None,
                grant => grant.owner(&entry.component)?,
            };
            Some((file.name.clone(), owner))
        })
        .collect()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
