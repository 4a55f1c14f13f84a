//! A test authorizer. `config.mode`:
//! - `allow`: allows every call;
//! - `trap`: panics on every call (the gateway must fail closed);
//! - `facts`: refuses every call with a reason that is the JSON of what it
//!   was given (the call, the identity's subject, and the request's
//!   `mcp-calls`), so tests can see the facts reach components.

use serde::Deserialize;
use std::cell::RefCell;

wit_bindgen::generate!({ path: "../../../wit", world: "portcullis:auth/authorizer" });

use exports::portcullis::auth::authorize::{Decision, Denial, Guest as Authorize};
use exports::portcullis::auth::lifecycle::{Guest as Lifecycle, Settings};
use portcullis::auth::mcp::McpCall;
use portcullis::auth::types::{Identity, Manifest, Request};

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: String,
}

thread_local! {
    static CONFIG: RefCell<Config> = RefCell::new(Config::default());
}

struct Authorizer;

impl Lifecycle for Authorizer {
    fn init(settings: Settings) -> Result<Manifest, String> {
        let config: Config = serde_json::from_str(&settings.config_json).map_err(|e| format!("bad authorizer config: {e}"))?;
        if !matches!(config.mode.as_str(), "allow" | "trap" | "facts") {
            return Err(format!("unknown mode {:?}", config.mode));
        }
        CONFIG.with(|c| *c.borrow_mut() = config);
        Ok(Manifest { consumes: Vec::new(), forwards: Vec::new(), produces: Vec::new() })
    }
}

fn call_json(call: &McpCall) -> serde_json::Value {
    serde_json::json!({
        "method": call.method,
        "name": call.name,
        "arguments": call.arguments_json,
        "annotations": call.annotations_json,
        "id": call.id,
    })
}

impl Authorize for Authorizer {
    fn authorize(request: &Request, identity: Option<Identity>, call: McpCall) -> Decision {
        match CONFIG.with(|c| c.borrow().mode.clone()).as_str() {
            "trap" => panic!("the test authorizer traps"),
            "facts" => {
                let facts = serde_json::json!({
                    "call": call_json(&call),
                    "subject": identity.map(|i| i.subject),
                    "request_calls": request.mcp_calls().iter().map(call_json).collect::<Vec<_>>(),
                });
                Decision::Deny(Denial { reason: facts.to_string(), rule: Some("facts".into()) })
            }
            _ => Decision::Allow(Some("allow-all".into())),
        }
    }
}

export!(Authorizer);
