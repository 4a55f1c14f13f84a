//! Turning the configured text into a checked policy set: parsing (errors
//! with line and column), naming each policy, and validating against the
//! schema when there is one.

use crate::config::{SchemaSource, Source};
use cedar_policy::{PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;
use std::collections::HashMap;

/// The policies, named, with their source order.
pub struct Policies {
    pub set: PolicySet,
    /// Each policy's place in the configuration (0 is the first written), so
    /// that "the first determining policy" does not depend on hash order.
    pub rank: HashMap<PolicyId, usize>,
    /// Which source (index into the configured texts) each policy came from.
    origin: HashMap<PolicyId, usize>,
}

impl Policies {
    /// Parses every source. A policy is named by its `@id("...")` annotation
    /// when it has one (ToolHive users annotate), else `policyN`, N counting
    /// every policy in the order written from 0 (ToolHive's names for a list
    /// of one policy per entry).
    pub fn parse(sources: &[Source]) -> Result<Policies, String> {
        let mut set = PolicySet::new();
        let mut rank = HashMap::new();
        let mut origin: HashMap<PolicyId, usize> = HashMap::new();
        for (index, source) in sources.iter().enumerate() {
            let parsed: PolicySet = source
                .text
                .parse()
                .map_err(|errors: cedar_policy::ParseErrors| errors.iter().map(|error| describe(error, source)).collect::<Vec<_>>().join("; "))?;
            if let Some(template) = parsed.templates().next() {
                let at = location(source.text.find(&template.to_string()), source);
                return Err(format!(
                    "{at}a template (a policy with `?principal` or `?resource`) is not supported: nothing links it, so it would never apply; name the entity instead"
                ));
            }
            // The parser names the policies of one text policy0, policy1, ...
            // in the order written; sort by that number to keep the order.
            let mut policies: Vec<_> = parsed.policies().collect();
            policies.sort_by_key(|policy| policy.id().to_string().trim_start_matches("policy").parse::<usize>().unwrap_or(usize::MAX));
            // Where each policy starts, for errors: a policy displays as its
            // own text, found after the one before it.
            let mut searched = 0;
            for policy in policies {
                let text = policy.to_string();
                let offset = source.text.get(searched..).and_then(|rest| rest.find(&text)).map(|at| searched + at);
                if let Some(at) = offset {
                    searched = at + text.len();
                }
                let n = rank.len();
                let id = match policy.annotation("id") {
                    Some(id) if id.trim().is_empty() => {
                        let at = location(offset, source);
                        return Err(format!("{at}`@id(\"\")`: a policy's id cannot be empty"));
                    }
                    Some(id) => PolicyId::new(id),
                    None => PolicyId::new(format!("policy{n}")),
                };
                if let Some(&first) = origin.get(&id) {
                    let at = location(offset, source);
                    return Err(format!("{at}two policies are named `{id}` (the other is in {}); give each a different `@id`", sources[first].key));
                }
                set.add(policy.new_id(id.clone())).map_err(|e| format!("{}: {e}", source.key))?;
                origin.insert(id.clone(), index);
                rank.insert(id, n);
            }
        }
        Ok(Policies { set, rank, origin })
    }

    /// Validates the policies against `schema` in strict mode; the first
    /// errors (each with the policy's place) refuse the configuration.
    pub fn validate(&self, schema: &Schema, sources: &[Source]) -> Result<(), String> {
        let result = Validator::new(schema.clone()).validate(&self.set, ValidationMode::Strict);
        if result.validation_passed() {
            return Ok(());
        }
        // Cedar's messages name the policy ("for policy `x`, ..."); the
        // location says where it is written.
        let errors: Vec<String> = result
            .validation_errors()
            .take(MAX_REPORTED)
            .map(|error| match self.source_of(error.policy_id(), sources) {
                Some(source) => describe(error, source),
                None => flat(error),
            })
            .collect();
        Err(format!("{} (validating against `config.schema`)", errors.join("; ")))
    }

    /// Which source text holds the policy `id`.
    fn source_of<'a>(&self, id: &PolicyId, sources: &'a [Source]) -> Option<&'a Source> {
        sources.get(*self.origin.get(id)?)
    }
}

/// Validation can find an error per policy and attribute; a handful says enough.
const MAX_REPORTED: usize = 5;

/// Parses `schema` (Cedar schema text, or JSON).
pub fn parse_schema(schema: &SchemaSource) -> Result<Schema, String> {
    match schema {
        SchemaSource::Cedar(text) => {
            let source = Source { key: "config.schema".into(), text: text.clone() };
            Schema::from_cedarschema_str(text).map(|(schema, _warnings)| schema).map_err(|error| describe(&error, &source))
        }
        SchemaSource::Json(json) => Schema::from_json_value(json.clone()).map_err(|error| format!("config.schema: {}", flat(&error))),
    }
}

/// `key: line L, column C: message (help)`, with the position of the
/// diagnostic's first label when it has one.
pub fn describe(diagnostic: &dyn Diagnostic, source: &Source) -> String {
    let offset = diagnostic.labels().and_then(|mut labels| labels.next()).map(|label| label.offset());
    let mut text = format!("{}{}", location(offset, source), flat(diagnostic));
    if let Some(help) = diagnostic.help() {
        text.push_str(&format!(" ({help})"));
    }
    text
}

/// `key: line L, column C: ` for a byte offset into the source, or `key: `.
fn location(offset: Option<usize>, source: &Source) -> String {
    match offset {
        Some(offset) => {
            let (line, column) = line_and_column(&source.text, offset);
            format!("{}: line {line}, column {column}: ", source.key)
        }
        None => format!("{}: ", source.key),
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let (mut line, mut column) = (1, 1);
    for (at, c) in text.char_indices() {
        if at >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// An error's message on one line (some of Cedar's span several).
fn flat(error: &dyn std::fmt::Display) -> String {
    error.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(texts: &[&str]) -> Vec<Source> {
        match texts {
            [one] => vec![Source { key: "config.policies".into(), text: one.to_string() }],
            many => many.iter().enumerate().map(|(n, text)| Source { key: format!("config.policies[{n}]"), text: text.to_string() }).collect(),
        }
    }

    fn ids(policies: &Policies) -> Vec<String> {
        let mut ids: Vec<_> = policies.rank.iter().map(|(id, n)| (*n, id.to_string())).collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    #[test]
    fn policies_are_named_by_id_or_position() {
        let one = Policies::parse(&sources(&[r#"
            permit(principal, action, resource);
            @id("no-deploy") forbid(principal, action, resource == Tool::"deploy");
            permit(principal, action == Action::"get_prompt", resource);
        "#]))
        .unwrap();
        assert_eq!(ids(&one), ["policy0", "no-deploy", "policy2"]);
        // A list counts on across its entries, like ToolHive's `policy<index>`.
        let list =
            Policies::parse(&sources(&["permit(principal, action, resource);", "forbid(principal, action, resource); permit(principal, action, resource);"]))
                .unwrap();
        assert_eq!(ids(&list), ["policy0", "policy1", "policy2"]);
    }

    #[test]
    fn parse_errors_say_where() {
        let error = Policies::parse(&sources(&["permit(principal, action, resource);\n  permit(principal, action resource);"])).err().unwrap();
        assert!(error.starts_with("config.policies: line 2, column "), "{error}");
        let error = Policies::parse(&sources(&["permit(principal, action, resource);", "permit(principal,\naction,\nresource) when { nope };"])).err().unwrap();
        assert!(error.starts_with("config.policies[1]: line 3, column "), "{error}");
    }

    #[test]
    fn ids_must_be_distinct_and_templates_are_refused() {
        let error =
            Policies::parse(&sources(&[r#"@id("a") permit(principal, action, resource);"#, r#"@id("a") forbid(principal, action, resource);"#])).err().unwrap();
        assert!(error.starts_with("config.policies[1]: line 1, column 1: two policies are named `a` (the other is in config.policies[0])"), "{error}");
        // An `@id` may not take a generated name that another policy already has.
        let error = Policies::parse(&sources(&[r#"permit(principal, action, resource); @id("policy0") forbid(principal, action, resource);"#])).err().unwrap();
        assert!(error.contains("two policies are named `policy0`"), "{error}");
        let error = Policies::parse(&sources(&[r#"@id(" ") permit(principal, action, resource);"#])).err().unwrap();
        assert!(error.contains("cannot be empty"), "{error}");
        let error = Policies::parse(&sources(&["permit(principal, action, resource);\npermit(principal == ?principal, action, resource);"])).err().unwrap();
        assert!(error.starts_with("config.policies: line 2, column 1: a template"), "{error}");
    }

    #[test]
    fn line_and_column_count_characters() {
        assert_eq!(line_and_column("abc", 0), (1, 1));
        assert_eq!(line_and_column("abc\ndef", 5), (2, 2));
        assert_eq!(line_and_column("é\nx", 3), (2, 1));
        assert_eq!(line_and_column("éé", 2), (1, 2));
        assert_eq!(line_and_column("abc", 99), (1, 4));
    }
}
