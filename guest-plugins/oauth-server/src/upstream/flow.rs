//! The two halves of an upstream login, over a [`Host`]: `begin` before the
//! browser goes to the provider, `finish` when it comes back.

use super::config::{Kind, Provider};
use super::gateway::Host;
use super::{CallbackError, Finished, StoredTokens, Upstreams};
use super::{authorize, callback, discovery, exchange, id_token, pending, subject, text, tokens};
use serde_json::{Map, Value};

pub fn begin(host: &impl Host, upstreams: &Upstreams, provider: &str, pending_id: &str, callback_url: &str) -> Result<String, String> {
    let provider = upstreams.provider(provider).ok_or_else(|| format!("there is no upstream named {:?}", text::printable(provider, 64)))?;
    let (authorization_endpoint, nonce) = match &provider.kind {
        Kind::Oidc { issuer, issuer_is_local, .. } => {
            let metadata = host.metadata(issuer, *issuer_is_local).map_err(|why| format!("the discovery of `{}` failed: {why}", provider.name))?;
            (metadata.authorization_endpoint, Some(host.random()?))
        }
        Kind::OAuth2 { authorization_endpoint, .. } => (authorization_endpoint.clone(), None),
    };
    let state = host.random()?;
    let leg = pending::Leg {
        pending_id: pending_id.to_owned(),
        provider: provider.name.clone(),
        verifier: host.random()?,
        nonce,
        redirect_uri: callback_url.to_owned(),
    };
    match host.put_new(&pending::key(&state), &leg.to_bytes(), pending::TTL) {
        Ok(true) => {}
        Ok(false) => return Err("a fresh random `state` is already in use; the random source is broken".into()),
        Err(e) => return Err(format!("the login at `{}` could not be recorded: {e}", provider.name)),
    }
    let challenge = crate::pkce::challenge(&leg.verifier);
    Ok(authorize::url(
        &authorization_endpoint,
        &authorize::Request {
            client_id: &provider.client_id,
            redirect_uri: callback_url,
            scopes: &provider.scopes,
            state: &state,
            challenge: &challenge,
            nonce: leg.nonce.as_deref(),
        },
    ))
}

pub fn finish(
    host: &impl Host,
    upstreams: &Upstreams,
    query: &str,
    callback_url: &str,
    session_id: &str,
    token_key: &[u8; 32],
) -> Result<Finished, CallbackError> {
    // A query this server cannot attribute to one of its logins is foreign;
    // its `state` is not taken, so a forged request cannot cancel a real login.
    let callback = callback::parse(query).map_err(|_| CallbackError::ForeignState)?;
    if !crate::random::is_value(&callback.state) {
        return Err(CallbackError::ForeignState);
    }
    let leg = match host.take(&pending::key(&callback.state)) {
        Ok(Some(bytes)) => pending::Leg::from_bytes(&bytes).ok_or(CallbackError::ForeignState)?,
        Ok(None) => return Err(CallbackError::ForeignState),
        Err(e) => return Err(CallbackError::Unavailable(format!("the login's state could not be read: {e}"))),
    };
    let fail = |why: String| {
        host.warn(&format!("the login at `{}` failed: {why}", leg.provider));
        CallbackError::Upstream { pending_id: leg.pending_id.clone(), provider: leg.provider.clone(), why }
    };
    let Some(provider) = upstreams.provider(&leg.provider) else {
        return Err(fail(format!("the login began at the upstream `{}`, which is no longer configured", leg.provider)));
    };
    complete(host, provider, upstreams.session_ttl, &leg, callback, callback_url, session_id, token_key).map_err(fail)
}

#[allow(clippy::too_many_arguments)]
fn complete(
    host: &impl Host,
    provider: &Provider,
    session_ttl: u32,
    leg: &pending::Leg,
    callback: callback::Callback,
    callback_url: &str,
    session_id: &str,
    token_key: &[u8; 32],
) -> Result<Finished, String> {
    let name = &provider.name;
    let code = match callback.outcome {
        callback::Outcome::Code(code) => code,
        callback::Outcome::Error(error) => return Err(format!("`{name}` refused the login: {error}")),
        callback::Outcome::Nothing => return Err(format!("the callback from `{name}` has neither a code nor an error")),
    };
    if leg.redirect_uri != callback_url {
        return Err(format!("the login at `{name}` began with another callback URL (do the replicas have the same public_url?)"));
    }
    if session_id.is_empty() {
        return Err("no session id to keep the tokens under".into());
    }
    let (token_endpoint, metadata) = match &provider.kind {
        Kind::Oidc { issuer, issuer_is_local, .. } => {
            let metadata = host.metadata(issuer, *issuer_is_local).map_err(|why| format!("the discovery of `{name}` failed: {why}"))?;
            check_iss(callback.iss.as_deref(), issuer, metadata.iss_parameter).map_err(|why| format!("the callback from `{name}` {why}"))?;
            (metadata.token_endpoint.clone(), Some(metadata))
        }
        Kind::OAuth2 { token_endpoint, .. } => (token_endpoint.clone(), None),
    };
    let secret = match &provider.client_secret_secret {
        Some(secret_name) => Some(host.secret(secret_name).map_err(|e| format!("the client secret `{secret_name}` of `{name}` cannot be read: {e}"))?),
        None => None,
    };
    let client = exchange::Client { client_id: &provider.client_id, secret: secret.as_deref() };
    let response =
        host.exchange(&token_endpoint, &client, &code, &leg.redirect_uri, &leg.verifier).map_err(|why| format!("the token endpoint of `{name}` {why}"))?;

    // ToolHive #6194: persist the provider's answer before any step that can fail.
    let now = host.now();
    let mut stored = StoredTokens::from_response(response.clone(), now);
    // What `builtin:upstream-token` needs to renew the user's token: kept with it, sealed.
    stored.renewal = Some(tokens::Renewal {
        token_endpoint: token_endpoint.clone(),
        client_id: provider.client_id.clone(),
        client_secret_secret: provider.client_secret_secret.clone(),
    });
    stored.session_expires_at = now.saturating_add(u64::from(session_ttl));
    host.put(&tokens::record_key(session_id, name), &tokens::seal_record(&stored, session_id, name, token_key), session_ttl)
        .map_err(|e| format!("the tokens of `{name}` could not be stored: {e}"))?;

    match identify(host, provider, metadata.as_ref(), leg, &stored, &response, now) {
        Ok((subject, claims)) => Ok(Finished { subject, provider: name.clone(), claims }),
        Err(why) => {
            if let Err(e) = host.delete(&tokens::record_key(session_id, name)) {
                host.warn(&format!("the tokens of `{name}` from a failed login could not be removed (they expire with their TTL): {e}"));
            }
            Err(why)
        }
    }
}

/// RFC 9207 against mix-up: an `iss` in the callback must be the provider's
/// issuer, and is required when the provider says it always sends it.
fn check_iss(iss: Option<&str>, issuer: &str, required: bool) -> Result<(), String> {
    match iss {
        Some(iss) if iss == issuer => Ok(()),
        Some(iss) => Err(format!("names the issuer {:?}, not {issuer:?}", text::printable(iss, 200))),
        None if required => Err("has no `iss`, which the provider says it always sends (RFC 9207)".into()),
        None => Ok(()),
    }
}

/// The subject and the claims: from the verified ID token (OpenID Connect),
/// the userinfo document, or the token response.
fn identify(
    host: &impl Host,
    provider: &Provider,
    metadata: Option<&discovery::Metadata>,
    leg: &pending::Leg,
    stored: &StoredTokens,
    response: &Map<String, Value>,
    now: u64,
) -> Result<(String, Value), String> {
    let name = &provider.name;
    match (&provider.kind, metadata) {
        (Kind::Oidc { issuer, subject_claim, .. }, Some(metadata)) => {
            let id_token = stored.id_token.as_deref().ok_or_else(|| format!("the token response of `{name}` has no ID token"))?;
            let nonce = leg.nonce.as_deref().ok_or_else(|| format!("the login at `{name}` has no nonce"))?;
            let parsed = id_token::parse(id_token, metadata.id_token_algs.as_deref()).map_err(|why| format!("`{name}`: {why}"))?;
            let jwk = host.jwk(&metadata.jwks_uri, &parsed.alg, parsed.kid.as_deref()).map_err(|why| format!("`{name}`: {why}"))?;
            match host.verify_jws(&parsed.alg, &jwk, parsed.signing_input, parsed.signature) {
                Ok(true) => {}
                Ok(false) => {
                    // The provider may have moved its keys: discover them afresh next time.
                    host.forget_metadata(issuer);
                    return Err(format!("`{name}`: the ID token's signature does not verify"));
                }
                Err(e) => return Err(format!("`{name}`: the ID token's signature cannot be checked: {e}")),
            }
            let expected = id_token::Expected { issuer, client_id: &provider.client_id, nonce, now };
            id_token::check_claims(&parsed.claims, &expected).map_err(|why| format!("`{name}`: {why}"))?;
            let subject =
                subject::at_path(&parsed.claims, subject_claim).ok_or_else(|| format!("`{name}`: the ID token has no usable `{}`", subject_claim.join(".")))?;
            Ok((subject, Value::Object(parsed.claims)))
        }
        (Kind::OAuth2 { userinfo_endpoint: Some(endpoint), subject_claim, .. }, _) => {
            let doc = host.userinfo(endpoint, &stored.access_token).map_err(|why| format!("the userinfo endpoint of `{name}` {why}"))?;
            let subject =
                subject::at_path(&doc, subject_claim).ok_or_else(|| format!("the userinfo of `{name}` has no usable `{}`", subject_claim.join(".")))?;
            Ok((subject, Value::Object(doc)))
        }
        (Kind::OAuth2 { userinfo_endpoint: None, subject_claim, .. }, _) => {
            let subject = subject::at_path(response, subject_claim)
                .ok_or_else(|| format!("the token response of `{name}` has no usable `{}`", subject_claim.join(".")))?;
            Ok((subject.clone(), serde_json::json!({ "sub": subject })))
        }
        (Kind::Oidc { .. }, None) => Err(format!("`{name}` has no discovery metadata")),
    }
}

#[cfg(test)]
mod tests;
