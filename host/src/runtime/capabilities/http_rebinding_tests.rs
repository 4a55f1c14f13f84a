//! The address check at connection time (DNS rebinding): the public-only
//! client resolves names with [`PublicOnlyResolver`], so a name whose answer
//! changed after [`check_public`] ran (public then, loopback now) is refused
//! when the connection is made. `localhost` stands for the changed answer: it
//! resolves to loopback from `/etc/hosts`, with no DNS server, and the request
//! goes to the client directly, as if `check_public` had seen a public address.

use super::*;

/// A loopback server answering every connection with an empty 200; returns its port.
async fn server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_at_connection_time_is_refused() {
    let port = server().await;
    let url = format!("http://localhost:{port}/");
    let http = OutboundHttp::new();
    let timeout = Duration::from_secs(30);

    // The client for `http_private` grants reaches the server: the name resolves, and the server answers.
    let reached = http.any_address.get(&url).timeout(timeout).send().await.expect("localhost reaches the loopback server");
    assert_eq!(reached.status(), 200);

    // The public-only client refuses the same name at connection time.
    let refused = http.public_only.get(&url).timeout(timeout).send().await.expect_err("loopback refused");
    let HttpError::Connection(message) = map_error(refused) else { panic!("a connection error") };
    assert!(message.contains("localhost resolves to the non-public address"), "{message}");
}
