//! The instruction budget of the per-request path: the second regression
//! check of the performance work (docs/benchmarks.md), beside the allocation
//! budget (`tests/alloc`), run by the test command.
//!
//! Time on a loaded CI machine is noise; the instructions one thread runs are
//! nearly deterministic. This test runs itself again under Valgrind's
//! callgrind, where the requests go: straight to an in-process upstream, then
//! through an anonymous workload (the proxy alone), then through a workload
//! with one component call, all on one thread (a current-thread runtime).
//! A checkpoint function between the phases makes callgrind write the
//! instructions counted since the last one; the proxy's share is the
//! anonymous phase less the direct one, the component call's the difference
//! of the last two. Both are compared with `baseline.txt` beside this file:
//! a rise of more than 10 % fails.
//!
//! Moving the baseline deliberately (after a change that is meant to cost,
//! or that made the path cheaper): run
//! `PORTCULLIS_INSTRUCTIONS_UPDATE=1 cargo test -p portcullis-tests --test instructions -- --nocapture`,
//! which writes the measured figures to `baseline.txt`, and commit that file
//! with the change, saying why in the message. The figures are of the test
//! profile the test command builds (dev, dependencies optimised), not of a
//! release build.

use portcullis_tests::per_request::{KeptAlive, Phases};
use std::path::{Path, PathBuf};

/// Requests per measured phase, after a warm-up of as many.
const REQUESTS: usize = 200;
/// The rise over the baseline that fails.
const TOLERANCE: f64 = 1.10;
/// Set in the child that runs under callgrind.
const CHILD: &str = "PORTCULLIS_INSTRUCTIONS_CHILD";
const TEST_NAME: &str = "the_per_request_path_stays_within_its_instruction_budget";

/// Where callgrind writes a count: called between phases, never inlined, so
/// that callgrind sees its entry (`--dump-before`).
#[inline(never)]
fn portcullis_instructions_checkpoint() {
    std::hint::black_box(());
}

/// The child: a connection to each of the three targets, warmed up by as
/// many requests first; then the three measured phases, with a checkpoint
/// before and after each.
async fn run_phases() {
    let _ = tracing_subscriber::fmt().with_max_level(tracing::Level::ERROR).try_init();
    let phases = Phases::start().await;
    let mut connections = Vec::new();
    for addr in phases.targets {
        let mut connection = KeptAlive::open(addr).await;
        connection.send(REQUESTS).await;
        connections.push(connection);
    }
    for connection in &mut connections {
        portcullis_instructions_checkpoint();
        connection.send(REQUESTS).await;
    }
    portcullis_instructions_checkpoint();
}

/// Instructions per request: (the proxy, one component call).
fn measure() -> (f64, f64) {
    let out = tempfile::tempdir().unwrap();
    // `--smc-check=all`: wasmtime writes the code it compiles into memory;
    // without it callgrind may run a stale translation and crash (it did, on
    // a fresh clone, where no component was compiled for the CPU callgrind shows).
    let run = std::process::Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--separate-threads=yes",
            "--dump-before=*portcullis_instructions_checkpoint*",
            "--dump-instr=no",
            "--collect-jumps=no",
            "--smc-check=all",
        ])
        .arg(format!("--callgrind-out-file={}/callgrind.out", out.path().display()))
        .arg(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        // Short panics: the message, not a backtrace, in the tail shown below.
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("valgrind runs (the test command installs it)");
    // The child's own words (its panic) and valgrind's, the last of each: it
    // has failed under callgrind alone, intermittently, and a failure that
    // shows only a status cannot be diagnosed.
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        text.chars().rev().take(4000).collect::<Vec<_>>().into_iter().rev().collect::<String>()
    };
    assert!(
        run.status.success(),
        "the measured run failed under callgrind: {}\n--- stdout\n{}\n--- stderr\n{}",
        run.status,
        tail(&run.stdout),
        tail(&run.stderr)
    );
    // Dumps 1 to 4: before the direct phase, then after each phase, each
    // holding the count since the dump before it. They are the dumping
    // thread's (`callgrind.out.{dump}-{thread}`): the test's, which runs
    // everything; the gateway's own threads (the epoch clock) are left out.
    let count = |dump: usize| {
        let prefix = format!("callgrind.out.{dump}-");
        let files: Vec<_> = std::fs::read_dir(out.path()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(&prefix)).collect();
        assert_eq!(files.len(), 1, "one thread's dump {dump}");
        totals(&files[0].path())
    };
    let (direct, anonymous, component) = (count(2), count(3), count(4));
    let per_request = |n: u64| n as f64 / REQUESTS as f64;
    (per_request(anonymous) - per_request(direct), per_request(component) - per_request(anonymous))
}

/// The `totals:` (or `summary:`) line of a callgrind dump: instructions counted.
fn totals(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("callgrind wrote no {}: {e}", path.display()));
    text.lines()
        .find_map(|line| line.strip_prefix("totals: ").or_else(|| line.strip_prefix("summary: ")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no totals in {}", path.display()))
}

fn baseline_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("instructions/baseline.txt")
}

/// `proxy N` and `component N` lines.
fn baseline() -> (f64, f64) {
    let text = std::fs::read_to_string(baseline_path()).unwrap();
    let value = |key: &str| -> f64 {
        text.lines().find_map(|line| line.strip_prefix(key)).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("baseline.txt has no `{key}`"))
    };
    (value("proxy "), value("component "))
}

#[tokio::test(flavor = "current_thread")]
async fn the_per_request_path_stays_within_its_instruction_budget() {
    if std::env::var_os(CHILD).is_some() {
        return run_phases().await;
    }
    let (proxy, call) = tokio::task::spawn_blocking(measure).await.unwrap();
    eprintln!("instructions per request: the proxy {proxy:.0}, one component call {call:.0}");
    if std::env::var_os("PORTCULLIS_INSTRUCTIONS_UPDATE").is_some() {
        std::fs::write(baseline_path(), format!("proxy {proxy:.0}\ncomponent {call:.0}\n")).unwrap();
        return;
    }
    let (proxy_base, call_base) = baseline();
    assert!(proxy <= proxy_base * TOLERANCE, "the proxy runs {proxy:.0} instructions per request, over {TOLERANCE}× its baseline of {proxy_base:.0}");
    assert!(call <= call_base * TOLERANCE, "a component call runs {call:.0} instructions per request, over {TOLERANCE}× its baseline of {call_base:.0}");
    // Far fewer would mean a phase no longer does what it is named for.
    assert!(
        proxy >= proxy_base / 2.0 && call >= call_base / 2.0,
        "far under the baseline ({proxy:.0}, {call:.0}): move it (see the module docs), or is a phase skipped?"
    );
}
