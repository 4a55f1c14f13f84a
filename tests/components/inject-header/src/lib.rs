//! A test credential injector: sets `config.header` to `config.value`, or denies
//! with 401 when `config.deny` is true.

use serde::Deserialize;
use std::cell::RefCell;

wit_bindgen::generate!({ path: "../../../wit", world: "portcullis:auth/credential-injector" });

use exports::portcullis::auth::inject::Guest as Inject;
use exports::portcullis::auth::lifecycle::{Guest as Lifecycle, Settings};
use portcullis::auth::types::{Deny, Header, HeaderEdit, Injection, Manifest, Request};

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Config {
    header: String,
    value: String,
    #[serde(default)]
    deny: bool,
}

thread_local! {
    static CONFIG: RefCell<Config> = RefCell::new(Config::default());
}

struct Injector;

impl Lifecycle for Injector {
    fn init(settings: Settings) -> Result<Manifest, String> {
        let config: Config = serde_json::from_str(&settings.config_json).map_err(|e| format!("bad injector config: {e}"))?;
        let manifest = Manifest { consumes: Vec::new(), forwards: Vec::new(), produces: vec![config.header.clone(), "x-injector-saw-credential".into()] };
        CONFIG.with(|c| *c.borrow_mut() = config);
        Ok(manifest)
    }
}

impl Inject for Injector {
    fn inject(request: &Request) -> Injection {
        let config = CONFIG.with(|c| c.borrow().clone());
        if config.deny {
            return Injection::Deny(Deny { status: 401, headers: vec![], body: "{\"error\":\"login_required\"}".into() });
        }
        // Report what the injector saw, so tests can check the inbound edits came first.
        let saw_credential = !request.header("x-fixture-credential").is_empty();
        Injection::Forward(vec![
            HeaderEdit::Set(Header { name: config.header, value: config.value }),
            HeaderEdit::Set(Header { name: "x-injector-saw-credential".into(), value: saw_credential.to_string() }),
        ])
    }
}

export!(Injector);
