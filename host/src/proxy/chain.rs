//! The inbound chain and its rule. [`Allowed`] — the proof the forwarder
//! requires — can only be made here, so a code path that skips authentication
//! does not compile.

use super::error::GatewayError;
use crate::runtime::bindings::types::Identity;
use crate::runtime::plugin::Plugin;
use crate::runtime::request::RequestData;
use crate::runtime::verdict::{HeaderEdits, Verdict};
use std::sync::Arc;

/// How an inbound chain combines verdicts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChainRule {
    /// The first `allow` wins; a `deny` stops the chain; if every component abstains, 401.
    #[default]
    FirstAllow,
    /// Every component must allow; a `deny` or an `abstain` refuses the request.
    AllAllow,
}

/// A request the inbound chain admitted, with the (checked) header edits to apply.
#[derive(Debug)]
// Not `#[non_exhaustive]`: that would still let the rest of this crate build one.
#[allow(clippy::manual_non_exhaustive)]
pub struct Allowed {
    /// `None` for an anonymous workload.
    pub identity: Option<Identity>,
    pub edits: HeaderEdits,
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

    /// Some authenticator can read the MCP calls: the message must be read
    /// before the chain decides, not only for callers it admitted.
    pub fn reads_mcp_calls(&self) -> bool {
        self.plugins.iter().any(|p| p.reads_mcp_calls())
    }

    /// Runs the chain on `request`.
    pub async fn decide(&self, request: &Arc<RequestData>) -> Result<Allowed, GatewayError> {
        if self.plugins.is_empty() {
            // The policy loader refuses an empty chain unless `anonymous = true`;
            // check again so a future refactor cannot turn "empty" into "open".
            return match self.anonymous {
                true => Ok(Allowed { identity: None, edits: HeaderEdits::default(), _proof: () }),
                false => Err(GatewayError::Unauthenticated),
            };
        }
        let mut admitted: Option<Allowed> = None;
        for plugin in &self.plugins {
            let verdict = plugin.authenticate(request).await.map_err(|fault| GatewayError::component_failed(&plugin.label.component, fault))?;
            match (verdict, self.rule) {
                (Verdict::Deny(deny), _) => return Err(GatewayError::Denied(Box::new(deny))),
                (Verdict::Allow { identity, edits }, ChainRule::FirstAllow) => {
                    return Ok(Allowed { identity: Some(identity), edits, _proof: () });
                }
                (Verdict::Allow { identity, edits }, ChainRule::AllAllow) => {
                    // Every component must allow: keep the first identity, gather all edits.
                    let entry = admitted.get_or_insert(Allowed { identity: Some(identity), edits: HeaderEdits::default(), _proof: () });
                    entry.edits.extend(edits);
                }
                (Verdict::Abstain, ChainRule::FirstAllow) => continue,
                (Verdict::Abstain, ChainRule::AllAllow) => return Err(GatewayError::Unauthenticated),
            }
        }
        admitted.ok_or(GatewayError::Unauthenticated)
    }
}
