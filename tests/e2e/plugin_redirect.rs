//! `plugin add URL` follows no redirect: a module is installed from the URL
//! named, never from wherever that URL points (docs/plugins.md).

use crate::cli::{portcullis, text};
use portcullis_tests::gateway::PASSWORD;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback server: `/module.wasm` is a valid module, `/moved.wasm` answers
/// 302 to it. Returns its base URL and how often the module was fetched.
async fn serve(module: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let fetched = Arc::new(AtomicUsize::new(0));
    let (count, location) = (fetched.clone(), format!("{base}/module.wasm"));
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split_whitespace().nth(1).unwrap_or_default();
            let (status, extra, body): (&str, String, &[u8]) = match path {
                "/module.wasm" => {
                    count.fetch_add(1, Ordering::SeqCst);
                    ("200 OK", String::new(), &module)
                }
                "/moved.wasm" => ("302 Found", format!("location: {location}\r\n"), b""),
                _ => ("404 Not Found", String::new(), b""),
            };
            let response = format!("HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.write_all(body).await;
        }
    });
    (base, fetched)
}

async fn plugin_add(dir: &Path, url: &str, name: &str) -> std::process::Output {
    tokio::process::Command::new(portcullis())
        .args(["plugin", "add", url, "--name", name, "--policy"])
        .arg(dir.join("policy.toml"))
        .env("PORTCULLIS_HOME", dir.join("home"))
        .env("PORTCULLIS_SECRETS_PASSWORD", PASSWORD)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn plugin_add_follows_no_redirect() {
    let module = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/authenticator-0.2.0.wasm")).unwrap();
    let (base, fetched) = serve(module).await;
    let dir = tempfile::tempdir().unwrap();

    let out = plugin_add(dir.path(), &format!("{base}/moved.wasm"), "moved").await;
    assert!(!out.status.success(), "a redirect is refused: {}", text(&out.stdout));
    assert!(text(&out.stderr).contains("302"), "the answer is named: {}", text(&out.stderr));
    assert_eq!(fetched.load(Ordering::SeqCst), 0, "the module the redirect points to was never fetched");

    // The module itself, at the URL named, installs: the refusal was the redirect's.
    let out = plugin_add(dir.path(), &format!("{base}/module.wasm"), "direct").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fetched.load(Ordering::SeqCst), 1);
}
