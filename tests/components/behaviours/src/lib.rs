//! A test authenticator whose behaviour is chosen by its `config.mode`:
//!
//! - `allow`, `deny`, `abstain`: the three verdicts (`tag` names the component
//!   in the header `x-fixture-allowed-by` it sets, or in the deny body).
//! - `trap`: panics. `loop`: never returns. `grow`: allocates without bound.
//!   `recurse`: recurses without bound (a stack overflow).
//! - `log-flood`: writes 10 000 log lines, then allows.
//! - `http`: calls `config.url` and reports the outcome in a 418 deny body.
//! - `secret`: reads `config.secret` and reports the outcome (never the value).
//! - `secret-write`: writes `config.secret` and reports the outcome.
//! - `bad-status`: denies with status 200, which the gateway must refuse.
//! - `bad-edit`: allows with an edit of the `host` header, which the gateway must refuse.
//! - `undeclared-edit`: allows with a `set` of a header its manifest does not produce.
//! - `echo`: denies with 418 and a body describing the request as read through the view.
//!
//! Manifest: consumes `x-fixture-credential` (or `config.consumes`), produces
//! `x-fixture-allowed-by` and `config.claim_header` (set from `x-fixture-claim`).
//!
//! `only_if_header`: abstain unless the request carries this header.
//! `mode_from`: a request header whose value, when present, replaces `mode` for
//! this call (one workload that allows, and faults on demand).
//! `report`: `allow` also sets `x-fixture-calls`, how many calls this instance
//! has answered (this one included: 1 on a fresh instance), and
//! `x-fixture-build`, the build marker [`BUILD`].

use serde::Deserialize;
use std::cell::{Cell, RefCell};

wit_bindgen::generate!({ path: "../../../wit", world: "portcullis:auth/authenticator" });

use exports::portcullis::auth::authenticate::Guest as Authenticate;
use exports::portcullis::auth::lifecycle::{Guest as Lifecycle, Settings};
use portcullis::auth::http_client::{self, OutgoingRequest};
use portcullis::auth::secrets;
use portcullis::auth::types::{Allow, Deny, Header, HeaderEdit, Identity, Manifest, Request, Verdict};

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: String,
    #[serde(default)]
    tag: String,
    only_if_header: Option<String>,
    url: Option<String>,
    secret: Option<String>,
    /// `allow` mode: also set this header to the request's `x-fixture-claim` (declared in `produces`).
    claim_header: Option<String>,
    /// `allow` mode: sleep this long first (a slow component that waits, not spins).
    sleep_ms: Option<u64>,
    /// Manifest override: consumed headers (default `x-fixture-credential`).
    consumes: Option<Vec<String>>,
    /// A request header that, when present, names this call's mode.
    mode_from: Option<String>,
    /// `allow` mode: report this instance's call count and build (declared in `produces`).
    #[serde(default)]
    report: bool,
}

/// This build's marker, reported by `report`. A test makes "another build" of
/// the fixture by rewriting these bytes in the `.wasm` (same length, so the
/// module stays valid), e.g. `:1` to `:2`.
static BUILD: &str = "portcullis-fixture-build:1";

thread_local! {
    static CONFIG: RefCell<Config> = RefCell::new(Config::default());
    /// Calls this instance has answered.
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

struct Fixture;

impl Lifecycle for Fixture {
    fn init(settings: Settings) -> Result<Manifest, String> {
        let config: Config = serde_json::from_str(&settings.config_json).map_err(|e| format!("bad fixture config: {e}"))?;
        if config.mode == "refuse-config" {
            return Err("this configuration is refused on purpose".into());
        }
        let mut produces = vec!["x-fixture-allowed-by".to_string()];
        produces.extend(config.claim_header.clone());
        if config.report {
            produces.extend(["x-fixture-calls".to_string(), "x-fixture-build".to_string()]);
        }
        let manifest = Manifest { consumes: config.consumes.clone().unwrap_or_else(|| vec!["x-fixture-credential".into()]), forwards: Vec::new(), produces };
        CONFIG.with(|c| *c.borrow_mut() = config);
        Ok(manifest)
    }
}

fn deny(status: u16, body: String) -> Verdict {
    Verdict::Deny(Deny { status, headers: vec![Header { name: "content-type".into(), value: "application/json".into() }], body })
}

impl Authenticate for Fixture {
    fn authenticate(request: &Request) -> Verdict {
        let config = CONFIG.with(|c| c.borrow().clone());
        let calls = CALLS.with(|c| c.replace(c.get() + 1) + 1);
        if let Some(name) = &config.only_if_header
            && request.header(name).is_empty()
        {
            return Verdict::Abstain;
        }
        let mode = config.mode_from.as_ref().and_then(|name| request.header(name).into_iter().next()).unwrap_or_else(|| config.mode.clone());
        match mode.as_str() {
            "allow" => {
                if let Some(ms) = config.sleep_ms {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                let mut edits = vec![HeaderEdit::Append(Header { name: "x-fixture-allowed-by".into(), value: config.tag.clone() })];
                if let Some(name) = &config.claim_header {
                    for value in request.header("x-fixture-claim") {
                        edits.push(HeaderEdit::Set(Header { name: name.clone(), value }));
                    }
                }
                if config.report {
                    edits.push(HeaderEdit::Set(Header { name: "x-fixture-calls".into(), value: calls.to_string() }));
                    // Read through `black_box`, so the bytes come from the data a test can rewrite.
                    edits.push(HeaderEdit::Set(Header { name: "x-fixture-build".into(), value: std::hint::black_box(BUILD).to_owned() }));
                }
                Verdict::Allow(Allow { identity: Identity { subject: format!("fixture:{}", config.tag), issuer: None, claims_json: None }, edits })
            }
            // Allows with an edit its manifest does not declare: the gateway must refuse it.
            "undeclared-edit" => Verdict::Allow(Allow {
                identity: Identity { subject: "x".into(), issuer: None, claims_json: None },
                edits: vec![HeaderEdit::Set(Header { name: "x-undeclared".into(), value: "1".into() })],
            }),
            // Reports what it saw of the request through the lazy view.
            "echo" => deny(
                418,
                serde_json::json!({
                    "method": request.method(),
                    "scheme": request.scheme(),
                    "authority": request.authority(),
                    "path": request.path(),
                    "query": request.query(),
                    "peer": request.peer().remote_addr,
                    "header": request.header("X-Echo"),
                    "headers": request.headers().into_iter().map(|h| h.name).collect::<Vec<_>>(),
                })
                .to_string(),
            ),
            "deny" => deny(403, serde_json::json!({ "denied_by": config.tag }).to_string()),
            "abstain" => Verdict::Abstain,
            "trap" => panic!("fixture trap"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "recurse" => {
                fn depth(n: u64) -> u64 {
                    if n == 0 { 0 } else { 1 + std::hint::black_box(depth(std::hint::black_box(n - 1))) }
                }
                let n = depth(std::hint::black_box(u64::MAX));
                deny(500, format!("{{\"depth\":{n}}}"))
            }
            "log-flood" => {
                for n in 0..10_000 {
                    portcullis::auth::log::log(portcullis::auth::log::Level::Info, &format!("flood line {n}"));
                }
                Verdict::Allow(Allow {
                    identity: Identity { subject: "flood".into(), issuer: None, claims_json: None },
                    edits: vec![HeaderEdit::Set(Header { name: "x-fixture-allowed-by".into(), value: config.tag.clone() })],
                })
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1024 * 1024]);
                    std::hint::black_box(&hoard);
                }
            }
            "http" => {
                let url = config.url.clone().unwrap_or_default();
                let outcome = match http_client::send(&OutgoingRequest { method: "GET".into(), url, headers: vec![], body: vec![], timeout_ms: Some(2000) }) {
                    Ok(response) => format!("status:{}", response.status),
                    Err(http_client::HttpError::NotGranted(origin)) => format!("not-granted:{origin}"),
                    Err(http_client::HttpError::AddressRefused(why)) => format!("address-refused:{why}"),
                    Err(other) => format!("error:{other:?}"),
                };
                deny(418, serde_json::json!({ "outcome": outcome }).to_string())
            }
            "secret" => {
                let outcome = match secrets::get(config.secret.as_deref().unwrap_or("")) {
                    Ok(value) => format!("found:{}-bytes", value.len()),
                    Err(secrets::SecretError::NotGranted) => "not-granted".into(),
                    Err(secrets::SecretError::NotFound) => "not-found".into(),
                    Err(secrets::SecretError::Unavailable) => "unavailable".into(),
                };
                deny(418, serde_json::json!({ "outcome": outcome }).to_string())
            }
            "secret-write" => {
                let outcome: &str = match secrets::set(config.secret.as_deref().unwrap_or(""), "written-by-the-fixture") {
                    Ok(()) => "written",
                    Err(secrets::SecretError::NotGranted) => "not-granted",
                    Err(secrets::SecretError::NotFound) => "not-found",
                    Err(secrets::SecretError::Unavailable) => "unavailable",
                };
                deny(418, serde_json::json!({ "outcome": outcome }).to_string())
            }
            "bad-status" => deny(200, "{}".into()),
            "bad-edit" => Verdict::Allow(Allow {
                identity: Identity { subject: "x".into(), issuer: None, claims_json: None },
                edits: vec![HeaderEdit::Set(Header { name: "host".into(), value: "evil.example".into() })],
            }),
            other => deny(500, format!("{{\"error\":\"unknown fixture mode {other}\"}}")),
        }
    }
}

export!(Fixture);
