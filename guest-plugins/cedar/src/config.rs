//! The policy's `config` table, parsed and checked once in `init`.

use serde::Deserialize;
use serde_json::Value;

/// The `config` table as written. `policies`, `schema` and `entities` take
/// more than one shape, so they arrive as JSON and are checked here, with
/// errors that name the key (serde's "did not match any variant" would not).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    policies: Option<Value>,
    schema: Option<Value>,
    entities: Option<Value>,
    group_claims: Option<Vec<String>>,
    group_entity_types: Option<Vec<String>>,
    #[serde(default)]
    authorize_lists: bool,
    // Components cannot read files: the gateway reads these and passes the
    // text inline as `policies`, `schema` and `entities`. Accepted here so that
    // one left unread is reported as such, not as a misspelt key.
    policies_file: Option<Value>,
    schema_file: Option<Value>,
    entities_file: Option<Value>,
}

/// Where a piece of policy text came from, for error messages.
#[derive(Debug, Clone)]
pub struct Source {
    /// The key path, e.g. `config.policies` or `config.policies[2]`.
    pub key: String,
    pub text: String,
}

/// The Cedar schema as given.
#[derive(Debug, Clone)]
pub enum SchemaSource {
    /// Text in the human-readable Cedar schema format.
    Cedar(String),
    /// A schema in Cedar's JSON format (as text or as a table).
    Json(Value),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub policies: Vec<Source>,
    pub schema: Option<SchemaSource>,
    /// Entities in Cedar's JSON entity format (a list).
    pub entities: Option<Value>,
    pub group_claims: Vec<String>,
    pub group_entity_types: Vec<String>,
    pub authorize_lists: bool,
}

/// ToolHive's group claims: Entra ID, Okta, Auth0 (`groups`), Keycloak
/// (`roles`), Cognito (`cognito:groups`).
const DEFAULT_GROUP_CLAIMS: [&str; 3] = ["groups", "roles", "cognito:groups"];

/// ToolHive's `THVGroup`, so its policies work unchanged, and the plain
/// `Group` a newcomer to Cedar would write.
const DEFAULT_GROUP_ENTITY_TYPES: [&str; 2] = ["Group", "THVGroup"];

impl Config {
    pub fn new(file: File) -> Result<Config, String> {
        for (key, value) in [("policies_file", &file.policies_file), ("schema_file", &file.schema_file), ("entities_file", &file.entities_file)] {
            if value.is_some() {
                let inline = key.trim_end_matches("_file");
                return Err(format!(
                    "config.{key}: the gateway reads this file and passes its text as `{inline}`, but it reached the component unread; give `{inline}` inline instead"
                ));
            }
        }
        let policies = match file.policies {
            None => return Err("config.policies: missing; give the Cedar policies as text (or a list of texts), or `policies_file`".into()),
            Some(value) => policy_sources(value)?,
        };
        let schema = file.schema.map(schema_source).transpose()?;
        let entities = file.entities.map(entities_value).transpose()?;
        let group_claims = match file.group_claims {
            None => DEFAULT_GROUP_CLAIMS.iter().map(|s| s.to_string()).collect(),
            Some(claims) => {
                if let Some(n) = claims.iter().position(String::is_empty) {
                    return Err(format!("config.group_claims[{n}]: a claim name cannot be empty"));
                }
                claims
            }
        };
        let group_entity_types = match file.group_entity_types {
            None => DEFAULT_GROUP_ENTITY_TYPES.iter().map(|s| s.to_string()).collect(),
            Some(types) => {
                for (n, name) in types.iter().enumerate() {
                    if name.parse::<cedar_policy::EntityTypeName>().is_err() {
                        return Err(format!("config.group_entity_types[{n}]: {name:?} is not a Cedar entity type name (like `Group` or `Org::Team`)"));
                    }
                }
                types
            }
        };
        Ok(Config { policies, schema, entities, group_claims, group_entity_types, authorize_lists: file.authorize_lists })
    }
}

/// `policies`: one text with any number of policies, or (as in ToolHive's
/// `cedar.policies`) a list of texts.
fn policy_sources(value: Value) -> Result<Vec<Source>, String> {
    let sources = match value {
        Value::String(text) => vec![Source { key: "config.policies".into(), text }],
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(n, item)| match item {
                Value::String(text) => Ok(Source { key: format!("config.policies[{n}]"), text }),
                other => Err(format!("config.policies[{n}]: expected Cedar policy text, got {}", kind(&other))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => return Err(format!("config.policies: expected Cedar policy text or a list of texts, got {}", kind(&other))),
    };
    if sources.iter().all(|source| source.text.trim().is_empty()) {
        return Err("config.policies: no policy given; with none, every call would be refused".into());
    }
    Ok(sources)
}

/// `schema`: Cedar schema text, or JSON schema as text or as a table.
fn schema_source(value: Value) -> Result<SchemaSource, String> {
    match value {
        Value::String(text) if text.trim_start().starts_with('{') => match serde_json::from_str(&text) {
            Ok(json) => Ok(SchemaSource::Json(json)),
            Err(e) => Err(format!("config.schema: the text starts with `{{` but is not JSON: {e}")),
        },
        Value::String(text) if text.trim().is_empty() => Err("config.schema: empty; leave `schema` out to skip validation".into()),
        Value::String(text) => Ok(SchemaSource::Cedar(text)),
        json @ Value::Object(_) => Ok(SchemaSource::Json(json)),
        other => Err(format!("config.schema: expected a Cedar schema (text, or JSON schema as text or a table), got {}", kind(&other))),
    }
}

/// `entities`: a list of entities in Cedar's JSON format, or that list as
/// text (ToolHive's `entities_json`).
fn entities_value(value: Value) -> Result<Value, String> {
    let value = match value {
        Value::String(text) => serde_json::from_str(&text).map_err(|e| format!("config.entities: not JSON: {e}"))?,
        other => other,
    };
    match value {
        list @ Value::Array(_) => Ok(list),
        other => Err(format!("config.entities: expected a list of entities in Cedar's JSON format, got {}", kind(&other))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<Config, String> {
        Config::new(portcullis_plugin::parse_config(json)?)
    }

    #[test]
    fn defaults() {
        let c = config(r#"{"policies": "permit(principal, action, resource);"}"#).unwrap();
        assert_eq!(c.policies.len(), 1);
        assert_eq!(c.policies[0].key, "config.policies");
        assert!(c.schema.is_none() && c.entities.is_none() && !c.authorize_lists);
        assert_eq!(c.group_claims, ["groups", "roles", "cognito:groups"]);
        assert_eq!(c.group_entity_types, ["Group", "THVGroup"]);
    }

    #[test]
    fn shapes_are_accepted() {
        let c = config(
            r#"{"policies": ["permit(principal, action, resource);", "forbid(principal, action, resource);"],
                "schema": "entity User;", "entities": "[]", "group_claims": ["teams"], "group_entity_types": ["Org::Team"],
                "authorize_lists": true}"#,
        )
        .unwrap();
        assert_eq!(c.policies[1].key, "config.policies[1]");
        assert!(matches!(c.schema, Some(SchemaSource::Cedar(_))));
        assert_eq!(c.entities, Some(serde_json::json!([])));
        assert_eq!(
            (c.group_claims.as_slice(), c.group_entity_types.as_slice(), c.authorize_lists),
            (&["teams".to_string()][..], &["Org::Team".to_string()][..], true)
        );
        let json_text = config(r#"{"policies": "permit(principal, action, resource);", "schema": " {\"\": {\"entityTypes\": {}, \"actions\": {}}}"}"#).unwrap();
        assert!(matches!(json_text.schema, Some(SchemaSource::Json(_))));
        let json_table = config(r#"{"policies": "permit(principal, action, resource);", "schema": {"": {"entityTypes": {}, "actions": {}}}}"#).unwrap();
        assert!(matches!(json_table.schema, Some(SchemaSource::Json(_))));
        let entity_list =
            config(r#"{"policies": "permit(principal, action, resource);", "entities": [{"uid": {"type": "Group", "id": "a"}, "attrs": {}, "parents": []}]}"#);
        assert!(entity_list.unwrap().entities.is_some());
    }

    #[test]
    fn errors_name_the_key() {
        let error = |json: &str| config(json).unwrap_err();
        assert!(error("{}").starts_with("config.policies: missing"));
        assert!(error(r#"{"policies": ""}"#).starts_with("config.policies: no policy given"));
        assert!(error(r#"{"policies": ["  ", "\n"]}"#).starts_with("config.policies: no policy given"));
        assert!(error(r#"{"policies": 3}"#).starts_with("config.policies: expected Cedar policy text or a list"));
        assert!(error(r#"{"policies": ["permit(principal, action, resource);", 3]}"#).starts_with("config.policies[1]: expected Cedar policy text"));
        let p = r#""policies": "permit(principal, action, resource);""#;
        assert!(error(&format!("{{{p}, \"schema\": \"{{ nope\"}}")).starts_with("config.schema: the text starts with `{` but is not JSON"));
        assert!(error(&format!("{{{p}, \"schema\": \"\"}}")).starts_with("config.schema: empty"));
        assert!(error(&format!("{{{p}, \"schema\": [1]}}")).starts_with("config.schema: expected a Cedar schema"));
        assert!(error(&format!("{{{p}, \"entities\": \"[\"}}")).starts_with("config.entities: not JSON"));
        assert!(error(&format!("{{{p}, \"entities\": {{}}}}")).starts_with("config.entities: expected a list"));
        assert!(error(&format!("{{{p}, \"group_claims\": [\"groups\", \"\"]}}")).starts_with("config.group_claims[1]: a claim name cannot be empty"));
        assert!(
            error(&format!("{{{p}, \"group_entity_types\": [\"Group\", \"not a type\"]}}"))
                .starts_with("config.group_entity_types[1]: \"not a type\" is not a Cedar entity type")
        );
        assert!(error(&format!("{{{p}, \"group_claims\": \"groups\"}}")).starts_with("config.group_claims: invalid type"));
        assert!(error(&format!("{{{p}, \"authorize_lists\": \"yes\"}}")).starts_with("config.authorize_lists: invalid type"));
        assert!(error(&format!("{{{p}, \"policy\": \"x\"}}")).contains("unknown field `policy`"));
        assert!(error(r#"{"policies_file": "p.cedar"}"#).starts_with("config.policies_file: the gateway reads this file and passes its text as `policies`"));
        assert!(error(&format!("{{{p}, \"schema_file\": \"s\"}}")).starts_with("config.schema_file:"));
        assert!(error(&format!("{{{p}, \"entities_file\": \"e\"}}")).starts_with("config.entities_file:"));
    }
}
