//! The `log` import: a component's log lines, attributed to it.

use super::HostState;
use crate::runtime::bindings::host::portcullis::auth::log::{Host, Level};

/// Longest message kept; the rest is cut so a component cannot flood the log.
const MAX_MESSAGE: usize = 4096;

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
