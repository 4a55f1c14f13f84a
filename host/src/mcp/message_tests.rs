use super::*;

#[test]
fn calls_notifications_responses_and_batches() {
    let calls = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"m":"hi"}}}"#).unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].method.as_str(), calls[0].name.as_deref(), calls[0].id.as_deref()), ("tools/call", Some("echo"), Some("1")));
    assert_eq!(calls[0].arguments_json.as_deref(), Some(r#"{"m":"hi"}"#));
    let calls = parse(br#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"a","result":{}},{"jsonrpc":"2.0","id":"b","method":"resources/read","params":{"uri":"file:///x"}}]"#).unwrap();
    assert_eq!(calls.iter().map(|c| c.method.as_str()).collect::<Vec<_>>(), ["notifications/initialized", "resources/read"]);
    assert_eq!(calls[1].name.as_deref(), Some("file:///x"));
    assert_eq!(calls[1].id.as_deref(), Some("\"b\""));
}

#[test]
fn what_is_not_json_rpc_is_refused() {
    for body in [
        &b"not json"[..],
        b"[]",
        b"42",
        br#"{"method":"tools/list"}"#,
        br#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
        br#"{"jsonrpc":"2.0","id":1.0,"method":"tools/list"}"#,
        br#"{"jsonrpc":"2.0","id":1e22,"method":"tools/list"}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":7}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":[1]}}"#,
        br#"{"jsonrpc":"2.0"}"#,
        br#"[1]"#,
    ] {
        assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn headers_must_agree_with_the_body() {
    let calls = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#).unwrap();
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().unwrap());
        }
        map
    };
    assert!(check_headers(&headers(&[]), &calls).is_ok());
    assert!(check_headers(&headers(&[("mcp-method", "tools/call"), ("mcp-name", "echo")]), &calls).is_ok());
    assert!(check_headers(&headers(&[("mcp-method", "tools/list")]), &calls).is_err());
    assert!(check_headers(&headers(&[("mcp-name", "deploy")]), &calls).is_err());
    assert!(check_headers(&headers(&[("mcp-method", "tools/call"), ("mcp-method", "tools/call")]), &calls).is_err());
    let batch = parse(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#).unwrap();
    assert!(check_headers(&headers(&[("mcp-method", "ping")]), &batch).is_err());
}

#[test]
fn ids_outside_i_json_are_refused() {
    for id in ["9007199254740993", "-9007199254740993", "9007199254740992", "18446744073709551615", "18446744073709551616", "1e400", "-1e400"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
        assert!(parse(body.as_bytes()).is_err(), "{id}");
        let response = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#);
        assert!(parse(response.as_bytes()).is_err(), "{id} in a response");
    }
    for id in ["9007199254740991", "-9007199254740991", "0"] {
        let calls = parse(format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#).as_bytes()).unwrap();
        assert_eq!(calls[0].id.as_deref(), Some(id));
    }
}

#[test]
fn keys_equal_under_case_folding_are_refused() {
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_docs","Name":"delete_repo"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_docs","name":"delete_repo"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{},"Method":"tools/call","params":{"name":"x"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"r","arguments":{"path":"/public/a","Path":"/etc/shadow"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"r","arguments":{"a":[{"deep":{"k":1,"K":2}}]}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"r","arguments":{"k":1,"\u212a":2}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"r"},"paramſ":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"r","argumentſ":{}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"name":"r"}}"#,
        r#"{"jsonrpc":"2.0","ID":1,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"r"}}"#,
        r#"[{"jsonrpc":"2.0","method":"ping"},{"jsonrpc":"2.0","id":1,"method":"ping","Id":2}]"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","Name":"b"},"argument":{"name":"x","value":""}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"Ref":{"type":"ref/prompt","name":"a"},"argument":{"name":"x","value":""}}}"#,
    ] {
        assert!(parse(body.as_bytes()).is_err(), "{body}");
    }
    // Keys the gateway does not read may be spelt in any case, once.
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"r","arguments":{"Name":"Bob","ID":3,"Path":"/a"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"r","_meta":{"progressToken":1}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"r","arguments":{"straße":1,"strasse":2}}}"#,
    ] {
        assert!(parse(body.as_bytes()).is_ok(), "{body}");
    }
}

#[test]
fn resource_uris_are_canonical() {
    for uri in ["file:///public/a.md", "file:///public/", "https://example.com/a?b=c", "file:///public/{name}", "file:///a%20b", "note://x/caf%C3%A9"] {
        let calls = parse(format!(r#"{{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{{"uri":"{uri}"}}}}"#).as_bytes()).unwrap();
        assert_eq!(calls[0].name.as_deref(), Some(uri));
    }
    for uri in [
        "file:///public/../secrets/db.env",
        "file:///public/%2E%2e/secrets/db.env",
        "file:///public/%73ecret",
        "file:///public/%7e",
        "FILE:///public/a",
        "File:///public/a",
        "file://localhost/public/a",
        "file:////public/a",
        "file:///public//a",
        "file:///public%2fa",
        "file:///public%5Ca",
        r"file:///public\\a",
        "file:///caf%c3%a9",
        "file:///a%2",
        "HTTPS://example.com/a",
        "https://EXAMPLE.com/a",
    ] {
        for method in ["resources/read", "resources/subscribe", "resources/unsubscribe"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"uri":"{uri}"}}}}"#);
            assert!(parse(body.as_bytes()).is_err(), "{method} {uri}");
        }
    }
}

#[test]
fn completion_names_its_reference() {
    let complete = |reference: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{{"ref":{reference},"argument":{{"name":"x","value":"v"}}}}}}"#)
    };
    let calls = parse(complete(r#"{"type":"ref/prompt","name":"greeting"}"#).as_bytes()).unwrap();
    assert_eq!((calls[0].method.as_str(), calls[0].name.as_deref()), ("completion/complete", Some("greeting")));
    let calls = parse(complete(r#"{"type":"ref/resource","uri":"file:///public/{name}"}"#).as_bytes()).unwrap();
    assert_eq!(calls[0].name.as_deref(), Some("file:///public/{name}"));
    for reference in [
        r#"{"type":"ref/tool","name":"x"}"#,
        r#"{"type":"ref/prompt"}"#,
        r#"{"type":"ref/resource","name":"x"}"#,
        r#""x""#,
        r#"{"type":"ref/resource","uri":"file:///a/../b"}"#,
    ] {
        assert!(parse(complete(reference).as_bytes()).is_err(), "{reference}");
    }
    assert!(parse(br#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{}}"#).is_err());
}

#[test]
fn folding_meets_what_case_insensitive_parsers_equate() {
    for (a, b) in [("Name", "name"), ("paramſ", "params"), ("\u{212a}ey", "key"), ("ıd", "id"), ("İd", "id"), ("ΣΑς", "σας"), ("ǅ", "ǆ")] {
        assert_eq!(keys::fold(a), keys::fold(b), "{a} {b}");
    }
    assert_ne!(keys::fold("straße"), keys::fold("strasse"));
}
