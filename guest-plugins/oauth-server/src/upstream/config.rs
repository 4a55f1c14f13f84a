//! The checks on `[[workloads.server.config.upstreams]]`, done once at load:
//! what passes is a [`Provider`] every later step can trust.

use super::UpstreamConfig;
use crate::upstream::text::printable;
use portcullis_contract::names::{NAME_RULE, is_valid_name};
use portcullis_contract::net::{has_user_info, is_loopback_host, is_secure_or_loopback};

/// A checked upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    pub client_id: String,
    /// The name of the client secret in the secret store (never its value);
    /// `None`: a public client, PKCE alone.
    pub client_secret_secret: Option<String>,
    pub scopes: Vec<String>,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// OpenID Connect: endpoints and keys from discovery; the subject is a
    /// claim of the verified ID token (`sub` unless configured).
    Oidc { issuer: String, issuer_is_local: bool, subject_claim: Vec<String> },
    /// OAuth 2 with explicit endpoints. The subject is the claim path in the
    /// userinfo document when there is a userinfo endpoint (`sub` unless
    /// configured), in the token response otherwise.
    OAuth2 { authorization_endpoint: String, token_endpoint: String, userinfo_endpoint: Option<String>, subject_claim: Vec<String> },
}

/// Fields of a token response that hold tokens: a subject is never read from them.
const TOKEN_FIELDS: [&str; 3] = ["access_token", "refresh_token", "id_token"];

pub fn check_all(list: Vec<UpstreamConfig>) -> Result<Vec<Provider>, String> {
    if list.is_empty() {
        return Err("`upstreams` is empty: at least one upstream identity provider is needed, the first is where users log in".into());
    }
    let mut out: Vec<Provider> = Vec::with_capacity(list.len());
    for (index, config) in list.into_iter().enumerate() {
        let name = config.name.clone();
        let provider = check(config).map_err(|why| format!("upstreams[{index}] ({:?}): {why}", printable(&name, 64)))?;
        if out.iter().any(|p| p.name == provider.name) {
            return Err(format!("upstreams[{index}]: the name {:?} is used twice; each upstream needs its own", provider.name));
        }
        out.push(provider);
    }
    Ok(out)
}

fn check(config: UpstreamConfig) -> Result<Provider, String> {
    if !is_valid_name(&config.name) {
        return Err(format!("`name` must be {NAME_RULE}"));
    }
    if config.client_id.is_empty() || config.client_id.chars().any(char::is_control) {
        return Err("`client_id` must be a non-empty text without control characters".into());
    }
    if config.client_secret_secret.as_deref().is_some_and(str::is_empty) {
        return Err("`client_secret_secret` is empty: name the secret, or leave it out for a public client".into());
    }
    for scope in &config.scopes {
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
        if scope.is_empty() || !scope.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)) {
            return Err(format!("the scope {:?} is not an OAuth scope token (no spaces, quotes or backslashes)", printable(scope, 64)));
        }
    }
    let subject_claim = match &config.subject_claim {
        Some(path) => claim_path(path)?,
        None => vec!["sub".to_owned()],
    };
    let explicit = [&config.authorization_endpoint, &config.token_endpoint, &config.userinfo_endpoint];
    let kind = match &config.issuer {
        Some(issuer) => {
            if explicit.iter().any(|e| e.is_some()) {
                return Err("give either `issuer` (OpenID Connect with discovery) or the explicit endpoints (OAuth 2), not both".into());
            }
            let issuer_is_local = check_url("issuer", issuer)?;
            if issuer.contains('?') {
                return Err("the `issuer` has a query; an issuer identifier has none (OpenID Connect Discovery §2)".into());
            }
            Kind::Oidc { issuer: issuer.clone(), issuer_is_local, subject_claim }
        }
        None => {
            let (Some(authorization_endpoint), Some(token_endpoint)) = (&config.authorization_endpoint, &config.token_endpoint) else {
                return Err("give `issuer` (OpenID Connect with discovery), or `authorization_endpoint` and `token_endpoint` (OAuth 2)".into());
            };
            check_url("authorization_endpoint", authorization_endpoint)?;
            check_url("token_endpoint", token_endpoint)?;
            if let Some(userinfo) = &config.userinfo_endpoint {
                check_url("userinfo_endpoint", userinfo)?;
            } else if config.subject_claim.is_none() {
                return Err("an OAuth 2 upstream needs `userinfo_endpoint` or `subject_claim` (the claim path of the user's id in the token response)".into());
            } else if TOKEN_FIELDS.contains(&subject_claim[0].as_str()) {
                return Err(format!("`subject_claim` points into `{}`, a token; a subject must not be a token", subject_claim[0]));
            }
            Kind::OAuth2 {
                authorization_endpoint: authorization_endpoint.clone(),
                token_endpoint: token_endpoint.clone(),
                userinfo_endpoint: config.userinfo_endpoint.clone(),
                subject_claim,
            }
        }
    };
    let mut scopes = config.scopes;
    if matches!(kind, Kind::Oidc { .. }) {
        if scopes.is_empty() {
            scopes.push("openid".into());
        } else if !scopes.iter().any(|s| s == "openid") {
            return Err("an OpenID Connect upstream's `scopes` must include `openid` (without it there is no ID token)".into());
        }
    }
    Ok(Provider { name: config.name, client_id: config.client_id, client_secret_secret: config.client_secret_secret, scopes, kind })
}

/// `a.b.c` as its segments; each must be non-empty.
fn claim_path(path: &str) -> Result<Vec<String>, String> {
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if segments.iter().any(|s| s.is_empty() || s.chars().any(|c| c.is_control() || c.is_whitespace())) {
        return Err(format!("`subject_claim` {:?} is not a claim path (names separated by `.`, e.g. `sub` or `user.id`)", printable(path, 64)));
    }
    Ok(segments)
}

/// Checks a URL that will receive codes, secrets or tokens: `https`, or
/// `http` on loopback (a provider on this machine, for development); no user
/// information, no fragment, written as the parser reads it. Whether it is
/// loopback `http`.
pub fn check_url(what: &str, text: &str) -> Result<bool, String> {
    let shown = || printable(text, 200);
    let plain = !text.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        && text.split_once(':').is_some_and(|(_, rest)| rest.starts_with("//") && !rest.starts_with("///"));
    let url = url::Url::parse(text).ok().filter(|_| plain).ok_or_else(|| format!("`{what}` {:?} is not an absolute http(s) URL", shown()))?;
    if has_user_info(url.username(), url.password()) {
        return Err(format!("`{what}` {:?} carries user information; credentials do not belong in a URL", shown()));
    }
    if url.fragment().is_some() {
        return Err(format!("`{what}` {:?} has a fragment", shown()));
    }
    if !is_secure_or_loopback(url.scheme(), url.host_str()) {
        return Err(format!("`{what}` {:?} must use https (plain http only on loopback, for development)", shown()));
    }
    Ok(url.scheme() == "http" && url.host_str().is_some_and(is_loopback_host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc(name: &str) -> UpstreamConfig {
        UpstreamConfig {
            name: name.into(),
            issuer: Some("https://idp.example.com".into()),
            authorization_endpoint: None,
            token_endpoint: None,
            userinfo_endpoint: None,
            subject_claim: None,
            client_id: "portcullis".into(),
            client_secret_secret: None,
            scopes: vec!["openid".into(), "email".into()],
        }
    }

    fn oauth2() -> UpstreamConfig {
        UpstreamConfig {
            issuer: None,
            authorization_endpoint: Some("https://github.com/login/oauth/authorize".into()),
            token_endpoint: Some("https://github.com/login/oauth/access_token".into()),
            userinfo_endpoint: Some("https://api.github.com/user".into()),
            subject_claim: Some("id".into()),
            scopes: vec!["read:user".into()],
            ..oidc("github")
        }
    }

    fn error(list: Vec<UpstreamConfig>) -> String {
        check_all(list).unwrap_err()
    }

    #[test]
    fn good_upstreams() {
        let providers = check_all(vec![oidc("corp"), oauth2()]).unwrap();
        assert_eq!(providers[0].kind, Kind::Oidc { issuer: "https://idp.example.com".into(), issuer_is_local: false, subject_claim: vec!["sub".into()] });
        assert!(matches!(&providers[1].kind, Kind::OAuth2 { subject_claim, .. } if subject_claim == &["id"]));
        let local = UpstreamConfig { issuer: Some("http://127.0.0.1:9000/realms/x".into()), scopes: vec![], ..oidc("dev") };
        let providers = check_all(vec![local]).unwrap();
        assert!(matches!(&providers[0].kind, Kind::Oidc { issuer_is_local: true, .. }));
        assert_eq!(providers[0].scopes, ["openid"], "openid by default");
        let slack = UpstreamConfig { userinfo_endpoint: None, subject_claim: Some("authed_user.id".into()), ..oauth2() };
        assert!(
            matches!(&check_all(vec![slack]).unwrap()[0].kind, Kind::OAuth2 { subject_claim, userinfo_endpoint: None, .. } if subject_claim == &["authed_user", "id"])
        );
    }

    #[test]
    fn names() {
        assert!(error(vec![]).contains("empty"));
        assert!(error(vec![oidc("corp"), oidc("corp")]).contains("used twice"));
        assert!(error(vec![oidc("")]).contains("`name`"));
        assert!(error(vec![oidc("Corp")]).contains("`name`"));
        assert!(error(vec![oidc("a:b")]).contains("`name`"), "names go into store keys");
    }

    #[test]
    fn one_form_or_the_other() {
        let both = UpstreamConfig { token_endpoint: Some("https://idp.example.com/token".into()), ..oidc("corp") };
        assert!(error(vec![both]).contains("not both"));
        let userinfo = UpstreamConfig { userinfo_endpoint: Some("https://idp.example.com/me".into()), ..oidc("corp") };
        assert!(error(vec![userinfo]).contains("not both"));
        let neither = UpstreamConfig { authorization_endpoint: None, ..oauth2() };
        assert!(error(vec![neither]).contains("`token_endpoint` (OAuth 2)"));
        let no_subject = UpstreamConfig { userinfo_endpoint: None, subject_claim: None, ..oauth2() };
        assert!(error(vec![no_subject]).contains("`userinfo_endpoint` or `subject_claim`"));
        let token_subject = UpstreamConfig { userinfo_endpoint: None, subject_claim: Some("access_token".into()), ..oauth2() };
        assert!(error(vec![token_subject]).contains("must not be a token"));
        let bad_path = UpstreamConfig { subject_claim: Some("user..id".into()), ..oauth2() };
        assert!(error(vec![bad_path]).contains("not a claim path"));
    }

    #[test]
    fn urls_that_carry_codes_and_tokens() {
        let with_issuer = |issuer: &str| error(vec![UpstreamConfig { issuer: Some(issuer.into()), ..oidc("corp") }]);
        assert!(with_issuer("http://idp.example.com").contains("must use https"));
        assert!(with_issuer("http://10.0.0.1").contains("must use https"));
        assert!(with_issuer("https://user:pw@idp.example.com").contains("user information"));
        assert!(with_issuer("https://idp.example.com/#x").contains("fragment"));
        assert!(with_issuer("https://idp.example.com/?tenant=a").contains("query"));
        assert!(with_issuer("idp.example.com").contains("not an absolute"));
        assert!(with_issuer("https:/idp.example.com").contains("not an absolute"));
        assert!(with_issuer("https://idp\\evil.example.com").contains("not an absolute"));
        assert!(with_issuer("ftp://idp.example.com").contains("must use https"));
        let token = |url: &str| error(vec![UpstreamConfig { token_endpoint: Some(url.into()), ..oauth2() }]);
        assert!(token("http://github.com/token").contains("`token_endpoint`"));
        let userinfo = |url: &str| error(vec![UpstreamConfig { userinfo_endpoint: Some(url.into()), ..oauth2() }]);
        assert!(userinfo("http://api.github.com/user").contains("`userinfo_endpoint`"));
        assert_eq!(check_url("x", "http://[::1]:8080/a"), Ok(true));
        assert_eq!(check_url("x", "https://127.0.0.1/a"), Ok(false));
    }

    #[test]
    fn scopes_and_clients() {
        assert!(error(vec![UpstreamConfig { scopes: vec!["email".into()], ..oidc("corp") }]).contains("must include `openid`"));
        assert!(error(vec![UpstreamConfig { scopes: vec!["openid email".into()], ..oidc("corp") }]).contains("not an OAuth scope token"));
        assert!(error(vec![UpstreamConfig { scopes: vec!["".into()], ..oidc("corp") }]).contains("not an OAuth scope token"));
        assert!(error(vec![UpstreamConfig { client_id: "".into(), ..oidc("corp") }]).contains("`client_id`"));
        assert!(error(vec![UpstreamConfig { client_secret_secret: Some("".into()), ..oidc("corp") }]).contains("`client_secret_secret`"));
        assert!(check_all(vec![UpstreamConfig { scopes: vec![], ..oauth2() }]).is_ok(), "OAuth 2 may ask for no scope");
    }
}
