use super::*;
use crate::runtime::bindings::types::Header;
use http_body_util::BodyExt;

fn route(path: &str, methods: &[&str]) -> Route {
    Route { path: path.into(), methods: methods.iter().map(|m| m.to_string()).collect() }
}

fn metadata(path: &str) -> Option<&'static str> {
    path.starts_with("/.well-known/oauth-protected-resource").then_some("the gateway's own")
}

#[test]
fn declared_routes_are_mounted_by_exact_path_with_their_allow_header() {
    let mounted = mount(&[route("/oauth/token", &["POST"]), route("/oauth/jwks", &["GET", "HEAD", "GET"])], metadata).unwrap();
    assert_eq!(mounted.len(), 2);
    assert_eq!(mounted["/oauth/token"].methods, [Method::POST]);
    assert_eq!(mounted["/oauth/jwks"].allow, "GET, HEAD", "a method listed twice is allowed once");
    for near in ["/oauth/token/", "/oauth", "/OAUTH/TOKEN", "/oauth/token?x=1"] {
        assert!(!mounted.contains_key(near), "{near}: exact paths only");
    }
}

#[test]
fn routes_that_are_not_plain_unique_paths_or_are_the_gateways_own_are_refused() {
    for (routes, expected) in [
        (vec![], "no route"),
        (vec![route("oauth/token", &["POST"])], "not a plain absolute path"),
        (vec![route("/oauth/token?x=1", &["POST"])], "not a plain absolute path"),
        (vec![route("/oauth/token#f", &["POST"])], "not a plain absolute path"),
        (vec![route("/oauth/%74oken", &["POST"])], "not a plain absolute path"),
        (vec![route("/oauth/../admin", &["POST"])], "not a plain absolute path"),
        (vec![route("/oauth/to ken", &["POST"])], "not a plain absolute path"),
        (vec![route("/.well-known/oauth-protected-resource", &["GET"])], "the gateway's own"),
        (vec![route("/.well-known/oauth-protected-resource/mcp", &["GET"])], "the gateway's own"),
        (vec![route("/a", &["GET"]), route("/a", &["POST"])], "declared twice"),
        (vec![route("/a", &[])], "no method"),
        (vec![route("/a", &["get"])], "the method \"get\""),
        (vec![route("/a", &["TRACE"])], "the method \"TRACE\""),
        (vec![route("/a", &["GET POST"])], "the method \"GET POST\""),
        ((0..65).map(|n| route(&format!("/r{n}"), &["GET"])).collect(), "at most 64"),
    ] {
        let why = mount(&routes, metadata).unwrap_err();
        assert!(why.contains(expected), "{routes:?}: {why}");
    }
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> ServeResponse {
    ServeResponse {
        status,
        headers: headers.iter().map(|(name, value)| Header { name: name.to_string(), value: value.to_string() }).collect(),
        body: body.as_bytes().to_vec(),
    }
}

async fn body_of(response: Response<ProxyBody>) -> String {
    String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn a_response_keeps_its_status_headers_and_body_and_is_not_cached_by_default() {
    let checked = check_response(response(201, &[("content-type", "application/json"), ("set-cookie", "a=1"), ("set-cookie", "b=2")], "{}")).unwrap();
    assert_eq!(checked.status(), 201);
    assert_eq!(checked.headers()["content-type"], "application/json");
    assert_eq!(checked.headers().get_all("set-cookie").iter().count(), 2);
    assert_eq!(checked.headers()["cache-control"], "no-store");
    assert_eq!(body_of(checked).await, "{}");
    // The component's own caching rule is kept (a JWKS may be cached).
    let cached = check_response(response(200, &[("Cache-Control", "max-age=300")], "")).unwrap();
    assert_eq!(cached.headers().get_all("cache-control").iter().collect::<Vec<_>>(), ["max-age=300"]);
}

#[test]
fn the_headers_the_gateway_owns_are_dropped() {
    let checked = check_response(response(
        302,
        &[
            ("location", "https://client.example/cb?code=x"),
            ("content-length", "999"),
            ("transfer-encoding", "chunked"),
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("upgrade", "h2c"),
            ("x-request-id", "forged"),
        ],
        "",
    ))
    .unwrap();
    let names: Vec<&str> = checked.headers().keys().map(HeaderName::as_str).collect();
    assert_eq!(names, ["location", "cache-control"]);
}

#[test]
fn a_response_that_is_not_a_final_answer_or_has_bad_headers_is_the_components_fault() {
    for (bad, expected) in [
        (response(100, &[], ""), "status 100"),
        (response(101, &[], ""), "status 101"),
        (response(600, &[], ""), "status 600"),
        (response(0, &[], ""), "status 0"),
        (response(200, &[("bad name", "x")], ""), "invalid header name"),
        (response(200, &[("x-a", "line\nbreak")], ""), "invalid value"),
    ] {
        let why = check_response(bad).unwrap_err();
        assert!(why.contains(expected), "{why}");
    }
}
