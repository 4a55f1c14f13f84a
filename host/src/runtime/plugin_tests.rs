//! Tests of [`super`] that need no component.

use super::*;
use std::io::Write;

/// Log output kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_line_logged_during_a_call_names_the_component_under_a_warn_filter() {
    let captured = Captured::default();
    let writer = captured.clone();
    // A filter that keeps warnings only, as `RUST_LOG=warn` does.
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::WARN).with_ansi(false).with_writer(move || writer.clone()).finish();
    tracing::subscriber::with_default(subscriber, || {
        let label = PluginLabel { workload: "tools".into(), component: "api-key-db".into() };
        call_span(&label, Role::Authenticator.label(), Role::Authenticator.world(), Some("req-1")).in_scope(|| tracing::warn!("refused a secret read"));
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for field in ["plugin.call", "workload=tools", "component=api-key-db", "role=\"authenticator\"", "request_id=\"req-1\"", "refused a secret read"] {
        assert!(log.contains(field), "{field} missing from {log:?}");
    }
}
