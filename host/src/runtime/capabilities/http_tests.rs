use super::*;
use crate::runtime::deadline::less_margin;

fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> OutgoingRequest {
    OutgoingRequest {
        method: method.into(),
        url: url.into(),
        headers: headers.iter().map(|(n, v)| Header { name: (*n).into(), value: (*v).into() }).collect(),
        body: Vec::new(),
        timeout_ms: None,
    }
}

fn refusal(method: &str, url: &str, headers: &[(&str, &str)]) -> String {
    match check_request(request(method, url, headers)) {
        Err(HttpError::InvalidRequest(why)) => why,
        other => panic!("{method} {url} {headers:?}: expected invalid-request, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_made_from_the_slow_lane_is_handed_to_the_gateways_runtime_and_answered() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        }
    });
    let client = Arc::new(OutboundHttp::new());
    let grant = HttpGrant::parse(std::slice::from_ref(&origin), true, false, &mut Vec::new()).expect("a loopback origin");
    let grants = HttpGrants::new(grant, client.clone(), Mode::Serve);
    let home = tokio::runtime::Handle::current().id();
    assert!(client.hand_over_to().is_none(), "made where the gateway's own calls run");
    let lane = crate::runtime::slow_lane::SlowLane::new();
    let (on_lane, handed_to, answer) = lane
        .run(std::time::Instant::now() + Duration::from_secs(10), async move {
            let on_lane = tokio::runtime::Handle::current().id() != home;
            let handed_to = client.hand_over_to().map(|h| h.id());
            (on_lane, handed_to, client.send(&grants, request("GET", &format!("{origin}/"), &[])).await)
        })
        .await
        .unwrap();
    assert!(on_lane, "the call ran on the lane's runtime");
    assert_eq!(handed_to, Some(home), "and its request is made on the gateway's");
    let answer = answer.unwrap();
    assert_eq!((answer.status, answer.body.as_slice()), (200, b"ok".as_slice()));
}

/// The margin is exact arithmetic; only `within`'s reading of the clock
/// depends on time, and its bounds hold however long the machine stalls.
#[test]
fn requests_end_before_the_calls_deadline() {
    let ms = Duration::from_millis;
    assert_eq!(less_margin(ms(100)), ms(90), "a tenth");
    assert_eq!(less_margin(ms(20)), ms(15), "at least 5 ms");
    assert_eq!(less_margin(ms(3)), Duration::ZERO);
    assert_eq!(within(None), None);
    let soon = within(Some(std::time::Instant::now() + Duration::from_secs(10))).unwrap();
    assert!(soon <= ms(9000), "{soon:?}");
    assert_eq!(within(Some(std::time::Instant::now())), Some(Duration::ZERO));
}

#[test]
fn an_http_grant_in_clear_is_refused_beyond_loopback_unless_the_workload_allows_it() {
    let parse = |origins: &[&str], allow_cleartext| {
        let origins: Vec<String> = origins.iter().map(|o| o.to_string()).collect();
        let mut problems = Vec::new();
        let grant = HttpGrant::parse(&origins, false, allow_cleartext, &mut problems);
        (grant.map(|g| g.origins.len()), problems)
    };
    let loopback = ["http://127.0.0.1:9000", "http://127.1.2.3", "http://[::1]:8080", "http://LOCALHOST:1", "https://idp.example.com"];
    assert_eq!(parse(&loopback, false), (Some(5), vec![]));
    for in_clear in ["http://idp.example.com", "http://10.0.0.1:8080", "http://localhost.example.com", "http://[::ffff:127.0.0.1]"] {
        let (grant, problems) = parse(&["https://ok.example", in_clear], false);
        assert_eq!(grant, None, "{in_clear}");
        assert_eq!(problems.len(), 1, "{in_clear}: {problems:?}");
        assert_eq!((problems[0].field, problems[0].index, problems[0].warning), ("http", 1, false));
        assert!(problems[0].message.contains("in clear"), "{}", problems[0].message);
        assert!(problems[0].hint.as_deref().is_some_and(|h| h.contains("allow_cleartext = true")), "{:?}", problems[0].hint);
        let (grant, problems) = parse(&[in_clear], true);
        assert_eq!(grant, Some(1), "{in_clear}: consented to");
        assert!(problems.len() == 1 && problems[0].warning, "{in_clear}: {problems:?}");
    }
}

#[test]
fn routing_and_framing_headers_are_refused_by_name() {
    for name in [
        "host",
        "Host",
        "HOST",
        "content-length",
        "Transfer-Encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "proxy-authorization",
        "Proxy-Connection",
        "forwarded",
        "x-forwarded-for",
        "X-Forwarded-Host",
    ] {
        let why = refusal("GET", "https://idp.example.com/", &[("accept", "*/*"), (name, "evil.example")]);
        assert!(why.contains(&format!("`{}`", name.to_ascii_lowercase())), "{name}: {why}");
    }
    for pseudo in [":authority", ":path", ":scheme"] {
        let why = refusal("GET", "https://idp.example.com/", &[(pseudo, "evil.example")]);
        assert!(why.contains(pseudo), "{why}");
    }
}

#[test]
fn malformed_requests_are_invalid_not_panics() {
    let url = "https://idp.example.com/";
    assert!(refusal("GET", url, &[("bad name", "v")]).contains("invalid header name"));
    assert!(refusal("GET", url, &[("", "v")]).contains("invalid header name"));
    assert!(refusal("GET", url, &[("x-a\r\nhost", "v")]).contains("invalid header name"));
    let why = refusal("GET", url, &[("authorization", "Bearer secret-token\r\nhost: evil")]);
    assert!(why.contains("`authorization`") && !why.contains("secret-token"), "the value is not echoed: {why}");
    assert!(refusal("GET", url, &[("x-a", "\0")]).contains("`x-a`"));
    assert!(refusal("GE T", url, &[]).contains("bad method"));
    assert!(refusal("CONNECT", url, &[]).contains("CONNECT"));
    assert!(refusal("GET", "ftp://idp.example.com/", &[]).contains("http://"));
    assert!(refusal("GET", "not a url", &[]).contains("bad URL"));
    let long = "x".repeat(10_000);
    assert!(refusal("GET", url, &[(&format!("{long} "), "v")]).len() < 200, "component strings are cut short");
}

#[test]
fn ordinary_requests_pass_with_their_headers() {
    let checked = check_request(request(
        "POST",
        "https://IdP.example.com/token",
        &[("Authorization", "Basic abc"), ("content-type", "application/x-www-form-urlencoded"), ("x-a", "1"), ("x-a", "2")],
    ))
    .unwrap();
    assert_eq!(checked.origin.to_string(), "https://idp.example.com:443");
    assert_eq!(checked.method, reqwest::Method::POST);
    assert_eq!(checked.headers["authorization"], "Basic abc");
    assert_eq!(checked.headers.get_all("x-a").iter().count(), 2, "repeated headers are kept");
    assert_eq!(checked.timeout, DEFAULT_TIMEOUT);
}

#[test]
fn public_addresses() {
    for private in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "64:ff9b::a00:1",
    ] {
        assert!(!is_public(private.parse().unwrap()), "{private}");
    }
    for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
        assert!(is_public(public.parse().unwrap()), "{public}");
    }
}

/// `https://*` reaches any https origin, but only on public addresses: a
/// client's metadata document URL cannot point the gateway at loopback or
/// the LAN, even in a grant that also allows private addresses for its
/// listed origins. Plain http is not covered by it.
#[tokio::test]
async fn any_public_https_never_reaches_a_private_address_nor_plain_http() {
    let listed = "https://127.0.0.1:9".to_owned();
    let grant = HttpGrant::parse(&[ANY_PUBLIC_HTTPS.to_owned(), listed.clone()], true, false, &mut Vec::new()).expect("both parse");
    let grants = HttpGrants::new(grant, Arc::new(OutboundHttp::new()), Mode::Serve);
    let client = OutboundHttp::new();
    match client.send(&grants, request("GET", "https://127.0.0.2:9/client.json", &[])).await {
        Err(HttpError::AddressRefused(_)) => {}
        other => panic!("a loopback address through the wildcard: {other:?}"),
    }
    match client.send(&grants, request("GET", "http://example.com/client.json", &[])).await {
        Err(HttpError::NotGranted(origin)) => assert_eq!(origin, "http://example.com:80"),
        other => panic!("plain http through the wildcard: {other:?}"),
    }
    // The listed origin keeps its private-address grant (nothing listens: a connection error, not a refusal).
    match client.send(&grants, request("GET", &format!("{listed}/"), &[])).await {
        Err(HttpError::Connection(_) | HttpError::Timeout) => {}
        other => panic!("the listed private origin: {other:?}"),
    }
}
