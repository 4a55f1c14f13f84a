//! The inbound chain and its rule. [`Allowed`] — the proof the forwarder
//! requires — can only be made here, so a code path that skips authentication
//! does not compile.

use super::error::GatewayError;
use crate::policy::file::ChainRule;
use crate::runtime::bindings::types::{HeaderEdit, Identity, RequestView, Verdict};
use crate::runtime::plugin::Plugin;
use std::sync::Arc;

/// A request the inbound chain admitted, with the header edits to apply.
#[derive(Debug)]
// Not `#[non_exhaustive]`: that would still let the rest of this crate build one.
#[allow(clippy::manual_non_exhaustive)]
pub struct Allowed {
    /// `None` for an anonymous workload.
    pub identity: Option<Identity>,
    pub edits: Vec<HeaderEdit>,
    _proof: (),
}

pub struct InboundChain {
    pub rule: ChainRule,
    pub plugins: Vec<Arc<Plugin>>,
    /// The workload said `anonymous = true` and has no authenticators.
    pub anonymous: bool,
}

impl InboundChain {
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Runs the chain. `view` is built lazily: an anonymous workload never needs it.
    pub async fn decide(&self, view: impl FnOnce() -> RequestView) -> Result<Allowed, GatewayError> {
        if self.plugins.is_empty() {
            // The policy loader refuses an empty chain unless `anonymous = true`;
            // check again so a future refactor cannot turn "empty" into "open".
            return match self.anonymous {
                true => Ok(Allowed { identity: None, edits: Vec::new(), _proof: () }),
                false => Err(GatewayError::Unauthenticated),
            };
        }
        let view = view();
        let mut admitted: Option<Allowed> = None;
        for plugin in &self.plugins {
            let verdict = plugin
                .authenticate(&view)
                .await
                .map_err(|fault| GatewayError::ComponentFailed { component: plugin.label.component.clone(), kind: fault.kind })?;
            match (verdict, self.rule) {
                (Verdict::Deny(deny), _) => return Err(GatewayError::Denied(deny)),
                (Verdict::Allow(allow), ChainRule::FirstAllow) => {
                    return Ok(Allowed { identity: Some(allow.identity), edits: allow.edits, _proof: () });
                }
                (Verdict::Allow(allow), ChainRule::AllAllow) => {
                    // Every component must allow: keep the first identity, gather all edits.
                    let entry = admitted.get_or_insert(Allowed { identity: Some(allow.identity), edits: Vec::new(), _proof: () });
                    entry.edits.extend(allow.edits);
                }
                (Verdict::Abstain, ChainRule::FirstAllow) => continue,
                (Verdict::Abstain, ChainRule::AllAllow) => return Err(GatewayError::Unauthenticated),
            }
        }
        admitted.ok_or(GatewayError::Unauthenticated)
    }
}
