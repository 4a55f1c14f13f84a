//! What the pipeline does to a request before any component sees it (steps 1,
//! 5 and 6 of `proxy/pipeline.rs`): the target check, one reading of the
//! body's framing, hop-by-hop and identity headers removed, credentials
//! checked; then the view a component reads (`header`, `headers`).
#![no_main]

use http::{HeaderName, HeaderValue, Method, Request};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use portcullis::proxy::headers::{HeaderRules, normalise_framing, remove_hop_by_hop};

#[derive(Arbitrary, Debug)]
struct Input {
    method: String,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
}

fuzz_target!(|input: Input| {
    let Ok(method) = Method::from_bytes(input.method.as_bytes()) else { return };
    let Ok(mut request) = Request::builder().method(method).uri(input.uri.as_str()).body(()) else { return };
    for (name, value) in &input.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            request.headers_mut().append(name, value);
        }
    }
    let (mut parts, ()) = request.into_parts();
    let _ = portcullis::proxy::target::check(&parts);
    let _ = normalise_framing(&mut parts.headers);
    remove_hop_by_hop(&mut parts.headers);
    let rules = HeaderRules::new([], &[HeaderName::from_static("x-user-email")]);
    rules.strip_untrusted(&mut parts.headers);
    let _ = rules.check_credentials(&parts.headers);
    rules.remove_consumed(&mut parts.headers);
    for (name, value) in &parts.headers {
        let _ = (name.as_str(), String::from_utf8_lossy(value.as_bytes()));
    }
});
