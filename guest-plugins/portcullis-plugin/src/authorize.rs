//! What an authorizer works with: the MCP call, the caller's identity, and
//! the decision builders `permit()`, `forbid(reason)` and `step_up(scopes)`.

use crate::__private::capabilities::portcullis::auth::mcp as wit_mcp;
use crate::__private::wit;
use portcullis_contract::mcp::{CallKind, McpMethod};

/// One MCP call (WIT `mcp.mcp-call`): what the gateway read from the
/// request's JSON-RPC message, or one item of a list it is filtering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCall {
    /// `tools/call`, `tools/list`, `prompts/get`, `resources/read`, ...
    pub method: String,
    /// The tool's or prompt's name, or the resource's URI.
    pub name: Option<String>,
    /// `params.arguments` as JSON text.
    pub arguments_json: Option<String>,
    /// The tool's annotations (from `tools/list`) as JSON text, when known.
    pub annotations_json: Option<String>,
    /// The JSON-RPC id as JSON text; none for a notification.
    pub id: Option<String>,
}

impl McpCall {
    #[doc(hidden)]
    pub fn from_wit(call: wit_mcp::McpCall) -> Self {
        McpCall { method: call.method, name: call.name, arguments_json: call.arguments_json, annotations_json: call.annotations_json, id: call.id }
    }

    /// The method, when it is one the gateway reads (`None` for any other).
    pub fn mcp_method(&self) -> Option<McpMethod> {
        McpMethod::parse(&self.method)
    }

    /// What the gateway asks about: one named tool, prompt or resource
    /// (`CallKind::Item`, its `name` says which), or a list
    /// (`CallKind::List`; the gateway then asks about each item it returns as
    /// if it were called, and removes those refused). `None` for a method the
    /// gateway never asks about: an authorizer refuses it rather than guess.
    /// This is the gateway's own table ([`crate::contract::mcp`]), so a
    /// component need not keep a copy.
    pub fn kind(&self) -> Option<CallKind> {
        self.mcp_method()?.kind()
    }

    /// The arguments as a JSON object (empty when there are none or they are not an object).
    pub fn arguments(&self) -> serde_json::Map<String, serde_json::Value> {
        object(self.arguments_json.as_deref())
    }

    /// The annotations as a JSON object (empty when unknown).
    pub fn annotations(&self) -> serde_json::Map<String, serde_json::Value> {
        object(self.annotations_json.as_deref())
    }
}

/// Who the inbound chain says is calling (WIT `types.identity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// A stable identifier of the caller, e.g. a JWT `sub`.
    pub subject: String,
    /// Who vouches for it, e.g. a JWT `iss`.
    pub issuer: Option<String>,
    /// Further facts (e.g. verified claims) as JSON text.
    pub claims_json: Option<String>,
}

impl Identity {
    #[doc(hidden)]
    pub fn from_wit(identity: wit::Identity) -> Self {
        Identity { subject: identity.subject, issuer: identity.issuer, claims_json: identity.claims_json }
    }

    /// The claims as a JSON object (empty when there are none).
    pub fn claims(&self) -> serde_json::Map<String, serde_json::Value> {
        object(self.claims_json.as_deref())
    }

    /// The OAuth scopes the caller holds: the `scope` claim (space-separated)
    /// or the `scp` claim (a list or a string), as providers differ.
    pub fn scopes(&self) -> Vec<String> {
        let claims = self.claims();
        let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        match (claims.get("scope"), claims.get("scp")) {
            (Some(serde_json::Value::String(s)), _) => words(s),
            (_, Some(serde_json::Value::Array(list))) => list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            (_, Some(serde_json::Value::String(s))) => words(s),
            _ => Vec::new(),
        }
    }
}

fn object(json: Option<&str>) -> serde_json::Map<String, serde_json::Value> {
    match json.map(serde_json::from_str::<serde_json::Value>) {
        Some(Ok(serde_json::Value::Object(map))) => map,
        _ => serde_json::Map::new(),
    }
}

/// What an authorizer decided about one call (WIT `authorize.decision`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The call may proceed; the rule that allowed it, for the audit log.
    Allow { rule: Option<String> },
    /// The call is refused (403 with a JSON-RPC error carrying `reason`).
    Deny { reason: String, rule: Option<String> },
    /// The caller needs these scopes (403 `insufficient_scope`).
    StepUp(Vec<String>),
}

/// Allows the call.
pub fn permit() -> Decision {
    Decision::Allow { rule: None }
}

/// Refuses the call; `reason` is shown to the person.
pub fn forbid(reason: impl Into<String>) -> Decision {
    Decision::Deny { reason: reason.into(), rule: None }
}

/// Asks the caller to come back with `scopes`.
pub fn step_up<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Decision {
    Decision::StepUp(scopes.into_iter().map(Into::into).collect())
}

impl Decision {
    /// Names the policy or rule that decided (for the audit log).
    pub fn rule(self, id: impl Into<String>) -> Self {
        match self {
            Decision::Allow { .. } => Decision::Allow { rule: Some(id.into()) },
            Decision::Deny { reason, .. } => Decision::Deny { reason, rule: Some(id.into()) },
            step_up => step_up,
        }
    }
}
