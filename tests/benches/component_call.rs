//! The per-request cost of one component call, pooled and per-request.
//!
//! `cargo bench -p portcullis-tests --bench component_call`; figures go in
//! docs/benchmarks.md. The component is the `behaviours` fixture in `allow`
//! mode (it reads its config, builds an identity and two header edits), and the
//! request view is a typical MCP POST with eight headers.

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::policy::file::Isolation;
use portcullis::runtime::Runtime;
use portcullis::runtime::verdict::Verdict;
use portcullis_tests::plugin::{authenticator, mcp_request};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let runtime = Runtime::new(Some(portcullis_tests::gateway::shared_cache_dir())).unwrap();
    eprintln!("pooling allocator: {}", runtime.pooling());
    let path = portcullis_tests::fixture("behaviours");
    let component = runtime.component(&portcullis_tests::sha256_of(&path), &std::fs::read(&path).unwrap()).unwrap();
    let view = mcp_request(&[]);
    for (name, isolation) in [("pooled", Isolation::Pooled), ("per-request", Isolation::PerRequest)] {
        let config = r#"{"mode":"allow","tag":"bench"}"#;
        let plugin = rt.block_on(authenticator(&runtime, component.clone(), "behaviours", config, "http://127.0.0.1:8080", isolation));
        c.bench_function(&format!("authenticate/{name}"), |b| {
            b.to_async(&rt).iter(|| async {
                let verdict = plugin.authenticate(&view).await.unwrap();
                assert!(matches!(verdict, Verdict::Allow { .. }));
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
