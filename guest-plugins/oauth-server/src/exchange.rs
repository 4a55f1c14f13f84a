//! RFC 8693 token exchange at `/oauth/token`
//! (`grant_type=urn:ietf:params:oauth:grant-type:token-exchange`), when the
//! policy has a `token_exchange` table.
//!
//! A listed client presents a `subject_token` (whose the access is) and,
//! optionally, an `actor_token` (who will act): each is one of this
//! server's own access tokens (`at+jwt`, signed by a key of its own key set,
//! `iss` this issuer, `aud` this resource) or a JWT of a trusted issuer
//! (its key set fetched from the configured `jwks_uri`, `iss` exact, `aud`
//! the configured audience). Anything else is refused before any key is
//! fetched. The actor must be named by the subject token's `may_act`
//! (RFC 8693 §4.4) or allowed by an actor rule; a `may_act` that names
//! someone else refuses the actor whatever the rules say.
//!
//! The answer is an access token of this server (RFC 8693 §2.2.1): the
//! subject's `sub`, this resource as `aud`, the requesting client as
//! `client_id`, a scope within the subject token's (and the rule's), `act`
//! naming the actor (with the subject token's own `act` nested inside it,
//! §4.1), and a short life (`token_ttl`, never past the subject or actor
//! token's `exp`). No refresh token. One audit line per request, never a token.
//!
//! Errors: a client not listed for the grant is `unauthorized_client`
//! (RFC 6749 §5.2: not authorized to use this grant type); a subject or
//! actor token that is invalid or unacceptable by policy (expired, foreign,
//! bad signature, an actor not allowed) is `invalid_request`, as RFC 8693
//! §2.2.2 prescribes; a resource or audience that is not this server's is
//! `invalid_target`; a scope beyond the subject token's is `invalid_scope`.

use crate::config::{ActorRule, Exchange};
use crate::form::Params;
use crate::random;
use crate::token::{Failure, Tokens, oauth};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use provider_tokens::text::{printable, strict_object};
use serde_json::{Map, Value, json};

pub use crate::token::{EXCHANGE_GRANT_TYPE as GRANT_TYPE, KeySource};
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Asymmetric signature algorithms accepted (never `none`, never HMAC).
const ALLOWED_ALGS: [&str; 9] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];
/// Clock skew allowed for a trusted issuer's `iat` and `nbf` (seconds). `exp` has none.
const SKEW: u64 = 60;
/// A presented token longer than this is refused unread.
const TOKEN_LIMIT: usize = 16 * 1024;

/// A subject or actor token that verified.
#[derive(Debug)]
struct Party {
    iss: String,
    sub: String,
    exp: u64,
    /// The scopes it stands for at this server.
    scopes: Vec<String>,
    /// Own tokens only: the session that binds the upstream tokens.
    sid: Option<String>,
    act: Option<Value>,
    may_act: Option<Value>,
}

/// What the audit line says about a request, filled as it is learned.
#[derive(Default)]
struct Audit {
    subject: Option<String>,
    actor: Option<String>,
}

impl Tokens<'_> {
    /// The token-exchange grant (the client's parameters), audited.
    pub fn exchange(&self, params: &Params) -> Result<Value, Failure> {
        let mut audit = Audit::default();
        let result = self.exchange_checked(params, &mut audit);
        let shown = |value: Option<&str>| value.map_or_else(|| "-".to_owned(), |v| format!("{:?}", printable(v, 100)));
        let outcome = match &result {
            Ok(_) => "issued".to_owned(),
            Err(Failure::OAuth { error, description, .. }) => format!("refused ({error}: {description})"),
            Err(Failure::Store(_)) => "failed (store)".to_owned(),
            Err(Failure::Server(_)) => "failed (server)".to_owned(),
        };
        (self.audit)(&format!(
            "token exchange: client={} subject={} actor={} audience={} outcome={outcome}",
            shown(params.get("client_id")),
            shown(audit.subject.as_deref()),
            shown(audit.actor.as_deref()),
            shown(Some(self.config.resource.audience())),
        ));
        result
    }

    fn exchange_checked(&self, params: &Params, audit: &mut Audit) -> Result<Value, Failure> {
        let Some(exchange) = &self.config.exchange else {
            return Err(oauth("unsupported_grant_type", "token exchange is not enabled at this server"));
        };
        let client_id = params.require("client_id").map_err(|e| oauth("invalid_request", e.0))?;
        if !exchange.clients.iter().any(|c| c == client_id) {
            return Err(oauth("unauthorized_client", "this client may not exchange tokens"));
        }
        if !(self.client_known)(self.config, client_id)? {
            return Err(oauth("invalid_client", "the client is not known to this server"));
        }
        if let Some(requested) = params.get("requested_token_type")
            && requested != ACCESS_TOKEN_TYPE
        {
            return Err(oauth("invalid_request", "requested_token_type: this server issues access tokens only"));
        }
        // RFC 8707 `resource` or RFC 8693 `audience`: this server's one resource.
        let targets = [params.get("resource"), params.get("audience")];
        if targets.iter().flatten().any(|t| !self.config.resource.is(t)) {
            return Err(oauth("invalid_target", "resource or audience does not name this server's resource"));
        }
        if self.config.require_resource && targets.iter().all(Option::is_none) {
            return Err(oauth("invalid_request", "name this server's resource in `resource` or `audience`"));
        }
        let subject_token = params.require("subject_token").map_err(|e| oauth("invalid_request", e.0))?;
        let subject_type = params.require("subject_token_type").map_err(|e| oauth("invalid_request", e.0))?;
        let subject = self.verify_party(exchange, subject_token, subject_type).map_err(|why| oauth("invalid_request", format!("subject_token: {why}")))?;
        audit.subject = Some(subject.sub.clone());
        let actor = match (params.get("actor_token"), params.get("actor_token_type")) {
            (None, None) => None,
            (Some(token), Some(kind)) => {
                let actor = self.verify_party(exchange, token, kind).map_err(|why| oauth("invalid_request", format!("actor_token: {why}")))?;
                audit.actor = Some(actor.sub.clone());
                Some(actor)
            }
            _ => return Err(oauth("invalid_request", "actor_token and actor_token_type go together")),
        };
        if actor.is_none() && exchange.require_actor {
            return Err(oauth("invalid_request", "actor_token is required: name who will act for the subject"));
        }
        let rule = match &actor {
            Some(actor) => allowed(exchange, &subject, actor)?,
            None => None,
        };
        let scope = granted_scope(params.get("scope"), &subject, rule, &self.config.scopes)?;

        let mut exp = self.now + u64::from(exchange.token_ttl);
        exp = exp.min(subject.exp);
        if let Some(actor) = &actor {
            exp = exp.min(actor.exp);
        }
        let mut claims = json!({
            "iss": self.config.issuer,
            "sub": subject.sub,
            "aud": self.config.resource.audience(),
            "client_id": client_id,
            "scope": scope,
            "iat": self.now,
            "exp": exp,
            "jti": random::value().map_err(Failure::Server)?,
        });
        if let Some(sid) = &subject.sid {
            claims["sid"] = json!(sid);
        }
        // RFC 8693 §4.1: the current actor outermost, the earlier ones nested.
        let act = match (&actor, subject.act) {
            (Some(actor), prior) => {
                let mut act = json!({ "sub": actor.sub, "iss": actor.iss });
                if let Some(prior) = prior {
                    act["act"] = prior;
                }
                Some(act)
            }
            (None, prior) => prior,
        };
        if let Some(act) = act {
            claims["act"] = act;
        }
        let access_token = (self.sign)(&claims.to_string()).map_err(Failure::Server)?;
        Ok(json!({
            "access_token": access_token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": exp - self.now,
            "scope": scope,
        }))
    }

    /// Verifies a subject or actor token of type `kind`: one of this
    /// server's access tokens or a trusted issuer's JWT.
    fn verify_party(&self, exchange: &Exchange, token: &str, kind: &str) -> Result<Party, String> {
        if kind != ACCESS_TOKEN_TYPE && kind != JWT_TYPE {
            return Err("the token type must be an access token or a JWT".into());
        }
        if token.len() > TOKEN_LIMIT {
            return Err("the token is too large".into());
        }
        let jws = parse(token)?;
        let iss = jws.claims.get("iss").and_then(Value::as_str).unwrap_or_default().to_owned();
        let iss = iss.as_str();
        let trusted = exchange.trusted_issuers.iter().find(|t| t.issuer == iss);
        let own = iss == self.config.issuer;
        // The issuer picks the keys; nothing is fetched for an issuer not listed.
        let source = match (own, trusted) {
            (true, _) => KeySource::Own,
            (false, Some(trusted)) => KeySource::Jwks(&trusted.jwks_uri),
            (false, None) => return Err("not issued by this server nor by a trusted issuer".into()),
        };
        if own && !jws.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")) {
            return Err("this server's tokens are `at+jwt`".into());
        }
        if !(self.verify)(source, &jws.alg, jws.kid.as_deref(), jws.signing_input, jws.signature)? {
            return Err("the signature does not verify".into());
        }
        let claims = jws.claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let audience = if own { self.config.resource.audience() } else { trusted.map(|t| t.audience.as_str()).unwrap_or_default() };
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let for_us = audiences.iter().any(|a| if own { self.config.resource.is(a) } else { *a == audience });
        if !for_us {
            return Err("its `aud` is not this server".into());
        }
        let time = |name: &str| claims.get(name).and_then(Value::as_u64);
        let exp = time("exp").ok_or("it has no `exp`")?;
        if exp <= self.now {
            return Err("it has expired".into());
        }
        if time("nbf").is_some_and(|nbf| nbf > self.now + SKEW) || time("iat").is_some_and(|iat| iat > self.now + SKEW) {
            return Err("it is not valid yet".into());
        }
        let sub = text("sub").filter(|s| !s.is_empty()).ok_or("it has no `sub`")?.to_owned();
        let scopes = match trusted.filter(|_| !own) {
            Some(trusted) => trusted.scopes.clone(),
            None => text("scope").unwrap_or_default().split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        };
        let object = |name: &str| match claims.get(name) {
            None => Ok(None),
            Some(value @ Value::Object(_)) => Ok(Some(value.clone())),
            Some(_) => Err(format!("its `{name}` is not an object")),
        };
        Ok(Party {
            iss: iss.to_owned(),
            sub,
            exp,
            scopes,
            sid: if own { text("sid").map(str::to_owned) } else { None },
            act: object("act")?,
            may_act: object("may_act")?,
        })
    }
}

/// Whether `actor` may act for `subject`: the subject token's `may_act`
/// names it (then no rule is needed), or a rule allows it. A `may_act`
/// naming someone else refuses it. The rule that allowed it, if any.
fn allowed<'a>(exchange: &'a Exchange, subject: &Party, actor: &Party) -> Result<Option<&'a ActorRule>, Failure> {
    if let Some(may_act) = &subject.may_act {
        let names_actor = may_act.get("sub").and_then(Value::as_str) == Some(actor.sub.as_str())
            && may_act.get("iss").is_none_or(|iss| iss.as_str() == Some(actor.iss.as_str()));
        return if names_actor { Ok(None) } else { Err(oauth("invalid_request", "actor_token: the subject token's `may_act` does not name this actor")) };
    }
    exchange
        .actors
        .iter()
        .find(|rule| rule.issuer == actor.iss && rule.sub == actor.sub && rule.subjects.as_ref().is_none_or(|s| s.contains(&subject.sub)))
        .map(Some)
        .ok_or_else(|| oauth("invalid_request", "actor_token: this actor may not act for this subject"))
}

/// The scope to issue: the requested one (or, absent, all the subject
/// token's), which must lie within the subject token's, the rule's, and the
/// scopes this server offers now (`offered`: a token issued before a scope
/// was removed from the policy does not carry it on).
fn granted_scope(requested: Option<&str>, subject: &Party, rule: Option<&ActorRule>, offered: &[String]) -> Result<String, Failure> {
    let allowed = |s: &str| {
        subject.scopes.iter().any(|g| g == s) && rule.and_then(|r| r.scopes.as_ref()).is_none_or(|r| r.iter().any(|g| g == s)) && offered.iter().any(|g| g == s)
    };
    let scopes: Vec<&str> = match requested {
        Some(requested) => {
            let scopes: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
            if let Some(wider) = scopes.iter().find(|s| !allowed(s)) {
                return Err(oauth("invalid_scope", format!("{:?} is not within the subject token's (or the actor's) scopes", printable(wider, 40))));
            }
            scopes
        }
        None => subject.scopes.iter().map(String::as_str).filter(|s| allowed(s)).collect(),
    };
    if scopes.is_empty() {
        return Err(oauth("invalid_scope", "no scope is left to issue"));
    }
    Ok(scopes.join(" "))
}

/// A compact JWS, parsed; the signature not checked yet.
struct Jws<'a> {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    claims: Map<String, Value>,
    signing_input: &'a str,
    signature: &'a str,
}

fn parse(token: &str) -> Result<Jws<'_>, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("not a JWT (three dot-separated parts)".into());
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| "not base64url".to_owned());
    let header = strict_object(&decode(header)?).map_err(|why| format!("its header is {why}"))?;
    let claims = strict_object(&decode(payload)?).map_err(|why| format!("its claims are {why}"))?;
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some(alg) if ALLOWED_ALGS.contains(&alg) => alg.to_owned(),
        _ => return Err("its `alg` is not an accepted asymmetric algorithm".into()),
    };
    if header.contains_key("crit") {
        return Err("its header has `crit` extensions, which are not supported".into());
    }
    let text = |name: &str| match header.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(format!("its `{name}` is not a string")),
    };
    let signing_input = &token[..token.len() - signature.len() - 1];
    Ok(Jws { alg, kid: text("kid")?, typ: text("typ")?, claims, signing_input, signature })
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod tests;
