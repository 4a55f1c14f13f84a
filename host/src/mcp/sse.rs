//! Server-Sent Events, as far as filtering a list needs: split the stream
//! into whole events (each passed on as soon as it is complete, byte for byte
//! unless it is rewritten), read an event's data, and replace it.

/// An event (or a line) larger than the bound: the stream is cut off.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge;

/// Splits a byte stream into whole events, each with the blank line that ends it.
pub struct EventSplitter {
    buffer: Vec<u8>,
    /// Where the scan for the end of the current event resumes.
    scanned: usize,
    max: usize,
}

impl EventSplitter {
    pub fn new(max: usize) -> Self {
        EventSplitter { buffer: Vec::new(), scanned: 0, max }
    }

    /// Feeds a chunk; returns every event it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Vec<u8>>, TooLarge> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.event_end() {
            if end > self.max {
                return Err(TooLarge);
            }
            events.push(self.buffer.drain(..end).collect());
            self.scanned = 0;
        }
        if self.buffer.len() > self.max {
            return Err(TooLarge);
        }
        Ok(events)
    }

    /// What is left at the end of the stream (an event without its blank line).
    pub fn rest(self) -> Vec<u8> {
        self.buffer
    }

    /// The end of the first complete event: just past a line that is empty.
    fn event_end(&mut self) -> Option<usize> {
        let mut line_start = self.scanned;
        while let Some(offset) = self.buffer[line_start..].iter().position(|&b| b == b'\n') {
            let line_end = line_start + offset;
            let line = &self.buffer[line_start..line_end];
            if line.is_empty() || line == b"\r" {
                return Some(line_end + 1);
            }
            line_start = line_end + 1;
        }
        self.scanned = line_start;
        None
    }
}

fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    // A byte-order mark may start the stream, and so the first line.
    event.split(|&b| b == b'\n').map(|line| line.strip_suffix(b"\r").unwrap_or(line)).map(|line| line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line))
}

/// Whether the event has any `data:` line.
pub fn has_data(event: &[u8]) -> bool {
    lines(event).any(|line| line.starts_with(b"data:"))
}

/// The event's data: its `data:` lines, joined with newlines.
pub fn data(event: &[u8]) -> Option<String> {
    let parts: Vec<&[u8]> = lines(event).filter_map(|line| line.strip_prefix(b"data:")).map(|v| v.strip_prefix(b" ").unwrap_or(v)).collect();
    if parts.is_empty() {
        return None;
    }
    String::from_utf8(parts.join(&b'\n')).ok()
}

/// The event with its data replaced by `data` (one line: JSON has no raw
/// newlines), its other fields (`event:`, `id:`, `retry:`) kept in order.
pub fn with_data(event: &[u8], data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.len());
    let mut written = false;
    for line in lines(event).filter(|line| !line.is_empty()) {
        if line.starts_with(b"data:") {
            if !written {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(data.as_bytes());
                out.push(b'\n');
                written = true;
            }
        } else {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_whole_across_chunks() {
        let mut s = EventSplitter::new(1024);
        assert!(s.feed(b"event: message\nid: 1\ndata: {\"a\"").unwrap().is_empty());
        let events = s.feed(b":1}\n\n: ping\r\n\r\ndata: x\n").unwrap();
        assert_eq!(events, vec![b"event: message\nid: 1\ndata: {\"a\":1}\n\n".to_vec(), b": ping\r\n\r\n".to_vec()]);
        assert_eq!(s.rest(), b"data: x\n");
    }

    #[test]
    fn data_is_read_and_replaced_keeping_the_other_fields() {
        let event = b"event: message\r\nid: 7\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n";
        assert_eq!(data(event).as_deref(), Some("{\"a\":\n1}"));
        assert_eq!(with_data(event, "{}"), b"event: message\nid: 7\ndata: {}\n\n");
        assert_eq!(data(b": comment\n\n"), None);
    }

    #[test]
    fn an_event_without_an_end_is_bounded() {
        let mut s = EventSplitter::new(16);
        assert_eq!(s.feed(&[b'x'; 17]), Err(TooLarge));
        let mut s = EventSplitter::new(16);
        for _ in 0..10 {
            assert_eq!(s.feed(b"data: 123456\n\n").unwrap().len(), 1, "completed events free their room");
        }
    }
}
