use super::*;

fn load(src: &str) -> Result<Policy, PolicyErrors> {
    load_str(Path::new("policy.toml"), src.to_owned())
}

const GOOD: &str = r#"
version = 1
[[workloads]]
name = "demo"
listen = "127.0.0.1:8080"
upstream = "http://127.0.0.1:3001"
public_url = "http://127.0.0.1:8080"
  [[workloads.inbound]]
  component = "builtin:shared-key"
  grants = { secrets = ["workload:demo:shared-key*"] }
"#;

#[test]
fn a_good_policy_loads() {
    let policy = load(GOOD).unwrap();
    assert_eq!(policy.file.workloads[0].name, "demo");
    assert!(policy.warnings.is_empty());
}

#[test]
fn unknown_keys_name_line_and_key() {
    let src = GOOD.replace("upstream =", "upstrem =");
    let err = load(&src).unwrap_err().to_string();
    assert!(err.starts_with("policy.toml:"), "{err}");
    assert!(err.contains("upstrem"), "{err}");
    assert!(err.contains("workloads[0]"), "{err}");
}

#[test]
fn bad_values_name_line_and_key() {
    let src = GOOD.replace("http://127.0.0.1:3001", "ftp://x");
    let err = load(&src).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].line, Some(6));
    assert_eq!(err.0[0].key.to_string(), "workloads[0].upstream");
}

#[test]
fn empty_inbound_needs_anonymous() {
    let src = GOOD.split("  [[workloads.inbound]]").next().unwrap().to_owned();
    let err = load(&src).unwrap_err().to_string();
    assert!(err.contains("anonymous = true"), "{err}");
    let ok = load(&format!("{src}anonymous = true\n")).unwrap();
    assert_eq!(ok.warnings.len(), 1);
}

#[test]
fn unknown_component_and_bad_grant() {
    let src = GOOD.replace("builtin:shared-key", "builtin:nope").replace("shared-key*\"]", "a*b\"], http = [\"nota url\"]");
    let errors = load(&src).unwrap_err().0;
    let keys: Vec<String> = errors.iter().map(|e| e.key.to_string()).collect();
    assert!(keys.contains(&"workloads[0].inbound[0].component".to_string()), "{keys:?}");
    assert!(keys.contains(&"workloads[0].inbound[0].grants.secrets[0]".to_string()), "{keys:?}");
    assert!(keys.contains(&"workloads[0].inbound[0].grants.http[0]".to_string()), "{keys:?}");
}

#[test]
fn cache_quotas_are_checked_on_components_and_entries() {
    let with = |component_limits: &str, entry_limits: &str| {
        let declared = format!("[components.c]\npath = \"c.wasm\"\nsha256 = \"{}\"\nlimits = {{ {component_limits} }}\n", "a".repeat(64));
        let src =
            GOOD.replace("version = 1\n", &format!("version = 1\n{declared}")).replace("  grants = ", &format!("  limits = {{ {entry_limits} }}\n  grants = "));
        load(&src).map(|_| ()).map_err(|e| e.0.iter().map(|e| e.key.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(with("cache_mib = 1, cache_entries = 1", ""), Ok(()));
    assert_eq!(with("cache_mib = 1024, cache_entries = 1000000", "cache_mib = 8, cache_entries = 10000"), Ok(()));
    assert_eq!(
        with("cache_mib = 0, cache_entries = 1000001", ""),
        Err(vec!["components.c.limits.cache_mib".to_owned(), "components.c.limits.cache_entries".to_owned()])
    );
    assert_eq!(
        with("", "cache_mib = 1025, cache_entries = 0"),
        Err(vec!["workloads[0].inbound[0].limits.cache_mib".to_owned(), "workloads[0].inbound[0].limits.cache_entries".to_owned()])
    );
}

#[test]
fn an_injector_toward_a_cleartext_upstream_is_refused_unless_allowed() {
    let injector = "  [[workloads.outbound]]\n  component = \"builtin:registry-token\"\n";
    let with = |upstream: &str, extra: &str| {
        GOOD.replace("http://127.0.0.1:3001", upstream).replace("  [[workloads.inbound]]", &format!("{extra}{injector}  [[workloads.inbound]]"))
    };
    let errors = load(&with("http://registry.example.com/api", "")).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = &errors[0];
    assert_eq!((error.line, error.key.to_string()), (Some(6), "workloads[0].upstream".to_owned()));
    assert!(error.message.contains("in clear") && error.message.contains("registry.example.com"), "{}", error.message);
    assert!(error.hint.as_deref().is_some_and(|h| h.contains("https://") && h.contains("allow_cleartext = true")), "{:?}", error.hint);
    // Loopback (127.0.0.0/8, ::1, localhost) and https need nothing.
    for upstream in ["http://127.0.0.1:3001", "http://127.1.2.3:3001", "http://[::1]:3001", "http://LOCALHOST:3001", "https://registry.example.com"] {
        let policy = load(&with(upstream, "")).unwrap_or_else(|e| panic!("{upstream}: {e}"));
        assert!(policy.warnings.is_empty(), "{upstream}: {:?}", policy.warnings);
    }
    // Names that only look local are not loopback.
    for upstream in ["http://localhost.example.com", "http://10.0.0.1", "http://[::ffff:8.8.8.8]"] {
        assert!(load(&with(upstream, "")).is_err(), "{upstream}");
    }
    // An explicit opt-in loads, with a warning at the key.
    let policy = load(&with("http://registry.example.com/api", "allow_cleartext = true\n")).unwrap();
    assert_eq!(policy.warnings.len(), 1, "{:?}", policy.warnings);
    assert_eq!(policy.warnings[0].key.to_string(), "workloads[0].allow_cleartext");
    assert!(policy.warnings[0].message.contains("in clear"), "{}", policy.warnings[0].message);
    // Without an injector there is no token to leak.
    assert!(load(&GOOD.replace("http://127.0.0.1:3001", "http://10.0.0.1")).is_ok());
}

#[test]
fn duplicate_names_and_ports() {
    let src = format!("{GOOD}{}", GOOD.replace("version = 1", ""));
    let errors = load(&src).unwrap_err().0;
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn an_http_grant_in_clear_is_refused_at_its_key_unless_the_workload_allows_cleartext() {
    let with = |origin: &str, extra: &str| {
        let src = GOOD.replace("shared-key*\"]", &format!("shared-key*\"], http = [\"https://idp.example.com\", \"{origin}\"]"));
        load(&src.replace("  [[workloads.inbound]]", &format!("{extra}  [[workloads.inbound]]")))
    };
    let errors = with("http://idp.example.com", "").unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].line, errors[0].key.to_string()), (Some(10), "workloads[0].inbound[0].grants.http[1]".to_owned()));
    assert!(errors[0].message.contains("in clear"), "{}", errors[0].message);
    assert!(errors[0].hint.as_deref().is_some_and(|h| h.contains("allow_cleartext = true")), "{:?}", errors[0].hint);
    // Loopback needs nothing: a provider on this machine, as the e2e tests use.
    for origin in ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"] {
        let policy = with(origin, "").unwrap_or_else(|e| panic!("{origin}: {e}"));
        assert!(policy.warnings.is_empty(), "{origin}: {:?}", policy.warnings);
    }
    // The workload's consent to cleartext covers its grants too, with a warning at the grant.
    let policy = with("http://idp.example.com", "allow_cleartext = true\n").unwrap();
    assert_eq!(policy.warnings.len(), 1, "{:?}", policy.warnings);
    assert_eq!(policy.warnings[0].key.to_string(), "workloads[0].inbound[0].grants.http[1]");
}

#[test]
fn every_limit_out_of_range_is_reported_at_its_key() {
    let src = GOOD.replace(
        "  [[workloads.inbound]]",
        "limits = { max_request_body_kib = 0, max_connections = 65537, idle_timeout_ms = 3600001, max_mcp_message_bytes = 0, max_mcp_arguments_bytes = 67108865 }\n  [[workloads.inbound]]",
    );
    let errors = load(&src).unwrap_err().0;
    let found: Vec<(String, String)> = errors.iter().map(|e| (e.key.to_string(), e.message.clone())).collect();
    let expected = [
        ("max_request_body_kib", "must be between 1 and 1048576"),
        ("max_connections", "must be between 1 and 65536"),
        ("idle_timeout_ms", "must be between 1 and 3600000 ms"),
        ("max_mcp_message_bytes", "must be between 1 and 67108864"),
        ("max_mcp_arguments_bytes", "must be between 1 and 67108864"),
    ]
    .map(|(key, message)| (format!("workloads[0].limits.{key}"), message.to_owned()));
    assert_eq!(found, expected);
    let ok = GOOD.replace("  [[workloads.inbound]]", "limits = { max_instances = 1000, upstream_timeout_ms = 3600000 }\n  [[workloads.inbound]]");
    let limits = load(&ok).unwrap().workloads[0].limits;
    assert_eq!((limits.max_instances, limits.upstream_timeout.as_secs(), limits.max_connections), (1000, 3600, 1024));
}

/// The schema (and `portcullis schema`, and the editors that read it) states
/// each default and range in words; they must be the ones the code applies.
#[test]
fn the_schema_states_the_defaults_and_ranges_the_code_applies() {
    use crate::proxy::workload::defaults as d;
    use crate::runtime::capabilities::cache;
    let schema = super::super::json_schema();
    let definitions = schema.get("$defs").or_else(|| schema.get("definitions")).expect("the schema has definitions");
    let says = |ty: &str, field: &str, words: String| {
        let description = definitions[ty]["properties"][field]["description"].as_str().unwrap_or_else(|| panic!("{ty}.{field} has no description"));
        assert!(description.contains(&words), "{ty}.{field}: {description:?} does not say {words:?}");
    };
    for (field, default) in [
        ("max_request_body_kib", d::MAX_REQUEST_BODY_KIB),
        ("max_mcp_message_bytes", d::MAX_MCP_MESSAGE_BYTES),
        ("max_mcp_arguments_bytes", crate::mcp::authorize::ArgumentLimits::DEFAULT_MAX_BYTES as u64),
        ("max_mcp_arguments_elements", crate::mcp::authorize::ArgumentLimits::DEFAULT_MAX_ELEMENTS as u64),
        ("upstream_timeout_ms", d::UPSTREAM_TIMEOUT_MS),
        ("header_timeout_ms", d::HEADER_TIMEOUT_MS),
        ("idle_timeout_ms", d::IDLE_TIMEOUT_MS),
        ("body_timeout_ms", d::BODY_TIMEOUT_MS),
        ("min_body_rate_kib", d::MIN_BODY_RATE_KIB),
        ("max_pending_body_kib", d::MAX_PENDING_BODY_KIB),
        ("max_connections", d::MAX_CONNECTIONS),
        ("max_instances", d::MAX_INSTANCES),
    ] {
        says("WorkloadLimitsFile", field, format!("default {default}"));
    }
    says("WorkloadLimitsFile", "max_instances", format!("at most {}", crate::runtime::engine::POOL_INSTANCES));
    let limits = crate::runtime::plugin::Limits::default();
    says("LimitsFile", "deadline_ms", format!("default {}, at most {}", limits.deadline.as_millis(), crate::runtime::plugin::MAX_DEADLINE_MS));
    says("LimitsFile", "memory_mib", format!("default {}, at most {}", limits.memory_bytes / (1024 * 1024), crate::runtime::MAX_MEMORY_MIB));
    says("LimitsFile", "max_uses", format!("default {}", limits.max_uses));
    says("LimitsFile", "cache_mib", format!("default {}, 1 to {}", cache::DEFAULT_CACHE_MIB, cache::MAX_CACHE_MIB));
    says("LimitsFile", "cache_entries", format!("default {}, 1 to {}", cache::DEFAULT_CACHE_ENTRIES, cache::MAX_CACHE_ENTRIES));
}

#[test]
fn the_admin_listeners_hosts_are_parsed_at_load() {
    let with = |hosts: &str| load(&GOOD.replace("version = 1\n", &format!("version = 1\n[admin]\nlisten = \"127.0.0.1:9901\"\nallowed_hosts = {hosts}\n")));
    let policy = with(r#"["metrics.internal", "scraper:9901"]"#).unwrap();
    let guard = &policy.admin.as_ref().expect("an admin listener").guard;
    assert!(guard.host_allowed("scraper:9901") && guard.host_allowed("metrics.internal:1") && !guard.host_allowed("scraper:9902"));
    let errors = with(r#"["ok", "a/b"]"#).unwrap_err().0;
    assert_eq!(errors.iter().map(|e| (e.key.to_string(), e.line)).collect::<Vec<_>>(), [("admin.allowed_hosts[1]".to_owned(), Some(5))]);
}

/// `[workloads.server]` is checked like a chain entry, each error at its key.
#[test]
fn a_server_entry_is_checked_like_a_chain_entry() {
    let server = "  [workloads.server]\n  component = \"builtin:nope\"\n  grants = { http = [\"nota url\"] }\n  limits = { deadline_ms = 0 }\n";
    let errors = load(&format!("{GOOD}{server}")).unwrap_err().0;
    let keys: Vec<String> = errors.iter().map(|e| e.key.to_string()).collect();
    for key in ["workloads[0].server.component", "workloads[0].server.grants.http[0]", "workloads[0].server.limits.deadline_ms"] {
        assert!(keys.contains(&key.to_string()), "{key} in {keys:?}");
    }
    assert!(errors.iter().all(|e| e.line.is_some()), "every error has its line: {errors:?}");
    let plugin = load(&format!("{GOOD}  [workloads.server]\n  component = \"plugin:as\"\n")).unwrap_err().0;
    assert_eq!(plugin[0].key.to_string(), "workloads[0].server.component");
    assert!(plugin[0].message.contains("not installed"), "{}", plugin[0].message);
    // A server has a bound of its own: it takes no place of the chain's.
    let bound = GOOD.replace("public_url =", "limits = { max_instances = 1 }\npublic_url =");
    assert!(load(&format!("{bound}  [workloads.server]\n  component = \"builtin:shared-key\"\n")).is_ok());
    let ok = load(&format!("{GOOD}  [workloads.server]\n  component = \"builtin:shared-key\"\n")).unwrap();
    assert!(ok.workloads[0].server.is_some());
}

/// A verifier that trusts the workload's own server needs one, and takes
/// the issuer, audience and keys from it.
#[test]
fn embedded_server_needs_a_server_and_names_nothing_it_fills() {
    let verifier = |config: &str| {
        GOOD.replace("builtin:shared-key", "builtin:oidc-verifier")
            .replace("grants = { secrets = [\"workload:demo:shared-key*\"] }", &format!("config = {{ {config} }}"))
    };
    let server = "  [workloads.server]\n  component = \"builtin:shared-key\"\n";
    let errors = load(&verifier("embedded_server = true")).unwrap_err().0;
    assert_eq!(errors[0].key.to_string(), "workloads[0].inbound[0].config.embedded_server");
    assert!(errors[0].message.contains("has none"), "{}", errors[0].message);
    load(&format!("{}{server}", verifier("embedded_server = true"))).unwrap();
    let errors = load(&format!("{}{server}", verifier("embedded_server = true, issuer = \"https://idp.example\""))).unwrap_err().0;
    assert_eq!(errors[0].key.to_string(), "workloads[0].inbound[0].config.issuer");
    let errors = load(&format!("{}{server}", verifier("embedded_server = 1"))).unwrap_err().0;
    assert_eq!(errors[0].key.to_string(), "workloads[0].inbound[0].config.embedded_server");
}

#[test]
fn telemetry_problems_are_located_at_their_keys() {
    let src = format!("{GOOD}\n[telemetry]\nendpoint = \"http://127.0.0.1:4318\"\nsampling_ratio = 2.0\nheader_secrets = {{ \"x-api-key\" = \"\" }}\n");
    let err = load(&src).unwrap_err();
    let keys: Vec<String> = err.0.iter().map(|e| e.key.to_string()).collect();
    assert_eq!(keys, ["telemetry.header_secrets.x-api-key", "telemetry.sampling_ratio"], "{err}");
    assert!(err.0.iter().all(|e| e.line.is_some()), "{err}");
    let good = load(&format!("{GOOD}\n[telemetry]\nendpoint = \"http://127.0.0.1:4318\"\n")).unwrap();
    assert_eq!(good.telemetry.endpoint.map(String::from).as_deref(), Some("http://127.0.0.1:4318/"));
    let trusting = load(&GOOD.replace("public_url =", "trust_trace_context = true\npublic_url =")).unwrap();
    assert!(trusting.file.workloads[0].trust_trace_context);
}
