//! A test `serve` component (`[workloads.server]`): a few routes that show
//! what the gateway hands it and does with its answers.
//! - `GET`/`HEAD /hello`: `hello`, with a `content-type`; it also reports
//!   the event `token-exchanged` (`events` import), so that tests see the
//!   events counter exported;
//! - `POST /echo`: JSON of the method, path, query, the headers it saw and
//!   the body (as text), answered with the status in `x-status` (default 200)
//!   and headers the gateway must drop (`content-length`, `connection`, ...);
//! - `GET /trap`: traps; `GET /bad-status`: answers status 99; `GET /spin`:
//!   computes until the call's deadline stops it (a slow public route).
//!
//! `config.extra_route` adds one more (`GET`) route, to test the gateway's
//! refusals of the routes a component declares.

use serde::Deserialize;
use std::cell::RefCell;

wit_bindgen::generate!({ path: "../../../wit", world: "portcullis:auth/authorization-server" });

use exports::portcullis::auth::lifecycle::{Guest as Lifecycle, Settings};
use exports::portcullis::auth::serve::{Guest as Serve, Response, Route};
use portcullis::auth::types::{Header, Manifest, Request};

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Config {
    extra_route: Option<String>,
}

thread_local! {
    static CONFIG: RefCell<Config> = RefCell::new(Config::default());
}

struct Server;

impl Lifecycle for Server {
    fn init(settings: Settings) -> Result<Manifest, String> {
        let config: Config = serde_json::from_str(&settings.config_json).map_err(|e| format!("bad serve config: {e}"))?;
        CONFIG.with(|c| *c.borrow_mut() = config);
        Ok(Manifest { consumes: Vec::new(), forwards: Vec::new(), produces: Vec::new() })
    }
}

fn header(name: &str, value: &str) -> Header {
    Header { name: name.into(), value: value.into() }
}

impl Serve for Server {
    fn routes() -> Vec<Route> {
        let route = |path: &str, methods: &[&str]| Route { path: path.into(), methods: methods.iter().map(|m| m.to_string()).collect() };
        let mut routes = vec![
            route("/hello", &["GET", "HEAD"]),
            route("/echo", &["POST"]),
            route("/trap", &["GET"]),
            route("/bad-status", &["GET"]),
            route("/spin", &["GET"]),
        ];
        if let Some(extra) = CONFIG.with(|c| c.borrow().extra_route.clone()) {
            routes.push(route(&extra, &["GET"]));
        }
        routes
    }

    fn handle(request: &Request) -> Response {
        match request.path().as_str() {
            "/hello" => {
                portcullis::auth::events::report(portcullis::auth::events::Event::TokenExchanged);
                Response { status: 200, headers: vec![header("content-type", "text/plain")], body: b"hello".to_vec() }
            }
            "/echo" => {
                let status = request.header("x-status").first().and_then(|s| s.parse().ok()).unwrap_or(200);
                let headers: serde_json::Map<String, serde_json::Value> =
                    request.headers().into_iter().map(|h| (h.name, serde_json::Value::String(h.value))).collect();
                let echo = serde_json::json!({
                    "method": request.method(),
                    "path": request.path(),
                    "query": request.query(),
                    "headers": headers,
                    "body": String::from_utf8_lossy(&request.body()),
                });
                Response {
                    status,
                    headers: vec![
                        header("content-type", "application/json"),
                        header("content-length", "1"),
                        header("connection", "close"),
                        header("transfer-encoding", "chunked"),
                    ],
                    body: echo.to_string().into_bytes(),
                }
            }
            "/trap" => panic!("the fixture traps on /trap"),
            "/spin" => loop {
                std::hint::black_box(request.path());
            },
            "/bad-status" => Response { status: 99, headers: Vec::new(), body: Vec::new() },
            _ => Response { status: 404, headers: Vec::new(), body: b"extra".to_vec() },
        }
    }
}

export!(Server);
