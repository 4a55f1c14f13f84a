//! The per-request path's phases, for the budgets that count what one request
//! costs (`tests/alloc`: heap allocations; `tests/instructions`: instructions):
//! an in-process upstream reached directly, through an anonymous workload (the
//! proxy alone), and through a workload with one component call.

use crate::gateway::{TestGateway, behaviour, workload};
use crate::upstream::TestUpstream;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;

/// The component's longest deadline: under callgrind, code runs some 50 times
/// slower, and the default 100 ms for an instance's start (instantiation and
/// `init`) was seen to run out. The deadline's length changes no count.
const UNDER_VALGRIND: &str = "  limits = { deadline_ms = 10000 }\n";

/// The three targets, in order: direct, anonymous, one component call.
pub struct Phases {
    pub targets: [SocketAddr; 3],
    _upstream: TestUpstream,
    _gateway: TestGateway,
}

impl Phases {
    pub async fn start() -> Phases {
        let upstream = TestUpstream::start().await;
        let policy = format!(
            "version = 1\n{}{}",
            workload("anonymous", &upstream.url(), "anonymous = true"),
            workload("component", &upstream.url(), &format!("{}{UNDER_VALGRIND}", behaviour(r#"mode = "allow", tag = "a""#))),
        );
        let gateway = TestGateway::start(&policy).await.unwrap();
        let targets = [upstream.addr, gateway.addr("anonymous").await, gateway.addr("component").await];
        Phases { targets, _upstream: upstream, _gateway: gateway }
    }
}

/// One kept-alive HTTP/1.1 connection, sending `GET /mcp` and reading each answer whole.
pub struct KeptAlive(hyper::client::conn::http1::SendRequest<Empty<Bytes>>);

impl KeptAlive {
    pub async fn open(addr: SocketAddr) -> KeptAlive {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        KeptAlive(sender)
    }

    /// Sends `count` requests one after the other; each must be answered 200.
    pub async fn send(&mut self, count: usize) {
        for _ in 0..count {
            let request = http::Request::get("/mcp").header("host", "127.0.0.1:8080").body(Empty::<Bytes>::new()).unwrap();
            let response = self.0.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            response.into_body().collect().await.unwrap();
        }
    }
}
