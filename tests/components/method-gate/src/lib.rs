//! A test authenticator that decides on the MCP message: it admits, without
//! any credential, a message whose calls all use one of `config.methods`
//! (e.g. `initialize`, `tools/list`: discovery open to all), and abstains on
//! anything else. Because it imports `request.mcp-calls`, the gateway reads
//! the message before the inbound chain decides.

use serde::Deserialize;
use std::cell::RefCell;

wit_bindgen::generate!({ path: "../../../wit", world: "portcullis:auth/authenticator" });

use exports::portcullis::auth::authenticate::Guest as Authenticate;
use exports::portcullis::auth::lifecycle::{Guest as Lifecycle, Settings};
use portcullis::auth::types::{Allow, Identity, Manifest, Request, Verdict};

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Config {
    methods: Vec<String>,
}

thread_local! {
    static CONFIG: RefCell<Config> = RefCell::new(Config::default());
}

struct Gate;

impl Lifecycle for Gate {
    fn init(settings: Settings) -> Result<Manifest, String> {
        let config: Config = serde_json::from_str(&settings.config_json).map_err(|e| format!("bad method-gate config: {e}"))?;
        CONFIG.with(|c| *c.borrow_mut() = config);
        Ok(Manifest { consumes: Vec::new(), forwards: Vec::new(), produces: Vec::new() })
    }
}

impl Authenticate for Gate {
    fn authenticate(request: &Request) -> Verdict {
        let calls = request.mcp_calls();
        let open = !calls.is_empty() && CONFIG.with(|c| calls.iter().all(|call| c.borrow().methods.contains(&call.method)));
        match open {
            true => Verdict::Allow(Allow { identity: Identity { subject: "anonymous-discovery".into(), issuer: None, claims_json: None }, edits: Vec::new() }),
            false => Verdict::Abstain,
        }
    }
}

export!(Gate);
