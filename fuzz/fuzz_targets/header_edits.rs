//! A component's manifest and header edits, checked once (`runtime/verdict.rs`)
//! and then applied, which must never fail.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use portcullis::runtime::bindings::types as wit;
use portcullis::runtime::verdict::{HeaderEdits, Manifest};

#[derive(Arbitrary, Debug)]
enum Edit {
    Set(String, String),
    Append(String, String),
    Remove(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    consumes: Vec<String>,
    forwards: Vec<String>,
    produces: Vec<String>,
    edits: Vec<Edit>,
}

fuzz_target!(|input: Input| {
    let Ok(manifest) = Manifest::parse(wit::Manifest { consumes: input.consumes, forwards: input.forwards, produces: input.produces }) else {
        return;
    };
    let edits = input
        .edits
        .into_iter()
        .map(|edit| match edit {
            Edit::Set(name, value) => wit::HeaderEdit::Set(wit::Header { name, value }),
            Edit::Append(name, value) => wit::HeaderEdit::Append(wit::Header { name, value }),
            Edit::Remove(name) => wit::HeaderEdit::Remove(name),
        })
        .collect();
    if let Ok(edits) = HeaderEdits::check(edits, &manifest) {
        let mut headers = http::HeaderMap::new();
        edits.apply(&mut headers);
        let _ = edits.describe();
    }
});
