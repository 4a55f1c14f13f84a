//! Query strings and form bodies, parsed strictly: a parameter sent twice is
//! refused (RFC 6749 §3.1, §3.2: "MUST NOT be included more than once"), since
//! which copy counts would be a guess; a parameter without a value counts as
//! absent (RFC 6749 §3.1).

use std::collections::HashMap;

/// The parameters of one request.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

/// Why the parameters were refused (the message names the parameter, never a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError(pub String);

impl Params {
    /// `a=1&b=2` (no `?`), percent- and `+`-decoded.
    pub fn parse(encoded: &[u8]) -> Result<Params, FormError> {
        let mut seen = HashMap::new();
        for (name, value) in form_urlencoded::parse(encoded) {
            if name.contains('\u{FFFD}') || value.contains('\u{FFFD}') {
                return Err(FormError("a parameter is not UTF-8".into()));
            }
            if seen.insert(name.to_string(), value.to_string()).is_some() {
                return Err(FormError(format!("the parameter `{name}` was sent more than once")));
            }
        }
        seen.retain(|_, value| !value.is_empty());
        Ok(Params(seen))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter the request needs.
    pub fn require(&self, name: &str) -> Result<&str, FormError> {
        self.get(name).ok_or_else(|| FormError(format!("the parameter `{name}` is missing")))
    }
}

/// Whether a `content-type` value is `media_type` (any parameters, any case).
pub fn is_media_type(content_type: &str, media_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case(media_type))
}

/// `name=value&...`, encoded: for redirects.
pub fn encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_and_empty_values_absent() {
        let p = Params::parse(b"grant_type=authorization_code&code=a%2Bb+c&scope=&x").unwrap();
        assert_eq!(p.get("grant_type"), Some("authorization_code"));
        assert_eq!(p.get("code"), Some("a+b c"));
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("x"), None);
        assert!(p.require("scope").unwrap_err().0.contains("`scope` is missing"));

        let e = Params::parse(b"code=a&code=b").unwrap_err();
        assert_eq!(e.0, "the parameter `code` was sent more than once");
        assert!(Params::parse(b"code=&code=b").is_err(), "an empty copy still counts as a second one");
        assert!(Params::parse(b"c%6Fde=a&code=b").is_err(), "the same name, encoded differently");
        assert!(Params::parse(b"code=%FF").is_err());
        assert!(Params::parse(b"").unwrap().get("a").is_none());
    }

    #[test]
    fn media_types() {
        assert!(is_media_type("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"));
        assert!(is_media_type("Application/X-WWW-Form-Urlencoded; charset=UTF-8", "application/x-www-form-urlencoded"));
        assert!(!is_media_type("application/json", "application/x-www-form-urlencoded"));
        assert!(!is_media_type("application/x-www-form-urlencodedx", "application/x-www-form-urlencoded"));
        assert_eq!(encode([("a", "b c"), ("s", "x&y=z")]), "a=b+c&s=x%26y%3Dz");
    }
}
