//! The loopback listener that receives an OAuth login's redirect.
//!
//! It binds `127.0.0.1` only (never all interfaces), on the port the policy
//! names: identity providers that match redirect URIs exactly need that port,
//! so a busy port is an error, never silently replaced by another.
//!
//! Each connection is read on a task of its own, so one that sends nothing
//! (or sends slowly) holds up no other. A request to `/callback` whose `state`
//! differs from the login's (a forged or stale redirect, another tab, a page
//! that knows the port) is refused and logged, and the login goes on waiting:
//! anyone on this machine can reach the port, and one request must not end a
//! login. The first callback with the login's `state` decides the login.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The most a browser's request head may take.
const MAX_HEAD: usize = 16 * 1024;
/// How long one connection may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

pub struct CallbackListener {
    listener: TcpListener,
    port: u16,
}

impl CallbackListener {
    /// Binds `127.0.0.1:port`.
    pub async fn bind(port: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
                "the login callback port 127.0.0.1:{port} is in use by another program; stop it, or choose another port with \
                 `--callback-port` (the identity provider must accept the redirect URI http://127.0.0.1:PORT/callback; \
                 set `callback_port` in the policy to keep it)"
            ),
            _ => anyhow::anyhow!("cannot listen on 127.0.0.1:{port} for the login callback: {e}"),
        })?;
        Ok(CallbackListener { port: listener.local_addr()?.port(), listener })
    }

    /// The redirect URI the identity provider sends the browser back to.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }

    /// Waits up to `timeout` for the callback that carries `state`, runs
    /// `finish` on its query string and shows the browser the outcome.
    pub async fn accept(self, state: &str, timeout: Duration, finish: impl AsyncFnOnce(&str) -> Result<(), String>) -> Result<(), String> {
        let (mut stream, query) = self.wait_for(state, timeout).await?;
        let outcome = finish(&query).await;
        match &outcome {
            Ok(()) => respond(&mut stream, 200, "Logged in", "Portcullis has stored the login. You can close this tab.").await,
            Err(_) => respond(&mut stream, 400, "Login failed", "The login did not complete; the terminal says why.").await,
        }
        outcome
    }

    /// The connection and query string of the first callback with `state`.
    async fn wait_for(&self, state: &str, timeout: Duration) -> Result<(TcpStream, String), String> {
        let until = tokio::time::Instant::now() + timeout;
        let (heads, mut read) = tokio::sync::mpsc::channel::<(TcpStream, String)>(MAX_READING);
        let mut reading = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (mut stream, _peer) = accepted.map_err(|e| format!("the callback listener failed: {e}"))?;
                    while reading.try_join_next().is_some() {}
                    if reading.len() >= MAX_READING {
                        // Bounded: past this many slow connections, new ones are closed.
                        continue;
                    }
                    let heads = heads.clone();
                    reading.spawn(async move {
                        if let Some(target) = read_target(&mut stream).await {
                            let _ = heads.send((stream, target)).await;
                        }
                    });
                }
                Some((mut stream, target)) = read.recv() => {
                    let Some(query) = callback_query(&target) else {
                        // A favicon or a stray request: not the redirect.
                        respond(&mut stream, 404, "Not found", "This address only receives a login callback.").await;
                        continue;
                    };
                    if state_matches(query, state) {
                        return Ok((stream, query.to_owned()));
                    }
                    respond(&mut stream, 400, "Login refused", "This response does not belong to the login in progress.").await;
                    tracing::warn!(
                        "ignored a login callback whose `state` does not match the login in progress (a forged or stale redirect); still waiting"
                    );
                }
                () = tokio::time::sleep_until(until) => {
                    return Err(format!("no login callback arrived within {} s; run the command again", timeout.as_secs()));
                }
            }
        }
    }
}

/// Connections read at once; more are closed until one is done.
const MAX_READING: usize = 64;

/// The request target (`/callback?...`) of one request, or `None` when the
/// connection sends no valid request head in time.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let read = async {
        let mut buf = [0u8; 2048];
        loop {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&head) {
                Ok(httparse::Status::Complete(_)) => return request.path.map(str::to_owned),
                Ok(httparse::Status::Partial) if head.len() < MAX_HEAD => continue,
                _ => return None,
            }
        }
    };
    tokio::time::timeout(HEAD_TIMEOUT, read).await.ok().flatten()
}

/// The query string of a request to `/callback`.
fn callback_query(target: &str) -> Option<&str> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    (path == "/callback").then_some(query)
}

/// Whether the query's one `state` equals `expected`, compared in constant time.
fn state_matches(query: &str, expected: &str) -> bool {
    let states: Vec<_> = url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == "state").map(|(_, v)| v).collect();
    match states.as_slice() {
        [state] => bool::from(subtle::ConstantTimeEq::ct_eq(state.as_bytes(), expected.as_bytes())),
        _ => false,
    }
}

/// A small page for the browser; nothing from the request is echoed.
async fn respond(stream: &mut TcpStream, status: u16, title: &str, text: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\n\
         referrer-policy: no-referrer\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_callback_path_with_exactly_one_matching_state() {
        assert_eq!(callback_query("/callback?code=a&state=b"), Some("code=a&state=b"));
        assert_eq!(callback_query("/callback"), Some(""));
        assert_eq!(callback_query("/favicon.ico"), None);
        assert_eq!(callback_query("/callback/x?state=b"), None);
        assert!(state_matches("code=a&state=s%2B1", "s+1"));
        assert!(!state_matches("code=a&state=s1", "s2"));
        assert!(!state_matches("code=a", "s1"));
        assert!(!state_matches("state=s1&state=s1", "s1"), "a repeated state is refused");
    }
}
