//! The configuration, checked once in `init`, and the decision it makes.

use crate::glob::Glob;
use portcullis_plugin::{CallKind, Decision, Feature, Identity, McpCall, forbid, permit, step_up};
use serde::Deserialize;

/// The policy's `config` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    rules: Vec<RuleFile>,
    #[serde(default)]
    default: Fallback,
}

/// One entry of `rules`: exactly one of `tool`, `prompt`, `resource`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    tool: Option<String>,
    prompt: Option<String>,
    resource: Option<String>,
    scopes: Vec<String>,
}

/// What happens to a call no rule matches.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    #[default]
    Allow,
    Deny,
}

/// What a rule is about, as the rule's key names it.
fn noun(kind: Feature) -> &'static str {
    match kind {
        Feature::Tool => "tool",
        Feature::Prompt => "prompt",
        Feature::Resource => "resource",
    }
}

#[derive(Debug)]
struct Rule {
    kind: Feature,
    glob: Glob,
    scopes: Vec<String>,
}

/// The checked configuration.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<Rule>,
    default: Fallback,
}

impl Rules {
    pub fn new(file: File) -> Result<Rules, String> {
        let rules = file.rules.into_iter().enumerate().map(|(n, rule)| Rule::new(n, rule)).collect::<Result<_, _>>()?;
        Ok(Rules { rules, default: file.default })
    }

    /// Decides one call. Pure: the caller's scopes come from the identity's
    /// claims, nothing is read from the host.
    pub fn decide(&self, identity: Option<&Identity>, call: &McpCall) -> Decision {
        let kind = match call.kind() {
            // Subscribing to a resource counts as reading it (the gateway's table).
            Some(CallKind::Item(feature)) => feature,
            // The gateway asks about every item of a list as if it were called,
            // and removes the ones refused: the list itself may pass.
            Some(CallKind::List(_)) => return permit(),
            // The gateway asks only about the methods above; anything else is a
            // method this version does not know, so it is refused rather than guessed.
            None => return forbid(format!("`{}` is not a method this authorizer decides.", call.method)).rule("unknown-method"),
        };
        let Some(name) = call.name.as_deref() else {
            return forbid(format!("The {} call names no {}.", call.method, noun(kind)));
        };
        let Some((n, rule)) = self.rules.iter().enumerate().find(|(_, rule)| rule.kind == kind && rule.glob.matches(name)) else {
            return match self.default {
                Fallback::Allow => permit().rule("default"),
                Fallback::Deny => forbid(format!("{} of `{name}` is not allowed: no rule covers it.", call.method)).rule("default"),
            };
        };
        // An anonymous caller holds no scopes; asking it to come back with some
        // is the answer an OAuth client can act on.
        let held = identity.map(Identity::scopes).unwrap_or_default();
        if rule.scopes.iter().all(|needed| held.contains(needed)) {
            permit().rule(format!("rules[{n}]"))
        } else {
            // All of the rule's scopes, not only the missing ones: the client
            // asks for a token with these, and it must carry all of them.
            step_up(rule.scopes.iter().cloned())
        }
    }
}

impl Rule {
    fn new(n: usize, file: RuleFile) -> Result<Rule, String> {
        let at = format!("config.rules[{n}]");
        let (kind, pattern) = match (file.tool, file.prompt, file.resource) {
            (Some(glob), None, None) => (Feature::Tool, glob),
            (None, Some(glob), None) => (Feature::Prompt, glob),
            (None, None, Some(glob)) => (Feature::Resource, glob),
            _ => return Err(format!("{at}: give exactly one of `tool`, `prompt` or `resource`")),
        };
        if pattern.is_empty() {
            return Err(format!("{at}.{}: the glob is empty; \"*\" matches every {}", noun(kind), noun(kind)));
        }
        for (m, scope) in file.scopes.iter().enumerate() {
            if !is_scope_token(scope) {
                return Err(format!(
                    "{at}.scopes[{m}]: {scope:?} is not an OAuth scope (one word of printable ASCII without `\"` or `\\`, RFC 6749 section 3.3)"
                ));
            }
        }
        Ok(Rule { kind, glob: Glob::new(&pattern), scopes: file.scopes })
    }
}

/// RFC 6749's `scope-token`. Checked because the scopes go verbatim into
/// `WWW-Authenticate: Bearer scope="..."`, where a space would split one scope
/// in two and a quote would end the header's value.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Result<Rules, String> {
        Rules::new(portcullis_plugin::parse_config(json)?)
    }

    fn call(method: &str, name: Option<&str>) -> McpCall {
        McpCall { method: method.into(), name: name.map(Into::into), arguments_json: None, annotations_json: None, id: Some("1".into()) }
    }

    fn caller(scope: &str) -> Identity {
        Identity { subject: "alice".into(), issuer: None, claims_json: Some(serde_json::json!({ "sub": "alice", "scope": scope }).to_string()) }
    }

    const EXAMPLE: &str = r#"{
        "rules": [
            { "tool": "deploy_*", "scopes": ["deploy", "write"] },
            { "tool": "read_?", "scopes": ["read"] },
            { "prompt": "*", "scopes": ["prompts"] },
            { "resource": "file:///secret/*", "scopes": ["secrets:read"] },
            { "tool": "public_*", "scopes": [] },
            { "tool": "*", "scopes": ["tools"] }
        ],
        "default": "deny"
    }"#;

    #[test]
    fn the_first_matching_rule_decides() {
        let rules = rules(EXAMPLE).unwrap();
        let everything = caller("deploy write read prompts secrets:read tools");
        assert_eq!(rules.decide(Some(&everything), &call("tools/call", Some("deploy_prod"))), permit().rule("rules[0]"));
        assert_eq!(rules.decide(Some(&everything), &call("tools/call", Some("read_x"))), permit().rule("rules[1]"));
        // `read_xy` is not `read_?`: it falls to the catch-all.
        assert_eq!(rules.decide(Some(&everything), &call("tools/call", Some("read_xy"))), permit().rule("rules[5]"));
        assert_eq!(rules.decide(Some(&everything), &call("prompts/get", Some("greet"))), permit().rule("rules[2]"));
        assert_eq!(rules.decide(Some(&everything), &call("resources/read", Some("file:///secret/k"))), permit().rule("rules[3]"));
        // A rule for tools never decides about a prompt, and so on.
        let only_tools = caller("tools");
        assert_eq!(rules.decide(Some(&only_tools), &call("prompts/get", Some("greet"))), step_up(["prompts"]));
    }

    #[test]
    fn missing_scopes_ask_for_all_of_the_rule() {
        let rules = rules(EXAMPLE).unwrap();
        let partial = caller("deploy read");
        assert_eq!(rules.decide(Some(&partial), &call("tools/call", Some("deploy_prod"))), step_up(["deploy", "write"]));
        // Scopes are compared whole: `deployer` is not `deploy`.
        let lookalike = caller("deployer writes");
        assert_eq!(rules.decide(Some(&lookalike), &call("tools/call", Some("deploy_prod"))), step_up(["deploy", "write"]));
        // `scp` as a list counts too (the SDK reads both).
        let scp = Identity { subject: "bob".into(), issuer: None, claims_json: Some(r#"{"scp": ["deploy", "write"]}"#.into()) };
        assert_eq!(rules.decide(Some(&scp), &call("tools/call", Some("deploy_prod"))), permit().rule("rules[0]"));
    }

    #[test]
    fn anonymous_callers_hold_no_scopes() {
        let rules = rules(EXAMPLE).unwrap();
        assert_eq!(rules.decide(None, &call("tools/call", Some("deploy_prod"))), step_up(["deploy", "write"]));
        // A rule with no scopes lets anyone through.
        assert_eq!(rules.decide(None, &call("tools/call", Some("public_time"))), permit().rule("rules[4]"));
        // An identity without scope claims is no better.
        let bare = Identity { subject: "shared-key:demo".into(), issuer: None, claims_json: None };
        assert_eq!(rules.decide(Some(&bare), &call("tools/call", Some("read_a"))), step_up(["read"]));
    }

    #[test]
    fn the_default_decides_what_no_rule_covers() {
        let strict = rules(EXAMPLE).unwrap();
        let anyone = caller("tools");
        let denied = strict.decide(Some(&anyone), &call("prompts/get", None));
        assert!(matches!(denied, Decision::Deny { .. }), "a call without a name is refused");
        let resource = call("resources/read", Some("file:///public/readme"));
        match strict.decide(Some(&anyone), &resource) {
            Decision::Deny { reason, rule } => {
                assert_eq!(reason, "resources/read of `file:///public/readme` is not allowed: no rule covers it.");
                assert_eq!(rule.as_deref(), Some("default"));
            }
            other => panic!("{other:?}"),
        }
        let lenient = rules(r#"{"rules": [{"tool": "deploy_*", "scopes": ["deploy"]}]}"#).unwrap();
        assert_eq!(lenient.decide(None, &call("tools/call", Some("echo"))), permit().rule("default"));
        assert_eq!(lenient.decide(None, &resource), permit().rule("default"));
        assert_eq!(rules("{}").unwrap().decide(None, &call("tools/call", Some("x"))), permit().rule("default"));
    }

    #[test]
    fn lists_pass_and_unknown_methods_do_not() {
        let rules = rules(EXAMPLE).unwrap();
        for list in ["tools/list", "prompts/list", "resources/list", "resources/templates/list"] {
            assert_eq!(rules.decide(None, &call(list, None)), permit(), "{list}");
        }
        assert_eq!(
            rules.decide(Some(&caller("secrets:read")), &call("resources/subscribe", Some("file:///secret/k"))),
            permit().rule("rules[3]"),
            "subscribing is reading"
        );
        assert!(matches!(rules.decide(None, &call("sampling/createMessage", None)), Decision::Deny { rule: Some(r), .. } if r == "unknown-method"));
    }

    #[test]
    fn configuration_errors_name_the_key() {
        let error = |json: &str| rules(json).unwrap_err();
        assert_eq!(error(r#"{"rules": [{"scopes": []}]}"#), "config.rules[0]: give exactly one of `tool`, `prompt` or `resource`");
        assert!(error(r#"{"rules": [{"tool": "a", "prompt": "b", "scopes": []}]}"#).starts_with("config.rules[0]: give exactly one"));
        assert!(error(r#"{"rules": [{"tool": "a"}]}"#).contains("missing field `scopes`"));
        assert!(error(r#"{"rules": [{"tool": "a", "scopes": ["x"]}, {"tool": "", "scopes": []}]}"#).starts_with("config.rules[1].tool: the glob is empty"));
        assert!(
            error(r#"{"rules": [{"tool": "a", "scopes": ["ok", "two words"]}]}"#).starts_with("config.rules[0].scopes[1]: \"two words\" is not an OAuth scope")
        );
        assert!(error(r#"{"rules": [{"tool": "a", "scopes": ["q\"uote"]}]}"#).starts_with("config.rules[0].scopes[0]"));
        assert!(error(r#"{"rules": [{"tool": "a", "scopes": [""]}]}"#).starts_with("config.rules[0].scopes[0]"));
        assert!(error(r#"{"default": "maybe"}"#).starts_with("config.default: unknown variant `maybe`"), "{}", error(r#"{"default": "maybe"}"#));
        assert!(error(r#"{"rules": [{"tool": "a", "scopes": [], "scope": "x"}]}"#).contains("unknown field `scope`"));
        assert!(error(r#"{"rule": []}"#).contains("unknown field `rule`"));
    }
}
