//! `builtin:scopes`: which OAuth scopes a caller needs for each tool, prompt
//! or resource, without a policy language.
//!
//! Each MCP call the gateway asks about is matched against `rules` in order;
//! the first rule for the call's kind (`tools/call` → `tool`, `prompts/get` →
//! `prompt`, `resources/read` → `resource`) whose glob matches the name (the
//! resource's URI) decides. When the caller's token holds every scope the rule
//! lists (`scope` claim, space-separated, or `scp`), the call is allowed;
//! otherwise the gateway answers 403 `insufficient_scope` with the rule's
//! scopes, so an OAuth client can get a token with them and retry. An
//! anonymous caller holds no scopes. List calls (`tools/list`, ...) pass: the
//! gateway asks about each item and removes the ones that would not.
//!
//! Configuration:
//! - `rules`: a list of `{ tool = "<glob>", scopes = ["..."] }`, with `prompt`
//!   or `resource` in place of `tool` (exactly one of the three). In a glob,
//!   `*` matches any run of characters and `?` one character; nothing else is
//!   special. `scopes = []` lets anyone through.
//! - `default`: `"allow"` (the default) or `"deny"`, for calls no rule matches.

mod glob;
mod rules;

use portcullis_plugin::prelude::*;
use rules::Rules;

struct Scopes {
    rules: Rules,
}

impl Authorizer for Scopes {
    type Config = rules::File;

    fn init(file: rules::File, _context: &Context) -> Result<Self, String> {
        Ok(Scopes { rules: Rules::new(file)? })
    }

    fn authorize(&self, _request: &Request, identity: Option<&Identity>, call: &McpCall) -> Decision {
        self.rules.decide(identity, call)
    }
}

export_authorizer!(Scopes);
