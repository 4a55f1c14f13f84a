//! `builtin:token-exchange`: RFC 8693 token exchange toward a configured
//! security token service (STS). The token that goes upstream is one the
//! STS issued for the upstream (`audience`, `resource`, `scope`), never the
//! client's.
//!
//! - **Subject** ([`config::Subject`]): `incoming`, the client's bearer
//!   token the inbound verifier checked (it must forward it:
//!   `forward_token = true`; the gateway removes consumed credentials
//!   before injectors run, so without it there is nothing to read), or
//!   `stored`, the session's upstream token that `builtin:oauth-server`
//!   stored for a provider (read as `builtin:upstream-token` reads it).
//! - **Client authentication**: `client_secret_basic`, `client_secret_post`
//!   (the secret from the secret store) or `private_key_jwt` (an assertion
//!   the gateway signs with the entry's `signing_keys`).
//! - **Cache** ([`cached`]): per (subject, audience, resource, scope), keyed
//!   by a hash, until `renew_before_seconds` before the token expires and
//!   never past the subject's own expiry; in the instance cache, and sealed
//!   in the store when the entry is granted one (`store = "name"` shares it
//!   between entries and replicas).
//! - **Failure** closes: the STS refusing the subject is 401 with the
//!   workload's challenge; an STS that fails, is slow, or issues another
//!   token type is 502/503; nothing is forwarded without the exchanged token.
//! - **Audit**: one `info` line per exchange (the caller's subject, the
//!   audience, the outcome), never a token.

mod cached;
mod config;
mod exchange;

use cached::Cached;
use config::{Checked, ClientAuth, Config, Subject};
use exchange::{Credential, Failure};
use portcullis_plugin::prelude::*;
use portcullis_plugin::{Identity, http, signing};
use provider_tokens::seal::TokenKey;
use provider_tokens::text::printable;
use std::time::Duration;

struct TokenExchange {
    config: Checked,
    /// Seals what goes in the store, and opens a stored subject.
    token_key: Option<TokenKey>,
    /// Whether the entry is granted a store: exchanged tokens go there too, sealed.
    store: bool,
    challenge: String,
}

/// Why the request does not go on.
enum Refusal {
    /// No usable subject, or the STS refused it: 401 with the challenge.
    Subject(String),
    /// The STS answered with nothing usable: 502.
    BadAnswer(String),
    /// The STS, the store or a secret cannot answer now: 503.
    Unavailable(String),
}

impl Injector for TokenExchange {
    type Config = Config;

    fn init(config: Config, context: &Context) -> Result<Self, String> {
        let mut config = config.check()?;
        if let Some(name) = config.secret_name() {
            match secrets::get(name) {
                Err(secrets::SecretError::NotGranted) => {
                    return Err(format!("`client_secret`: the policy does not grant the secret {name:?} to this component"));
                }
                Err(e) => log::warn(&format!("the client secret {name:?} is not available yet: {e}")),
                Ok(_) => {}
            }
        }
        if config.client_auth == ClientAuth::PrivateKeyJwt && signing::jwks().is_err() {
            return Err("`client_auth = \"private_key_jwt\"` signs with the entry's key: grant it `signing_keys`".into());
        }
        let store = store::get("grant-check") != Err(store::StoreError::NotGranted);
        if store && config.token_key_secret.is_none() {
            return Err("the entry is granted a store, where exchanged tokens are kept sealed: give `token_key_secret`".into());
        }
        let token_key = config.token_key_secret.as_deref().map(TokenKey::new).transpose()?;
        let url = url::Url::parse(&context.public_url).map_err(|e| format!("the workload's public_url {:?}: {e}", context.public_url))?;
        let origin = url.origin().ascii_serialization();
        let metadata = portcullis_contract::resource_metadata::url(&origin, url.path());
        config.issuer.get_or_insert(origin);
        let challenge =
            format!("Bearer error=\"invalid_token\", error_description=\"the token cannot be exchanged for the upstream\", resource_metadata=\"{metadata}\"");
        Ok(TokenExchange { config, token_key, store, challenge })
    }

    fn manifest(&self) -> Manifest {
        Manifest::new().produces(&self.config.header)
    }

    fn inject(&self, request: &Request) -> Injection {
        let identity = request.identity();
        let (subject_token, subject_exp) = match self.subject(request, identity.as_ref()) {
            Ok(subject) => subject,
            Err(refusal) => return self.refuse(identity.as_ref(), refusal),
        };
        let now = now();
        let key = cached::key(&self.config, &subject_token);
        if let Some(cached) = cache::get(&key).and_then(|bytes| Cached::decode(&bytes, now)) {
            return self.forward(&cached.token);
        }
        match self.exchanged(identity.as_ref(), &key, &subject_token, subject_exp, now) {
            Ok(token) => self.forward(&token),
            Err(refusal) => self.refuse(identity.as_ref(), refusal),
        }
    }
}

impl TokenExchange {
    fn forward(&self, token: &str) -> Injection {
        let value = match self.config.prefix.as_deref() {
            Some(prefix) => format!("{prefix}{token}"),
            None => token.to_owned(),
        };
        let mut forward = forward().set_header(&self.config.header, value);
        // The verifier forwarded the client's token for us to read: it goes no further.
        if self.config.subject == Subject::Incoming && self.config.header != "authorization" {
            forward = forward.remove_header("authorization");
        }
        forward.into()
    }

    fn refuse(&self, identity: Option<&Identity>, refusal: Refusal) -> Injection {
        let audit = |outcome: &str| log::info(&format!("token exchange: sub={} audience={} outcome={outcome}", who(identity), self.audience()));
        match refusal {
            Refusal::Subject(why) => {
                audit(&format!("refused subject ({why})"));
                Injection::Deny(
                    deny(401).challenge(self.challenge.clone()).error("invalid_token", "the token cannot be exchanged for the upstream's: log in again"),
                )
            }
            Refusal::BadAnswer(why) => {
                audit(&format!("failed ({why})"));
                Injection::Deny(
                    deny(502).error("token_exchange_failed", "the security token service did not issue a usable token; the request was not forwarded"),
                )
            }
            Refusal::Unavailable(why) => {
                audit(&format!("unavailable ({why})"));
                Injection::Deny(
                    deny(503)
                        .header("retry-after", "1")
                        .error("temporarily_unavailable", "the security token service cannot exchange the token now; the request was not forwarded"),
                )
            }
        }
    }

    /// The token to exchange, and when it expires (known here for a stored
    /// token; for the client's, `exchanged` reads the verified `exp`).
    fn subject(&self, request: &Request, identity: Option<&Identity>) -> Result<(String, Option<u64>), Refusal> {
        let identity =
            identity.ok_or_else(|| Refusal::Subject("the request has no verified caller (is an authenticator in front of this injector?)".into()))?;
        match &self.config.subject {
            Subject::Incoming => {
                let values = request.header("authorization");
                let [value] = values.as_slice() else {
                    return Err(Refusal::Subject("the client's token is not on the request (the verifier must forward it: `forward_token = true`)".into()));
                };
                let token = value
                    .get(..7)
                    .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
                    .map(|_| value[7..].trim())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| Refusal::Subject("the client's credential is not a bearer token".into()))?;
                // The expiry is read on a miss only (see `exchanged`): a hit parses no claims.
                Ok((token.to_owned(), None))
            }
            Subject::Stored { provider } => {
                let sid = provider_tokens::session::Session::of(identity, self.config.issuer.as_deref().unwrap_or_default()).map_err(Refusal::Subject)?.id;
                let key = self.key()?;
                match provider_tokens::tokens::load(&sid, provider, &key).map_err(Refusal::Unavailable)? {
                    Some(stored) => Ok((stored.access_token, stored.expires_at)),
                    None => Err(Refusal::Subject(format!("the session has no tokens from `{provider}`"))),
                }
            }
        }
    }

    fn key(&self) -> Result<[u8; 32], Refusal> {
        // `init` refuses a store or a stored subject without the key.
        self.token_key.as_ref().ok_or_else(|| Refusal::Unavailable("no token key".into()))?.get().map_err(Refusal::Unavailable)
    }

    /// The token from the shared store, or a fresh exchange (then cached).
    fn exchanged(&self, identity: Option<&Identity>, key: &str, subject_token: &str, subject_exp: Option<u64>, now: u64) -> Result<String, Refusal> {
        if self.store {
            let sealing = self.key()?;
            let found = store::get(key).map_err(|e| Refusal::Unavailable(format!("the store: {e}")))?;
            if let Some(cached) = found.and_then(|sealed| provider_tokens::seal::open(&sealing, key, &sealed)).and_then(|bytes| Cached::decode(&bytes, now)) {
                cache::set(key, &cached.encode(), Duration::from_secs(cached.until - now));
                return Ok(cached.token);
            }
        }
        let subject_exp = match self.config.subject {
            Subject::Incoming => identity.and_then(|i| i.claims().get("exp").and_then(serde_json::Value::as_u64)),
            Subject::Stored { .. } => subject_exp,
        };
        // Each request to the STS is counted for the operator (`portcullis_component_events_total`).
        let issued = self.exchange(subject_token).map_err(|failure| {
            events::report(events::Event::TokenExchangeFailed);
            match failure {
                Failure::Subject(why) => Refusal::Subject(why),
                Failure::BadAnswer(why) => Refusal::BadAnswer(why),
                Failure::Unreachable(why) => Refusal::Unavailable(why),
            }
        })?;
        events::report(events::Event::TokenExchanged);
        let lifetime = cached::lifetime(issued.expires_in, self.config.renew_before_seconds, now, subject_exp);
        if let Some(seconds) = lifetime {
            let cached = Cached { until: now + seconds, token: issued.access_token.clone() };
            let value = cached.encode();
            cache::set(key, &value, Duration::from_secs(seconds));
            if self.store {
                let sealed = provider_tokens::seal::seal(&self.key()?, key, &value);
                // A store that fails now costs another exchange later, not this request.
                if let Err(e) = store::put(key, &sealed, u32::try_from(seconds).unwrap_or(u32::MAX)) {
                    log::warn(&format!("the exchanged token could not be kept in the store: {e}"));
                }
            }
        }
        let kept = lifetime.map_or("not cached".to_owned(), |s| format!("cached {s} s"));
        log::info(&format!(
            "token exchange: sub={} audience={} outcome=issued expires_in={} ({kept})",
            who(identity),
            self.audience(),
            issued.expires_in.map_or("unknown".into(), |s| s.to_string())
        ));
        Ok(issued.access_token)
    }

    /// One request to the STS.
    fn exchange(&self, subject_token: &str) -> Result<exchange::Issued, Failure> {
        let credential = match &self.config.client_auth {
            ClientAuth::Basic { secret } | ClientAuth::Post { secret } => {
                Credential::Secret(secrets::get(secret).map_err(|e| Failure::Unreachable(format!("the client secret {secret:?}: {e}")))?)
            }
            ClientAuth::PrivateKeyJwt => {
                let mut jti = [0u8; 16];
                getrandom::fill(&mut jti).map_err(|_| Failure::Unreachable("no random source".into()))?;
                let jti: String = jti.iter().map(|b| format!("{b:02x}")).collect();
                let claims = exchange::assertion_claims(&self.config, now(), &jti);
                Credential::Assertion(
                    signing::sign(&claims, "JWT").map_err(|e| Failure::Unreachable(format!("the client assertion could not be signed: {e:?}")))?,
                )
            }
        };
        let (form, authorization) = exchange::request(&self.config, subject_token, &credential);
        let mut request = http::Request::post(&self.config.token_endpoint).header("accept", "application/json").form(&form);
        if let Some(authorization) = &authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.timeout(Duration::from_millis(self.config.timeout_ms)).send().map_err(|e| {
            Failure::Unreachable(match e {
                http::HttpError::Timeout => format!("the STS did not answer within {} ms", self.config.timeout_ms),
                other => format!("the STS could not be reached: {}", printable(&other.to_string(), 200)),
            })
        })?;
        if response.body.len() > provider_tokens::fetch::RESPONSE_LIMIT {
            return Err(Failure::BadAnswer("the STS's answer is larger than 64 KiB".into()));
        }
        exchange::answer(response.status, &response.body, &self.config.requested_token_type)
    }

    fn audience(&self) -> &str {
        self.config.audience.as_deref().or(self.config.resource.as_deref()).unwrap_or_default()
    }
}

/// The caller's subject for the audit line: printable, bounded.
fn who(identity: Option<&Identity>) -> String {
    identity.map_or("-".into(), |i| printable(&i.subject, 100))
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

portcullis_plugin::export_injector!(TokenExchange);
