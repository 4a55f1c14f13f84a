//! The MCP methods the gateway reads from a request, and the classes an
//! authorizer needs: which methods name a tool, prompt or resource, which are
//! decided, and how the items of a list are asked about. The gateway fills a
//! call's `name` from where each method keeps it; authorizers (built-in or
//! third-party, through the SDK's `McpCall::kind()`) decide by [`CallKind`]
//! instead of copying this table.

/// An MCP method the gateway reads. Every other method (`initialize`, `ping`,
/// notifications, `logging/setLevel`, ...) passes without an authorizer being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum McpMethod {
    ToolsCall,
    PromptsGet,
    ResourcesRead,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    ToolsList,
    PromptsList,
    ResourcesList,
    ResourcesTemplatesList,
    CompletionComplete,
}

/// Each method's name on the wire: the one place it is spelt.
const NAMES: [(McpMethod, &str); 10] = [
    (McpMethod::ToolsCall, "tools/call"),
    (McpMethod::PromptsGet, "prompts/get"),
    (McpMethod::ResourcesRead, "resources/read"),
    (McpMethod::ResourcesSubscribe, "resources/subscribe"),
    (McpMethod::ResourcesUnsubscribe, "resources/unsubscribe"),
    (McpMethod::ToolsList, "tools/list"),
    (McpMethod::PromptsList, "prompts/list"),
    (McpMethod::ResourcesList, "resources/list"),
    (McpMethod::ResourcesTemplatesList, "resources/templates/list"),
    (McpMethod::CompletionComplete, "completion/complete"),
];

/// What a call is about: a tool, a prompt or a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    Tool,
    Prompt,
    Resource,
}

/// What an authorizer is asked to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// One named item: the call's `name` is the tool's or prompt's name, or
    /// the resource's URI. Subscribing to a resource reveals it as reading does,
    /// so `resources/subscribe` and `unsubscribe` are asked as items too.
    Item(Feature),
    /// A list. The gateway also asks about each item it returns, as if that
    /// item were called ([`ListKind`]), and removes those refused.
    List(Feature),
}

/// Where a method keeps the subject the gateway puts in the call's `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `params.name`.
    Name,
    /// `params.uri`, a resource URI.
    Uri,
    /// `params.ref`: a `ref/prompt`'s `name` or a `ref/resource`'s `uri`.
    Reference,
}

/// The `params.ref` types of `completion/complete`, and the method each is
/// decided as: a completion reveals what reading the prompt or resource would.
pub const REFERENCES: [(&str, McpMethod); 2] = [("ref/prompt", McpMethod::PromptsGet), ("ref/resource", McpMethod::ResourcesRead)];

/// What a list method returns, and how its items are asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListKind {
    /// The result's array: `tools`, `prompts`, `resources`, `resourceTemplates`.
    pub key: &'static str,
    /// The method an item is asked about as.
    pub item_method: McpMethod,
    /// The item's field that names it: `name`, `uri`, `uriTemplate`.
    pub item_name: &'static str,
}

impl McpMethod {
    /// Every method, in the order of [`NAMES`].
    pub const ALL: [McpMethod; 10] = {
        let mut all = [McpMethod::ToolsCall; 10];
        let mut i = 0;
        while i < NAMES.len() {
            all[i] = NAMES[i].0;
            i += 1;
        }
        all
    };

    /// The method named `method`, exactly as spelt on the wire (MCP method
    /// names are case-sensitive); `None` for any other.
    pub fn parse(method: &str) -> Option<McpMethod> {
        NAMES.iter().find(|(_, name)| *name == method).map(|(m, _)| *m)
    }

    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        NAMES.iter().find(|(m, _)| *m == self).map(|(_, name)| *name).expect("every method has a name")
    }

    /// What an authorizer is asked about a call of this method; `None` for
    /// `completion/complete`, which is asked about as the `prompts/get` or
    /// `resources/read` of its reference ([`REFERENCES`]).
    pub fn kind(self) -> Option<CallKind> {
        use {CallKind::*, Feature::*, McpMethod::*};
        Some(match self {
            ToolsCall => Item(Tool),
            PromptsGet => Item(Prompt),
            ResourcesRead | ResourcesSubscribe | ResourcesUnsubscribe => Item(Resource),
            ToolsList => List(Tool),
            PromptsList => List(Prompt),
            ResourcesList | ResourcesTemplatesList => List(Resource),
            CompletionComplete => return None,
        })
    }

    /// Where the call's subject is; `None` for a list, which names nothing.
    pub fn subject(self) -> Option<Subject> {
        use McpMethod::*;
        match self {
            ToolsCall | PromptsGet => Some(Subject::Name),
            ResourcesRead | ResourcesSubscribe | ResourcesUnsubscribe => Some(Subject::Uri),
            CompletionComplete => Some(Subject::Reference),
            ToolsList | PromptsList | ResourcesList | ResourcesTemplatesList => None,
        }
    }

    /// For a list method, what it returns and how its items are asked about.
    pub fn list(self) -> Option<ListKind> {
        use McpMethod::*;
        let (key, item_method, item_name) = match self {
            ToolsList => ("tools", ToolsCall, "name"),
            PromptsList => ("prompts", PromptsGet, "name"),
            ResourcesList => ("resources", ResourcesRead, "uri"),
            ResourcesTemplatesList => ("resourceTemplates", ResourcesRead, "uriTemplate"),
            _ => return None,
        };
        Some(ListKind { key, item_method, item_name })
    }

    /// The method a `completion/complete` reference of type `reference` is decided as.
    pub fn of_reference(reference: &str) -> Option<McpMethod> {
        REFERENCES.iter().find(|(name, _)| *name == reference).map(|(_, m)| *m)
    }
}

impl std::fmt::Display for McpMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallKind::*;
    use Feature::*;

    #[test]
    fn names_round_trip_exactly() {
        for method in McpMethod::ALL {
            assert_eq!(McpMethod::parse(method.as_str()), Some(method));
        }
        for other in ["initialize", "ping", "notifications/initialized", "Tools/call", "tools/call ", "tools/list/", "resources/templates", ""] {
            assert_eq!(McpMethod::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn kinds() {
        let kinds: Vec<_> = McpMethod::ALL.iter().map(|m| (m.as_str(), m.kind())).collect();
        assert_eq!(
            kinds,
            [
                ("tools/call", Some(Item(Tool))),
                ("prompts/get", Some(Item(Prompt))),
                ("resources/read", Some(Item(Resource))),
                ("resources/subscribe", Some(Item(Resource))),
                ("resources/unsubscribe", Some(Item(Resource))),
                ("tools/list", Some(List(Tool))),
                ("prompts/list", Some(List(Prompt))),
                ("resources/list", Some(List(Resource))),
                ("resources/templates/list", Some(List(Resource))),
                ("completion/complete", None),
            ]
        );
    }

    #[test]
    fn every_named_call_has_a_subject_and_lists_have_none() {
        for method in McpMethod::ALL {
            match method.kind() {
                Some(Item(_)) => assert!(matches!(method.subject(), Some(Subject::Name | Subject::Uri)), "{method}"),
                Some(List(feature)) => {
                    assert_eq!(method.subject(), None, "{method}");
                    let list = method.list().expect("a list method returns a list");
                    assert_eq!(list.item_method.kind(), Some(Item(feature)), "{method}: items are asked about as the same feature");
                }
                None => assert_eq!(method.subject(), Some(Subject::Reference)),
            }
        }
        assert_eq!(
            McpMethod::ResourcesTemplatesList.list(),
            Some(ListKind { key: "resourceTemplates", item_method: McpMethod::ResourcesRead, item_name: "uriTemplate" })
        );
        assert_eq!(McpMethod::of_reference("ref/prompt"), Some(McpMethod::PromptsGet));
        assert_eq!(McpMethod::of_reference("ref/resource"), Some(McpMethod::ResourcesRead));
        assert_eq!(McpMethod::of_reference("ref/tool"), None);
    }
}
