use super::*;

fn file(toml_text: &str) -> TelemetryFile {
    toml::from_str(toml_text).unwrap()
}

fn no_secret(name: &str) -> anyhow::Result<String> {
    anyhow::bail!("no secret {name}")
}

#[test]
fn off_unless_an_endpoint_is_named() {
    let none = |_: &str| None;
    assert!(Export::resolve(&TelemetrySettings::default(), &none, no_secret).unwrap().is_none());
    let env = |name: &str| (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://collector:4318".to_owned());
    let export = Export::resolve(&TelemetrySettings::default(), &env, no_secret).unwrap().expect("the variable turns export on");
    assert_eq!(export.traces_endpoint, "http://collector:4318/v1/traces");
    assert_eq!(export.metrics_endpoint, None, "opentelemetry-otlp reads the variable itself");
    let disabled = |name: &str| match name {
        "OTEL_SDK_DISABLED" => Some("true".to_owned()),
        _ => env(name),
    };
    assert!(Export::resolve(&TelemetrySettings::default(), &disabled, no_secret).unwrap().is_none());
}

#[test]
fn the_policy_wins_over_the_environment() {
    let settings = TelemetrySettings::parse(Some(&file(
        "endpoint = \"http://127.0.0.1:4318/\"\nsampling_ratio = 0.5\nservice_name = \"edge\"\nheader_secrets = { authorization = \"otlp\" }",
    )))
    .unwrap();
    let env = |name: &str| match name {
        "OTEL_SERVICE_NAME" => Some("env-name".to_owned()),
        "OTEL_TRACES_SAMPLER_ARG" => Some("0.1".to_owned()),
        _ => None,
    };
    let export = Export::resolve(&settings, &env, |name| Ok(format!("value-of-{name}"))).unwrap().unwrap();
    assert_eq!(export.traces_endpoint, "http://127.0.0.1:4318/v1/traces");
    assert_eq!(export.metrics_endpoint.as_deref(), Some("http://127.0.0.1:4318/v1/metrics"));
    assert_eq!((export.sampling_ratio, export.service_name.as_str()), (0.5, "edge"));
    assert_eq!(export.headers["authorization"], "value-of-otlp");
    let bare = TelemetrySettings::parse(Some(&file("endpoint = \"http://c:4318\""))).unwrap();
    let export = Export::resolve(&bare, &env, no_secret).unwrap().unwrap();
    assert_eq!((export.sampling_ratio, export.service_name.as_str()), (0.1, "env-name"));
}

#[test]
fn problems_name_their_key_and_never_echo_a_credential() {
    let problems = TelemetrySettings::parse(Some(&file(
        "endpoint = \"http://user:hunter2@c:4318\"\nsampling_ratio = 1.5\nheader_secrets = { \"bad header\" = \"x\", ok = \" \" }",
    )))
    .unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["endpoint", "header_secrets.bad header", "header_secrets.ok", "sampling_ratio"]);
    assert!(problems.iter().all(|p| !p.message.contains("hunter2")));
    assert!(TelemetrySettings::parse(Some(&file("endpoint = \"ftp://c\""))).is_err());
}

#[test]
fn spans_go_where_the_standard_variables_say() {
    let endpoint = |vars: &'static [(&'static str, &'static str)]| {
        let env = move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
        Export::resolve(&TelemetrySettings::default(), &env, no_secret).unwrap().unwrap().traces_endpoint
    };
    assert_eq!(endpoint(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]), "http://c:4318/v1/traces");
    // The signal's own variable is used as it is, and wins over the base.
    let both = &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9999/spans")];
    assert_eq!(endpoint(both), "http://t:9999/spans");
    // Only metrics named: spans go to the specification's default.
    assert_eq!(endpoint(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4318/v1/metrics")]), "http://localhost:4318/v1/traces");
}

#[test]
fn span_headers_add_the_variables_under_the_policy() {
    let settings = TelemetrySettings::parse(Some(&file("endpoint = \"http://c:4318\"\nheader_secrets = { authorization = \"otlp\" }"))).unwrap();
    let env = |name: &str| match name {
        "OTEL_EXPORTER_OTLP_HEADERS" => Some("ignored=yes".to_owned()),
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS" => Some("Authorization=from-env, x-tenant = a%20b%2Cc,bad header=x,no-equals".to_owned()),
        _ => None,
    };
    let export = Export::resolve(&settings, &env, |name| Ok(format!("value-of-{name}"))).unwrap().unwrap();
    let mut headers = export.trace_headers.clone();
    headers.sort();
    let expected = [("authorization", "value-of-otlp"), ("x-tenant", "a b,c")].map(|(n, v)| (n.to_owned(), v.to_owned()));
    assert_eq!(headers, expected);
}

#[test]
fn an_endpoint_variable_with_credentials_is_refused_without_echoing_them() {
    for var in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] {
        let env = move |name: &str| (name == var).then(|| "http://user:hunter2@collector:4318".to_owned());
        let error = Export::resolve(&TelemetrySettings::default(), &env, no_secret).unwrap_err().to_string();
        assert!(error.contains(var) && !error.contains("hunter2"), "{error}");
    }
}
