//! Whether telemetry exports fail, said once per outage.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the last export failed: the first failure is logged, and the
/// recovery, nothing in between (a collector down for an hour would
/// otherwise write a line every few seconds).
#[derive(Debug, Default)]
pub struct Health {
    failing: AtomicBool,
}

impl Health {
    pub fn failed(&self, what: &str) {
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = what, "telemetry export failed; spans and metrics are dropped until the collector answers (logged once, not per request)");
        }
    }

    pub fn succeeded(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("telemetry export works again");
        }
    }
}
