//! The `events` import: a component's reports, counted in
//! `portcullis_component_events_total` under its workload and name. The event
//! is one of a fixed set, so no component can add series.

use super::HostState;
use crate::runtime::bindings::host::portcullis::auth::events::{Event, Host};

impl Host for HostState {
    fn report(&mut self, event: Event) {
        self.caps.events.count(label(event));
    }
}

/// The metric's `event` label.
fn label(event: Event) -> &'static str {
    match event {
        Event::TokenRenewed => "token-renewed",
        Event::TokenRenewalFailed => "token-renewal-failed",
        Event::SessionEnded => "session-ended",
        Event::TokenExchanged => "token-exchanged",
        Event::TokenExchangeFailed => "token-exchange-failed",
    }
}
