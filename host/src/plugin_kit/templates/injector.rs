//! {{name}}: a Portcullis credential injector, made with `portcullis plugin new`.
//!
//! It adds `Authorization: Bearer <token>` to every request the workload sends
//! upstream. The token lives in the gateway's secret store; the policy grants
//! this component the secret's name. Change `inject` to fetch or refresh
//! tokens as your upstream needs.

use portcullis_plugin::prelude::*;

/// The policy entry's `config` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The secret that holds the token (default `workload:<workload>:upstream-token`).
    secret: Option<String>,
}

struct StaticBearer {
    secret: String,
}

impl Injector for StaticBearer {
    type Config = Config;

    fn init(config: Config, context: &Context) -> Result<Self, String> {
        Ok(StaticBearer { secret: config.secret.unwrap_or_else(|| format!("workload:{}:upstream-token", context.workload)) })
    }

    /// The gateway lets this component set `authorization` and nothing else.
    fn manifest(&self) -> Manifest {
        Manifest::new().produces("authorization")
    }

    fn inject(&self, _request: &Request) -> Injection {
        match secrets::get(&self.secret) {
            Ok(token) if !token.is_empty() => forward().set_header("authorization", format!("Bearer {token}")).into(),
            Ok(_) => self.unavailable("the stored token is empty"),
            Err(error) => self.unavailable(&error.to_string()),
        }
    }
}

impl StaticBearer {
    /// Without a token the upstream would refuse anyway: say why here instead.
    fn unavailable(&self, why: &str) -> Injection {
        log::error(&format!("cannot read the secret `{}`: {why}", self.secret));
        deny(503).error("token_unavailable", "The gateway has no token for the upstream.").into()
    }
}

export_injector!(StaticBearer);
