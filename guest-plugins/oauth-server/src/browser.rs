//! The browser a login belongs to. `/oauth/authorize` gives the browser a
//! cookie with a fresh secret, named for the authorization request, and
//! keeps only the secret's hash with the request. The consent form and the
//! callback from the identity provider complete the request only in a browser
//! that sends that cookie back: a login started in one browser (an
//! attacker's) cannot be finished by a person in another (the victim's, who
//! followed a link to the provider and is already logged in there).
//!
//! The cookie is `HttpOnly`, `SameSite=Lax` (sent on the provider's
//! top-level redirect to the callback, never on another site's form post),
//! `__Host-` and `Secure` on an https issuer, and lives as long as the login.

use crate::random;
use portcullis_plugin::{Request, constant_time_eq};

/// A new binding: the secret for the cookie, and the hash kept with the request.
pub struct Binding {
    pub secret: String,
    pub hash: String,
}

impl Binding {
    pub fn new() -> Result<Binding, String> {
        let secret = random::value()?;
        Ok(Binding { hash: random::hash(&secret), secret })
    }
}

/// The cookie's name for the request `pending_id`: one per request, so that
/// two logins in one browser (two clients, two tabs) do not undo each other.
fn name(issuer: &str, pending_id: &str) -> String {
    let prefix = if is_https(issuer) { "__Host-" } else { "" };
    format!("{prefix}portcullis-login-{pending_id}")
}

fn is_https(issuer: &str) -> bool {
    issuer.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// The `Set-Cookie` value that binds `pending_id` to this browser for `ttl` seconds.
pub fn set_cookie(issuer: &str, pending_id: &str, secret: &str, ttl: u32) -> String {
    let secure = if is_https(issuer) { "; Secure" } else { "" };
    format!("{}={secret}; Path=/; Max-Age={ttl}; HttpOnly; SameSite=Lax{secure}", name(issuer, pending_id))
}

/// The `Set-Cookie` value that removes the binding (the login is over).
pub fn clear_cookie(issuer: &str, pending_id: &str) -> String {
    let secure = if is_https(issuer) { "; Secure" } else { "" };
    format!("{}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax{secure}", name(issuer, pending_id))
}

/// Whether `request` comes from the browser bound to `pending_id` (whose
/// secret hashes to `hash`). A cookie sent twice is no proof: which copy
/// counts would be a guess, and a second one may be planted.
pub fn is_bound(request: &Request, issuer: &str, pending_id: &str, hash: &str) -> bool {
    matches(&request.header("cookie"), &name(issuer, pending_id), hash)
}

fn matches(cookie_headers: &[String], name: &str, hash: &str) -> bool {
    let mut found: Option<&str> = None;
    for pair in cookie_headers.iter().flat_map(|h| h.split(';')) {
        let Some((n, value)) = pair.trim().split_once('=') else { continue };
        if n == name {
            if found.is_some() {
                return false;
            }
            found = Some(value);
        }
    }
    // An empty hash (a request stored before bindings existed) binds nothing.
    found.is_some_and(|secret| !hash.is_empty() && constant_time_eq(random::hash(secret).as_bytes(), hash.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_by_scheme() {
        let set = set_cookie("https://gw.example", "p1", "s3cret", 600);
        assert_eq!(set, "__Host-portcullis-login-p1=s3cret; Path=/; Max-Age=600; HttpOnly; SameSite=Lax; Secure");
        let set = set_cookie("http://127.0.0.1:8080", "p1", "s3cret", 600);
        assert_eq!(set, "portcullis-login-p1=s3cret; Path=/; Max-Age=600; HttpOnly; SameSite=Lax");
        assert!(clear_cookie("https://gw.example", "p1").starts_with("__Host-portcullis-login-p1=; Path=/; Max-Age=0;"));
    }

    #[test]
    fn only_the_bound_browser_matches() {
        let binding = Binding::new().unwrap();
        let name = "portcullis-login-p1";
        let header = |s: &str| vec![s.to_owned()];
        assert!(matches(&header(&format!("a=b; {name}={}; c=d", binding.secret)), name, &binding.hash));
        assert!(matches(&["a=b".into(), format!("{name}={}", binding.secret)], name, &binding.hash), "HTTP/2 sends cookies apart");
        assert!(!matches(&header(&format!("{name}=other")), name, &binding.hash), "another secret");
        assert!(!matches(&header(&format!("portcullis-login-p2={}", binding.secret)), name, &binding.hash), "another request's cookie");
        assert!(!matches(&header("a=b"), name, &binding.hash), "no cookie");
        assert!(!matches(&[], name, &binding.hash));
        let twice = format!("{name}={0}; {name}={0}", binding.secret);
        assert!(!matches(&header(&twice), name, &binding.hash), "sent twice");
        assert!(!matches(&header(&format!("{name}={}", binding.secret)), name, ""), "an unbound request");
    }
}
