//! A stand-in OpenID Provider whose key-set endpoint can be made to fail:
//! serves discovery and `/jwks`, and on request HTML, a 500, or nothing at all
//! (a black hole: the connection is accepted and never answered). It also
//! serves RFC 8414 metadata for the issuer `<issuer>/tenant` at
//! `/.well-known/oauth-authorization-server/tenant` (and no OpenID discovery for it).

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Keys,
    Html,
    ServerError,
    BlackHole,
}

pub struct KeyServer {
    pub issuer: String,
    mode: Arc<Mutex<Mode>>,
    /// Requests for `/jwks`, whatever the answer.
    jwks_requests: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl KeyServer {
    pub async fn start(jwks: serde_json::Value) -> KeyServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(Mutex::new(Mode::Keys));
        let jwks_requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (state, iss, counter) = (mode.clone(), issuer.clone(), jwks_requests.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (state, iss, jwks, counter) = (state.clone(), iss.clone(), jwks.clone(), counter.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let mode = *state.lock().unwrap();
                        if req.uri().path() == "/jwks" {
                            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        let black_hole = mode == Mode::BlackHole && req.uri().path() == "/jwks";
                        let response = match (req.uri().path(), mode) {
                            ("/.well-known/openid-configuration", _) => json(200, serde_json::json!({ "issuer": iss, "jwks_uri": format!("{iss}/jwks") })),
                            ("/.well-known/oauth-authorization-server/tenant", _) => {
                                json(200, serde_json::json!({ "issuer": format!("{iss}/tenant"), "jwks_uri": format!("{iss}/jwks") }))
                            }
                            ("/jwks", Mode::Keys) => json(200, jwks.clone()),
                            ("/jwks", Mode::Html) => Response::builder()
                                .header("content-type", "text/html")
                                .body(Full::new(Bytes::from_static(b"<html><body>Maintenance</body></html>")))
                                .unwrap(),
                            ("/jwks", Mode::ServerError) => json(500, serde_json::json!({ "error": "boom" })),
                            _ => json(404, serde_json::json!({})),
                        };
                        async move {
                            if black_hole {
                                std::future::pending::<()>().await;
                            }
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        KeyServer { issuer, mode, jwks_requests, task }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// How many times `/jwks` was asked for.
    pub fn jwks_requests(&self) -> usize {
        self.jwks_requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json(status: u16, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder().status(status).header("content-type", "application/json").body(Full::new(Bytes::from(body.to_string()))).unwrap()
}
