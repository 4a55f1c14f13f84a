//! The audit file (`[audit] file`): one JSON line per authorization decision,
//! appended by a writer task that syncs to disk in batches (at most 100 lines
//! or 200 ms apart), so a decision never waits for the disk. Argument values
//! are written only for the argument names `[audit] arguments` lists.

use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Lines waiting for the writer; past this, lines are dropped and counted.
const QUEUE: usize = 10_000;
const BATCH_LINES: usize = 100;
const BATCH_TIME: Duration = Duration::from_millis(200);

pub struct AuditFile {
    lines: mpsc::Sender<Vec<u8>>,
    /// Argument names whose values may be written.
    pub arguments: Vec<String>,
}

impl AuditFile {
    /// Opens `path` for appending (created private: 0600, or the user's alone
    /// on Windows) and starts its writer.
    pub fn open(path: &Path, arguments: Vec<String>) -> std::io::Result<AuditFile> {
        let file = crate::home::open_private_append(path)?;
        let (lines, mut queue) = mpsc::channel::<Vec<u8>>(QUEUE);
        let shown = path.display().to_string();
        tokio::spawn(async move {
            let mut file = tokio::fs::File::from_std(file);
            while let Some(first) = queue.recv().await {
                let started = Instant::now();
                let mut batch = first;
                let mut count = 1;
                // Gather what else arrives within the batch window.
                while count < BATCH_LINES {
                    match tokio::time::timeout(BATCH_TIME.saturating_sub(started.elapsed()), queue.recv()).await {
                        Ok(Some(line)) => {
                            batch.extend_from_slice(&line);
                            count += 1;
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                if let Err(error) = async {
                    file.write_all(&batch).await?;
                    file.sync_data().await
                }
                .await
                {
                    tracing::error!(file = %shown, %error, lines = count, "could not write the audit file");
                }
            }
        });
        Ok(AuditFile { lines, arguments })
    }

    /// Queues one record; never waits.
    pub fn write(&self, record: &serde_json::Value) {
        let mut line = serde_json::to_vec(record).expect("JSON values serialise");
        line.push(b'\n');
        if self.lines.try_send(line).is_err() {
            tracing::warn!("the audit file's writer is behind; a decision was left out of the file (it is in the log)");
        }
    }

    /// The arguments of a call that the policy lets the file hold.
    pub fn arguments(&self, arguments_json: Option<&str>) -> Option<serde_json::Value> {
        if self.arguments.is_empty() {
            return None;
        }
        let Ok(serde_json::Value::Object(all)) = serde_json::from_str(arguments_json?) else {
            return None;
        };
        let kept: serde_json::Map<_, _> = all.into_iter().filter(|(name, _)| self.arguments.contains(name)).collect();
        Some(serde_json::Value::Object(kept))
    }
}
