//! The decisions, end to end through the pure engine: configuration in, MCP
//! call in, decision out.

use crate::config::Config;
use crate::engine::{Engine, Verdict};
use portcullis_plugin::{Decision, Identity, McpCall, permit};
use serde_json::{Value, json};

fn engine(config: Value) -> Result<Engine, String> {
    let config = Config::new(portcullis_plugin::parse_config(&config.to_string())?)?;
    Engine::new(config, "demo")
}

fn policies(text: &str) -> Engine {
    engine(json!({ "policies": text })).unwrap()
}

fn caller(sub: &str, claims: Value) -> Identity {
    let mut claims = claims;
    claims["sub"] = json!(sub);
    Identity { subject: sub.into(), issuer: Some("https://idp.example.com".into()), claims_json: Some(claims.to_string()) }
}

fn call(method: &str, name: Option<&str>) -> McpCall {
    McpCall { method: method.into(), name: name.map(Into::into), arguments_json: None, annotations_json: None, id: Some("1".into()) }
}

fn tool(name: &str, arguments: Value) -> McpCall {
    McpCall { arguments_json: Some(arguments.to_string()), ..call("tools/call", Some(name)) }
}

/// A `tools/list` item as the gateway asks about it.
fn listed_tool(name: &str, annotations: Value) -> McpCall {
    McpCall { annotations_json: Some(annotations.to_string()), id: None, ..call("tools/call", Some(name)) }
}

#[track_caller]
fn allowed(verdict: Verdict, rule: &str) {
    assert_eq!(verdict.decision, permit().rule(rule), "{verdict:?}");
    assert!(verdict.trouble.is_none());
}

/// Refused, by `rule`; returns the reason.
#[track_caller]
fn denied(verdict: Verdict, rule: &str) -> String {
    match verdict.decision {
        Decision::Deny { reason, rule: Some(actual) } if actual == rule => reason,
        other => panic!("expected a denial by {rule}, got {other:?}"),
    }
}

#[test]
fn groups_are_parents_of_the_caller() {
    let engine = policies(r#"permit(principal in Group::"engineering", action == Action::"call_tool", resource == Tool::"echo");"#);
    let alice = caller("alice", json!({ "groups": ["sales", "engineering"] }));
    let bob = caller("bob", json!({ "groups": ["sales"] }));
    allowed(engine.decide(Some(&alice), &tool("echo", json!({}))), "policy0");
    let reason = denied(engine.decide(Some(&bob), &tool("echo", json!({}))), "default-deny");
    assert_eq!(reason, "tools/call of `echo` is not allowed for this caller.");
    denied(engine.decide(Some(&alice), &tool("deploy", json!({}))), "default-deny");
    // Roles count as groups too, and ToolHive's `THVGroup` is the same group.
    let carol = caller("carol", json!({ "roles": ["engineering"] }));
    allowed(engine.decide(Some(&carol), &tool("echo", json!({}))), "policy0");
    let toolhive = policies(r#"permit(principal in THVGroup::"engineering", action == Action::"call_tool", resource);"#);
    allowed(toolhive.decide(Some(&alice), &tool("echo", json!({}))), "policy0");
    // The last caller is kept between calls; a changed token is a new caller.
    let alice_moved = caller("alice", json!({ "groups": ["sales"] }));
    denied(engine.decide(Some(&alice_moved), &tool("echo", json!({}))), "default-deny");
    allowed(engine.decide(Some(&alice), &tool("echo", json!({}))), "policy0");
    denied(engine.decide(None, &tool("echo", json!({}))), "default-deny");
    // A string is not a list of groups (ToolHive ignores it too).
    let dave = caller("dave", json!({ "groups": "engineering" }));
    denied(engine.decide(Some(&dave), &tool("echo", json!({}))), "default-deny");
}

#[test]
fn group_claims_and_types_are_configurable() {
    let engine = engine(json!({
        "policies": r#"permit(principal in Org::Team::"platform", action, resource);"#,
        "group_claims": ["realm_access.roles", "https://example.com/teams"],
        "group_entity_types": ["Org::Team"],
    }))
    .unwrap();
    let nested = caller("erin", json!({ "realm_access": { "roles": ["platform"] } }));
    allowed(engine.decide(Some(&nested), &tool("echo", json!({}))), "policy0");
    // A top-level claim whose name has dots is found as it is.
    let url_claim = caller("frank", json!({ "https://example.com/teams": ["platform"] }));
    allowed(engine.decide(Some(&url_claim), &tool("echo", json!({}))), "policy0");
    // `groups` is no longer read.
    let default_claim = caller("gina", json!({ "groups": ["platform"] }));
    denied(engine.decide(Some(&default_claim), &tool("echo", json!({}))), "default-deny");
}

#[test]
fn annotations_are_attributes_of_the_tool() {
    let engine = policies(
        r#"
        permit(principal, action == Action::"call_tool", resource);
        @id("no-destructive-tools")
        forbid(principal, action == Action::"call_tool", resource)
        when { resource has destructiveHint && resource.destructiveHint };
        "#,
    );
    let alice = caller("alice", json!({}));
    let reason = denied(engine.decide(Some(&alice), &listed_tool("drop_table", json!({ "destructiveHint": true }))), "no-destructive-tools");
    assert_eq!(reason, "tools/call of `drop_table` is not allowed for this caller.");
    allowed(engine.decide(Some(&alice), &listed_tool("query", json!({ "readOnlyHint": true, "destructiveHint": false }))), "policy0");
    allowed(engine.decide(Some(&alice), &listed_tool("echo", json!({}))), "policy0");
    // Read-only tools only, by title as well as hint.
    let read_only = policies(
        r#"permit(principal, action == Action::"call_tool", resource)
           when { resource has readOnlyHint && resource.readOnlyHint && resource.title like "Query*" };"#,
    );
    allowed(read_only.decide(Some(&alice), &listed_tool("query", json!({ "readOnlyHint": true, "title": "Query the DB" }))), "policy0");
    denied(read_only.decide(Some(&alice), &listed_tool("query", json!({ "readOnlyHint": "yes", "title": "Query" }))), "default-deny");
}

#[test]
fn annotations_cannot_shadow_the_model() {
    // A server's annotations are copied by name, and only MCP's: `name` or
    // `operation` in them change nothing.
    let engine = policies(r#"permit(principal, action, resource) when { resource.name == "echo" && resource.operation == "call" && !(resource has evil) };"#);
    let alice = caller("alice", json!({}));
    allowed(engine.decide(Some(&alice), &listed_tool("echo", json!({ "name": "other", "operation": "list", "evil": true }))), "policy0");
}

#[test]
fn claims_are_in_the_context_and_on_the_caller() {
    let engine = policies(
        r#"
        @id("staff") permit(principal, action == Action::"call_tool", resource == Tool::"admin")
        when { context.claim_email like "*@example.com" && principal.claim_email_verified };
        @id("senior") permit(principal, action == Action::"call_tool", resource == Tool::"promote")
        when { principal has claim_level && principal.claim_level >= 5 && context.claim_groups.contains("hr") };
        "#,
    );
    let staff = caller("alice", json!({ "email": "alice@example.com", "email_verified": true, "level": 7, "groups": ["hr"] }));
    let outsider = caller("mallory", json!({ "email": "mallory@evil.example", "email_verified": true }));
    allowed(engine.decide(Some(&staff), &tool("admin", json!({}))), "staff");
    denied(engine.decide(Some(&outsider), &tool("admin", json!({}))), "default-deny");
    allowed(engine.decide(Some(&staff), &tool("promote", json!({}))), "senior");
    denied(engine.decide(Some(&caller("bob", json!({ "level": 3, "groups": ["hr"] }))), &tool("promote", json!({}))), "default-deny");
    // `claim_sub` is there like any claim.
    let own = policies(r#"permit(principal, action, resource) when { context.claim_sub == "alice" && principal == Client::"alice" };"#);
    allowed(own.decide(Some(&staff), &tool("x", json!({}))), "policy0");
}

#[test]
fn arguments_are_in_the_context_and_on_the_resource() {
    let engine = policies(
        r#"
        @id("public-files") permit(principal, action == Action::"call_tool", resource == Tool::"read_file")
        when { context.arg_path like "/public/*" && resource.arg_path == context.arg_path };
        @id("small-batches") permit(principal, action == Action::"call_tool", resource == Tool::"batch")
        when { context.arg_count <= 10 && context.arg_ids_present && context.arg_ids.contains("a") };
        @id("cheap") permit(principal, action == Action::"call_tool", resource == Tool::"buy")
        when { context.arg_price.lessThan(decimal("9.99")) };
        "#,
    );
    let alice = caller("alice", json!({}));
    allowed(engine.decide(Some(&alice), &tool("read_file", json!({ "path": "/public/readme.md" }))), "public-files");
    denied(engine.decide(Some(&alice), &tool("read_file", json!({ "path": "/etc/shadow" }))), "default-deny");
    allowed(engine.decide(Some(&alice), &tool("batch", json!({ "count": 3, "ids": ["a", "b"] }))), "small-batches");
    denied(engine.decide(Some(&alice), &tool("batch", json!({ "count": 11, "ids": ["a"] }))), "default-deny");
    allowed(engine.decide(Some(&alice), &tool("buy", json!({ "price": 5.5 }))), "cheap");
    denied(engine.decide(Some(&alice), &tool("buy", json!({ "price": 12.25 }))), "default-deny");
    // A missing argument is an error in a policy that reads it: refused.
    let verdict = engine.decide(Some(&alice), &tool("read_file", json!({})));
    assert!(verdict.trouble.is_some());
    denied(verdict, "public-files");
}

#[test]
fn evaluation_errors_fail_closed() {
    let engine = policies(
        r#"
        @id("anyone") permit(principal, action == Action::"call_tool", resource);
        @id("departments") forbid(principal, action == Action::"call_tool", resource == Tool::"payroll")
        when { context.claim_department != "finance" };
        "#,
    );
    let finance = caller("alice", json!({ "department": "finance" }));
    let unknown = caller("bob", json!({}));
    allowed(engine.decide(Some(&finance), &tool("payroll", json!({}))), "anyone");
    // Without the claim, the forbid cannot be evaluated. Cedar alone would skip
    // it and let the permit through; the component refuses.
    let verdict = engine.decide(Some(&unknown), &tool("payroll", json!({})));
    let trouble = verdict.trouble.clone().unwrap();
    assert!(trouble.starts_with("tools/call of `payroll`: error while evaluating policy `departments`"), "{trouble}");
    assert!(trouble.contains("claim_department"), "{trouble}");
    let reason = denied(verdict, "departments");
    assert_eq!(reason, "tools/call of `payroll` was refused: an error occurred while evaluating the authorization policies.");
    // Other tools do not reach the failing condition.
    allowed(engine.decide(Some(&unknown), &tool("echo", json!({}))), "anyone");
}

#[test]
fn prompts_and_resources() {
    let engine = policies(
        r#"
        permit(principal, action == Action::"get_prompt", resource == Prompt::"greeting");
        permit(principal, action == Action::"read_resource", resource)
        when { resource.uri like "file:///public/*" && resource.feature == "resource" };
        "#,
    );
    let alice = caller("alice", json!({}));
    allowed(engine.decide(Some(&alice), &call("prompts/get", Some("greeting"))), "policy0");
    denied(engine.decide(Some(&alice), &call("prompts/get", Some("secret"))), "default-deny");
    allowed(engine.decide(Some(&alice), &call("resources/read", Some("file:///public/a.txt"))), "policy1");
    // A template from `resources/templates/list` is asked about as a read of the template.
    allowed(engine.decide(Some(&alice), &call("resources/read", Some("file:///public/{name}"))), "policy1");
    let reason = denied(engine.decide(Some(&alice), &call("resources/read", Some("file:///etc/passwd"))), "default-deny");
    assert_eq!(reason, "resources/read of `file:///etc/passwd` is not allowed for this caller.");
    // The call is a tool call: a prompt policy does not apply to a tool of the same name.
    denied(engine.decide(Some(&alice), &tool("greeting", json!({}))), "default-deny");
}

#[test]
fn lists_pass_unless_asked_for() {
    let alice = caller("alice", json!({ "groups": ["eng"] }));
    let deny_all = policies(r#"forbid(principal, action, resource);"#);
    for method in ["tools/list", "prompts/list", "resources/list", "resources/templates/list"] {
        assert_eq!(deny_all.decide(Some(&alice), &call(method, None)).decision, permit(), "{method}");
    }
    let engine = engine(json!({
        "policies": r#"permit(principal in Group::"eng", action in [Action::"list_tools", Action::"list_resources"], resource is FeatureType)
                       when { resource.operation == "list" };"#,
        "authorize_lists": true,
    }))
    .unwrap();
    allowed(engine.decide(Some(&alice), &call("tools/list", None)), "policy0");
    allowed(engine.decide(Some(&alice), &call("resources/templates/list", None)), "policy0");
    let reason = denied(engine.decide(Some(&alice), &call("prompts/list", None)), "default-deny");
    assert_eq!(reason, "prompts/list is not allowed for this caller.");
}

#[test]
fn anonymous_callers_are_anonymous() {
    let engine = policies(
        r#"
        permit(principal, action == Action::"call_tool", resource == Tool::"public");
        permit(principal is Client, action == Action::"call_tool", resource == Tool::"members");
        "#,
    );
    allowed(engine.decide(None, &tool("public", json!({}))), "policy0");
    denied(engine.decide(None, &tool("members", json!({}))), "default-deny");
    allowed(engine.decide(Some(&caller("alice", json!({}))), &tool("members", json!({}))), "policy1");
    // A caller without claims (e.g. `builtin:shared-key`) is a Client all the same.
    let keyed = Identity { subject: "shared-key:demo".into(), issuer: None, claims_json: None };
    allowed(engine.decide(Some(&keyed), &tool("members", json!({}))), "policy1");
}

#[test]
fn everything_is_in_the_workload() {
    let engine = policies(r#"permit(principal, action, resource in MCP::"demo");"#);
    let alice = caller("alice", json!({}));
    allowed(engine.decide(Some(&alice), &tool("echo", json!({}))), "policy0");
    allowed(engine.decide(Some(&alice), &call("resources/read", Some("file:///x"))), "policy0");
    let other = policies(r#"permit(principal, action, resource in MCP::"github");"#);
    denied(other.decide(Some(&alice), &tool("echo", json!({}))), "default-deny");
}

#[test]
fn fixed_entities_add_to_the_calls_own() {
    let engine = engine(json!({
        "policies": r#"
            @id("developers") permit(principal in THVRole::"developer", action == Action::"call_tool", resource == Tool::"build");
            @id("owners") permit(principal, action == Action::"call_tool", resource) when { resource has owner && resource.owner == principal.claim_sub };
        "#,
        // ToolHive's `entities_json` shape: a group inside a role, and a tool's owner.
        "entities": r#"[
            {"uid": {"type": "THVGroup", "id": "engineering"}, "attrs": {}, "parents": [{"type": "THVRole", "id": "developer"}]},
            {"uid": {"type": "Tool", "id": "weather"}, "attrs": {"owner": "alice"}, "parents": []}
        ]"#,
    }))
    .unwrap();
    let alice = caller("alice", json!({ "groups": ["engineering"] }));
    let bob = caller("bob", json!({ "groups": ["sales"] }));
    allowed(engine.decide(Some(&alice), &tool("build", json!({}))), "developers");
    denied(engine.decide(Some(&bob), &tool("build", json!({}))), "default-deny");
    // The tool keeps its fixed `owner` next to the call's attributes.
    allowed(engine.decide(Some(&alice), &tool("weather", json!({}))), "owners");
    denied(engine.decide(Some(&bob), &tool("weather", json!({}))), "default-deny");
    let error = super::tests::engine(json!({ "policies": "permit(principal, action, resource);", "entities": [{"uid": "nope"}] })).err().unwrap();
    assert!(error.starts_with("config.entities: "), "{error}");
}

#[test]
fn the_first_determining_policy_is_the_rule() {
    let engine = policies(
        r#"
        @id("b-first") permit(principal, action, resource);
        @id("a-second") permit(principal, action, resource);
        forbid(principal, action, resource == Tool::"x");
        @id("also-x") forbid(principal, action, resource == Tool::"x");
        "#,
    );
    let alice = caller("alice", json!({}));
    allowed(engine.decide(Some(&alice), &tool("y", json!({}))), "b-first");
    denied(engine.decide(Some(&alice), &tool("x", json!({}))), "policy2");
}

#[test]
fn odd_calls_are_refused() {
    let engine = policies("permit(principal, action, resource);");
    let alice = caller("alice", json!({}));
    denied(engine.decide(Some(&alice), &call("sampling/createMessage", None)), "unknown-method");
    let verdict = engine.decide(Some(&alice), &call("tools/call", None));
    assert!(matches!(verdict.decision, Decision::Deny { ref reason, .. } if reason == "The tools/call call names no tool."), "{verdict:?}");
    // Names are taken as they are, quotes and all.
    allowed(engine.decide(Some(&alice), &tool("we\"ird\\name", json!({}))), "policy0");
}

/// The example schema shipped with the crate and the policies docs/authorization.md shows.
const SCHEMA: &str = include_str!("../mcp.cedarschema");

#[test]
fn the_example_schema_validates_the_documented_policies() {
    let engine = engine(json!({
        "policies": r#"
            @id("engineering-echo") permit(principal in Group::"engineering", action == Action::"call_tool", resource == Tool::"echo");
            @id("no-destructive") forbid(principal, action == Action::"call_tool", resource)
            when { resource has destructiveHint && resource.destructiveHint };
            @id("staff-admin") permit(principal, action == Action::"call_tool", resource == Tool::"admin")
            when { context has claim_email && context.claim_email like "*@example.com" };
            @id("public-files") permit(principal, action == Action::"call_tool", resource == Tool::"read_file")
            when { context has arg_path && context.arg_path like "/public/*" };
            @id("greeting") permit(principal, action == Action::"get_prompt", resource == Prompt::"greeting");
        "#,
        "schema": SCHEMA,
    }))
    .unwrap();
    let alice = caller("alice", json!({ "groups": ["engineering"], "email": "alice@example.com" }));
    allowed(engine.decide(Some(&alice), &tool("echo", json!({}))), "engineering-echo");
    allowed(engine.decide(Some(&alice), &tool("admin", json!({}))), "staff-admin");
    allowed(engine.decide(Some(&alice), &tool("read_file", json!({ "path": "/public/x" }))), "public-files");
    denied(engine.decide(Some(&alice), &listed_tool("echo", json!({ "destructiveHint": true }))), "no-destructive");
    allowed(engine.decide(Some(&alice), &call("prompts/get", Some("greeting"))), "greeting");
}

#[test]
fn a_policy_the_schema_refuses_refuses_init() {
    let error = engine(json!({
        "policies": ["permit(principal, action == Action::\"call_tool\", resource);",
                     "permit(principal, action == Action::\"call_tool\", resource)\n  when { context.claim_emial == \"a@example.com\" };"],
        "schema": SCHEMA,
    }))
    .err()
    .unwrap();
    assert!(error.starts_with("config.policies[1]: line 2, column "), "{error}");
    assert!(error.contains("for policy `policy1`"), "{error}");
    assert!(error.ends_with("(validating against `config.schema`)"), "{error}");
    assert!(error.contains("claim_emial"), "{error}");
    // Unknown entity types and actions too.
    let error = engine(json!({ "policies": r#"permit(principal in Team::"x", action == Action::"delete_tool", resource);"#, "schema": SCHEMA })).err().unwrap();
    assert!(error.starts_with("config.policies: line 1, column "), "{error}");
    // A schema that does not parse says where.
    let error = engine(json!({ "policies": "permit(principal, action, resource);", "schema": "entity Client;\nentity Tool {" })).err().unwrap();
    assert!(error.starts_with("config.schema: line 2, column "), "{error}");
    // JSON schema works too.
    let json_schema = json!({ "": { "entityTypes": { "Client": {}, "Tool": {} }, "actions": { "call_tool": { "appliesTo": { "principalTypes": ["Client"], "resourceTypes": ["Tool"] } } } } });
    assert!(engine(json!({ "policies": r#"permit(principal, action == Action::"call_tool", resource == Tool::"echo");"#, "schema": json_schema })).is_ok());
    let error = engine(json!({ "policies": r#"permit(principal, action == Action::"get_prompt", resource);"#, "schema": json_schema })).err().unwrap();
    assert!(error.starts_with("config.policies: line 1, column "), "{error}");
}

#[test]
fn the_schemas_action_groups_apply() {
    let schema = r#"
        entity Client;
        entity Tool, Prompt;
        action write;
        action call_tool in [write] appliesTo { principal: [Client], resource: [Tool] };
        action get_prompt appliesTo { principal: [Client], resource: [Prompt] };
    "#;
    let engine = engine(json!({ "policies": r#"permit(principal, action in Action::"write", resource);"#, "schema": schema })).unwrap();
    let alice = caller("alice", json!({}));
    allowed(engine.decide(Some(&alice), &tool("echo", json!({}))), "policy0");
    denied(engine.decide(Some(&alice), &call("prompts/get", Some("greeting"))), "default-deny");
}

#[test]
fn parse_errors_refuse_init() {
    let error = engine(json!({ "policies": "permit(principal, action, resource);\npermit(principal action, resource);" })).err().unwrap();
    assert!(error.starts_with("config.policies: line 2, column "), "{error}");
}

/// `cargo test --release -p cedar -- --ignored --nocapture per_decision`
#[test]
#[ignore = "a measurement, not a check; run it in release"]
fn per_decision_time() {
    let engine = policies(
        r#"
        @id("engineering") permit(principal in Group::"engineering", action == Action::"call_tool", resource);
        @id("no-destructive") forbid(principal, action == Action::"call_tool", resource) when { resource has destructiveHint && resource.destructiveHint };
        @id("staff") permit(principal, action == Action::"call_tool", resource == Tool::"admin") when { context.claim_email like "*@example.com" };
        @id("public-files") permit(principal, action == Action::"call_tool", resource == Tool::"read_file") when { context.arg_path like "/public/*" };
        @id("greeting") permit(principal, action == Action::"get_prompt", resource == Prompt::"greeting");
        "#,
    );
    let alice = caller(
        "alice",
        json!({ "iss": "https://idp.example.com", "aud": "mcp", "exp": 1900000000, "iat": 1800000000, "email": "alice@example.com",
                "groups": ["engineering", "sales"], "scope": "openid email mcp:tools" }),
    );
    let call = McpCall { annotations_json: Some(r#"{"readOnlyHint": true}"#.into()), ..tool("read_file", json!({ "path": "/public/readme.md", "limit": 10 })) };
    let bob = Identity { subject: "bob".into(), ..alice.clone() };
    let time = |callers: [&Identity; 2]| {
        let rounds = 20_000;
        for n in 0..1000 {
            std::hint::black_box(engine.decide(Some(callers[n % 2]), &call));
        }
        let start = std::time::Instant::now();
        for n in 0..rounds {
            std::hint::black_box(engine.decide(Some(callers[n % 2]), &call));
        }
        start.elapsed() / rounds as u32
    };
    // Two callers in turn: the caller is built for every call.
    let cold = time([&alice, &bob]);
    // The same caller again, as when the gateway filters a list.
    let warm = time([&alice, &alice]);
    eprintln!("per decision: {cold:?} (new caller each call), {warm:?} (same caller, as in list filtering)");
    // A caller in many groups (Entra ID lists them all).
    let many: Vec<String> = (0..50).map(|n| format!("group-{n}")).collect();
    let carol = caller("carol", json!({ "groups": many, "email": "carol@example.com" }));
    let dave = Identity { subject: "dave".into(), ..carol.clone() };
    let (cold, warm) = (time([&carol, &dave]), time([&carol, &carol]));
    eprintln!("with 50 groups: {cold:?} (new caller each call), {warm:?} (same caller)");
}
