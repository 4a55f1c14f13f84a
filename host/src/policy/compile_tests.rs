use super::*;

#[test]
fn limits_merge_entry_over_component_over_default() {
    let (limits, quota) = merge_limits(None, None);
    assert_eq!(limits.max_uses, Limits::default().max_uses);
    assert_eq!(quota, cache::Quota { bytes: 8 * 1024 * 1024, entries: 10_000 });
    let component = LimitsFile { cache_mib: Some(2), cache_entries: Some(50), max_uses: Some(7), ..LimitsFile::default() };
    let entry = LimitsFile { cache_entries: Some(5), ..LimitsFile::default() };
    let (limits, quota) = merge_limits(Some(&entry), Some(&component));
    assert_eq!(limits.max_uses, 7);
    assert_eq!(quota, cache::Quota { bytes: 2 * 1024 * 1024, entries: 5 });
}

/// A server may not declare the metadata paths (the gateway's) or the resource's own path (the upstream's).
#[test]
fn a_servers_routes_keep_off_the_gateways_and_the_upstreams_paths() {
    let mcp = url::Url::parse("https://mcp.example.com/mcp").unwrap();
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp", "/mcp", "/mcp/"] {
        assert!(reserved_path(&mcp, path).is_some(), "{path}");
    }
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/mcp",
        "/.well-known/oauth-protected-resourcex",
        "/oauth/token",
        "/",
    ] {
        assert_eq!(reserved_path(&mcp, path), None, "{path}");
    }
    let root = url::Url::parse("http://127.0.0.1:8080").unwrap();
    assert!(reserved_path(&root, "/").is_some());
    assert_eq!(reserved_path(&root, "/oauth/token"), None);
}
