//! `[telemetry]` in the policy, parsed once at load (so `portcullis check`
//! reports its problems at their keys), and resolved at start with the
//! standard `OTEL_*` environment variables into what the exporters need.

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[telemetry]`: OpenTelemetry export (traces and metrics, OTLP over
/// HTTP/protobuf). Read when the gateway starts; a change applies at the next start.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryFile {
    /// The collector's OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`:
    /// traces go to `/v1/traces`, metrics to `/v1/metrics`. Absent:
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; neither set: nothing is exported.
    pub endpoint: Option<String>,
    /// Headers sent with every export, by name, each value read from the
    /// secret store by its secret's name: `{ authorization = "otlp-token" }`.
    #[serde(default)]
    pub header_secrets: BTreeMap<String, String>,
    /// The share of new traces recorded, 0.0 to 1.0 (default
    /// `OTEL_TRACES_SAMPLER_ARG`, else 1.0). A trace continued from a trusted
    /// client follows the client's sampled flag.
    pub sampling_ratio: Option<f64>,
    /// `service.name` of the exported data (default `OTEL_SERVICE_NAME`, else `portcullis`).
    pub service_name: Option<String>,
}

/// `[telemetry]`, parsed: a URL without credentials, header names checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelemetrySettings {
    pub endpoint: Option<url::Url>,
    /// (header name, secret name): names only, never values.
    pub header_secrets: Vec<(http::HeaderName, String)>,
    pub sampling_ratio: Option<f64>,
    pub service_name: Option<String>,
}

/// Something wrong with one `[telemetry]` key, for the loader to locate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key under `[telemetry]`.
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
}

impl TelemetrySettings {
    /// Parses `[telemetry]` (absent: the defaults, export only if `OTEL_*` asks).
    pub fn parse(file: Option<&TelemetryFile>) -> Result<TelemetrySettings, Vec<Problem>> {
        let Some(file) = file else { return Ok(TelemetrySettings::default()) };
        let mut problems = Vec::new();
        let mut error = |field: String, message: String, hint: &str| problems.push(Problem { field, message, hint: Some(hint.to_owned()) });
        let endpoint = file.endpoint.as_deref().and_then(|text| match url::Url::parse(text) {
            Ok(url) if !url.username().is_empty() || url.password().is_some() => {
                // Not echoed: it holds a credential.
                error("endpoint".into(), "the URL holds credentials".into(), "put them in the secret store and name them in `header_secrets`");
                None
            }
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() && url.query().is_none() && url.fragment().is_none() => Some(url),
            _ => {
                error("endpoint".into(), format!("{text:?} is not an http:// or https:// URL"), "e.g. `http://127.0.0.1:4318` (no query or fragment)");
                None
            }
        });
        let mut header_secrets = Vec::new();
        for (name, secret) in &file.header_secrets {
            match http::HeaderName::from_bytes(name.as_bytes()) {
                Ok(header) if !secret.trim().is_empty() => header_secrets.push((header, secret.clone())),
                Ok(_) => error(
                    format!("header_secrets.{name}"),
                    "the secret name is empty".into(),
                    "the name of a secret in the secret store (`portcullis secrets set NAME`)",
                ),
                Err(_) => error(format!("header_secrets.{name}"), format!("{name:?} is not a header name"), "e.g. `authorization` or `x-api-key`"),
            }
        }
        if let Some(ratio) = file.sampling_ratio.filter(|r| !(0.0..=1.0).contains(r)) {
            error("sampling_ratio".into(), format!("{ratio} is not between 0.0 and 1.0"), "1.0 records every trace, 0.1 one in ten");
        }
        if let Some(name) = file.service_name.as_deref().filter(|n| n.trim().is_empty() || n.len() > 255) {
            error("service_name".into(), format!("{name:?} is not a service name"), "1 to 255 characters, e.g. `portcullis`");
        }
        match problems.is_empty() {
            true => Ok(TelemetrySettings { endpoint, header_secrets, sampling_ratio: file.sampling_ratio, service_name: file.service_name.clone() }),
            false => Err(problems),
        }
    }
}

/// What the exporters are built from: the policy's settings, with the
/// standard variables filling what it leaves unset (the policy wins: it is
/// the file an operator reviews).
#[derive(Debug)]
pub struct Export {
    /// Where spans go: the policy's endpoint with `/v1/traces`, else
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces`, else the
    /// specification's `http://localhost:4318/v1/traces`.
    pub traces_endpoint: String,
    /// Where metrics go; `None` leaves opentelemetry-otlp to read
    /// `OTEL_EXPORTER_OTLP_{,METRICS_}ENDPOINT` itself.
    pub metrics_endpoint: Option<String>,
    /// Header values from the secret store (the metrics exporter also adds
    /// `OTEL_EXPORTER_OTLP_{,METRICS_}HEADERS`).
    pub headers: std::collections::HashMap<String, String>,
    /// The spans' headers: `headers`, and those of
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (else `OTEL_EXPORTER_OTLP_HEADERS`)
    /// that the policy does not name.
    pub trace_headers: Vec<(String, String)>,
    pub sampling_ratio: f64,
    pub service_name: String,
}

/// The environment, as a function so tests need not set process variables.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Export {
    /// Whether to export, and how: `None` (off, costing nothing) unless the
    /// policy names an endpoint or `OTEL_EXPORTER_OTLP_*ENDPOINT` is set, and
    /// always when `OTEL_SDK_DISABLED=true`. `secret` reads a header's value.
    pub fn resolve(settings: &TelemetrySettings, env: Env<'_>, secret: impl Fn(&str) -> anyhow::Result<String>) -> anyhow::Result<Option<Export>> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let from_env =
            ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"].iter().any(|v| set(v).is_some());
        if settings.endpoint.is_none() && !from_env {
            return Ok(None);
        }
        // As for the policy's endpoint: credentials belong in the secret store,
        // not in a URL that error messages and logs may show.
        for var in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] {
            if let Some(value) = set(var)
                && url::Url::parse(value.trim()).is_ok_and(|url| !url.username().is_empty() || url.password().is_some())
            {
                anyhow::bail!("{var} holds credentials in its URL (not shown); put them in the secret store and name them in [telemetry] header_secrets");
            }
        }
        let signal = |path: &str| settings.endpoint.as_ref().map(|base| format!("{}{path}", base.as_str().trim_end_matches('/')));
        let mut headers = std::collections::HashMap::new();
        for (name, secret_name) in &settings.header_secrets {
            let value = secret(secret_name).map_err(|e| e.context(format!("[telemetry] header_secrets.{name}: reading the secret {secret_name:?}")))?;
            headers.insert(name.as_str().to_owned(), value);
        }
        let traces_endpoint = signal("/v1/traces")
            .or_else(|| set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| format!("{}/v1/traces", base.trim_end_matches('/'))))
            .unwrap_or_else(|| "http://localhost:4318/v1/traces".to_owned());
        let mut trace_headers: Vec<(String, String)> = headers.iter().map(|(name, value)| (name.clone(), value.clone())).collect();
        let env_headers = set("OTEL_EXPORTER_OTLP_TRACES_HEADERS").or_else(|| set("OTEL_EXPORTER_OTLP_HEADERS")).unwrap_or_default();
        for (name, value) in header_list(&env_headers) {
            if !headers.contains_key(&name) {
                trace_headers.push((name, value));
            }
        }
        let ratio_from_env = set("OTEL_TRACES_SAMPLER_ARG").and_then(|v| v.trim().parse::<f64>().ok()).filter(|r| (0.0..=1.0).contains(r));
        Ok(Some(Export {
            traces_endpoint,
            metrics_endpoint: signal("/v1/metrics"),
            headers,
            trace_headers,
            sampling_ratio: settings.sampling_ratio.or(ratio_from_env).unwrap_or(1.0),
            service_name: settings.service_name.clone().or_else(|| set("OTEL_SERVICE_NAME")).unwrap_or_else(|| "portcullis".into()),
        }))
    }
}

/// `OTEL_EXPORTER_OTLP_HEADERS`' format: `name=value` pairs separated by
/// commas, values percent-encoded (W3C Baggage's format, as the
/// specification says). Names are lower-cased; a pair that is not a valid
/// header is skipped, as opentelemetry-otlp does.
fn header_list(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let name = http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
            let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8().ok()?;
            http::HeaderValue::from_str(&value).ok()?;
            Some((name.as_str().to_owned(), value.into_owned()))
        })
        .collect()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
