//! What components declare and decide, checked once, here.
//!
//! A component's manifest is parsed when its first instance starts (at policy
//! load), and each verdict is checked against it before the proxy sees it. The
//! proxy gets only the checked forms below, so applying an edit or building a
//! denial cannot fail, and no rule about headers is checked in two places.

use super::bindings::types as wit;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

/// Headers no component may consume, produce or edit: they frame and route the
/// request (request smuggling otherwise), or the gateway sets them itself.
pub fn gateway_managed(name: &HeaderName) -> bool {
    matches!(
        *name,
        header::HOST
            | header::CONTENT_LENGTH
            | header::TRANSFER_ENCODING
            | header::CONNECTION
            | header::UPGRADE
            | header::TE
            | header::TRAILER
            | header::PROXY_AUTHORIZATION
            | header::PROXY_AUTHENTICATE
            | header::FORWARDED
    ) || matches!(name.as_str(), "keep-alive" | "proxy-connection" | "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host")
}

/// The headers a component consumes and produces (WIT `manifest`), parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub consumes: Vec<HeaderName>,
    pub forwards: Vec<HeaderName>,
    pub produces: Vec<HeaderName>,
}

impl Manifest {
    /// Refuses names that are not header names, or that the gateway manages.
    pub fn parse(manifest: wit::Manifest) -> Result<Manifest, String> {
        let names = |list: Vec<String>, what: &str| -> Result<Vec<HeaderName>, String> {
            let mut out: Vec<HeaderName> = Vec::with_capacity(list.len());
            for raw in list {
                let name = HeaderName::from_bytes(raw.as_bytes()).map_err(|_| format!("its manifest {what} {raw:?}, which is not a header name"))?;
                if gateway_managed(&name) {
                    return Err(format!("its manifest {what} `{name}`, a header only the gateway manages; choose another header"));
                }
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            Ok(out)
        };
        let consumes = names(manifest.consumes, "consumes")?;
        let forwards = names(manifest.forwards, "forwards")?;
        let produces = names(manifest.produces, "produces")?;
        if let Some(stray) = forwards.iter().find(|f| !consumes.contains(f)) {
            return Err(format!("its manifest forwards `{stray}` without consuming it"));
        }
        Ok(Manifest { consumes, forwards, produces })
    }
}

/// A checked header edit.
#[derive(Debug, Clone)]
enum Edit {
    Set(HeaderName, HeaderValue),
    Append(HeaderName, HeaderValue),
    Remove(HeaderName),
}

/// Header edits that passed [`HeaderEdits::check`]; applying them cannot fail.
#[derive(Debug, Clone, Default)]
pub struct HeaderEdits(Vec<Edit>);

impl HeaderEdits {
    /// Every edit must be valid, touch no gateway-managed header, and `set` or
    /// `append` only headers the component's manifest `produces`.
    pub fn check(edits: Vec<wit::HeaderEdit>, manifest: &Manifest) -> Result<HeaderEdits, String> {
        let mut checked = Vec::with_capacity(edits.len());
        for edit in edits {
            let raw_name = match &edit {
                wit::HeaderEdit::Set(h) | wit::HeaderEdit::Append(h) => &h.name,
                wit::HeaderEdit::Remove(name) => name,
            };
            let name = HeaderName::from_bytes(raw_name.as_bytes()).map_err(|_| format!("edit of an invalid header name {raw_name:?}"))?;
            if gateway_managed(&name) {
                return Err(format!("edit of `{name}`, which only the gateway manages"));
            }
            let value = |v: &str| HeaderValue::from_str(v).map_err(|_| format!("edit with an invalid value for `{name}`"));
            let produced = || match manifest.produces.contains(&name) {
                true => Ok(()),
                false => Err(format!("sets `{name}`, which its manifest does not list in `produces`")),
            };
            checked.push(match edit {
                wit::HeaderEdit::Set(h) => {
                    produced()?;
                    let value = value(&h.value)?;
                    Edit::Set(name, value)
                }
                wit::HeaderEdit::Append(h) => {
                    produced()?;
                    let value = value(&h.value)?;
                    Edit::Append(name, value)
                }
                wit::HeaderEdit::Remove(_) => Edit::Remove(name),
            });
        }
        Ok(HeaderEdits(checked))
    }

    /// Adds `other`'s edits after these.
    pub fn extend(&mut self, other: HeaderEdits) {
        self.0.extend(other.0);
    }

    /// The edits as (`set`/`append`/`remove`, name, value), for `plugin test`'s report.
    pub fn describe(&self) -> Vec<(&'static str, &str, Option<String>)> {
        let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
        self.0
            .iter()
            .map(|edit| match edit {
                Edit::Set(name, value) => ("set", name.as_str(), Some(text(value))),
                Edit::Append(name, value) => ("append", name.as_str(), Some(text(value))),
                Edit::Remove(name) => ("remove", name.as_str(), None),
            })
            .collect()
    }

    /// Applies the edits in order.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        for edit in &self.0 {
            match edit {
                Edit::Set(name, value) => {
                    headers.insert(name.clone(), value.clone());
                }
                Edit::Append(name, value) => {
                    headers.append(name.clone(), value.clone());
                }
                Edit::Remove(name) => {
                    headers.remove(name);
                }
            }
        }
    }
}

/// A component's refusal, checked: the response the client gets.
#[derive(Debug)]
pub struct Denial {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// Longest deny body a component may send.
const MAX_DENY_BODY: usize = 16 * 1024;

impl Denial {
    pub fn check(deny: wit::Deny) -> Result<Denial, String> {
        if !(400..=599).contains(&deny.status) {
            return Err(format!("deny with status {} (must be 400-599)", deny.status));
        }
        let status = StatusCode::from_u16(deny.status).map_err(|_| format!("deny with status {}", deny.status))?;
        if deny.body.len() > MAX_DENY_BODY {
            return Err(format!("deny body of {} bytes (at most 16 KiB)", deny.body.len()));
        }
        let mut headers = HeaderMap::with_capacity(deny.headers.len());
        for h in deny.headers {
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| format!("deny with an invalid header name {:?}", h.name))?;
            if gateway_managed(&name) {
                return Err(format!("deny sets the header `{name}`, which the gateway manages"));
            }
            let value = HeaderValue::from_str(&h.value).map_err(|_| format!("deny with an invalid value for header `{name}`"))?;
            headers.append(name, value);
        }
        Ok(Denial { status, headers, body: deny.body })
    }
}

/// An authenticator's checked verdict.
#[derive(Debug)]
pub enum Verdict {
    Abstain,
    Allow { identity: wit::Identity, edits: HeaderEdits },
    Deny(Denial),
}

impl Verdict {
    pub fn check(verdict: wit::Verdict, manifest: &Manifest) -> Result<Verdict, String> {
        Ok(match verdict {
            wit::Verdict::Abstain => Verdict::Abstain,
            wit::Verdict::Allow(allow) => Verdict::Allow { identity: allow.identity, edits: HeaderEdits::check(allow.edits, manifest)? },
            wit::Verdict::Deny(deny) => Verdict::Deny(Denial::check(deny)?),
        })
    }
}

/// An injector's checked decision.
#[derive(Debug)]
pub enum Injection {
    Forward(HeaderEdits),
    Deny(Denial),
}

impl Injection {
    pub fn check(injection: wit::Injection, manifest: &Manifest) -> Result<Injection, String> {
        Ok(match injection {
            wit::Injection::Forward(edits) => Injection::Forward(HeaderEdits::check(edits, manifest)?),
            wit::Injection::Deny(deny) => Injection::Deny(Denial::check(deny)?),
        })
    }
}

/// An authorizer's checked decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The rule that allowed, for the audit log.
    Allow {
        rule: Option<String>,
    },
    Deny {
        reason: String,
        rule: Option<String>,
    },
    /// Scope tokens (RFC 6749, 3.3), safe to quote in `WWW-Authenticate`.
    StepUp(Vec<String>),
}

/// Longest reason shown to a client, and longest rule id logged.
const MAX_REASON: usize = 1024;
const MAX_RULE: usize = 256;
const MAX_SCOPES: usize = 32;

impl Decision {
    pub fn check(decision: crate::runtime::bindings::authorizer::exports::portcullis::auth::authorize::Decision) -> Result<Decision, String> {
        use crate::runtime::bindings::authorizer::exports::portcullis::auth::authorize::Decision as Wit;
        let rule = |rule: Option<String>| match rule {
            Some(rule) if rule.len() > MAX_RULE || rule.chars().any(char::is_control) => Err("a rule id over 256 bytes or with control characters".to_owned()),
            rule => Ok(rule),
        };
        Ok(match decision {
            Wit::Allow(id) => Decision::Allow { rule: rule(id)? },
            Wit::Deny(denial) => {
                if denial.reason.len() > MAX_REASON || denial.reason.chars().any(char::is_control) {
                    return Err("a deny reason over 1 KiB or with control characters".into());
                }
                Decision::Deny { reason: denial.reason, rule: rule(denial.rule)? }
            }
            Wit::StepUp(scopes) => {
                // Quoted into a header by the gateway: only scope-token characters.
                let token = |s: &String| !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
                if scopes.is_empty() || scopes.len() > MAX_SCOPES || !scopes.iter().all(token) {
                    return Err("a step-up needs 1 to 32 scope tokens (RFC 6749 characters)".into());
                }
                Decision::StepUp(scopes)
            }
        })
    }

    /// The audit label: `allow`, `deny`, `step_up`.
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::Deny { .. } => "deny",
            Decision::StepUp(_) => "step_up",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> wit::Header {
        wit::Header { name: name.into(), value: value.into() }
    }

    fn manifest(produces: &[&str]) -> Manifest {
        Manifest { produces: produces.iter().map(|p| HeaderName::from_bytes(p.as_bytes()).unwrap()).collect(), ..Manifest::default() }
    }

    #[test]
    fn edits_apply_in_order() {
        let mut headers = HeaderMap::new();
        headers.insert("x-key", "secret".parse().unwrap());
        headers.insert("a", "1".parse().unwrap());
        let edits = vec![wit::HeaderEdit::Remove("x-key".into()), wit::HeaderEdit::Set(h("a", "2")), wit::HeaderEdit::Append(h("A", "3"))];
        HeaderEdits::check(edits, &manifest(&["a"])).unwrap().apply(&mut headers);
        assert!(headers.get("x-key").is_none());
        let a: Vec<_> = headers.get_all("a").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(a, ["2", "3"]);
    }

    #[test]
    fn bad_edits_are_refused_whole() {
        let m = manifest(&["a", "x-forwarded-user"]);
        for bad in [
            wit::HeaderEdit::Set(h("host", "evil")),
            wit::HeaderEdit::Set(h("transfer-encoding", "chunked")),
            wit::HeaderEdit::Set(h("x-forwarded-for", "1.2.3.4")),
            wit::HeaderEdit::Remove("x-forwarded-proto".into()),
            wit::HeaderEdit::Append(h("keep-alive", "1")),
            wit::HeaderEdit::Set(h("proxy-authorization", "x")),
            wit::HeaderEdit::Set(h("bad name", "v")),
            wit::HeaderEdit::Set(h("a", "line\nbreak")),
            wit::HeaderEdit::Set(h("x-not-declared", "v")),
        ] {
            assert!(HeaderEdits::check(vec![wit::HeaderEdit::Set(h("a", "ok")), bad.clone()], &m).is_err(), "{bad:?}");
        }
        assert!(HeaderEdits::check(vec![wit::HeaderEdit::Set(h("x-forwarded-user", "alice"))], &m).is_ok(), "oauth2-proxy's identity headers may be produced");
    }

    #[test]
    fn manifests_refuse_gateway_headers() {
        let wit = |consumes: &[&str], forwards: &[&str], produces: &[&str]| wit::Manifest {
            consumes: consumes.iter().map(|s| s.to_string()).collect(),
            forwards: forwards.iter().map(|s| s.to_string()).collect(),
            produces: produces.iter().map(|s| s.to_string()).collect(),
        };
        let ok = Manifest::parse(wit(&["Authorization"], &["authorization"], &["x-user", "X-Forwarded-Email"])).unwrap();
        assert_eq!(ok.consumes, [header::AUTHORIZATION]);
        for bad in
            [wit(&["host"], &[], &[]), wit(&[], &[], &["x-forwarded-for"]), wit(&[], &[], &["connection"]), wit(&[], &["x"], &[]), wit(&["a b"], &[], &[])]
        {
            assert!(Manifest::parse(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn denials_are_checked() {
        let deny = |status, headers: Vec<wit::Header>| wit::Deny { status, headers, body: "{}".into() };
        assert!(Denial::check(deny(401, vec![h("www-authenticate", "Bearer")])).is_ok());
        assert!(Denial::check(deny(200, vec![])).is_err());
        assert!(Denial::check(deny(401, vec![h("content-length", "1")])).is_err());
        assert!(Denial::check(deny(401, vec![h("x", "a\r\nb")])).is_err());
    }
}
