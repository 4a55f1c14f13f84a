//! The device authorization grant (RFC 8628), for `portcullis login --device`
//! on machines without a browser: the device authorization response, checked,
//! and what each answer of the token endpoint means while the person logs in
//! on another device. The requests are in `endpoint`; the tokens are stored
//! as after a browser login.
//!
//! The device code is a credential for the login under way: it stays in the
//! instance and never appears in a log line or a message. The user code and
//! the verification URIs are for the person, who is shown them.

use crate::text::printable;
use crate::token::{self, Exchange, StoredToken};
use crate::uri;
use portcullis_plugin::DeviceStart;

/// The end of a device login whose code ran out, here or at the provider.
pub const EXPIRED: &str = "the device code expired; run the login again";
/// The end of a device login the person (or the provider) refused.
pub const DENIED: &str = "the login was denied at the identity provider";

/// RFC 8628 §3.2: the wait between polls when the provider names none.
const DEFAULT_INTERVAL: u32 = 5;
/// RFC 8628 §3.5: `slow_down` adds 5 s to the wait, for this poll and all later ones.
const SLOW_DOWN_STEP: u32 = 5;
/// The longest verification URI shown to a person.
const MAX_URI_LEN: usize = 1024;
/// The longest user code shown to a person (RFC 8628 §6.1 suggests 8 characters).
const MAX_USER_CODE_LEN: usize = 64;

/// A device authorization response (RFC 8628 §3.2), checked.
pub struct Authorization {
    pub device_code: String,
    /// What the person is shown.
    pub start: DeviceStart,
    /// Why a `verification_uri_complete` was left out (it failed the checks),
    /// for a log line: the person can still type the user code.
    pub ignored: Option<String>,
}

/// Never prints the device code.
impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization").field("start", &self.start).field("ignored", &self.ignored).finish_non_exhaustive()
    }
}

/// The device authorization endpoint's answer: the authorization, or why there is none.
pub fn authorization(status: u16, body: &[u8], issuer_is_local: bool) -> Result<Authorization, String> {
    match status {
        200..=299 => parse(body, issuer_is_local),
        400..=499 => {
            let error = token::error_code(body).map(|e| format!(", error `{e}`")).unwrap_or_default();
            Err(format!("the device authorization endpoint refused the request (HTTP {status}{error})"))
        }
        _ => Err(format!("the device authorization endpoint answered HTTP {status}")),
    }
}

fn parse(body: &[u8], issuer_is_local: bool) -> Result<Authorization, String> {
    // The messages name fields, never quote values from serde: its errors may hold the device code.
    let doc: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|_| "the device authorization response is not a JSON object".to_string())?;
    let text = |name: &str| doc.get(name).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
    let missing = |name: &str| format!("the device authorization response has no `{name}`");

    let device_code = text("device_code").ok_or_else(|| missing("device_code"))?;
    let user_code = text("user_code").ok_or_else(|| missing("user_code"))?;
    if user_code.len() > MAX_USER_CODE_LEN || user_code.trim().is_empty() || !user_code.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(format!(
            "the device authorization response's `user_code` cannot be shown (blank, longer than {MAX_USER_CODE_LEN} characters, or not printable ASCII)"
        ));
    }
    // Some providers (Google) spell it `verification_url`.
    let (name, verification_uri) = match (text("verification_uri"), text("verification_url")) {
        (Some(uri), _) => ("verification_uri", uri),
        (None, Some(url)) => ("verification_url", url),
        (None, None) => return Err(missing("verification_uri")),
    };
    check_shown_uri(name, verification_uri, issuer_is_local)?;
    let (verification_uri_complete, ignored) = match doc.get("verification_uri_complete") {
        None | Some(serde_json::Value::Null) => (None, None),
        Some(serde_json::Value::String(uri)) => match check_shown_uri("verification_uri_complete", uri, issuer_is_local) {
            Ok(()) => (Some(uri.clone()), None),
            Err(why) => (None, Some(why)),
        },
        Some(_) => (None, Some("the device authorization response's `verification_uri_complete` is not a string".to_owned())),
    };
    let expires_in = doc
        .get("expires_in")
        .and_then(token::seconds)
        .filter(|s| *s > 0)
        .ok_or("the device authorization response has no usable `expires_in` (a positive number of seconds)")?;
    let interval = match doc.get("interval") {
        None | Some(serde_json::Value::Null) => DEFAULT_INTERVAL,
        // 0 would have the login command poll without pause.
        Some(value) => saturate(token::seconds(value).ok_or("the device authorization response's `interval` is not a number of seconds")?).max(1),
    };
    let start = DeviceStart {
        verification_uri: verification_uri.to_owned(),
        verification_uri_complete,
        user_code: user_code.to_owned(),
        expires_in: saturate(expires_in),
        interval,
    };
    Ok(Authorization { device_code: device_code.to_owned(), start, ignored })
}

/// A URI shown to a person, to open on another device: printable ASCII, not
/// too long, an absolute http(s) URL without user information (`https://good@evil`
/// misleads a reader), and https unless the provider itself is plain http on
/// loopback (development).
fn check_shown_uri(name: &str, url: &str, issuer_is_local: bool) -> Result<(), String> {
    let shown = || printable(url, 200);
    if url.len() > MAX_URI_LEN || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("the device authorization response's `{name}` {:?} is longer than {MAX_URI_LEN} characters or not printable ASCII", shown()));
    }
    let parts = uri::parts(url).ok_or_else(|| format!("the device authorization response's `{name}` {:?} is not an absolute http(s) URL", shown()))?;
    if parts.scheme == uri::Scheme::Https || (issuer_is_local && parts.is_local_http()) {
        Ok(())
    } else {
        Err(format!("the device authorization response's `{name}` {:?} does not use https", shown()))
    }
}

fn saturate(seconds: u64) -> u32 {
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

/// A device login between `begin_device_login` and its last poll, kept in the
/// instance (the login command calls both on the same one).
pub struct Pending {
    pub device_code: String,
    /// Seconds between polls; `slow_down` lengthens it.
    pub interval: u32,
    /// Unix milliseconds.
    pub expires_at_ms: u64,
    pub token_endpoint: String,
}

/// Never prints the device code.
impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("interval", &self.interval)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("token_endpoint", &self.token_endpoint)
            .finish_non_exhaustive()
    }
}

/// What a poll's answer means.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The person finished: store the tokens.
    Done(StoredToken),
    /// Not yet (`authorization_pending`, `slow_down`): poll again after the interval.
    Wait,
    /// No usable answer (5xx, not a token, no connection): poll again after the
    /// interval. The cause, for a log line, holds no code or token.
    Retry(String),
    /// The login is over, for the reason given.
    End(String),
}

impl Pending {
    pub fn new(authorization: Authorization, token_endpoint: String, now_ms: u64) -> Pending {
        let expires_at_ms = now_ms.saturating_add(u64::from(authorization.start.expires_in).saturating_mul(1000));
        Pending { device_code: authorization.device_code, interval: authorization.start.interval, expires_at_ms, token_endpoint }
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
    }

    /// Classifies the token endpoint's answer to a poll (RFC 8628 §3.5);
    /// `slow_down` lengthens the interval.
    pub fn step(&mut self, exchange: Exchange) -> Step {
        match exchange {
            Exchange::Issued(token) => Step::Done(token),
            Exchange::Refused { status, error } => match error.as_deref() {
                Some("authorization_pending") => Step::Wait,
                Some("slow_down") => {
                    self.interval = self.interval.saturating_add(SLOW_DOWN_STEP);
                    Step::Wait
                }
                Some("access_denied") => Step::End(DENIED.into()),
                Some("expired_token") => Step::End(EXPIRED.into()),
                Some(other) => Step::End(format!("the token endpoint refused the device login (HTTP {status}, error `{other}`)")),
                None => Step::End(format!("the token endpoint refused the device login (HTTP {status})")),
            },
            Exchange::Failed(cause) => Step::Retry(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::classify;

    const NOW_S: u64 = 1_700_000_000;

    fn parse_ok(json: serde_json::Value, local: bool) -> Authorization {
        authorization(200, json.to_string().as_bytes(), local).unwrap()
    }

    fn parse_err(json: serde_json::Value) -> String {
        authorization(200, json.to_string().as_bytes(), false).unwrap_err()
    }

    fn answer() -> serde_json::Value {
        serde_json::json!({"device_code": "dc-secret", "user_code": "WDJB-MJHT", "verification_uri": "https://idp.example.com/device",
            "verification_uri_complete": "https://idp.example.com/device?user_code=WDJB-MJHT", "expires_in": 1800, "interval": 7})
    }

    fn with(mut json: serde_json::Value, name: &str, value: serde_json::Value) -> serde_json::Value {
        json[name] = value;
        json
    }

    fn without(mut json: serde_json::Value, name: &str) -> serde_json::Value {
        json.as_object_mut().unwrap().remove(name);
        json
    }

    #[test]
    fn a_device_authorization_response() {
        let authorization = parse_ok(answer(), false);
        assert_eq!(authorization.device_code, "dc-secret");
        assert_eq!(
            authorization.start,
            DeviceStart {
                verification_uri: "https://idp.example.com/device".into(),
                verification_uri_complete: Some("https://idp.example.com/device?user_code=WDJB-MJHT".into()),
                user_code: "WDJB-MJHT".into(),
                expires_in: 1800,
                interval: 7,
            }
        );
        assert_eq!(authorization.ignored, None);
        assert!(!format!("{authorization:?}").contains("dc-secret"));
    }

    #[test]
    fn what_the_test_provider_sends() {
        // oidc-provider: no `interval`, loopback http for a loopback issuer.
        let body = br#"{"device_code":"ThTo_sQsnjEcrZAa","user_code":"WGCR-TCKV","verification_uri":"http://127.0.0.1:44707/device",
            "verification_uri_complete":"http://127.0.0.1:44707/device?user_code=WGCR-TCKV","expires_in":600}"#;
        let start = authorization(200, body, true).unwrap().start;
        assert_eq!((start.expires_in, start.interval), (600, 5), "interval defaults to 5 s");
        assert_eq!(start.verification_uri_complete.as_deref(), Some("http://127.0.0.1:44707/device?user_code=WGCR-TCKV"));
        assert!(authorization(200, body, false).unwrap_err().contains("does not use https"), "plain http only from a loopback provider");
    }

    #[test]
    fn optional_fields_and_aliases() {
        let google = without(with(answer(), "verification_url", "https://www.google.com/device".into()), "verification_uri");
        assert_eq!(parse_ok(google, false).start.verification_uri, "https://www.google.com/device");
        assert_eq!(parse_ok(without(answer(), "verification_uri_complete"), false).start.verification_uri_complete, None);
        assert_eq!(parse_ok(with(answer(), "verification_uri_complete", serde_json::Value::Null), false).start.verification_uri_complete, None);
        assert_eq!(parse_ok(with(answer(), "interval", serde_json::Value::Null), false).start.interval, 5);
        assert_eq!(parse_ok(with(answer(), "interval", "10".into()), false).start.interval, 10);
        assert_eq!(parse_ok(with(answer(), "interval", 0.into()), false).start.interval, 1, "never a poll without pause");
        assert_eq!(parse_ok(with(answer(), "expires_in", "900".into()), false).start.expires_in, 900);
        assert_eq!(parse_ok(with(answer(), "expires_in", 1e12.into()), false).start.expires_in, u32::MAX);
    }

    #[test]
    fn a_bad_complete_uri_is_left_out_and_said_why() {
        for (bad, why) in [
            (serde_json::json!("http://idp.example.com/device?user_code=X"), "does not use https"),
            (serde_json::json!("https://idp.example.com/device?user_code=X\r\nforged"), "not printable ASCII"),
            (serde_json::json!(42), "not a string"),
        ] {
            let authorization = parse_ok(with(answer(), "verification_uri_complete", bad), false);
            assert_eq!(authorization.start.verification_uri_complete, None);
            assert!(authorization.ignored.as_deref().unwrap().contains(why), "{:?}", authorization.ignored);
        }
    }

    #[test]
    fn refused_responses() {
        for (json, expected) in [
            (without(answer(), "device_code"), "has no `device_code`"),
            (with(answer(), "device_code", "".into()), "has no `device_code`"),
            (with(answer(), "device_code", 7.into()), "has no `device_code`"),
            (without(answer(), "user_code"), "has no `user_code`"),
            (with(answer(), "user_code", "  ".into()), "`user_code` cannot be shown"),
            (with(answer(), "user_code", "AB\u{1b}[2J".into()), "`user_code` cannot be shown"),
            (with(answer(), "user_code", "ÄBCD".into()), "`user_code` cannot be shown"),
            (with(answer(), "user_code", "X".repeat(65).into()), "`user_code` cannot be shown"),
            (without(answer(), "verification_uri"), "has no `verification_uri`"),
            (with(answer(), "verification_uri", "/device".into()), "not an absolute http(s) URL"),
            (with(answer(), "verification_uri", "javascript:alert(1)".into()), "not an absolute http(s) URL"),
            (with(answer(), "verification_uri", "https://idp.example.com@evil.example/".into()), "not an absolute http(s) URL"),
            (with(answer(), "verification_uri", "http://idp.example.com/device".into()), "does not use https"),
            (with(answer(), "verification_uri", "https://idp.example.com/dévice".into()), "not printable ASCII"),
            (with(answer(), "verification_uri", "https://idp.example.com/device forged".into()), "not printable ASCII"),
            (with(answer(), "verification_uri", format!("https://idp.example.com/{}", "d".repeat(1100)).into()), "longer than 1024"),
            (without(answer(), "expires_in"), "no usable `expires_in`"),
            (with(answer(), "expires_in", 0.into()), "no usable `expires_in`"),
            (with(answer(), "expires_in", (-5).into()), "no usable `expires_in`"),
            (with(answer(), "expires_in", "soon".into()), "no usable `expires_in`"),
            (with(answer(), "interval", (-1).into()), "`interval` is not a number of seconds"),
            (with(answer(), "interval", "fast".into()), "`interval` is not a number of seconds"),
        ] {
            let error = parse_err(json.clone());
            assert!(error.contains(expected), "{json}: {error}");
            assert!(!error.contains("dc-secret"), "{error}");
        }
        let long = parse_err(with(answer(), "verification_uri", format!("https://idp.example.com/{}", "d".repeat(1100)).into()));
        assert!(long.len() < 400, "the URI is quoted shortened: {long}");
        assert_eq!(authorization(200, b"<html>", false).unwrap_err(), "the device authorization response is not a JSON object");
        assert!(authorization(200, b"[]", false).is_err());
    }

    #[test]
    fn the_endpoint_refuses() {
        assert_eq!(
            authorization(401, br#"{"error":"invalid_client","error_description":"client authentication failed"}"#, false).unwrap_err(),
            "the device authorization endpoint refused the request (HTTP 401, error `invalid_client`)"
        );
        assert_eq!(authorization(400, b"<html>", false).unwrap_err(), "the device authorization endpoint refused the request (HTTP 400)");
        assert_eq!(authorization(503, br#"{"error":"x"}"#, false).unwrap_err(), "the device authorization endpoint answered HTTP 503");
    }

    fn pending() -> Pending {
        Pending::new(parse_ok(answer(), false), "https://idp.example.com/token".into(), NOW_S * 1000)
    }

    fn poll(pending: &mut Pending, status: u16, body: &str) -> Step {
        pending.step(classify(status, body.as_bytes(), None, NOW_S))
    }

    #[test]
    fn the_login_expires() {
        let pending = pending();
        assert_eq!(pending.expires_at_ms, (NOW_S + 1800) * 1000);
        assert!(!pending.is_expired(pending.expires_at_ms - 1));
        assert!(pending.is_expired(pending.expires_at_ms));
        assert!(!format!("{pending:?}").contains("dc-secret"));
    }

    #[test]
    fn polls_wait_and_slow_down() {
        let mut pending = pending();
        assert_eq!(poll(&mut pending, 400, r#"{"error":"authorization_pending","error_description":"still pending"}"#), Step::Wait);
        assert_eq!(pending.interval, 7, "pending keeps the interval");
        assert_eq!(poll(&mut pending, 400, r#"{"error":"slow_down"}"#), Step::Wait);
        assert_eq!(pending.interval, 12, "slow_down adds 5 s");
        assert_eq!(poll(&mut pending, 400, r#"{"error":"slow_down"}"#), Step::Wait);
        assert_eq!(pending.interval, 17, "for every later poll too");
        assert_eq!(poll(&mut pending, 400, r#"{"error":"authorization_pending"}"#), Step::Wait);
        assert_eq!(pending.interval, 17);
        pending.interval = u32::MAX;
        assert_eq!(poll(&mut pending, 400, r#"{"error":"slow_down"}"#), Step::Wait);
        assert_eq!(pending.interval, u32::MAX, "saturates");
    }

    #[test]
    fn transient_answers_keep_polling() {
        let mut pending = pending();
        assert_eq!(poll(&mut pending, 500, "<html><body>Internal Server Error</body></html>"), Step::Retry("token endpoint answered HTTP 500".into()));
        assert_eq!(poll(&mut pending, 503, ""), Step::Retry("token endpoint answered HTTP 503".into()));
        assert_eq!(poll(&mut pending, 429, ""), Step::Retry("token endpoint answered HTTP 429".into()));
        assert_eq!(poll(&mut pending, 200, "<html>maintenance</html>"), Step::Retry("token endpoint answered with something other than a token".into()));
        assert_eq!(
            pending.step(Exchange::Failed("could not reach the token endpoint: timeout".into())),
            Step::Retry("could not reach the token endpoint: timeout".into())
        );
        assert_eq!(pending.interval, 7);
    }

    #[test]
    fn the_ends() {
        let mut pending = pending();
        assert_eq!(poll(&mut pending, 400, r#"{"error":"access_denied"}"#), Step::End(DENIED.into()));
        assert_eq!(poll(&mut pending, 400, r#"{"error":"expired_token"}"#), Step::End(EXPIRED.into()));
        assert_eq!(
            poll(&mut pending, 400, r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#),
            Step::End("the token endpoint refused the device login (HTTP 400, error `invalid_grant`)".into())
        );
        assert_eq!(
            poll(&mut pending, 401, r#"{"error":"invalid_client\r\n"}"#),
            Step::End("the token endpoint refused the device login (HTTP 401, error `invalid_client`)".into())
        );
        assert_eq!(poll(&mut pending, 403, "<html>Forbidden</html>"), Step::End("the token endpoint refused the device login (HTTP 403)".into()));
    }

    #[test]
    fn a_token_ends_the_login() {
        let mut pending = pending();
        let Step::Done(token) = poll(&mut pending, 200, r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt"}"#) else {
            panic!("no token");
        };
        assert_eq!((token.access_token.as_str(), token.refresh_token.as_deref(), token.expires_at), ("at", Some("rt"), NOW_S + 3600));
        assert!(matches!(poll(&mut pending, 200, r#"{"access_token":"a b","token_type":"Bearer"}"#), Step::Retry(_)), "a bad token is not stored");
    }
}
