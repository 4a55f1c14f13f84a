//! Claim checks after the signature verified: time, audience, scopes, required claims.

use crate::config::{Config, Provider};
use serde_json::{Map, Value};

/// Whether the token is an access token rather than, say, an ID token issued
/// to a client whose id is also an accepted audience (RFC 9068 §4, RFC 8725 §3.11).
/// With `require_at_jwt`, the JOSE `typ` must be `at+jwt`; without it (for
/// providers that do not set `typ`), a token is still refused when it carries
/// what only ID tokens carry.
pub fn check_token_type(provider: &Provider, header: &Map<String, Value>, claims: &Map<String, Value>) -> Result<(), String> {
    let typed = header.get("typ").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
    if typed {
        return Ok(());
    }
    if provider.require_at_jwt {
        return Err("the token is not an access token (its `typ` is not at+jwt)".into());
    }
    let id_token_marker = ["nonce", "at_hash", "c_hash"].iter().any(|c| claims.contains_key(*c))
        || claims.get("typ").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("ID"));
    if id_token_marker {
        return Err("the token is an ID token, not an access token".into());
    }
    Ok(())
}

/// Why verified claims are not acceptable.
pub enum ClaimError {
    /// 401 `invalid_token` with this description.
    Invalid(String),
    /// 403 `insufficient_scope`: the token is fine but lacks these scopes.
    InsufficientScope(Vec<String>),
}

pub fn check(config: &Config, provider: &Provider, claims: &Map<String, Value>, now: u64) -> Result<(), ClaimError> {
    let invalid = |m: &str| Err(ClaimError::Invalid(m.to_owned()));
    let number = |name: &str| -> Result<Option<u64>, ClaimError> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)) {
                Some(v) => Ok(Some(v)),
                None => Err(ClaimError::Invalid(format!("`{name}` is not a valid time"))),
            },
            Some(_) => Err(ClaimError::Invalid(format!("`{name}` is not a number"))),
        }
    };
    match number("exp")? {
        Some(exp) if now >= exp.saturating_add(config.leeway) => return invalid("the token has expired"),
        None if config.require_exp => return invalid("the token has no expiry (`exp`)"),
        _ => {}
    }
    if let Some(nbf) = number("nbf")?
        && now.saturating_add(config.leeway) < nbf
    {
        return invalid("the token is not valid yet (`nbf`)");
    }
    if !provider.audiences.is_empty() {
        let matches = |a: &str| provider.audiences.iter().any(|want| want == a);
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => matches(a),
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str().is_some_and(matches)),
            _ => false,
        };
        if !ok {
            return invalid("the token is not for this resource (`aud`)");
        }
    }
    for name in &config.required_claims {
        if claims.get(name).is_none_or(Value::is_null) {
            return Err(ClaimError::Invalid(format!("the token lacks the claim `{name}`")));
        }
    }
    if !config.required_scopes.is_empty() {
        let granted = scopes(claims);
        let missing: Vec<String> = config.required_scopes.iter().filter(|s| !granted.contains(s)).cloned().collect();
        if !missing.is_empty() {
            return Err(ClaimError::InsufficientScope(config.required_scopes.clone()));
        }
    }
    Ok(())
}

/// Scopes from `scope` (space-separated, RFC 9068) or `scp` (an array, common in Entra/Okta).
fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(Value::String(s)) = claims.get("scope") {
        out.extend(s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned));
    }
    match claims.get("scp") {
        Some(Value::Array(list)) => out.extend(list.iter().filter_map(Value::as_str).map(str::to_owned)),
        Some(Value::String(s)) => out.extend(s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned)),
        _ => {}
    }
    out
}

/// A claim as a header value: strings as they are, arrays joined with `,`, numbers and booleans as text.
pub fn header_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items.iter().map(header_value).collect::<Option<Vec<_>>>()?.join(","),
        _ => return None,
    };
    // Control characters would make an invalid (or smuggled) header.
    (!text.chars().any(|c| c.is_control())).then_some(text)
}
