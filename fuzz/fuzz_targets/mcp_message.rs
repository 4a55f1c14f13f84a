//! An MCP workload's one reading of a POSTed JSON-RPC message
//! (`mcp/message.rs`), and the check that `Mcp-Method`/`Mcp-Name` agree with
//! it: the headers a client would send for the message it parsed to, and a
//! pair that disagrees.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(calls) = portcullis::mcp::message::parse(body) else { return };
    let mut headers = HeaderMap::new();
    if let Some(call) = calls.first() {
        if let Ok(method) = HeaderValue::from_str(&call.method) {
            headers.insert("mcp-method", method);
        }
        if let Some(Ok(name)) = call.name.as_deref().map(HeaderValue::from_str) {
            headers.insert("mcp-name", name);
        }
    }
    let _ = portcullis::mcp::message::check_headers(&headers, &calls);
    headers.insert("mcp-method", HeaderValue::from_static("tools/call"));
    headers.insert("mcp-name", HeaderValue::from_static("another"));
    let _ = portcullis::mcp::message::check_headers(&headers, &calls);
});
