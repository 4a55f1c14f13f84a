//! Running the gateway until a signal: reload on SIGHUP and on changes to the
//! policy file or its lock file (`portcullis plugin add|update|remove`), drain
//! and exit on SIGTERM or Ctrl-C.

use super::{Gateway, Options};
use notify::{RecursiveMode, Watcher};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// Changes closer together than this are one reload (editors write in steps).
const DEBOUNCE: Duration = Duration::from_millis(250);

pub async fn run(options: Options) -> anyhow::Result<()> {
    let policy = options.policy.clone();
    let gateway = Gateway::start(options).await?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let (changed_tx, mut changed) = tokio::sync::mpsc::channel::<()>(1);
    let _watcher = watch_file(&policy, changed_tx);
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the policy");
                let _ = gateway.reload().await;
            }
            Some(()) = changed.recv() => {
                tokio::time::sleep(DEBOUNCE).await;
                while changed.try_recv().is_ok() {}
                tracing::info!("the policy or its lock file changed: reloading");
                let _ = gateway.reload().await;
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("shutting down: draining in-flight requests");
    gateway.shutdown().await;
    Ok(())
}

/// Watches the policy file's directory for the policy and `portcullis.lock`
/// (editors and `plugin add` replace files by renaming, which a watch on the
/// file itself would miss).
fn watch_file(policy: &std::path::Path, changed: tokio::sync::mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let policy = std::path::absolute(policy).ok()?;
    let dir = policy.parent()?.to_owned();
    let file_name = policy.file_name()?.to_owned();
    let lock_name = std::ffi::OsString::from(crate::plugins::lock::FILE_NAME);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let ours = event.paths.iter().any(|p| p.file_name() == Some(&file_name) || p.file_name() == Some(lock_name.as_os_str()));
            if ours && (event.kind.is_modify() || event.kind.is_create()) {
                let _ = changed.try_send(());
            }
        }
    })
    .map_err(|error| tracing::warn!(%error, "cannot watch the policy file; reload with SIGHUP"))
    .ok()?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(|error| tracing::warn!(%error, "cannot watch the policy file; reload with SIGHUP")).ok()?;
    Some(watcher)
}
