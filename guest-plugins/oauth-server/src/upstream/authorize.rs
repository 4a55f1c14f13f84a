//! The authorization request toward the upstream provider (RFC 6749 §4.1.1,
//! RFC 7636 §4.3, OpenID Connect Core §3.1.2.1): this server's own `state`,
//! PKCE S256 challenge and, for OpenID Connect, `nonce`.

/// What goes into one authorization request.
pub struct Request<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    pub state: &'a str,
    pub challenge: &'a str,
    /// OpenID Connect only.
    pub nonce: Option<&'a str>,
}

/// `endpoint` with the request's parameters added to whatever query it
/// already has (some providers put a tenant there).
pub fn url(endpoint: &str, request: &Request) -> String {
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
    query.append_pair("response_type", "code").append_pair("client_id", request.client_id).append_pair("redirect_uri", request.redirect_uri);
    if !request.scopes.is_empty() {
        query.append_pair("scope", &request.scopes.join(" "));
    }
    query.append_pair("state", request.state).append_pair("code_challenge", request.challenge).append_pair("code_challenge_method", "S256");
    if let Some(nonce) = request.nonce {
        query.append_pair("nonce", nonce);
    }
    query.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkce::challenge as pkce_challenge;

    fn params(url: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes()).into_owned().collect()
    }

    #[test]
    fn an_oidc_request() {
        let scopes = vec!["openid".to_owned(), "email".to_owned()];
        let challenge = pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let request = Request {
            client_id: "portcullis gw",
            redirect_uri: "https://gw.example.com/oauth/callback",
            scopes: &scopes,
            state: "st&te=1",
            challenge: &challenge,
            nonce: Some("n+1"),
        };
        assert_eq!(
            url("https://idp.example.com/authorize", &request),
            "https://idp.example.com/authorize?response_type=code&client_id=portcullis+gw\
             &redirect_uri=https%3A%2F%2Fgw.example.com%2Foauth%2Fcallback&scope=openid+email&state=st%26te%3D1\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&nonce=n%2B1"
        );
    }

    #[test]
    fn an_existing_query_and_no_scope_or_nonce() {
        let request = Request { client_id: "c", redirect_uri: "http://127.0.0.1:8080/oauth/callback", scopes: &[], state: "s", challenge: "c", nonce: None };
        for endpoint in ["https://idp/authorize?tenant=a", "https://idp/authorize?tenant=a&"] {
            let url = url(endpoint, &request);
            assert!(url.starts_with("https://idp/authorize?tenant=a&response_type=code&"), "{url}");
            let params = params(&url);
            assert!(!params.iter().any(|(n, _)| n == "scope" || n == "nonce"));
            assert_eq!(params.len(), 7);
        }
        assert!(url("https://idp/authorize?", &request).starts_with("https://idp/authorize?response_type=code&"));
    }
}
