//! The authorize stage: after the inbound chain has said who is calling, the
//! workload's authorizers decide each MCP call, and each item of a list the
//! client asked for. Every authorizer must allow; the first refusal decides.
//! Every decision is one audit line (`target: "audit"`).

use super::annotations::ToolAnnotations;
use super::audit::AuditFile;
use super::message;
use crate::runtime::bindings::mcp::McpCall;
use crate::runtime::bindings::types::Identity;
use crate::runtime::plugin::{Plugin, PluginFault};
use crate::runtime::request::RequestData;
use crate::runtime::verdict::Decision;
use portcullis_contract::mcp::McpMethod;
use std::sync::Arc;

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
    /// How much of a call's `arguments` an authorizer may be asked about.
    pub arguments: ArgumentLimits,
}

/// The bound on what a client can make an authorizer read: the size of one
/// call's `arguments`, and how many JSON values they hold. An authorizer
/// turns every value into its own (Cedar builds a record of records), so
/// its cost grows with both; unbounded, one caller's large `arguments` sent
/// the workload's authorizer to the slow lane for every caller (issue 22).
/// Checked before any authorizer is asked, so an over-limit call costs a
/// scan of its text and nothing more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgumentLimits {
    pub max_bytes: usize,
    pub max_elements: usize,
}

impl ArgumentLimits {
    /// 64 KiB: through the built-in Cedar authorizer, a call with 61 KiB of
    /// arguments took about 4 ms more than a small one, one with 586 KiB 42 ms
    /// (docs/reliability.md). A policy that must see larger arguments raises it.
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;
    /// 4096 values: a list of a few thousand items, or a deep record.
    pub const DEFAULT_MAX_ELEMENTS: usize = 4096;

    /// From `limits.max_mcp_arguments_bytes` and `max_mcp_arguments_elements` (checked at load), or the defaults.
    pub fn new(max_bytes: Option<u64>, max_elements: Option<u64>) -> ArgumentLimits {
        let size = |n: Option<u64>, default| n.map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX));
        ArgumentLimits { max_bytes: size(max_bytes, Self::DEFAULT_MAX_BYTES), max_elements: size(max_elements, Self::DEFAULT_MAX_ELEMENTS) }
    }

    /// Why `arguments_json` (one call's, as the gateway wrote it) may not be
    /// shown to an authorizer, if it may not: its policy key, in the words
    /// the client gets.
    pub fn exceeded_by(&self, arguments_json: Option<&str>) -> Option<String> {
        let json = arguments_json?;
        if json.len() > self.max_bytes {
            return Some(format!(
                "its arguments have {} bytes, more than this workload decides on (limits.max_mcp_arguments_bytes = {})",
                json.len(),
                self.max_bytes
            ));
        }
        match count_values(json, self.max_elements) {
            Ok(_) => None,
            Err(()) => Some(format!(
                "its arguments hold more than {} JSON values, more than this workload decides on (limits.max_mcp_arguments_elements)",
                self.max_elements
            )),
        }
    }
}

impl Default for ArgumentLimits {
    fn default() -> Self {
        ArgumentLimits::new(None, None)
    }
}

/// The JSON values in `json`, at any depth; `Err` once there are more than
/// `max` (the scan stops there). Text the gateway wrote from a parsed value,
/// so it parses; should it not, it is refused too.
fn count_values(json: &str, max: usize) -> Result<usize, ()> {
    use serde::de::{DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};

    /// Counts one value and those inside it against `left`.
    struct Count<'a> {
        left: &'a mut usize,
    }
    impl Count<'_> {
        fn one<E: Error>(&mut self) -> Result<(), E> {
            *self.left = self.left.checked_sub(1).ok_or_else(|| E::custom("too many values"))?;
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Count<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Count<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E: Error>(mut self, _: bool) -> Result<(), E> {
            self.one()
        }
        fn visit_i64<E: Error>(mut self, _: i64) -> Result<(), E> {
            self.one()
        }
        fn visit_u64<E: Error>(mut self, _: u64) -> Result<(), E> {
            self.one()
        }
        fn visit_f64<E: Error>(mut self, _: f64) -> Result<(), E> {
            self.one()
        }
        fn visit_str<E: Error>(mut self, _: &str) -> Result<(), E> {
            self.one()
        }
        fn visit_unit<E: Error>(mut self) -> Result<(), E> {
            self.one()
        }
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut items: A) -> Result<(), A::Error> {
            self.one()?;
            while items.next_element_seed(Count { left: &mut *self.left })?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut members: A) -> Result<(), A::Error> {
            self.one()?;
            while members.next_key::<IgnoredAny>()?.is_some() {
                members.next_value_seed(Count { left: &mut *self.left })?;
            }
            Ok(())
        }
    }

    let mut left = max;
    let mut deserializer = serde_json::Deserializer::from_str(json);
    Count { left: &mut left }.deserialize(&mut deserializer).map_err(|_| ())?;
    deserializer.end().map_err(|_| ())?;
    Ok(max - left)
}

/// Why a call may not proceed.
#[derive(Debug)]
pub enum Refusal {
    /// `reason` for the client; `id` is the call's JSON-RPC id (JSON text).
    Denied { id: Option<String>, reason: String },
    /// The caller needs these scopes.
    StepUp { scopes: Vec<String> },
    /// An authorizer failed: the call is refused, never allowed (the
    /// response is the proxy's, `GatewayError::component_failed`).
    Failed { component: Arc<str>, fault: PluginFault },
}

impl Authorizers {
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Decides every call of the request that needs a decision: those with a
    /// [kind](McpMethod::kind). A `completion/complete` is asked about as the
    /// `prompts/get` or `resources/read` of its `ref`
    /// ([`message::completion_subject`]); every other method (initialize,
    /// ping, notifications, logging) passes without asking.
    pub async fn decide(&self, request: &Arc<RequestData>, identity: Option<&Identity>, workload: &str) -> Result<(), Refusal> {
        for call in &request.mcp_calls {
            let completion;
            let call = match McpMethod::parse(&call.method) {
                Some(McpMethod::CompletionComplete) => {
                    // `parse` made the call, so its `ref` reads; should it not, refuse.
                    completion = message::completion_subject(call)
                        .ok_or_else(|| Refusal::Denied { id: call.id.clone(), reason: "completion/complete: the reference cannot be read".into() })?;
                    &completion
                }
                Some(method) if method.kind().is_some() => call,
                _ => continue,
            };
            // Decided by the gateway, before any authorizer: an authorizer
            // reads no more than the policy bounds (see [`ArgumentLimits`]).
            if let Some(why) = self.arguments.exceeded_by(call.arguments_json.as_deref()) {
                let reason = format!("{}: refused before any authorizer was asked: {why}", call.method);
                let decision = Decision::Deny { reason: reason.clone(), rule: Some("arguments-too-large".into()) };
                audit(workload, identity, call, &decision, "gateway", true);
                if let Some(file) = &self.audit {
                    file.write(&record(request, workload, identity, call, &decision, "gateway", file));
                }
                return Err(Refusal::Denied { id: call.id.clone(), reason });
            }
            if let (Some(tools), Some(McpMethod::ToolsCall), Some(name)) = (&self.annotations, McpMethod::parse(&call.method), &call.name)
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
            decision = plugin.authorize(request, identity, call).await.map_err(|fault| Refusal::Failed { component: plugin.label.component.clone(), fault })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_at_every_depth_and_the_count_stops_at_the_bound() {
        assert_eq!(count_values(r#"{}"#, 10), Ok(1));
        assert_eq!(count_values(r#"{"a":1,"b":[true,null,"x",{"c":1.5}]}"#, 100), Ok(8));
        assert_eq!(count_values(r#"{"a":[1,2,3]}"#, 5), Ok(5));
        assert_eq!(count_values(r#"{"a":[1,2,3,4]}"#, 5), Err(()));
        assert_eq!(count_values(r#"{"a":1} x"#, 5), Err(()), "not one value");
    }

    #[test]
    fn arguments_over_either_bound_are_refused_with_the_key_to_raise() {
        let limits = ArgumentLimits { max_bytes: 64, max_elements: 4 };
        assert_eq!(limits.exceeded_by(None), None);
        assert_eq!(limits.exceeded_by(Some(r#"{"a":[1,2]}"#)), None);
        assert!(limits.exceeded_by(Some(&format!(r#"{{"a":"{}"}}"#, "x".repeat(64)))).unwrap().contains("limits.max_mcp_arguments_bytes = 64"));
        assert!(limits.exceeded_by(Some(r#"{"a":[1,2,3,4]}"#)).unwrap().contains("limits.max_mcp_arguments_elements"));
        assert_eq!(ArgumentLimits::default(), ArgumentLimits { max_bytes: 65536, max_elements: 4096 });
    }
}
