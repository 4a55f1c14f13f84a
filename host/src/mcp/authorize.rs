//! The authorize stage: after the inbound chain has said who is calling, the
//! workload's authorizers decide each MCP call, and each item of a list the
//! client asked for. Every authorizer must allow; the first refusal decides.
//! Every decision is one audit line (`target: "audit"`).

use super::annotations::ToolAnnotations;
use super::audit::AuditFile;
use super::message;
use crate::runtime::bindings::mcp::McpCall;
use crate::runtime::bindings::types::Identity;
use crate::runtime::plugin::{FaultKind, Plugin};
use crate::runtime::request::RequestData;
use crate::runtime::verdict::Decision;
use std::sync::Arc;

/// The methods an authorizer is asked about. A `completion/complete` is asked
/// about as the `prompts/get` or `resources/read` of its `ref`
/// ([`message::completion_subject`]); every other method (initialize, ping,
/// notifications, logging) passes without asking.
pub const AUTHORIZED_METHODS: [&str; 9] = [
    "tools/call",
    "prompts/get",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
];

/// A workload's authorizers, in policy order.
#[derive(Clone, Default)]
pub struct Authorizers {
    pub plugins: Arc<[Arc<Plugin>]>,
    /// `[audit] file`, shared by the policy's workloads.
    pub audit: Option<Arc<AuditFile>>,
    /// The workload's tools, when an authorizer may read their annotations
    /// ([`super::annotations::read_by`]): a `tools/call` of a tool not listed
    /// since the last load is then refused, since it would be decided as if
    /// the tool had none (a forbid on `destructiveHint` would not match).
    pub annotations: Option<Arc<ToolAnnotations>>,
}

/// Why a call may not proceed.
#[derive(Debug)]
pub enum Refusal {
    /// `reason` for the client; `id` is the call's JSON-RPC id (JSON text).
    Denied { id: Option<String>, reason: String },
    /// The caller needs these scopes.
    StepUp { scopes: Vec<String> },
    /// An authorizer failed: the call is refused, never allowed.
    Failed { component: Arc<str>, kind: FaultKind },
}

impl Authorizers {
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Decides every call of the request that needs a decision.
    pub async fn decide(&self, request: &Arc<RequestData>, identity: Option<&Identity>, workload: &str) -> Result<(), Refusal> {
        for call in &request.mcp_calls {
            let completion;
            let call = match call.method.as_str() {
                "completion/complete" => {
                    // `parse` made the call, so its `ref` reads; should it not, refuse.
                    completion = message::completion_subject(call)
                        .ok_or_else(|| Refusal::Denied { id: call.id.clone(), reason: "completion/complete: the reference cannot be read".into() })?;
                    &completion
                }
                method if AUTHORIZED_METHODS.contains(&method) => call,
                _ => continue,
            };
            if let (Some(tools), "tools/call", Some(name)) = (&self.annotations, call.method.as_str(), &call.name)
                && !tools.listed(name)
            {
                // Decided by the gateway, before any authorizer, and audited as such.
                let reason = format!(
                    "tools/call of `{name}` waits for the tool's annotations, which this workload's policy reads: list the tools (tools/list), then call again"
                );
                let decision = Decision::Deny { reason: reason.clone(), rule: Some("annotations-not-listed".into()) };
                audit(workload, identity, call, &decision, "gateway", true);
                if let Some(file) = &self.audit {
                    file.write(&record(request, workload, identity, call, &decision, "gateway", file));
                }
                return Err(Refusal::Denied { id: call.id.clone(), reason });
            }
            match self.decide_one(request, identity, call, workload, true).await? {
                Decision::Allow { .. } => {}
                Decision::Deny { reason, .. } => return Err(Refusal::Denied { id: call.id.clone(), reason }),
                Decision::StepUp(scopes) => return Err(Refusal::StepUp { scopes }),
            }
        }
        Ok(())
    }

    /// Whether a list item may be shown: every authorizer allows it as if it
    /// were called. A fault hides the item (fail closed) and is logged.
    pub async fn lists(&self, request: &Arc<RequestData>, identity: Option<&Identity>, item: &McpCall, workload: &str) -> bool {
        matches!(self.decide_one(request, identity, item, workload, false).await, Ok(Decision::Allow { .. }))
    }

    /// Asks each authorizer in turn until one does not allow.
    async fn decide_one(
        &self,
        request: &Arc<RequestData>,
        identity: Option<&Identity>,
        call: &McpCall,
        workload: &str,
        asked: bool,
    ) -> Result<Decision, Refusal> {
        let mut decision = Decision::Allow { rule: None };
        for plugin in self.plugins.iter() {
            decision = plugin
                .authorize(request, identity, call)
                .await
                .map_err(|fault| Refusal::Failed { component: plugin.label.component.clone(), kind: fault.kind })?;
            audit(workload, identity, call, &decision, &plugin.label.component, asked);
            if let (Some(file), true) = (&self.audit, asked) {
                file.write(&record(request, workload, identity, call, &decision, &plugin.label.component, file));
            }
            if !matches!(decision, Decision::Allow { .. }) {
                break;
            }
        }
        Ok(decision)
    }
}

/// One structured line per decision (JSON with `--log-format json`). Values
/// of arguments are never logged; a call the client made is logged at info,
/// an item of a list being filtered at debug.
fn audit(workload: &str, identity: Option<&Identity>, call: &McpCall, decision: &Decision, component: &str, asked: bool) {
    let subject = identity.map_or("anonymous", |i| i.subject.as_str());
    let (rule, reason) = match decision {
        Decision::Allow { rule } => (rule.as_deref(), None),
        Decision::Deny { reason, rule } => (rule.as_deref(), Some(reason.as_str())),
        Decision::StepUp(_) => (None, None),
    };
    let scopes = match decision {
        Decision::StepUp(scopes) => Some(scopes.join(" ")),
        _ => None,
    };
    macro_rules! line {
        ($level:ident, $message:literal) => {
            tracing::$level!(target: "audit", workload, subject = ?subject, method = %call.method, name = ?call.name,
                decision = decision.label(), rule = ?rule, reason = ?reason, scopes = ?scopes, component, $message)
        };
    }
    if asked {
        line!(info, "authorization decision");
    } else {
        line!(debug, "authorization decision on a list item");
    }
}

/// The audit file's record of a decision on a call the client made.
fn record(
    request: &RequestData,
    workload: &str,
    identity: Option<&Identity>,
    call: &McpCall,
    decision: &Decision,
    component: &str,
    file: &AuditFile,
) -> serde_json::Value {
    let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let mut record = serde_json::json!({
        "time_ms": time,
        "request_id": request.headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        "workload": workload,
        "subject": identity.map(|i| i.subject.as_str()),
        "issuer": identity.and_then(|i| i.issuer.as_deref()),
        "method": call.method,
        "name": call.name,
        "decision": decision.label(),
        "component": component,
    });
    match decision {
        Decision::Allow { rule } => record["rule"] = serde_json::json!(rule),
        Decision::Deny { reason, rule } => {
            record["rule"] = serde_json::json!(rule);
            record["reason"] = serde_json::json!(reason);
        }
        Decision::StepUp(scopes) => record["scopes"] = serde_json::json!(scopes),
    }
    if let Some(arguments) = file.arguments(call.arguments_json.as_deref()) {
        record["arguments"] = arguments;
    }
    record
}
