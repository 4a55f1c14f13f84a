//! How long a host import that waits may take inside a component call: the
//! HTTP and store imports share one rule.

use std::time::{Duration, Instant};

/// The time a host import that waits (an outbound request, a store
/// operation) may take inside a call that must end by `deadline`: what
/// remains, less a margin (a tenth, at least 5 ms), so the component gets its
/// `timeout`/`unavailable` back with time to answer or fall back (e.g. to
/// cached keys) instead of being cut off by the call's deadline.
pub(crate) fn within(deadline: Option<Instant>) -> Option<Duration> {
    Some(less_margin(deadline?.saturating_duration_since(Instant::now())))
}

/// `remaining` less the margin [`within`] keeps.
pub(crate) fn less_margin(remaining: Duration) -> Duration {
    remaining.saturating_sub((remaining / 10).max(Duration::from_millis(5)))
}
