//! The browser side of a login (authorization code with PKCE, RFC 6749 §4.1,
//! RFC 7636): the authorization request's URL, and the checks on the callback.

use crate::config::OAuth;
use crate::text::printable;
use crate::uri;
use portcullis_plugin::constant_time_eq;

/// A login between `begin_login` and `finish_login`, kept in the instance
/// (the gateway calls both on the same one). Used once.
pub struct Pending {
    pub state: String,
    pub verifier: String,
    pub redirect_uri: String,
    pub token_endpoint: String,
    /// The provider advertises RFC 9207: the callback must carry `iss`.
    pub iss_required: bool,
}

/// Never prints the verifier or the state.
impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("redirect_uri", &self.redirect_uri).field("token_endpoint", &self.token_endpoint).finish_non_exhaustive()
    }
}

/// The redirect URI must be the login command's loopback listener (RFC 8252
/// §7.3): a code sent anywhere else would leave this machine.
pub fn check_redirect_uri(redirect_uri: &str) -> Result<(), String> {
    match uri::parts(redirect_uri) {
        Some(parts) if parts.is_local_http() && !parts.has_fragment => Ok(()),
        _ => Err(format!("the redirect URI {:?} is not a loopback http URL", printable(redirect_uri, 200))),
    }
}

/// The authorization request: `endpoint` with the request's parameters added
/// to whatever query it already has.
pub fn authorize_url(endpoint: &str, oauth: &OAuth, redirect_uri: &str, state: &str, challenge: &str) -> String {
    let mut url = endpoint.to_owned();
    let start = match url.find('?') {
        Some(at) => {
            // `?a=1&` and `?`: no empty pair before ours.
            while url.ends_with('&') {
                url.pop();
            }
            at + 1
        }
        None => {
            url.push('?');
            url.len()
        }
    };
    let mut query = form_urlencoded::Serializer::for_suffix(url, start);
    query.append_pair("response_type", "code").append_pair("client_id", &oauth.client_id).append_pair("redirect_uri", redirect_uri);
    if !oauth.scopes.is_empty() {
        query.append_pair("scope", &oauth.scopes.join(" "));
    }
    query.append_pair("state", state).append_pair("code_challenge", challenge).append_pair("code_challenge_method", "S256");
    if let Some(resource) = &oauth.resource {
        query.append_pair("resource", resource);
    }
    if let Some(audience) = &oauth.audience {
        query.append_pair("audience", audience);
    }
    query.finish()
}

/// The authorization code from the callback's query, after the checks: no
/// error from the provider, the `state` this login sent (otherwise the
/// callback may be a cross-site request forgery), the issuer when the
/// provider names one (RFC 9207, against mix-up; required when the provider
/// advertises that it sends it), and each parameter once.
pub fn code_from_callback(query: &str, expected_state: &str, issuer: &str, iss_required: bool) -> Result<String, String> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if params.iter().any(|(seen, _)| *seen == name) {
            return Err(format!("the callback carries `{}` more than once", printable(&name, 40)));
        }
        params.push((name.into_owned(), value.into_owned()));
    }
    let param = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if let Some(error) = param("error") {
        let description = param("error_description").map(|d| printable(d, 200)).filter(|d| !d.is_empty());
        let error = printable(error, 64);
        return Err(match description {
            Some(description) => format!("the identity provider refused the login: {error} ({description})"),
            None => format!("the identity provider refused the login: {error}"),
        });
    }
    let state = param("state").ok_or("the callback has no `state`; it may be a cross-site request forgery, so the login is abandoned")?;
    if !constant_time_eq(state.as_bytes(), expected_state.as_bytes()) {
        return Err("the callback's `state` does not match this login's; it may be a cross-site request forgery, so the login is abandoned".into());
    }
    match param("iss") {
        Some(iss) if iss != issuer => return Err(format!("the callback comes from the issuer {:?}, not {issuer:?}", printable(iss, 200))),
        Some(_) => {}
        // RFC 9207 §2.4: a client that knows the provider sends `iss` refuses a
        // response without it; it may come from another provider (a mix-up).
        None if iss_required => {
            return Err("the callback has no `iss`, which this identity provider says it always sends (RFC 9207); \
                        it may come from another provider, so the login is abandoned"
                .into());
        }
        None => {}
    }
    match param("code") {
        Some(code) if !code.is_empty() => Ok(code.to_owned()),
        _ => Err("the callback has no authorization `code`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth() -> OAuth {
        OAuth {
            issuer: "https://idp.example.com".into(),
            issuer_is_local: false,
            client_id: "portcullis cli".into(),
            scopes: vec!["openid".into(), "offline_access".into()],
            audience: None,
            resource: None,
        }
    }

    fn query_of(url: &str) -> Vec<(String, String)> {
        let query = url.split_once('?').unwrap().1;
        form_urlencoded::parse(query.as_bytes()).into_owned().collect()
    }

    #[test]
    fn the_authorization_request() {
        let url = authorize_url("https://idp.example.com/authorize", &oauth(), "http://127.0.0.1:8666/callback", "st&te", "E9Mel");
        assert_eq!(
            url,
            "https://idp.example.com/authorize?response_type=code&client_id=portcullis+cli&redirect_uri=http%3A%2F%2F127.0.0.1%3A8666%2Fcallback\
             &scope=openid+offline_access&state=st%26te&code_challenge=E9Mel&code_challenge_method=S256"
        );
    }

    #[test]
    fn resource_audience_and_an_existing_query() {
        let mut oauth = oauth();
        oauth.resource = Some("https://registry.example.com/api".into());
        oauth.audience = Some("api://my-registry".into());
        oauth.scopes = vec![];
        for endpoint in ["https://idp.example.com/authorize?tenant=a", "https://idp.example.com/authorize?tenant=a&"] {
            let url = authorize_url(endpoint, &oauth, "http://localhost:8666/cb", "s", "c");
            assert!(url.starts_with("https://idp.example.com/authorize?tenant=a&response_type=code&"), "{url}");
            let params = query_of(&url);
            let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
            assert_eq!(get("resource"), Some("https://registry.example.com/api"));
            assert_eq!(get("audience"), Some("api://my-registry"));
            assert_eq!(get("scope"), None, "no scopes: no `scope`");
            assert_eq!(params.len(), 9);
        }
        let url = authorize_url("https://idp.example.com/authorize?", &oauth, "http://localhost/cb", "s", "c");
        assert!(url.starts_with("https://idp.example.com/authorize?response_type=code&"), "{url}");
    }

    #[test]
    fn redirect_uris_stay_on_this_machine() {
        assert!(check_redirect_uri("http://127.0.0.1:8666/callback").is_ok());
        assert!(check_redirect_uri("http://localhost:8666/callback").is_ok());
        assert!(check_redirect_uri("http://[::1]:8666/callback").is_ok());
        for bad in ["https://evil.example.com/cb", "http://192.168.1.2:8666/", "http://127.0.0.1:8666/cb#x", "custom:/cb", ""] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_good_callback() {
        assert_eq!(code_from_callback("code=abc%2B1&state=s1", "s1", "https://idp", false).unwrap(), "abc+1");
        assert_eq!(code_from_callback("state=s1&code=abc&iss=https%3A%2F%2Fidp&session_state=x", "s1", "https://idp", false).unwrap(), "abc");
    }

    #[test]
    fn iss_is_required_when_the_provider_says_it_sends_it() {
        assert!(code_from_callback("code=abc&state=s1", "s1", "https://idp", true).unwrap_err().contains("no `iss`"));
        assert_eq!(code_from_callback("code=abc&state=s1&iss=https%3A%2F%2Fidp", "s1", "https://idp", true).unwrap(), "abc");
        assert!(code_from_callback("code=abc&state=s1&iss=", "s1", "https://idp", true).is_err(), "an empty iss is not the issuer");
        assert!(code_from_callback("code=abc&state=s1&iss=https%3A%2F%2Fidp&iss=https%3A%2F%2Fidp", "s1", "https://idp", true).is_err());
    }

    #[test]
    fn refused_callbacks() {
        let error = code_from_callback("error=access_denied&error_description=The+user+said+no%0D%0Aforged&state=s1", "s1", "https://idp", false).unwrap_err();
        assert_eq!(error, "the identity provider refused the login: access_denied (The user said noforged)");
        let long = format!("error=x&error_description={}", "y".repeat(500));
        assert!(code_from_callback(&long, "s1", "https://idp", false).unwrap_err().len() < 300);
        assert_eq!(
            code_from_callback("error=access_denied", "s1", "https://idp", false).unwrap_err(),
            "the identity provider refused the login: access_denied"
        );

        assert!(code_from_callback("code=abc", "s1", "https://idp", false).unwrap_err().contains("cross-site request forgery"));
        assert!(code_from_callback("code=abc&state=s2", "s1", "https://idp", false).unwrap_err().contains("does not match"));
        assert!(code_from_callback("code=abc&state=", "s1", "https://idp", false).unwrap_err().contains("cross-site request forgery"));
        assert!(code_from_callback("state=s1", "s1", "https://idp", false).unwrap_err().contains("no authorization `code`"));
        assert!(code_from_callback("state=s1&code=", "s1", "https://idp", false).unwrap_err().contains("no authorization `code`"));
        assert!(code_from_callback("code=a&state=s1&code=b", "s1", "https://idp", false).unwrap_err().contains("more than once"));
        assert!(code_from_callback("code=a&state=s1&state=s1", "s1", "https://idp", false).unwrap_err().contains("more than once"));
        assert!(code_from_callback("code=a&state=s1&iss=https%3A%2F%2Fevil", "s1", "https://idp", false).unwrap_err().contains("evil"));
    }
}
