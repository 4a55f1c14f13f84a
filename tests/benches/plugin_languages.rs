//! The same component written in Rust (with the SDK) and in JavaScript
//! (componentize-js): size, load time and the cost of one call.
//!
//! `cargo bench -p portcullis-tests --bench plugin_languages`; figures go in
//! docs/benchmarks.md. Both components are the API-key check of the plugin
//! kit: read one header, read a secret, compare in constant time, allow with
//! one header edit. Rust: `tests/compat/authenticator-0.2.0.wasm` (what
//! `portcullis plugin new` scaffolds); JavaScript: `examples/js-header-check`
//! (built by its `build.sh`, which the e2e tests run).
//!
//! Load time is measured once per round outside criterion (a compile takes
//! seconds): compiling without the cache, loading a compiled component from
//! the cache, and creating the first instance with `init`.

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::admin::metrics::Metrics;
use portcullis::policy::file::{GrantsFile, Isolation};
use portcullis::runtime::Runtime;
use portcullis::runtime::capabilities::{Capabilities, PluginLabel, Services};
use portcullis::runtime::plugin::{FaultKind, Limits, Plugin, PluginSpec, Role};
use portcullis::runtime::verdict::Verdict;
use portcullis::secrets::{SecretStore, SecretString};
use portcullis_tests::plugin::mcp_request;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Component;

const KEY: &str = "bench-key-0123456789";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

async fn plugin(runtime: &Runtime, component: Component, services: &Services, memory_mib: usize) -> Arc<Plugin> {
    let label = PluginLabel { workload: "demo".into(), component: "api-key".into() };
    let grants = GrantsFile { secrets: vec!["workload:demo:api-key".into()], ..Default::default() };
    let grants = portcullis::runtime::capabilities::Grants::parse(&grants, false).0.expect("good grants");
    let caps = Arc::new(Capabilities::new(label.clone(), &grants, services, "inbound[0]", Default::default()));
    let spec = PluginSpec {
        metrics: Metrics::new().plugin("demo", "api-key", &FaultKind::labels()),
        label,
        role: Role::Authenticator,
        component,
        config_json: "{}".into(),
        public_url: "http://127.0.0.1:8080/mcp".into(),
        limits: Limits { memory_bytes: memory_mib * 1024 * 1024, ..Limits::default() },
        isolation: Isolation::Pooled,
        caps,
        instances: Arc::new(tokio::sync::Semaphore::new(64)),
        max_idle: 8,
    };
    Plugin::new(runtime, spec).await.map_err(|e| e.to_string()).unwrap()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(SecretStore::new(home.path(), Some(SecretString::from("bench".to_owned()))));
    store.set("workload:demo:api-key", SecretString::from(KEY.to_owned())).unwrap();
    let services = Services::new(store);
    let view = mcp_request(&[("x-api-key", KEY)]);
    let components =
        [("rust", repo().join("tests/compat/authenticator-0.2.0.wasm"), 16), ("javascript", repo().join("examples/js-header-check/header-check.wasm"), 32)];
    for (language, path, memory_mib) in components {
        let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run examples/js-header-check/build.sh)", path.display()));
        let sha = portcullis_tests::sha256_of(&path);
        let (mut compile, mut cached, mut first) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            let cache = tempfile::tempdir().unwrap();
            let runtime = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
            let started = Instant::now();
            runtime.component(&sha, &wasm).unwrap();
            compile.push(started.elapsed());
            let runtime = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
            let started = Instant::now();
            let component = runtime.component(&sha, &wasm).unwrap();
            cached.push(started.elapsed());
            let started = Instant::now();
            rt.block_on(plugin(&runtime, component, &services, memory_mib));
            first.push(started.elapsed());
        }
        eprintln!(
            "{language}: {} bytes; compile {:?}, load from cache {:?}, first instance + init {:?} (median of 3)",
            wasm.len(),
            median(compile),
            median(cached),
            median(first)
        );
        let runtime = Runtime::new(Some(portcullis_tests::gateway::shared_cache_dir())).unwrap();
        let component = runtime.component(&sha, &wasm).unwrap();
        let plugin = rt.block_on(plugin(&runtime, component, &services, memory_mib));
        c.bench_function(&format!("api-key/{language}"), |b| {
            b.to_async(&rt).iter(|| async {
                let verdict = plugin.authenticate(&view).await.unwrap();
                assert!(matches!(verdict, Verdict::Allow { .. }));
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
