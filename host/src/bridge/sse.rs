//! A small Server-Sent Events parser: bytes in, complete events' data out.

/// An event (or a line) larger than the parser's bound.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge;

/// Accumulates bytes and yields the `data` of each complete event.
pub struct SseParser {
    buffer: Vec<u8>,
    data: Vec<String>,
    /// Bytes of `data` so far.
    data_bytes: usize,
    /// The largest event (and line) accepted.
    max: usize,
}

impl SseParser {
    pub fn new(max: usize) -> Self {
        SseParser { buffer: Vec::new(), data: Vec::new(), data_bytes: 0, max }
    }

    /// Feeds a chunk; returns the data of every event it completed, or
    /// `TooLarge` once an event or a line passes the bound (the stream is then
    /// beyond repair: the caller stops reading it).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<String>, TooLarge> {
        if self.buffer.len() + chunk.len() > self.max {
            return Err(TooLarge);
        }
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(self.data.join("\n"));
                    self.data.clear();
                    self.data_bytes = 0;
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                let value = value.strip_prefix(' ').unwrap_or(value);
                self.data_bytes += value.len() + 1;
                if self.data_bytes > self.max {
                    return Err(TooLarge);
                }
                self.data.push(value.to_owned());
            }
            // `event:`, `id:`, `retry:` and comments carry nothing the bridge forwards.
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::{SseParser, TooLarge};

    #[test]
    fn events_split_across_chunks() {
        let mut p = SseParser::new(1024);
        assert!(p.feed(b"event: message\ndata: {\"a\"").unwrap().is_empty());
        assert_eq!(p.feed(b":1}\n\n: comment\n\ndata: x\r\ndata: y\r\n\r\n").unwrap(), vec!["{\"a\":1}".to_owned(), "x\ny".to_owned()]);
    }

    #[test]
    fn events_and_lines_are_bounded() {
        let mut p = SseParser::new(64);
        assert_eq!(p.feed(&[b'x'; 65]), Err(TooLarge), "a line without an end");
        let mut p = SseParser::new(64);
        for _ in 0..3 {
            assert!(p.feed(b"data: 0123456789012345\n").is_ok());
        }
        assert_eq!(p.feed(b"data: 0123456789012345\n"), Err(TooLarge), "an event of many lines");
        let mut p = SseParser::new(64);
        for _ in 0..10 {
            assert_eq!(p.feed(b"data: small\n\n").unwrap(), vec!["small".to_owned()], "events that end free their room");
        }
    }
}
