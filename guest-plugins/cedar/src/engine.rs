//! The decision: an MCP call as a Cedar request (ToolHive's entity model,
//! see docs/authorization.md), evaluated against the policies built at `init`.
//!
//! Pure: nothing here calls the host, so all of it runs in native tests. What
//! should be logged comes back with the decision.

use crate::config::Config;
use crate::policies::{Policies, parse_schema};
use crate::values::to_cedar;
use cedar_policy::{Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId, Request, RestrictedExpression};
use portcullis_plugin::{CallKind, Decision, Feature, Identity, McpCall, forbid, permit};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// A decision, and what went wrong on the way if anything did (for the log).
#[derive(Debug)]
pub struct Verdict {
    pub decision: Decision,
    pub trouble: Option<String>,
}

impl From<Decision> for Verdict {
    fn from(decision: Decision) -> Self {
        Verdict { decision, trouble: None }
    }
}

/// Attributes and parents of an entity.
type Parts = (HashMap<String, RestrictedExpression>, HashSet<EntityUid>);

pub struct Engine {
    policies: Policies,
    authorizer: Authorizer,
    /// The configured `entities` and the schema's actions; none when there
    /// are neither, which saves copying an empty store for each caller.
    base: Option<Entities>,
    /// The attributes and parents of each `base` entity: an entity the call
    /// builds (the caller, the tool, the action) that `base` also holds gets
    /// both, so `entities` can add attributes or parents (a tool's owner, a
    /// role above a group) without being replaced by the call's own.
    known: HashMap<EntityUid, Parts>,
    /// The `Action` entities, built once.
    actions: HashMap<&'static str, (EntityUid, Entity)>,
    /// The caller of the last call. The gateway asks about every item of a
    /// list for the same caller, one after another; its entity is the costly
    /// part of a request (every claim is an attribute), so it is kept.
    last_caller: RefCell<Option<Rc<Caller>>>,
    types: Types,
    group_claims: Vec<String>,
    authorize_lists: bool,
    /// `MCP::"<workload>"`, the parent of every tool, prompt and resource.
    server: EntityUid,
}

/// The entity types of the model, parsed once.
struct Types {
    client: EntityTypeName,
    anonymous: EntityTypeName,
    action: EntityTypeName,
    tool: EntityTypeName,
    prompt: EntityTypeName,
    resource: EntityTypeName,
    feature_type: EntityTypeName,
    groups: Vec<EntityTypeName>,
}

impl Types {
    fn new(group_types: &[String]) -> Result<Types, String> {
        let parse = |name: &str| name.parse::<EntityTypeName>().map_err(|e| format!("entity type `{name}`: {e}"));
        Ok(Types {
            client: parse("Client")?,
            anonymous: parse("Anonymous")?,
            action: parse("Action")?,
            tool: parse("Tool")?,
            prompt: parse("Prompt")?,
            resource: parse("Resource")?,
            feature_type: parse("FeatureType")?,
            groups: group_types.iter().map(|name| parse(name)).collect::<Result<_, _>>()?,
        })
    }
}

/// What a method is, in the model.
struct Operation {
    /// The id of the `Action` entity, e.g. `call_tool`.
    action: &'static str,
    kind: Kind,
}

enum Kind {
    /// One named thing: `Tool::"<name>"`, `Prompt::"<name>"`, `Resource::"<uri>"`.
    Item { operation: &'static str, feature: &'static str },
    /// A list: `FeatureType::"<feature>"`.
    List { feature: &'static str },
}

/// ToolHive's mapping of MCP methods (pkg/authz/middleware.go), by the
/// gateway's kinds of call ([`McpCall::kind`]): subscribing to a resource
/// reveals it as reading does, and both lists of resources are one action.
fn operation(kind: CallKind) -> Operation {
    let (action, kind) = match kind {
        CallKind::Item(Feature::Tool) => ("call_tool", Kind::Item { operation: "call", feature: "tool" }),
        CallKind::Item(Feature::Prompt) => ("get_prompt", Kind::Item { operation: "get", feature: "prompt" }),
        CallKind::Item(Feature::Resource) => ("read_resource", Kind::Item { operation: "read", feature: "resource" }),
        CallKind::List(Feature::Tool) => ("list_tools", Kind::List { feature: "tool" }),
        CallKind::List(Feature::Prompt) => ("list_prompts", Kind::List { feature: "prompt" }),
        CallKind::List(Feature::Resource) => ("list_resources", Kind::List { feature: "resource" }),
    };
    Operation { action, kind }
}

/// Every action of the model.
const ACTIONS: [&str; 6] = ["call_tool", "get_prompt", "read_resource", "list_tools", "list_prompts", "list_resources"];

/// The caller as the policies see it, and what it was built from.
struct Caller {
    subject: Option<String>,
    claims_json: Option<String>,
    uid: EntityUid,
    /// The fixed entities and the caller, with the transitive closure of the
    /// caller's groups computed: Cedar computes it again for every store it
    /// builds, at a cost that grows with the number of groups, so each call
    /// only adds its action and resource to a copy of this one.
    entities: Entities,
    /// `claim_*`, for the context.
    claims: HashMap<String, RestrictedExpression>,
}

/// The annotations MCP defines for a tool; other keys a server sends are not
/// copied, so a server cannot shadow the attributes the model sets.
const HINTS: [&str; 4] = ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"];

impl Engine {
    /// Builds everything that does not depend on the call: the policy set,
    /// checked against the schema, the authorizer, and the fixed entities.
    pub fn new(config: Config, workload: &str) -> Result<Engine, String> {
        let policies = Policies::parse(&config.policies)?;
        let schema = config.schema.as_ref().map(parse_schema).transpose()?;
        if let Some(schema) = &schema {
            policies.validate(schema, &config.policies)?;
        }
        let entities = match &config.entities {
            // Not checked against the schema: a fixed `Tool` adds to the call's
            // own (say, an `owner`), and alone lacks the `name` a schema requires.
            Some(json) => Some(Entities::from_json_value(json.clone(), None).map_err(|e| format!("config.entities: {}", with_causes(&e)))?),
            None => None,
        };
        let actions = match &schema {
            Some(schema) => Some(schema.action_entities().map_err(|e| format!("config.schema: {}", with_causes(&e)))?),
            None => None,
        };
        let base = match (entities, actions) {
            (Some(entities), Some(actions)) => {
                Some(entities.upsert_entities(actions.iter().cloned(), None).map_err(|e| format!("config.entities: {}", with_causes(&e)))?)
            }
            (entities, actions) => entities.or(actions),
        };
        let known =
            base.iter().flat_map(Entities::iter).map(|entity| entity.clone().into_inner()).map(|(uid, attrs, parents)| (uid, (attrs, parents))).collect();
        let types = Types::new(&config.group_entity_types)?;
        let actions = ACTIONS
            .into_iter()
            .map(|action| {
                let uid = EntityUid::from_type_name_and_id(types.action.clone(), EntityId::new(action));
                let entity = merged_entity(&known, uid.clone(), [("operation".to_string(), string(action))].into(), HashSet::new()).map_err(|f| f.message)?;
                Ok((action, (uid, entity)))
            })
            .collect::<Result<_, String>>()?;
        let server_type = "MCP".parse::<EntityTypeName>().map_err(|e| e.to_string())?;
        Ok(Engine {
            policies,
            authorizer: Authorizer::new(),
            base,
            known,
            actions,
            last_caller: RefCell::new(None),
            types,
            group_claims: config.group_claims,
            authorize_lists: config.authorize_lists,
            server: EntityUid::from_type_name_and_id(server_type, EntityId::new(workload)),
        })
    }

    /// Decides one call.
    pub fn decide(&self, identity: Option<&Identity>, call: &McpCall) -> Verdict {
        let Some(operation) = call.kind().map(operation) else {
            // The gateway asks only about the methods above; anything else is
            // a method this version does not know, refused rather than guessed.
            return forbid(format!("`{}` is not a method this authorizer decides.", call.method)).rule("unknown-method").into();
        };
        let (what, resource) = match (&operation.kind, call.name.as_deref()) {
            (Kind::List { .. }, _) if !self.authorize_lists => {
                // As in ToolHive: a list passes, and the gateway asks about each
                // of its items as if it were called, removing those refused.
                return permit().into();
            }
            (Kind::List { feature }, _) => (call.method.clone(), self.uid(&self.types.feature_type, feature)),
            (Kind::Item { feature, .. }, None) => return forbid(format!("The {} call names no {feature}.", call.method)).into(),
            (Kind::Item { feature, .. }, Some(name)) => {
                let entity_type = match *feature {
                    "tool" => &self.types.tool,
                    "prompt" => &self.types.prompt,
                    _ => &self.types.resource,
                };
                (format!("{} of `{name}`", call.method), self.uid(entity_type, name))
            }
        };
        match self.evaluate(identity, call, &operation, resource) {
            Ok(Evaluation::Allowed(Some(id))) => permit().rule(id.to_string()).into(),
            Ok(Evaluation::Allowed(None)) => permit().into(),
            Ok(Evaluation::Denied(id)) => {
                let rule = id.map_or_else(|| "default-deny".to_string(), |id| id.to_string());
                forbid(format!("{what} is not allowed for this caller.")).rule(rule).into()
            }
            // Fail closed, as ToolHive does: an error in any policy refuses the
            // call, even when another policy permits it.
            Err(Failure { policy, message }) => Verdict {
                decision: forbid(format!("{what} was refused: an error occurred while evaluating the authorization policies."))
                    .rule(policy.map_or_else(|| "evaluation-error".to_string(), |id| id.to_string())),
                trouble: Some(format!("{what}: {message}")),
            },
        }
    }

    fn evaluate(&self, identity: Option<&Identity>, call: &McpCall, operation: &Operation, resource: EntityUid) -> Result<Evaluation, Failure> {
        let caller = self.caller(identity)?;
        let (action, action_entity) =
            self.actions.get(operation.action).cloned().ok_or_else(|| Failure::from_message(format!("no action `{}`", operation.action)))?;

        let arguments = match operation.kind {
            Kind::Item { .. } => argument_attributes(&call.arguments()),
            Kind::List { .. } => HashMap::new(),
        };
        let mut attributes = HashMap::new();
        match operation.kind {
            Kind::Item { operation, feature } => {
                let name = call.name.as_deref().unwrap_or_default();
                if feature == "tool" {
                    attributes.extend(annotation_attributes(&call.annotations()));
                }
                attributes.extend(arguments.clone());
                // Last, so that nothing above can replace them.
                attributes.insert("name".into(), string(name));
                attributes.insert("operation".into(), string(operation));
                attributes.insert("feature".into(), string(feature));
                if feature == "resource" {
                    attributes.insert("uri".into(), string(name));
                }
            }
            Kind::List { feature } => {
                attributes.insert("type".into(), string(feature));
                attributes.insert("operation".into(), string("list"));
                attributes.insert("feature".into(), string(feature));
            }
        }
        let resource_entity = self.entity(resource.clone(), attributes, [self.server.clone()].into())?;

        let mut context = caller.claims.clone();
        context.extend(arguments);
        let context = Context::from_pairs(context).map_err(|e| Failure::from_message(format!("building the context: {}", one_line(&e))))?;
        let request = Request::new(caller.uid.clone(), action, resource, context, None).map_err(|e| Failure::from_message(one_line(&e)))?;
        // Upserted: `entities` may hold the tool or the action (merged above).
        let entities = caller
            .entities
            .clone()
            .upsert_entities([action_entity, resource_entity], None)
            .map_err(|e| Failure::from_message(format!("building the entities: {}", one_line(&e))))?;

        let response = self.authorizer.is_authorized(&request, &self.policies.set, &entities);
        let errors: Vec<_> = response.diagnostics().errors().collect();
        if !errors.is_empty() {
            let policy = errors
                .iter()
                .map(|error| match error {
                    cedar_policy::AuthorizationError::PolicyEvaluationError(e) => e.policy_id(),
                })
                .min_by_key(|id| self.rank(id))
                .cloned();
            let message = errors.iter().map(|error| one_line(error)).collect::<Vec<_>>().join("; ");
            return Err(Failure { policy, message });
        }
        // The policies that decided: permits for an allow, forbids for a deny.
        let first = response.diagnostics().reason().min_by_key(|id| self.rank(id)).cloned();
        Ok(match response.decision() {
            cedar_policy::Decision::Allow => Evaluation::Allowed(first),
            cedar_policy::Decision::Deny => Evaluation::Denied(first),
        })
    }

    /// The caller: `Client::"<subject>"` with the claims as `claim_*`, in its
    /// groups; with no identity (an anonymous workload),
    /// `Anonymous::"anonymous"`, in none. The last one is reused when the
    /// identity is the same.
    fn caller(&self, identity: Option<&Identity>) -> Result<Rc<Caller>, Failure> {
        let subject = identity.map(|identity| &identity.subject);
        let claims_json = identity.and_then(|identity| identity.claims_json.as_ref());
        if let Some(last) = self.last_caller.borrow().as_ref()
            && last.subject.as_ref() == subject
            && last.claims_json.as_ref() == claims_json
        {
            return Ok(Rc::clone(last));
        }
        let claims_map = identity.map(Identity::claims).unwrap_or_default();
        let claims: HashMap<String, RestrictedExpression> =
            claims_map.iter().filter_map(|(name, value)| Some((format!("claim_{name}"), to_cedar(value)?))).collect();
        let (uid, groups) = match identity {
            Some(identity) => (self.uid(&self.types.client, &identity.subject), groups(&claims_map, &self.group_claims)),
            None => (self.uid(&self.types.anonymous, "anonymous"), Vec::new()),
        };
        let parents = groups.iter().flat_map(|group| self.types.groups.iter().map(|group_type| self.uid(group_type, group))).collect();
        let entity = self.entity(uid.clone(), claims.clone(), parents)?;
        let entities = match &self.base {
            None => Entities::from_entities([entity], None),
            Some(base) => base.clone().upsert_entities([entity], None),
        }
        .map_err(|e| Failure::from_message(format!("building the entities: {}", one_line(&e))))?;
        let caller = Rc::new(Caller { subject: subject.cloned(), claims_json: claims_json.cloned(), uid, entities, claims });
        *self.last_caller.borrow_mut() = Some(Rc::clone(&caller));
        Ok(caller)
    }

    fn entity(&self, uid: EntityUid, attributes: HashMap<String, RestrictedExpression>, parents: HashSet<EntityUid>) -> Result<Entity, Failure> {
        merged_entity(&self.known, uid, attributes, parents)
    }

    fn uid(&self, entity_type: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(entity_type.clone(), EntityId::new(id))
    }

    fn rank(&self, id: &PolicyId) -> usize {
        self.policies.rank.get(id).copied().unwrap_or(usize::MAX)
    }
}

enum Evaluation {
    /// The first permit that applied (Cedar always names one).
    Allowed(Option<PolicyId>),
    /// The first forbid that applied, if any (none: nothing permitted).
    Denied(Option<PolicyId>),
}

/// Why a call could not be evaluated.
struct Failure {
    /// The first policy whose evaluation failed, when a policy did.
    policy: Option<PolicyId>,
    message: String,
}

impl Failure {
    fn from_message(message: String) -> Failure {
        Failure { policy: None, message }
    }
}

/// The entity `uid` with `attributes` and `parents`, over what `entities`
/// says of the same uid.
fn merged_entity(
    known: &HashMap<EntityUid, Parts>,
    uid: EntityUid,
    attributes: HashMap<String, RestrictedExpression>,
    parents: HashSet<EntityUid>,
) -> Result<Entity, Failure> {
    let (mut all_attributes, mut all_parents) = known.get(&uid).cloned().unwrap_or_default();
    all_attributes.extend(attributes);
    all_parents.extend(parents);
    Entity::new(uid.clone(), all_attributes, all_parents).map_err(|e| Failure::from_message(format!("building {uid}: {}", one_line(&e))))
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_owned())
}

/// The tool's annotations as attributes: the four hints when they are
/// booleans, and `title` when it is a string.
fn annotation_attributes(annotations: &Map<String, Value>) -> HashMap<String, RestrictedExpression> {
    let mut attributes = HashMap::new();
    for hint in HINTS {
        if let Some(Value::Bool(b)) = annotations.get(hint) {
            attributes.insert(hint.to_string(), RestrictedExpression::new_bool(*b));
        }
    }
    if let Some(Value::String(title)) = annotations.get("title") {
        attributes.insert("title".into(), string(title));
    }
    attributes
}

/// The call's arguments as `arg_<name>`. A list, object or null argument also
/// gets `arg_<name>_present = true`: ToolHive gives only that for them, and
/// its users' policies test it. Where an argument's own name collides with
/// such a marker (`x_present` beside a list `x`), the argument wins.
fn argument_attributes(arguments: &Map<String, Value>) -> HashMap<String, RestrictedExpression> {
    let mut attributes: HashMap<String, RestrictedExpression> =
        arguments.iter().filter_map(|(name, value)| Some((format!("arg_{name}"), to_cedar(value)?))).collect();
    for (name, value) in arguments {
        if matches!(value, Value::Array(_) | Value::Object(_) | Value::Null) {
            attributes.entry(format!("arg_{name}_present")).or_insert_with(|| RestrictedExpression::new_bool(true));
        }
    }
    attributes
}

/// The caller's groups: the string elements of each listed claim that is a
/// list, in order, without repeats. A name is a top-level claim, or else a
/// dotted path into nested claims (`realm_access.roles`), as in ToolHive.
fn groups(claims: &Map<String, Value>, names: &[String]) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for name in names {
        if let Some(Value::Array(items)) = claim(claims, name) {
            for item in items {
                if let Value::String(group) = item
                    && !groups.contains(group)
                {
                    groups.push(group.clone());
                }
            }
        }
    }
    groups
}

fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut segments = name.split('.');
    let first = claims.get(segments.next()?)?;
    segments.try_fold(first, |value, segment| value.as_object()?.get(segment))
}

/// Cedar's messages on one line, for a log line or an `init` error.
fn one_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An error and its causes ("error during entity deserialization" alone does
/// not say which entity or why), on one line.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = one_line(&error);
    let mut cause = error.source();
    while let Some(inner) = cause {
        let message = one_line(&inner);
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = inner.source();
    }
    text
}
