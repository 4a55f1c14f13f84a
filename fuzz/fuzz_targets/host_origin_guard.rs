//! The Host/Origin guard against DNS rebinding: any Host, Origin and target.
#![no_main]

use http::header::{HOST, ORIGIN};
use http::{HeaderValue, Request};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use portcullis::proxy::guard::{self, RequestGuard};
use std::sync::LazyLock;

#[derive(Arbitrary, Debug)]
struct Input {
    uri: String,
    host: Option<Vec<u8>>,
    origins: Vec<Vec<u8>>,
}

static GUARD: LazyLock<RequestGuard> = LazyLock::new(|| {
    let public = url::Url::parse("https://mcp.example:8443/mcp").unwrap();
    RequestGuard::parse(Some(&public), &["alias.example".into(), "*.tenant.example".into()], &["https://app.example".into()]).expect("a valid guard")
});

fuzz_target!(|input: Input| {
    let Ok(mut request) = Request::builder().uri(input.uri.as_str()).body(()) else { return };
    if let Some(Ok(host)) = input.host.as_deref().map(HeaderValue::from_bytes) {
        request.headers_mut().insert(HOST, host);
    }
    for origin in &input.origins {
        if let Ok(origin) = HeaderValue::from_bytes(origin) {
            request.headers_mut().append(ORIGIN, origin);
        }
    }
    let (parts, ()) = request.into_parts();
    if let Some(authority) = guard::authority(&parts) {
        let _ = GUARD.host_allowed(&authority);
    }
    let _ = GUARD.origin_allowed(&parts.headers);
});
