//! Verdict builders: `allow(subject)`, `deny(status)`, `abstain()`, and for
//! injectors `forward()`.

use crate::__private::wit;

/// What an authenticator decided (WIT `types.verdict`).
#[derive(Debug, Clone)]
pub enum Verdict {
    /// No credential of mine on this request: the next component decides.
    Abstain,
    Allow(Allow),
    Deny(Deny),
}

/// What an injector does to a request on its way upstream (WIT `types.injection`).
#[derive(Debug, Clone)]
pub enum Injection {
    Forward(Forward),
    /// Answer the client instead of forwarding (e.g. 401 before a login).
    Deny(Deny),
}

/// "There is no credential of mine on this request": the next component decides.
pub fn abstain() -> Verdict {
    Verdict::Abstain
}

/// Admits the request as `subject` (a stable, non-secret identifier such as a
/// JWT `sub`). Add header edits toward the upstream with the builder's methods.
pub fn allow(subject: impl Into<String>) -> Allow {
    Allow { subject: subject.into(), issuer: None, claims_json: None, edits: Edits::default() }
}

/// Refuses the request with `status` (401: no or bad credential; 403: a valid
/// credential that is not enough; 503: the component cannot decide now).
pub fn deny(status: u16) -> Deny {
    Deny { status, headers: Vec::new(), body: String::new() }
}

/// Forwards the request upstream; add the credential with `set_header`.
pub fn forward() -> Forward {
    Forward { edits: Edits::default() }
}

/// Header edits toward the upstream, applied by the gateway in order. Only
/// headers the manifest `produces` may be set or appended.
#[derive(Debug, Clone, Default)]
struct Edits(Vec<wit::HeaderEdit>);

/// The header-edit methods of [`Allow`] and [`Forward`] (both have `edits`).
macro_rules! edit_methods {
    () => {
        /// Replaces every field named `name` toward the upstream.
        pub fn set_header(mut self, name: &str, value: impl Into<String>) -> Self {
            let header = wit::Header { name: name.to_ascii_lowercase(), value: value.into() };
            self.edits.0.push(wit::HeaderEdit::Set(header));
            self
        }

        /// Adds a field, keeping existing ones.
        pub fn append_header(mut self, name: &str, value: impl Into<String>) -> Self {
            let header = wit::Header { name: name.to_ascii_lowercase(), value: value.into() };
            self.edits.0.push(wit::HeaderEdit::Append(header));
            self
        }

        /// Removes every field named `name` toward the upstream.
        pub fn remove_header(mut self, name: &str) -> Self {
            self.edits.0.push(wit::HeaderEdit::Remove(name.to_ascii_lowercase()));
            self
        }
    };
}

/// An allow decision being built; see [`allow`].
#[derive(Debug, Clone)]
pub struct Allow {
    subject: String,
    issuer: Option<String>,
    claims_json: Option<String>,
    edits: Edits,
}

impl Allow {
    /// Who vouches for the subject, e.g. a JWT `iss`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Further facts for logs and later components (a JSON object). Never credentials.
    pub fn claims(mut self, claims: &serde_json::Value) -> Self {
        self.claims_json = Some(claims.to_string());
        self
    }

    /// Like [`Allow::claims`], for a JSON object already serialised.
    pub fn claims_json(mut self, json: impl Into<String>) -> Self {
        self.claims_json = Some(json.into());
        self
    }

    edit_methods!();
}

/// A refusal being built; see [`deny`]. The body defaults to a JSON object
/// naming the status when none is given.
#[derive(Debug, Clone)]
pub struct Deny {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Deny {
    /// Adds a response header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Adds a `WWW-Authenticate` challenge, e.g. `Bearer realm="api"`.
    pub fn challenge(self, challenge: impl Into<String>) -> Self {
        self.header("www-authenticate", challenge)
    }

    /// A JSON body `{"error": error, "message": message}`: a machine-readable
    /// code and a sentence for a person (say what to do, never a secret).
    pub fn error(self, error: &str, message: &str) -> Self {
        self.json(&serde_json::json!({ "error": error, "message": message }))
    }

    /// A JSON body of your own shape.
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.headers.retain(|(name, _)| name != "content-type");
        self.headers.push(("content-type".into(), "application/json".into()));
        self.body = body.to_string();
        self
    }

    /// A plain-text body.
    pub fn text(mut self, body: impl Into<String>) -> Self {
        self.headers.retain(|(name, _)| name != "content-type");
        self.headers.push(("content-type".into(), "text/plain; charset=utf-8".into()));
        self.body = body.into();
        self
    }

    fn into_wit(mut self) -> wit::Deny {
        if self.body.is_empty() {
            let status = self.status;
            self = self.json(&serde_json::json!({ "error": "denied", "status": status }));
        }
        let headers = self.headers.into_iter().map(|(name, value)| wit::Header { name, value }).collect();
        wit::Deny { status: self.status, headers, body: self.body }
    }
}

/// A forward being built; see [`forward`].
#[derive(Debug, Clone)]
pub struct Forward {
    edits: Edits,
}

impl Forward {
    edit_methods!();
}

impl From<Allow> for Verdict {
    fn from(allow: Allow) -> Self {
        Verdict::Allow(allow)
    }
}

impl From<Deny> for Verdict {
    fn from(deny: Deny) -> Self {
        Verdict::Deny(deny)
    }
}

impl From<Forward> for Injection {
    fn from(forward: Forward) -> Self {
        Injection::Forward(forward)
    }
}

impl From<Deny> for Injection {
    fn from(deny: Deny) -> Self {
        Injection::Deny(deny)
    }
}

impl Verdict {
    pub(crate) fn into_wit(self) -> wit::Verdict {
        match self {
            Verdict::Abstain => wit::Verdict::Abstain,
            Verdict::Allow(a) => wit::Verdict::Allow(wit::Allow {
                identity: wit::Identity { subject: a.subject, issuer: a.issuer, claims_json: a.claims_json },
                edits: a.edits.0,
            }),
            Verdict::Deny(d) => wit::Verdict::Deny(d.into_wit()),
        }
    }
}

impl Injection {
    pub(crate) fn into_wit(self) -> wit::Injection {
        match self {
            Injection::Forward(f) => wit::Injection::Forward(f.edits.0),
            Injection::Deny(d) => wit::Injection::Deny(d.into_wit()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_make_the_contract_records() {
        let wit::Verdict::Allow(a) = allow("alice").issuer("https://idp").set_header("X-User", "alice").remove_header("X-Old").into_wit_verdict() else {
            panic!("not an allow")
        };
        assert_eq!(a.identity.subject, "alice");
        assert_eq!(a.identity.issuer.as_deref(), Some("https://idp"));
        assert!(matches!(&a.edits[..], [wit::HeaderEdit::Set(h), wit::HeaderEdit::Remove(r)] if h.name == "x-user" && r == "x-old"));

        let wit::Verdict::Deny(d) = deny(401).challenge("Bearer").error("invalid_key", "Wrong.").into_wit_verdict() else { panic!("not a deny") };
        assert_eq!(d.status, 401);
        assert_eq!(d.body, r#"{"error":"invalid_key","message":"Wrong."}"#);
        let names: Vec<_> = d.headers.iter().map(|h| (h.name.as_str(), h.value.as_str())).collect();
        assert_eq!(names, [("www-authenticate", "Bearer"), ("content-type", "application/json")]);

        // A deny without a body still tells the client something, as JSON.
        let wit::Verdict::Deny(d) = deny(403).into_wit_verdict() else { panic!("not a deny") };
        assert_eq!(d.body, r#"{"error":"denied","status":403}"#);
        assert!(matches!(abstain().into_wit(), wit::Verdict::Abstain));
    }

    trait IntoWitVerdict {
        fn into_wit_verdict(self) -> wit::Verdict;
    }

    impl<T: Into<Verdict>> IntoWitVerdict for T {
        fn into_wit_verdict(self) -> wit::Verdict {
            self.into().into_wit()
        }
    }
}
