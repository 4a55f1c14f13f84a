//! Filtered lists: the result of a `tools/list`, `prompts/list`,
//! `resources/list` or `resources/templates/list` keeps only the items the
//! authorizers allow, each asked about as if that item were called. A client
//! never sees a tool it cannot call.

use crate::runtime::bindings::mcp::McpCall;
pub use portcullis_contract::mcp::ListKind;
use portcullis_contract::mcp::McpMethod;
use serde_json::Value;

/// The list kind of `method`, when it is a list method.
pub fn list_kind(method: &str) -> Option<ListKind> {
    McpMethod::parse(method)?.list()
}

/// The list request whose response is filtered: its kind and JSON-RPC id.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub kind: ListKind,
    /// The request's `id` as JSON text.
    pub id: String,
}

impl ListRequest {
    /// The list request of a message, when it is exactly one list call.
    pub fn of(calls: &[McpCall]) -> Option<ListRequest> {
        match calls {
            [call] => Some(ListRequest { kind: list_kind(&call.method)?, id: call.id.clone()? }),
            _ => None,
        }
    }

    /// Whether `message` is the response to this request: its id, byte for byte.
    pub fn answered_by(&self, message: &Value) -> bool {
        message.get("id").map(Value::to_string).as_deref() == Some(self.id.as_str())
    }

    /// The items of `message` to ask about, when it is the response to this
    /// request: `(index, call)` for each. `None` when it is another message.
    pub fn items(&self, message: &Value) -> Option<Vec<McpCall>> {
        if !self.answered_by(message) {
            return None;
        }
        let items = message.get("result")?.get(self.kind.key)?.as_array()?;
        Some(items.iter().map(|item| self.item_call(item)).collect())
    }

    /// Why an item's name may not be asked about: a resource URI or template
    /// that is not in the one spelling policies match is hidden unasked, as
    /// the same URI in a `resources/read` is refused.
    pub fn name_problem(&self, item: &McpCall) -> Option<&'static str> {
        match self.kind.item_method {
            McpMethod::ResourcesRead => crate::paths::resource_uri_problem(item.name.as_deref().unwrap_or_default()),
            _ => None,
        }
    }

    /// Keeps the items whose entry in `keep` is true.
    pub fn retain(&self, message: &mut Value, keep: &[bool]) {
        if let Some(Value::Array(items)) = message.get_mut("result").and_then(|r| r.get_mut(self.kind.key)) {
            let mut verdicts = keep.iter();
            // An item the authorizers were not asked about (there is none) is dropped.
            items.retain(|_| verdicts.next().copied().unwrap_or(false));
        }
    }

    fn item_call(&self, item: &Value) -> McpCall {
        let annotations = match self.kind.item_method {
            McpMethod::ToolsCall => Some(tool_annotations(item.get("annotations")).to_string()),
            _ => item.get("annotations").filter(|a| a.is_object()).map(Value::to_string),
        };
        McpCall {
            method: self.kind.item_method.as_str().to_owned(),
            // An item without a name is asked about with an empty one: a policy
            // that allows by name never matches it.
            name: Some(item.get(self.kind.item_name).and_then(Value::as_str).unwrap_or_default().to_owned()),
            arguments_json: None,
            annotations_json: annotations,
            id: None,
        }
    }
}

/// A tool's annotations with MCP's defaults for the hints it leaves out (or
/// gives as anything but a boolean): not read-only, destructive unless
/// read-only, not idempotent, open-world. A policy that forbids destructive
/// tools must not let through one whose server said nothing.
fn tool_annotations(annotations: Option<&Value>) -> Value {
    let mut object = annotations.and_then(Value::as_object).cloned().unwrap_or_default();
    let hint = |object: &serde_json::Map<String, Value>, name: &str| object.get(name).and_then(Value::as_bool);
    let read_only = hint(&object, "readOnlyHint").unwrap_or(false);
    let defaults = [("readOnlyHint", read_only), ("destructiveHint", !read_only), ("idempotentHint", false), ("openWorldHint", true)];
    for (name, default) in defaults {
        if hint(&object, name).is_none() {
            object.insert(name.to_owned(), Value::Bool(default));
        }
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(method: &str, id: &str) -> ListRequest {
        let call = McpCall { method: method.into(), name: None, arguments_json: None, annotations_json: None, id: Some(id.into()) };
        ListRequest::of(&[call]).unwrap()
    }

    #[test]
    fn items_are_asked_about_as_calls_and_filtered() {
        let request = list("tools/list", "7");
        let mut response = json!({"jsonrpc":"2.0","id":7,"result":{"tools":[
            {"name":"echo","annotations":{"readOnlyHint":true}},
            {"name":"deploy"}
        ],"nextCursor":"c"}});
        let items = request.items(&response).unwrap();
        assert_eq!(items[0].method, "tools/call");
        assert_eq!(items[0].name.as_deref(), Some("echo"));
        // MCP's defaults fill what the server left out: a tool it said nothing of is destructive.
        assert_eq!(items[0].annotations_json.as_deref(), Some(r#"{"destructiveHint":false,"idempotentHint":false,"openWorldHint":true,"readOnlyHint":true}"#));
        assert_eq!(items[1].annotations_json.as_deref(), Some(r#"{"destructiveHint":true,"idempotentHint":false,"openWorldHint":true,"readOnlyHint":false}"#));
        request.retain(&mut response, &[false, true]);
        assert_eq!(response["result"]["tools"], json!([{"name":"deploy"}]));
        assert_eq!(response["result"]["nextCursor"], "c");
    }

    #[test]
    fn other_messages_and_other_ids_are_left_alone() {
        let request = list("resources/templates/list", "\"x\"");
        assert!(request.items(&json!({"jsonrpc":"2.0","id":"y","result":{"resourceTemplates":[]}})).is_none());
        assert!(request.items(&json!({"jsonrpc":"2.0","method":"notifications/message"})).is_none());
        let items = request.items(&json!({"jsonrpc":"2.0","id":"x","result":{"resourceTemplates":[{"uriTemplate":"file:///{n}"}]}})).unwrap();
        assert_eq!((items[0].method.as_str(), items[0].name.as_deref()), ("resources/read", Some("file:///{n}")));
        assert!(ListRequest::of(&[]).is_none());
    }

    #[test]
    fn resource_names_out_of_the_one_spelling_are_flagged() {
        let request = list("resources/list", "1");
        let items = request
            .items(&json!({"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"file:///public/a"},{"uri":"file:///public/../secret"},{"uri":"FILE:///x"}]}}))
            .unwrap();
        let problems: Vec<bool> = items.iter().map(|item| request.name_problem(item).is_some()).collect();
        assert_eq!(problems, [false, true, true]);
        let tools = list("tools/list", "1");
        let items = tools.items(&json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"../x"}]}})).unwrap();
        assert_eq!(tools.name_problem(&items[0]), None, "tool names are names, not paths");
    }
}
