//! The edges of the boundary (issue 22, items 10 and 11): header names that a
//! server folds onto a stripped one, client copies of injected headers, the
//! proxy headers other CDNs and frameworks trust, and cross-site browser
//! requests that carry no `Origin`.

use crate::{client, json, seen};
use portcullis_tests::gateway::{TestGateway, behaviour, workload};
use portcullis_tests::upstream::TestUpstream;

/// An injector that sets `x-upstream-key`, as a registry token sets `authorization`.
const INJECTOR: &str = "  [[workloads.outbound]]\n  component = \"inject-header\"\n  config = { header = \"x-upstream-key\", value = \"gateway-key\" }\n";

#[tokio::test]
async fn other_spellings_and_well_known_proxy_headers_never_reach_the_upstream() {
    let upstream = TestUpstream::start().await;
    let body = format!("strip_request_headers = [\"x_tenant\"]\n{}{INJECTOR}", behaviour(r#"mode = "allow", tag = "a", claim_header = "x-user-email""#));
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("w", &upstream.url(), &body))).await.unwrap();
    let forged = [
        // `_` for `-`, in any case: servers that fold `_` into `-` (or both into `_`, as CGI and WSGI do) read these as the real ones.
        "X_Forwarded_User",
        "x-forwarded_email",
        "x_real_ip",
        "x_user_email",
        "X_Fixture_Allowed_By",
        "x-tenant",
        "x_upstream_key",
        // Proxy headers that CDNs, load balancers and frameworks read as facts about the client.
        "x-cluster-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "client-ip",
        "x-originating-ip",
        "x-remote-ip",
        "x-remote-addr",
        "x-original-host",
        "x-host",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-envoy-internal",
        "x_envoy_original_path",
    ];
    let mut request = client().get(gw.url("w").await).header("x-fixture-claim", "alice@example.com").header("x-upstream-key", "client-key");
    for name in forged {
        request = request.header(name, "forged");
    }
    let r = request.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let echo = json(r).await;
    for name in forged {
        assert!(seen(&echo, &name.to_ascii_lowercase()).is_empty(), "{name} reached the upstream: {echo}");
    }
    assert_eq!(seen(&echo, "x-user-email"), ["alice@example.com"], "only the component's value");
    assert_eq!(seen(&echo, "x-upstream-key"), ["gateway-key"], "only the injector's value");
    assert_eq!(seen(&echo, "x-fixture-allowed-by"), ["a"]);
}

#[tokio::test]
async fn a_cross_site_request_without_origin_does_not_drive_an_anonymous_workload() {
    let upstream = TestUpstream::start().await;
    let body = format!("anonymous = true\nallowed_origins = [\"https://app.example.com\"]\n{INJECTOR}");
    let gw = TestGateway::start(&format!("version = 1\n{}", workload("registry", &upstream.url(), &body))).await.unwrap();
    let url = gw.url("registry").await;
    let get = |site: Option<&str>, origin: Option<&str>| {
        let mut request = client().get(&url);
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    // An <img> or a link on another site: a GET with no Origin, and the browser's Sec-Fetch-Site.
    for site in ["cross-site", "same-site", "Cross-Site"] {
        let r = get(Some(site), None).await.unwrap();
        assert_eq!(r.status(), 403, "Sec-Fetch-Site: {site}");
        assert!(r.text().await.unwrap().contains("Origin"));
    }
    // A page on another site that sends an Origin we do not accept.
    assert_eq!(get(Some("cross-site"), Some("https://evil.example")).await.unwrap().status(), 403);
    // What a user types, the workload's own pages, non-browser clients, and the origins the policy allows.
    for (site, origin) in [
        (Some("none"), None),
        (Some("same-origin"), None),
        (None, None),
        (Some("cross-site"), Some("https://app.example.com")),
        (Some("same-site"), Some("http://localhost:6274")),
    ] {
        let r = get(site, origin).await.unwrap();
        assert_eq!(r.status(), 200, "Sec-Fetch-Site {site:?}, Origin {origin:?}");
        assert_eq!(seen(&json(r).await, "x-upstream-key"), ["gateway-key"]);
    }
}
