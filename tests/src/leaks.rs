//! Secret values must never reach a log. The in-process gateways of the tests
//! log at trace level (for `portcullis`) through [`Writer`], which looks for
//! every value a test [`register`]ed in every line; [`assert_none`] fails the
//! test that finds one (a `TestGateway` checks when it is dropped).

use std::io::Write;
use std::sync::Mutex;

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static LEAKS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A value that must never appear in a log line (keys, tokens, passwords).
pub fn register(secret: &str) {
    if secret.len() >= 8 {
        SECRETS.lock().unwrap_or_else(|p| p.into_inner()).push(secret.to_owned());
    }
}

/// Panics if any log line so far carried a registered secret.
pub fn assert_none() {
    let leaks = LEAKS.lock().unwrap_or_else(|p| p.into_inner());
    assert!(leaks.is_empty(), "a secret value appeared in the log: {:?}", leaks.first());
}

/// The test writer, with every line checked for registered secrets.
pub struct Writer;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Writer {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

/// One formatted log line, checked and passed to the test output when dropped.
pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let secrets = SECRETS.lock().unwrap_or_else(|p| p.into_inner());
        if secrets.iter().any(|s| text.contains(s.as_str())) {
            // The line itself is not kept: it holds the secret.
            let first = text.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
            LEAKS.lock().unwrap_or_else(|p| p.into_inner()).push(first);
        }
        // Through the test harness's capture, like `with_test_writer`.
        let _ = tracing_subscriber::fmt::TestWriter::default().write_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    /// The check itself works (in the library's test binary, apart from the e2e suite).
    #[test]
    fn a_logged_secret_is_caught() {
        crate::init_logging();
        super::register("sekrit-value-1234");
        tracing::info!(target: "portcullis::probe", "nothing to see");
        super::assert_none();
        tracing::info!(target: "portcullis::probe", value = "sekrit-value-1234", "oops");
        let caught = std::panic::catch_unwind(super::assert_none);
        assert!(caught.is_err(), "the leak was not caught");
    }
}
