//! One RFC 8693 token exchange: the request (§2.1) with the client's
//! authentication, and the checks on the answer (§2.2). Errors name the
//! status and the STS's OAuth error code, never a body (it may hold a token).

use crate::config::{ACCESS_TOKEN, Checked, ClientAuth, JWT_BEARER_ASSERTION, TOKEN_EXCHANGE};
use provider_tokens::text::{printable, strict_object};
use serde_json::Value;

/// What the client authenticates with, read from the secret store or signed at use.
pub enum Credential {
    Secret(String),
    /// A signed client assertion (`private_key_jwt`).
    Assertion(String),
}

/// The form body and the `Authorization` header, if any.
pub fn request(config: &Checked, subject_token: &str, credential: &Credential) -> (String, Option<String>) {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", TOKEN_EXCHANGE)
        .append_pair("subject_token", subject_token)
        .append_pair("subject_token_type", &config.subject_token_type)
        .append_pair("requested_token_type", &config.requested_token_type);
    for (name, value) in [("audience", &config.audience), ("resource", &config.resource), ("scope", &config.scope)] {
        if let Some(value) = value {
            form.append_pair(name, value);
        }
    }
    let mut authorization = None;
    match (&config.client_auth, credential) {
        (ClientAuth::Basic { .. }, Credential::Secret(secret)) => {
            authorization = Some(provider_tokens::exchange::basic_authorization(&config.client_id, secret));
        }
        (ClientAuth::Post { .. }, Credential::Secret(secret)) => {
            form.append_pair("client_id", &config.client_id).append_pair("client_secret", secret);
        }
        (_, Credential::Assertion(jwt)) => {
            form.append_pair("client_id", &config.client_id).append_pair("client_assertion_type", JWT_BEARER_ASSERTION).append_pair("client_assertion", jwt);
        }
        (ClientAuth::PrivateKeyJwt, Credential::Secret(_)) => unreachable!("a private_key_jwt client is given an assertion"),
    }
    (form.finish(), authorization)
}

/// The claims of a `private_key_jwt` client assertion (RFC 7523 §3): the
/// client is issuer and subject, the token endpoint the audience, valid 60 s.
pub fn assertion_claims(config: &Checked, now: u64, jti: &str) -> String {
    serde_json::json!({
        "iss": config.client_id,
        "sub": config.client_id,
        "aud": config.token_endpoint,
        "jti": jti,
        "iat": now,
        "exp": now + 60,
    })
    .to_string()
}

/// An exchanged token, checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Issued {
    pub access_token: String,
    /// Seconds from now, when the STS said.
    pub expires_in: Option<u64>,
}

/// Why no token came back.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The STS refused the subject token (`invalid_grant`, `invalid_request`):
    /// expired, revoked, or not one it accepts. The client gets 401.
    Subject(String),
    /// The STS answered, but not with a token we can use (another error, a
    /// 5xx, a body that is not a token response, a token type not asked for): 502.
    BadAnswer(String),
    /// No answer in time, or none at all: 503.
    Unreachable(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Subject(why) | Failure::BadAnswer(why) | Failure::Unreachable(why) => f.write_str(why),
        }
    }
}

/// Reads the STS's answer (RFC 8693 §2.2): a 2xx token response whose
/// `issued_token_type` is the one requested and whose `token_type` is
/// `Bearer` (or `N_A` for a token that is not an access token).
pub fn answer(status: u16, body: &[u8], requested_token_type: &str) -> Result<Issued, Failure> {
    let parsed = strict_object(body);
    let error = parsed.as_ref().ok().and_then(|doc| doc.get("error")).map(|e| printable(e.as_str().unwrap_or("a non-text error"), 64));
    match (status, error) {
        (200..=299, None) => {}
        (400..=499, Some(code)) if code == "invalid_grant" || code == "invalid_request" => {
            return Err(Failure::Subject(format!("the STS refused the subject token ({status} {code})")));
        }
        (500..=599, Some(code)) => return Err(Failure::Unreachable(format!("the STS answered {status} {code}"))),
        (_, Some(code)) => return Err(Failure::BadAnswer(format!("the STS answered {status} {code}"))),
        (500..=599, None) => return Err(Failure::Unreachable(format!("the STS answered HTTP {status}"))),
        (_, None) => return Err(Failure::BadAnswer(format!("the STS answered HTTP {status}"))),
    }
    let response = parsed.map_err(|why| Failure::BadAnswer(format!("the STS answered with a body that is {why}")))?;
    let access_token = match response.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() && token.len() <= 16 * 1024 && token.bytes().all(|b| b.is_ascii_graphic()) => token.clone(),
        _ => return Err(Failure::BadAnswer("the STS answered without a usable `access_token`".into())),
    };
    match response.get("issued_token_type").and_then(Value::as_str) {
        Some(issued) if issued == requested_token_type => {}
        Some(issued) => {
            return Err(Failure::BadAnswer(format!("the STS issued a token of type {:?}, not the {requested_token_type:?} asked for", printable(issued, 100))));
        }
        None => return Err(Failure::BadAnswer("the STS's answer has no `issued_token_type` (RFC 8693 §2.2.1 requires it)".into())),
    }
    let token_type = response.get("token_type").and_then(Value::as_str).unwrap_or_default();
    let bearer = token_type.eq_ignore_ascii_case("bearer");
    if !(bearer || (token_type == "N_A" && requested_token_type != ACCESS_TOKEN)) {
        return Err(Failure::BadAnswer(format!("the STS issued a `token_type` of {:?}, not Bearer", printable(token_type, 40))));
    }
    let expires_in = match response.get("expires_in") {
        None => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(_) => return Err(Failure::BadAnswer("the STS's `expires_in` is not a number of seconds".into())),
    };
    Ok(Issued { access_token, expires_in })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(extra: serde_json::Value) -> Checked {
        let mut c = json!({"token_endpoint": "https://sts.example/token", "client_id": "gate:way", "client_secret": "s", "audience": "https://api.example",
            "scope": "read write"});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value::<crate::config::Config>(c).unwrap().check().unwrap()
    }

    fn pairs(form: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(form.as_bytes()).into_owned().collect()
    }

    #[test]
    fn the_form_with_basic() {
        let (form, authorization) = request(&config(json!({})), "sub+ject/token", &Credential::Secret("s3cret".into()));
        assert_eq!(
            pairs(&form),
            [
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", "sub+ject/token"),
                ("subject_token_type", ACCESS_TOKEN),
                ("requested_token_type", ACCESS_TOKEN),
                ("audience", "https://api.example"),
                ("scope", "read write"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert!(form.contains("subject_token=sub%2Bject%2Ftoken"), "{form}");
        assert_eq!(authorization.as_deref(), Some(provider_tokens::exchange::basic_authorization("gate:way", "s3cret").as_str()));
        assert!(!form.contains("s3cret") && !form.contains("client_id"), "one authentication method per request: {form}");
    }

    #[test]
    fn the_form_with_post_and_with_a_key() {
        let (form, authorization) = request(&config(json!({"client_auth": "client_secret_post"})), "t", &Credential::Secret("s3cret".into()));
        assert_eq!(authorization, None);
        let form = pairs(&form);
        assert!(form.contains(&("client_id".into(), "gate:way".into())) && form.contains(&("client_secret".into(), "s3cret".into())), "{form:?}");

        let jwt =
            config(json!({"client_auth": "private_key_jwt", "client_secret": null, "resource": "https://api.example/v1", "audience": null, "scope": null}));
        let (form, authorization) = request(&jwt, "t", &Credential::Assertion("h.p.s".into()));
        assert_eq!(authorization, None);
        let form = pairs(&form);
        assert!(form.contains(&("client_assertion_type".into(), JWT_BEARER_ASSERTION.into())));
        assert!(form.contains(&("client_assertion".into(), "h.p.s".into())));
        assert!(form.contains(&("resource".into(), "https://api.example/v1".into())));
        assert!(!form.iter().any(|(k, _)| k == "audience" || k == "scope" || k == "client_secret"), "{form:?}");
        let claims: serde_json::Value = serde_json::from_str(&assertion_claims(&jwt, 1000, "j1")).unwrap();
        assert_eq!(claims, json!({"iss": "gate:way", "sub": "gate:way", "aud": "https://sts.example/token", "jti": "j1", "iat": 1000, "exp": 1060}));
    }

    #[test]
    fn good_answers() {
        let ok = br#"{"access_token":"x-1","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":60}"#;
        assert_eq!(answer(200, ok, ACCESS_TOKEN), Ok(Issued { access_token: "x-1".into(), expires_in: Some(60) }));
        let no_expiry = br#"{"access_token":"x-1","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"bearer"}"#;
        assert_eq!(answer(200, no_expiry, ACCESS_TOKEN).unwrap().expires_in, None);
        let jwt = br#"{"access_token":"a.b.c","issued_token_type":"urn:ietf:params:oauth:token-type:jwt","token_type":"N_A","expires_in":5}"#;
        assert!(answer(200, jwt, "urn:ietf:params:oauth:token-type:jwt").is_ok());
    }

    #[test]
    fn refused_subjects() {
        for (status, body) in
            [(400, &br#"{"error":"invalid_grant","error_description":"subject tok-123 expired"}"#[..]), (400, br#"{"error":"invalid_request"}"#)]
        {
            let failure = answer(status, body, ACCESS_TOKEN).unwrap_err();
            assert!(matches!(failure, Failure::Subject(_)), "{failure:?}");
            assert!(!failure.to_string().contains("tok-123"), "never the STS's prose: {failure}");
        }
    }

    #[test]
    fn bad_answers() {
        let bad_answer = |status, body: &[u8]| match answer(status, body, ACCESS_TOKEN) {
            Err(Failure::BadAnswer(why)) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(bad_answer(401, br#"{"error":"invalid_client"}"#), "the STS answered 401 invalid_client");
        assert_eq!(bad_answer(400, br#"{"error":"invalid_target"}"#), "the STS answered 400 invalid_target");
        assert_eq!(bad_answer(200, br#"{"error":"invalid_grant","access_token":"x"}"#), "the STS answered 200 invalid_grant");
        assert_eq!(bad_answer(302, b""), "the STS answered HTTP 302");
        assert!(bad_answer(200, b"<html>x-1</html>").starts_with("the STS answered with a body that is not valid JSON"));
        assert!(bad_answer(200, br#"{"access_token":"a","access_token":"b"}"#).contains("duplicate"));
        let typed = |issued: &str, token_type: &str, extra: &str| {
            format!(r#"{{"access_token":"x-1","issued_token_type":"{issued}","token_type":"{token_type}"{extra}}}"#).into_bytes()
        };
        let wrong = bad_answer(200, &typed("urn:ietf:params:oauth:token-type:refresh_token", "Bearer", ""));
        assert!(wrong.contains("refresh_token") && wrong.contains("not the"), "{wrong}");
        assert!(!wrong.contains("x-1"));
        assert!(bad_answer(200, br#"{"access_token":"x-1","token_type":"Bearer"}"#).contains("no `issued_token_type`"));
        assert!(bad_answer(200, &typed(ACCESS_TOKEN, "DPoP", "")).contains("not Bearer"));
        assert!(bad_answer(200, &typed(ACCESS_TOKEN, "N_A", "")).contains("not Bearer"), "an access token is a Bearer token");
        assert!(bad_answer(200, &typed(ACCESS_TOKEN, "Bearer", r#","expires_in":"60""#)).contains("expires_in"));
        assert!(bad_answer(200, &typed(ACCESS_TOKEN, "Bearer", r#","expires_in":-1"#)).contains("expires_in"));
        for token in [r#""""#, r#""a b""#, "7", r#""a\r\nb""#] {
            let body = format!(r#"{{"access_token":{token},"issued_token_type":"{ACCESS_TOKEN}","token_type":"Bearer"}}"#);
            assert!(bad_answer(200, body.as_bytes()).contains("usable `access_token`"), "{token}");
        }
    }

    #[test]
    fn unreachable() {
        assert!(matches!(answer(500, b"oops", ACCESS_TOKEN), Err(Failure::Unreachable(_))));
        assert!(matches!(answer(503, br#"{"error":"temporarily_unavailable"}"#, ACCESS_TOKEN), Err(Failure::Unreachable(_))));
    }
}
