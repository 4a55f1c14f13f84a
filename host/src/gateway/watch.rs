//! Running the gateway until a signal: reload on SIGHUP and on changes to the
//! policy file or its lock file (`portcullis plugin add|update|remove`), drain
//! and exit on SIGTERM or Ctrl-C.
//!
//! Windows has no SIGHUP or SIGTERM: the gateway reloads when the policy file
//! changes (saving it, or touching it, is the reload), and drains and exits on
//! Ctrl-C, Ctrl-Break and the console window closing.

use super::{Gateway, Options};
use notify::{RecursiveMode, Watcher};
use std::time::Duration;

/// Changes closer together than this are one reload (editors write in steps).
const DEBOUNCE: Duration = Duration::from_millis(250);

pub async fn run(options: Options) -> anyhow::Result<()> {
    let policy = options.policy.clone();
    let gateway = Gateway::start(options).await?;
    let mut signals = signals::Signals::new()?;
    let (changed_tx, mut changed) = tokio::sync::mpsc::channel::<()>(1);
    let _watcher = watch_file(&policy, changed_tx);
    loop {
        tokio::select! {
            _ = signals.hangup.recv() => {
                tracing::info!("SIGHUP: reloading the policy");
                let _ = gateway.reload().await;
            }
            Some(()) = changed.recv() => {
                tokio::time::sleep(DEBOUNCE).await;
                while changed.try_recv().is_ok() {}
                tracing::info!("the policy or its lock file changed: reloading");
                let _ = gateway.reload().await;
            }
            _ = signals.stop.recv() => break,
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
    .map_err(|error| tracing::warn!(%error, "cannot watch the policy file; {}", signals::RELOAD_HINT))
    .ok()?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(|error| tracing::warn!(%error, "cannot watch the policy file; {}", signals::RELOAD_HINT)).ok()?;
    Some(watcher)
}

#[cfg(unix)]
mod signals {
    use tokio::signal::unix::{Signal, SignalKind, signal};

    pub const RELOAD_HINT: &str = "reload with SIGHUP";

    /// SIGHUP reloads; SIGTERM or Ctrl-C (SIGINT) stops.
    pub struct Signals {
        pub hangup: Signal,
        pub stop: Stop,
    }

    pub struct Stop {
        terminate: Signal,
    }

    impl Signals {
        pub fn new() -> std::io::Result<Signals> {
            Ok(Signals { hangup: signal(SignalKind::hangup())?, stop: Stop { terminate: signal(SignalKind::terminate())? } })
        }
    }

    impl Stop {
        pub async fn recv(&mut self) {
            tokio::select! {
                _ = self.terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    }
}

#[cfg(windows)]
mod signals {
    use tokio::signal::windows::{CtrlBreak, CtrlClose, ctrl_break, ctrl_close};

    pub const RELOAD_HINT: &str = "restart the gateway to load a changed policy";

    /// No reload signal; Ctrl-C, Ctrl-Break or closing the console stops
    /// (after a close Windows ends the process within about 5 s, drained or not).
    pub struct Signals {
        pub hangup: Never,
        pub stop: Stop,
    }

    pub struct Never;

    impl Never {
        pub async fn recv(&mut self) {
            std::future::pending::<()>().await
        }
    }

    pub struct Stop {
        ctrl_break: CtrlBreak,
        close: CtrlClose,
    }

    impl Signals {
        pub fn new() -> std::io::Result<Signals> {
            Ok(Signals { hangup: Never, stop: Stop { ctrl_break: ctrl_break()?, close: ctrl_close()? } })
        }
    }

    impl Stop {
        pub async fn recv(&mut self) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = self.ctrl_break.recv() => {}
                _ = self.close.recv() => {}
            }
        }
    }
}
