//! `builtin:oidc-verifier`: makes a workload an OAuth 2.0 protected resource
//! that accepts bearer JWT access tokens (RFC 6750, RFC 9068) from configured
//! issuers.
//!
//! The order of checks follows RFC 8725: parse strictly; pick the provider by
//! exact `iss`; allow only that provider's algorithms (never `none`, HMAC only
//! with a configured secret); pick the key by `kid` from the provider's key set
//! (never from `jku`, `x5u`, `jwk` or `x5c` in the token); refuse unknown
//! `crit`; verify the signature (natively, through the `crypto` import); then
//! check time, audience, required claims and scopes. Every refusal is a 401
//! with `WWW-Authenticate: Bearer resource_metadata="…"` (403 for missing
//! scopes), as the MCP authorization specification asks. Verified tokens are
//! cached by their SHA-256 until they expire.

mod claims;
mod config;
mod jwt;
mod keys;

use config::Config;
use portcullis_plugin::prelude::*;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

struct OidcVerifier {
    config: Config,
    /// Tokens this instance verified, by the token itself: the fast path for a
    /// client that sends the same token on every request. The host cache
    /// (shared by all instances) is the second level.
    recent: RefCell<HashMap<String, (Verified, Option<u64>)>>,
}

/// Entries kept per instance; when full, the map starts over.
const RECENT_MAX: usize = 256;

impl Authenticator for OidcVerifier {
    type Config = config::File;

    fn init(file: config::File, context: &Context) -> Result<Self, String> {
        Ok(OidcVerifier { config: Config::new(file, &context.public_url)?, recent: RefCell::new(HashMap::new()) })
    }

    /// The gateway strips client-sent claim headers before the chain and
    /// removes the bearer token after it (unless `forward_token`).
    fn manifest(&self) -> Manifest {
        let mut manifest = Manifest::new().consumes("authorization");
        if self.config.forward_token {
            manifest = manifest.forwards("authorization");
        }
        self.config.claims_to_headers.iter().fold(manifest, |manifest, (_, header)| manifest.produces(header))
    }

    fn authenticate(&self, request: &Request) -> Verdict {
        match self.admit(request) {
            Ok(allow) => allow.into(),
            Err(refusal) => {
                if let Some(error) = refusal.error {
                    log::debug(&format!("bearer token refused ({error}): {}", refusal.description));
                }
                deny_with(&self.config, refusal).into()
            }
        }
    }
}

export_authenticator!(OidcVerifier);

/// A refusal: what the client is told (and the status).
struct Refusal {
    status: u16,
    error: Option<&'static str>,
    description: String,
    scope: Option<String>,
}

impl Refusal {
    fn invalid(description: impl Into<String>) -> Self {
        Refusal { status: 401, error: Some("invalid_token"), description: description.into(), scope: None }
    }
}

impl OidcVerifier {
    fn admit(&self, request: &Request) -> Result<Allow, Refusal> {
        let config = &self.config;
        let fields = request.header("authorization");
        let no_token = Refusal { status: 401, error: None, description: "a bearer token is required".into(), scope: None };
        let field = match fields.as_slice() {
            [] => return Err(no_token),
            [one] => one,
            _ => return Err(Refusal { status: 400, error: Some("invalid_request"), description: "several Authorization headers".into(), scope: None }),
        };
        let Some((scheme, token)) = field.split_once(' ') else {
            return Err(no_token);
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(no_token);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(no_token);
        }
        if token.len() > config.max_token_bytes {
            return Err(Refusal::invalid(format!("the token is larger than {} bytes", config.max_token_bytes)));
        }

        let now = now();
        if !config.token_cache {
            let (verified, _) = verify_token(config, token, now)?;
            return Ok(finish(&verified));
        }
        let recent = match self.recent.borrow().get(token) {
            Some((verified, exp)) if exp.is_none_or(|exp| now < exp) => Some(finish(verified)),
            _ => None,
        };
        if let Some(allow) = recent {
            return Ok(allow);
        }
        let cache_key = format!("token:{}", hex(&Sha256::digest(token.as_bytes())));
        let (verified, expires) = match cache::get(&cache_key).and_then(|bytes| cached_allow(&bytes, now)) {
            Some(hit) => hit,
            None => {
                let (verified, expires) = verify_token(config, token, now)?;
                let ttl = expires.map(|exp| exp.saturating_sub(now)).unwrap_or(60).min(3600) as u32;
                if ttl > 0 {
                    cache::set(&cache_key, &cache_entry(&verified, expires), Duration::from_secs(u64::from(ttl)));
                }
                (verified, expires.or(Some(now + u64::from(ttl))))
            }
        };
        let allow = finish(&verified);
        let mut recent = self.recent.borrow_mut();
        if recent.len() >= RECENT_MAX {
            recent.clear();
        }
        recent.insert(token.to_owned(), (verified, expires));
        Ok(allow)
    }
}

/// What a verified token yields, before the request-specific edits.
#[derive(Clone)]
struct Verified {
    subject: String,
    issuer: String,
    claims_json: String,
    /// (header, value) from `claims_to_headers`.
    headers: Vec<(String, String)>,
}

fn verify_token(config: &Config, token: &str, now: u64) -> Result<(Verified, Option<u64>), Refusal> {
    let parsed = jwt::parse(token).map_err(Refusal::invalid)?;
    let alg = parsed.header.get("alg").and_then(|v| v.as_str()).ok_or_else(|| Refusal::invalid("the token has no `alg`"))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(Refusal::invalid("unsigned tokens are not accepted"));
    }
    if parsed.header.contains_key("crit") {
        // We understand no critical extension, so any `crit` is a refusal (RFC 7515 §4.1.11).
        return Err(Refusal::invalid("the token uses a critical header extension this server does not support"));
    }
    let issuer = parsed.claims.get("iss").and_then(|v| v.as_str()).ok_or_else(|| Refusal::invalid("the token has no issuer"))?;
    let provider = config.providers.iter().find(|p| p.issuer == issuer).ok_or_else(|| Refusal::invalid("the token's issuer is not trusted"))?;
    if !provider.algorithms.iter().any(|a| a == alg) {
        return Err(Refusal::invalid(format!("the algorithm {alg} is not accepted")));
    }
    claims::check_token_type(provider, &parsed.header, &parsed.claims).map_err(Refusal::invalid)?;
    let kid = match parsed.header.get("kid") {
        None => None,
        Some(serde_json::Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(Refusal::invalid("`kid` is not a string")),
    };
    let jwk = keys::select(provider, alg, kid).map_err(|e| match e {
        keys::KeyError::NoMatchingKey => Refusal::invalid("no trusted key matches the token"),
        // Logged where it happened (once per failed fetch); an outage must not flood the log.
        keys::KeyError::Unavailable(why) => {
            log::debug(&why);
            Refusal::invalid("the issuer's signing keys are unavailable")
        }
    })?;
    match crypto::verify_jws(alg, &jwk, parsed.signing_input, parsed.signature) {
        Ok(true) => {}
        Ok(false) | Err(_) => return Err(Refusal::invalid("the signature is not valid")),
    }
    claims::check(config, provider, &parsed.claims, now).map_err(|e| match e {
        claims::ClaimError::Invalid(description) => Refusal::invalid(description),
        claims::ClaimError::InsufficientScope(scopes) => {
            Refusal { status: 403, error: Some("insufficient_scope"), description: "the token lacks a required scope".into(), scope: Some(scopes.join(" ")) }
        }
    })?;
    let text = |name: &str| parsed.claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let subject = text("sub").or_else(|| text("client_id").map(|c| format!("client:{c}"))).unwrap_or_else(|| "unknown".into());
    let headers = config
        .claims_to_headers
        .iter()
        .filter_map(|(claim, header)| Some((header.clone(), parsed.claims.get(claim).and_then(claims::header_value)?)))
        .collect();
    let expires = parsed.claims.get("exp").and_then(|v| v.as_u64());
    let claims_json = serde_json::Value::Object(parsed.claims.clone()).to_string();
    Ok((Verified { subject, issuer: issuer.to_owned(), claims_json, headers }, expires))
}

/// The allow verdict with the verified claim headers. The gateway already
/// removed client-sent copies of them, and removes the token (see `init`).
fn finish(verified: &Verified) -> Allow {
    let allow = allow(&verified.subject).issuer(&verified.issuer).claims_json(&verified.claims_json);
    verified.headers.iter().fold(allow, |allow, (name, value)| allow.append_header(name, value))
}

fn cache_entry(v: &Verified, expires: Option<u64>) -> Vec<u8> {
    serde_json::json!({ "sub": v.subject, "iss": v.issuer, "claims": v.claims_json, "headers": v.headers, "exp": expires }).to_string().into_bytes()
}

fn cached_allow(bytes: &[u8], now: u64) -> Option<(Verified, Option<u64>)> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    // The cache entry's lifetime ends at `exp`; check again in case the clock moved.
    if v["exp"].as_u64().is_some_and(|exp| now >= exp) {
        return None;
    }
    let headers = v["headers"].as_array()?.iter().filter_map(|pair| Some((pair[0].as_str()?.to_owned(), pair[1].as_str()?.to_owned()))).collect();
    let verified =
        Verified { subject: v["sub"].as_str()?.to_owned(), issuer: v["iss"].as_str()?.to_owned(), claims_json: v["claims"].as_str()?.to_owned(), headers };
    Some((verified, v["exp"].as_u64()))
}

fn deny_with(config: &Config, refusal: Refusal) -> Deny {
    let mut challenge = format!("Bearer resource_metadata=\"{}\"", config.resource_metadata);
    if let Some(error) = refusal.error {
        challenge.push_str(&format!(", error=\"{error}\", error_description=\"{}\"", quoted_safe(&refusal.description)));
    }
    if let Some(scope) = &refusal.scope {
        challenge.push_str(&format!(", scope=\"{}\"", quoted_safe(scope)));
    }
    deny(refusal.status).challenge(challenge).json(&serde_json::json!({
        "error": refusal.error.unwrap_or("unauthorized"),
        "error_description": refusal.description,
    }))
}

/// RFC 6750 §3: error descriptions are limited to printable ASCII without `"` and `\`.
fn quoted_safe(s: &str) -> String {
    s.chars().filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\').collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
