//! The `log` import: a component's log lines, attributed to it.

use super::HostState;
use crate::runtime::bindings::host::portcullis::auth::log::{Host, Level};
use std::sync::Mutex;
use std::time::Instant;

/// Longest message kept; the rest is cut so a component cannot flood the log.
const MAX_MESSAGE: usize = 4096;

/// Lines a chain entry may write per second, on average, and in a burst.
const LINES_PER_SECOND: f64 = 100.0;
const BURST: f64 = 200.0;

/// How many lines one chain entry (all its instances) may still write: a
/// token bucket, so a component in a loop cannot fill the disk or drown the
/// gateway's own lines. Dropped lines are counted and reported once the
/// component writes again within its budget.
pub struct Budget {
    state: Mutex<BudgetState>,
}

struct BudgetState {
    tokens: f64,
    refilled: Instant,
    dropped: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { state: Mutex::new(BudgetState { tokens: BURST, refilled: Instant::now(), dropped: 0 }) }
    }
}

impl Budget {
    /// `Some(lines dropped since the last line kept)` when this line may be written.
    fn take(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        state.tokens = (state.tokens + now.duration_since(state.refilled).as_secs_f64() * LINES_PER_SECOND).min(BURST);
        state.refilled = now;
        if state.tokens < 1.0 {
            state.dropped += 1;
            return None;
        }
        state.tokens -= 1.0;
        Some(std::mem::take(&mut state.dropped))
    }
}

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        if let Some(trial) = &self.caps.trial {
            trial.record(super::trial::HostCall::Log { level: format!("{level:?}").to_lowercase(), message: message.clone() });
        }
        let workload = &*self.caps.label.workload;
        let component = &*self.caps.label.component;
        let enabled = match level {
            Level::Trace => tracing::enabled!(target: "portcullis::component", tracing::Level::TRACE),
            Level::Debug => tracing::enabled!(target: "portcullis::component", tracing::Level::DEBUG),
            Level::Info => tracing::enabled!(target: "portcullis::component", tracing::Level::INFO),
            Level::Warn => tracing::enabled!(target: "portcullis::component", tracing::Level::WARN),
            Level::Error => tracing::enabled!(target: "portcullis::component", tracing::Level::ERROR),
        };
        // Lines nobody reads cost no budget.
        if !enabled {
            return;
        }
        match self.caps.log_budget.take() {
            None => return,
            Some(0) => {}
            Some(dropped) => tracing::warn!(target: "portcullis::component", workload, component, dropped,
                "log lines from this component were dropped (over {LINES_PER_SECOND} per second)"),
        }
        // `?message` escapes control characters, so a component cannot forge log lines.
        match level {
            Level::Trace => tracing::trace!(target: "portcullis::component", workload, component, message = ?message),
            Level::Debug => tracing::debug!(target: "portcullis::component", workload, component, message = ?message),
            Level::Info => tracing::info!(target: "portcullis::component", workload, component, message = ?message),
            Level::Warn => tracing::warn!(target: "portcullis::component", workload, component, message = ?message),
            Level::Error => tracing::error!(target: "portcullis::component", workload, component, message = ?message),
        }
    }
}
