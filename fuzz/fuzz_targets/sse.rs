//! The Server-Sent Events parsers: the bridge's (`bridge/sse.rs`) and the
//! one that splits a filtered list's stream (`mcp/sse.rs`), fed in chunks.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use portcullis::bridge::sse::SseParser;
use portcullis::mcp::sse::{self as mcp_sse, EventSplitter};

#[derive(Arbitrary, Debug)]
struct Input {
    chunks: Vec<Vec<u8>>,
}

fuzz_target!(|input: Input| {
    let mut bridge = SseParser::new(4096);
    let mut splitter = EventSplitter::new(4096);
    for chunk in &input.chunks {
        let _ = bridge.feed(chunk);
        if let Ok(events) = splitter.feed(chunk) {
            for event in events {
                if mcp_sse::has_data(&event)
                    && let Some(data) = mcp_sse::data(&event)
                {
                    let _ = mcp_sse::with_data(&event, &data);
                }
            }
        }
    }
    let _ = splitter.rest();
});
