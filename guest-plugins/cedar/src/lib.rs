//! `builtin:cedar`: decides each MCP call with Cedar policies.
//!
//! The gateway asks about each `tools/call`, `prompts/get` and
//! `resources/read` (and about each item of a list it filters, as if that item
//! were called). The call becomes a Cedar request in ToolHive's model, so
//! ToolHive's policies work unchanged: `Client::"<sub>"` in its groups does
//! `Action::"call_tool"` on `Tool::"<name>"`, with the token's claims as
//! `claim_*` and the call's arguments as `arg_*`; docs/authorization.md has all of it and
//! where Portcullis differs.
//!
//! Allowed when a `permit` applies and no `forbid` does; the audit log gets the
//! first permit's id (its `@id`, else `policyN`). Otherwise refused (403) with
//! the first `forbid` that applied, or `default-deny`. An error while
//! evaluating any policy (say, reading an attribute the call does not have)
//! refuses the call, and is logged at warn.
//!
//! Everything that does not depend on the call (the policy set, checked
//! against the schema; the fixed entities) is built once, in `init`.
//!
//! Configuration:
//! - `policies` (required): Cedar policy text, or a list of texts (ToolHive's
//!   `cedar.policies`). The gateway reads `policies_file` into it.
//! - `schema`: a Cedar schema, as schema text or JSON; when given, the
//!   policies are validated against it (strict mode) and any error refuses the
//!   configuration. The gateway reads `schema_file` into it.
//! - `entities`: fixed entities in Cedar's JSON entity format (ToolHive's
//!   `entities_json`), e.g. groups inside roles. The gateway reads
//!   `entities_file` into it.
//! - `group_claims`: the claims listing the caller's groups, which become the
//!   caller's parents (default `["groups", "roles", "cognito:groups"]`).
//! - `group_entity_types`: the entity types of those parents (default
//!   `["Group", "THVGroup"]`: each group is both).
//! - `authorize_lists`: `true` asks the policies about the list calls
//!   themselves (`Action::"list_tools"` on `FeatureType::"tool"`, ...); by
//!   default they pass, and only their items are filtered.

mod config;
mod engine;
mod policies;
mod values;

#[cfg(test)]
mod tests;

use engine::Engine;
use portcullis_plugin::prelude::*;

struct Cedar {
    engine: Engine,
}

impl Authorizer for Cedar {
    type Config = config::File;

    fn init(file: config::File, context: &Context) -> Result<Self, String> {
        let config = config::Config::new(file)?;
        Ok(Cedar { engine: Engine::new(config, &context.workload)? })
    }

    fn authorize(&self, _request: &Request, identity: Option<&Identity>, call: &McpCall) -> Decision {
        let verdict = self.engine.decide(identity, call);
        if let Some(trouble) = &verdict.trouble {
            log::warn(&format!("refused: {trouble}"));
        }
        verdict.decision
    }
}

export_authorizer!(Cedar);
