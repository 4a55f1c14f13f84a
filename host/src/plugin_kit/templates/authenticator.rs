//! {{name}}: a Portcullis authenticator, made with `portcullis plugin new`.
//!
//! It admits requests that carry the workload's API key in a header. The key
//! lives in the gateway's secret store; the policy grants this component the
//! secret's name. Change `authenticate` to check what your service needs.

use portcullis_plugin::prelude::*;

/// The policy entry's `config` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The header clients put their key in (default `x-api-key`).
    header: Option<String>,
    /// The secret that holds the key (default `workload:<workload>:api-key`).
    secret: Option<String>,
}

struct ApiKey {
    header: String,
    secret: String,
    workload: String,
}

impl Authenticator for ApiKey {
    type Config = Config;

    fn init(config: Config, context: &Context) -> Result<Self, String> {
        let header = config.header.unwrap_or_else(|| "x-api-key".into()).to_ascii_lowercase();
        if header.is_empty() || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("config.header: {header:?} is not a header name"));
        }
        let secret = config.secret.unwrap_or_else(|| format!("workload:{}:api-key", context.workload));
        Ok(ApiKey { header, secret, workload: context.workload.clone() })
    }

    /// The key header is consumed (the gateway removes it before the upstream);
    /// `x-api-client` is produced (client-sent copies are removed first).
    fn manifest(&self) -> Manifest {
        Manifest::new().consumes(&self.header).produces("x-api-client")
    }

    fn authenticate(&self, request: &Request) -> Verdict {
        let presented = match request.single_header(&self.header) {
            Ok(Some(key)) => key,
            Ok(None) => {
                return deny(401)
                    .challenge(format!("ApiKey header=\"{}\"", self.header))
                    .error("missing_key", &format!("Send the workload's key in the `{}` header.", self.header))
                    .into();
            }
            Err(repeated) => return deny(400).error("invalid_request", &repeated.to_string()).into(),
        };
        let expected = match secrets::get(&self.secret) {
            Ok(key) if !key.is_empty() => key,
            Ok(_) => return self.unavailable("the stored key is empty"),
            Err(error) => return self.unavailable(&error.to_string()),
        };
        if !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            return deny(401).error("invalid_key", "The key is not this workload's key.").into();
        }
        allow(format!("api-key:{}", self.workload)).set_header("x-api-client", &self.workload).into()
    }
}

impl ApiKey {
    /// Fail closed: without the key nothing is admitted.
    fn unavailable(&self, why: &str) -> Verdict {
        log::error(&format!("cannot read the secret `{}`: {why}", self.secret));
        deny(503).error("key_unavailable", "The gateway cannot check keys right now.").into()
    }
}

export_authenticator!(ApiKey);
