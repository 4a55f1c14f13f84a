//! `portcullis plugin test`: loads a component as the gateway does, runs `init`
//! and one call on a request read from a file, and reports the verdict and
//! every host call, with host responses stubbed (see
//! [`crate::runtime::capabilities::trial`]).
//!
//! The call goes through the gateway's own code: the component is set up by
//! the same function as a policy's chain entry (`runtime::setup::set_up`), with
//! the same linker, limits, manifest and verdict checks, so a verdict the
//! gateway would refuse is reported as the same fault.

use crate::admin::metrics::Metrics;
use crate::runtime::Runtime;
use crate::runtime::capabilities::trial::{HostCall, Stubs, Trial};
use crate::runtime::capabilities::{Grants, PluginLabel, Services, cache};
use crate::runtime::plugin::{Isolation, Limits, Role};
use crate::runtime::request::RequestData;
use crate::runtime::setup::{Access, Entry, set_up};
use crate::runtime::verdict::{Denial, HeaderEdits, Injection, Manifest, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The request file (`--request REQUEST.json`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFile {
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Default `localhost`.
    pub authority: Option<String>,
    /// `[name, value]` pairs, in order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Default `127.0.0.1:50000`.
    pub remote_addr: Option<String>,
    /// An MCP JSON-RPC message (an object or a batch), read as an MCP
    /// workload's gateway reads a POST body: its calls are `mcp-calls`, and
    /// an authorizer is asked about the first.
    pub body: Option<Value>,
    /// For an authorizer: who the inbound chain said is calling.
    pub identity: Option<IdentityFile>,
}

/// An identity, as an inbound component would have established it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityFile {
    pub subject: String,
    pub issuer: Option<String>,
    /// The claims, as a JSON object.
    pub claims: Option<Value>,
}

fn default_method() -> String {
    "GET".into()
}

/// Everything one trial needs.
pub struct TrialSpec {
    pub wasm: Vec<u8>,
    pub config_json: String,
    pub request: RequestFile,
    pub stubs: Stubs,
    pub workload: String,
    pub public_url: String,
    pub limits: Limits,
}

/// What `plugin test` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    pub sha256: String,
    pub world: &'static str,
    /// `ok`, or why the component could not be set up (then there is no call).
    pub init: Value,
    /// The manifest `init` returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Value>,
    pub init_host_calls: Vec<HostCall>,
    /// The checked verdict, or the fault the gateway would report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Decision>,
    pub host_calls: Vec<HostCall>,
}

/// A verdict as `plugin test` prints it; fields that do not apply are left out.
#[derive(Debug, Default, Serialize)]
pub struct Decision {
    /// `allow`, `deny`, `abstain`, `forward`, `step_up`, or `fault`.
    pub verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Value>,
    /// Header edits toward the upstream: `{"set": [name, value]}`, `{"append": ...}`, `{"remove": name}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edits: Option<Value>,
    /// A deny's response headers, `[name, value]` pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// An authorizer's rule id, deny reason, and step-up scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// A fault's kind (`trap`, `deadline`, `memory_limit`, `bad_verdict`, `instantiate`) and detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<Value>,
}

impl Report {
    /// `allow`, `deny`, `abstain`, `forward`, `fault`, or `init-failed`.
    pub fn outcome(&self) -> &str {
        self.verdict.as_ref().map_or("init-failed", |d| d.verdict)
    }

    /// The status of a deny.
    pub fn status(&self) -> Option<u16> {
        self.verdict.as_ref().and_then(|d| d.status)
    }
}

pub async fn run(runtime: &Runtime, spec: TrialSpec) -> anyhow::Result<Report> {
    let sha256 = hex::encode(Sha256::digest(&spec.wasm));
    let inspection = crate::runtime::inspect::inspect(runtime.engine(), &spec.wasm)?;
    let role = match inspection.world {
        "authenticator" => Role::Authenticator,
        "credential-injector" | "interactive-injector" | "device-injector" => Role::Injector,
        "authorizer" => Role::Authorizer,
        _ => anyhow::bail!("the component exports none of `authenticate`, `inject` or `authorize` of portcullis:auth@0.2.0 (see `portcullis plugin inspect`)"),
    };
    let identity = spec.request.identity.as_ref().map(|i| crate::runtime::bindings::types::Identity {
        subject: i.subject.clone(),
        issuer: i.issuer.clone(),
        claims_json: i.claims.as_ref().map(Value::to_string),
    });
    let request = request_data(spec.request)?;
    anyhow::ensure!(role != Role::Authorizer || !request.mcp_calls.is_empty(), "request: an authorizer needs a `body` holding an MCP call");
    let component = runtime.component(&sha256, &spec.wasm)?;
    let trial = Arc::new(Trial::new(spec.stubs));
    let services = Services::for_trial(trial.clone());
    let label = PluginLabel { workload: spec.workload.as_str().into(), component: "plugin-test".into() };
    let position = match role {
        Role::Authenticator => "inbound[0]",
        Role::Injector => "outbound[0]",
        Role::Authorizer => "authorize[0]",
        Role::Server => unreachable!("a server is refused above"),
    };
    // Set up as the gateway sets up a chain entry (`runtime::setup::set_up`), with no grants.
    let entry = Entry {
        access: Access { label, grants: &Grants::default(), cache_scope: position, quota: cache::Quota::default(), provided: None },
        role,
        component,
        config_json: spec.config_json,
        public_url: spec.public_url,
        limits: spec.limits,
        // The instance `init` ran on at load serves the call, as in a gateway.
        isolation: Isolation::Pooled,
        instances: Arc::new(tokio::sync::Semaphore::new(1)),
        max_idle: 1,
    };
    let plugin = set_up(runtime, &services, &Metrics::new(), entry).await;
    let mut report =
        Report { sha256, world: inspection.world, init: json!("ok"), manifest: None, init_host_calls: trial.take(), verdict: None, host_calls: Vec::new() };
    let plugin = match plugin {
        Ok(plugin) => plugin,
        Err(error) => {
            report.init = json!({ "error": error.to_string() });
            return Ok(report);
        }
    };
    report.manifest = Some(manifest_json(plugin.manifest()));
    let request = Arc::new(request);
    let verdict = match role {
        Role::Authenticator => plugin.authenticate(&request).await.map(verdict_json),
        Role::Injector => plugin.inject(&request).await.map(injection_json),
        Role::Authorizer => plugin.authorize(&request, identity.as_ref(), &request.mcp_calls[0]).await.map(decision_json),
        Role::Server => unreachable!("a server is refused above"),
    };
    report.host_calls = trial.take();
    report.verdict = Some(verdict.unwrap_or_else(|fault| Decision {
        verdict: "fault",
        fault: Some(json!({ "kind": fault.kind.label(), "detail": fault.detail })),
        ..Decision::default()
    }));
    Ok(report)
}

fn request_data(file: RequestFile) -> anyhow::Result<RequestData> {
    let method = http::Method::from_bytes(file.method.as_bytes()).map_err(|_| anyhow::anyhow!("request: `method` {:?} is not an HTTP method", file.method))?;
    anyhow::ensure!(file.path.starts_with('/'), "request: `path` must start with `/` (got {:?})", file.path);
    let target = match &file.query {
        Some(query) => format!("{}?{query}", file.path),
        None => file.path.clone(),
    };
    let uri: http::Uri = target.parse().map_err(|e| anyhow::anyhow!("request: `path`/`query` do not form a request target: {e}"))?;
    let mut headers = http::HeaderMap::new();
    for (name, value) in &file.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| anyhow::anyhow!("request: {name:?} is not a header name"))?;
        let value = http::HeaderValue::from_str(value).map_err(|_| anyhow::anyhow!("request: the value of `{name}` is not a valid header value"))?;
        headers.append(name, value);
    }
    let remote = file.remote_addr.as_deref().unwrap_or("127.0.0.1:50000");
    let mcp_calls = match &file.body {
        Some(body) => {
            crate::mcp::message::parse(body.to_string().as_bytes()).map_err(|e| anyhow::anyhow!("request: `body` is not an MCP message: {}", e.describe()))?
        }
        None => Vec::new(),
    };
    Ok(RequestData {
        method,
        scheme: "http",
        authority: file.authority.unwrap_or_else(|| "localhost".into()),
        uri,
        headers,
        remote: remote.parse().map_err(|_| anyhow::anyhow!("request: `remote_addr` {remote:?} is not a socket address"))?,
        tls_client_identity: None,
        mcp_calls,
        body: bytes::Bytes::new(),
        identity: None,
    })
}

fn manifest_json(manifest: &Manifest) -> Value {
    let names = |list: &[http::HeaderName]| list.iter().map(|n| n.as_str().to_owned()).collect::<Vec<_>>();
    json!({ "consumes": names(&manifest.consumes), "forwards": names(&manifest.forwards), "produces": names(&manifest.produces) })
}

fn edits_json(edits: &HeaderEdits) -> Value {
    edits
        .describe()
        .into_iter()
        .map(|(op, name, value)| match value {
            Some(value) => json!({ op: [name, value] }),
            None => json!({ op: name }),
        })
        .collect()
}

fn denial_json(denial: &Denial) -> Decision {
    let headers: Vec<_> = denial.headers.iter().map(|(n, v)| json!([n.as_str(), String::from_utf8_lossy(v.as_bytes())])).collect();
    Decision { verdict: "deny", status: Some(denial.status.as_u16()), headers: Some(headers.into()), body: Some(denial.body.clone()), ..Decision::default() }
}

fn verdict_json(verdict: Verdict) -> Decision {
    match verdict {
        Verdict::Abstain => Decision { verdict: "abstain", ..Decision::default() },
        Verdict::Allow { identity, edits } => Decision {
            verdict: "allow",
            identity: Some(json!({
                "subject": identity.subject,
                "issuer": identity.issuer,
                "claims": identity.claims_json.and_then(|c| serde_json::from_str::<Value>(&c).ok()),
            })),
            edits: Some(edits_json(&edits)),
            ..Decision::default()
        },
        Verdict::Deny(denial) => denial_json(&denial),
    }
}

fn decision_json(decision: crate::runtime::verdict::Decision) -> Decision {
    use crate::runtime::verdict::Decision as Checked;
    let verdict = decision.label();
    match decision {
        Checked::Allow { rule } => Decision { verdict, rule, ..Decision::default() },
        Checked::Deny { reason, rule } => Decision { verdict, rule, reason: Some(reason), ..Decision::default() },
        Checked::StepUp(scopes) => Decision { verdict, scopes: Some(scopes), ..Decision::default() },
    }
}

fn injection_json(injection: Injection) -> Decision {
    match injection {
        Injection::Forward(edits) => Decision { verdict: "forward", edits: Some(edits_json(&edits)), ..Decision::default() },
        Injection::Deny(denial) => denial_json(&denial),
    }
}
