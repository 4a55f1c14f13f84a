//! What an MCP server says of its tools (`annotations` in `tools/list`:
//! `readOnlyHint`, `destructiveHint`, ...), remembered per workload so that
//! a `tools/call`, which does not carry them, is decided with them too.
//!
//! They come from the lists the gateway filters, so a tool is known once some
//! client has listed it since the last load. Before that, a call would be
//! decided without annotations, and a policy that forbids `destructiveHint`
//! tools would not match: so where an authorizer's config names an annotation
//! ([`read_by`]), such a call is refused until the tools are listed
//! (`mcp/authorize.rs`). They are the server's word, trusted as much as the
//! server.

use crate::runtime::bindings::mcp::McpCall;
use portcullis_contract::mcp::McpMethod;
use std::collections::HashMap;
use std::sync::Mutex;

/// Tools remembered per workload; a server that lists more is not remembered past this.
const MAX_TOOLS: usize = 10_000;

/// The names an authorizer's config uses when it reads annotations: the
/// annotations MCP defines, and the word itself.
const ANNOTATION_NAMES: [&str; 6] = ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint", "title", "annotations"];

/// Whether an authorizer with this config (as the component gets it, Cedar's
/// `policies_file` read in) may read annotations. A guess by name, made so
/// that it errs on the side of "yes": a config that mentions one is assumed
/// to read them.
pub fn read_by(config_json: &str) -> bool {
    ANNOTATION_NAMES.iter().any(|name| config_json.contains(name))
}

#[derive(Default)]
pub struct ToolAnnotations {
    /// Each listed tool's annotations; `None`: listed without any.
    tools: Mutex<HashMap<String, Option<String>>>,
}

impl ToolAnnotations {
    /// Remembers the annotations of the tools of a `tools/list` answer (as
    /// the calls its items are asked about as).
    pub fn learn(&self, items: &[McpCall]) {
        let mut tools = self.tools.lock().unwrap_or_else(|p| p.into_inner());
        for item in items {
            let Some(name) = &item.name else { continue };
            if tools.len() < MAX_TOOLS || tools.contains_key(name) {
                tools.insert(name.clone(), item.annotations_json.clone());
            }
        }
    }

    /// Whether the tool has been listed since the last load (with or without annotations).
    pub fn listed(&self, name: &str) -> bool {
        self.tools.lock().unwrap_or_else(|p| p.into_inner()).contains_key(name)
    }

    /// Gives each `tools/call` the annotations its tool was last listed with.
    pub fn fill(&self, calls: &mut [McpCall]) {
        let tools = self.tools.lock().unwrap_or_else(|p| p.into_inner());
        if tools.is_empty() {
            return;
        }
        for call in calls.iter_mut().filter(|c| McpMethod::parse(&c.method) == Some(McpMethod::ToolsCall)) {
            call.annotations_json = call.name.as_ref().and_then(|name| tools.get(name)).cloned().flatten();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, name: &str, annotations: Option<&str>) -> McpCall {
        McpCall { method: method.into(), name: Some(name.into()), arguments_json: None, annotations_json: annotations.map(Into::into), id: None }
    }

    #[test]
    fn listed_annotations_reach_later_calls() {
        let known = ToolAnnotations::default();
        let mut calls = [call("tools/call", "echo", None), call("prompts/get", "echo", None)];
        known.fill(&mut calls);
        assert_eq!(calls[0].annotations_json, None, "nothing listed yet");
        known.learn(&[call("tools/call", "echo", Some(r#"{"readOnlyHint":true}"#)), call("tools/call", "deploy", None)]);
        known.fill(&mut calls);
        assert_eq!(calls[0].annotations_json.as_deref(), Some(r#"{"readOnlyHint":true}"#));
        assert_eq!(calls[1].annotations_json, None, "only tool calls");
        // A client cannot bring its own: a call's annotations are always the server's.
        let mut forged = [call("tools/call", "deploy", Some(r#"{"readOnlyHint":true}"#))];
        known.fill(&mut forged);
        assert_eq!(forged[0].annotations_json, None);
        // A tool listed again without annotations loses them.
        known.learn(&[call("tools/call", "echo", None)]);
        let mut again = [call("tools/call", "echo", None)];
        known.fill(&mut again);
        assert_eq!(again[0].annotations_json, None);
    }

    #[test]
    fn listed_tools_are_known_with_or_without_annotations() {
        let known = ToolAnnotations::default();
        assert!(!known.listed("echo"));
        known.learn(&[call("tools/call", "echo", Some(r#"{"readOnlyHint":true}"#)), call("tools/call", "deploy", None)]);
        assert!(known.listed("echo") && known.listed("deploy") && !known.listed("other"));
        assert!(read_by(r#"{"policies":"forbid(principal, action, resource) when { resource.destructiveHint };"}"#));
        assert!(!read_by(r#"{"rules":[{"tool":"deploy","scopes":["tools:deploy"]}]}"#));
    }
}
