//! Policy parsing: any text gets a policy or errors that name a line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    // A path with no neighbours: files the policy names (key sets, lock file) are missing.
    let _ = portcullis::policy::load::load_str(std::path::Path::new("/nonexistent/portcullis-fuzz/policy.toml"), text.to_owned());
});
