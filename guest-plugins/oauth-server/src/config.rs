//! The policy's `config` table, checked once at `init`.

use crate::resource::Resource;
use crate::upstream::UpstreamConfig;
use serde::Deserialize;

/// The table as written (`[workloads.server.config]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    #[serde(default = "default_access_token_ttl")]
    access_token_ttl: u32,
    #[serde(default = "default_refresh_token_ttl")]
    refresh_token_ttl: u32,
    #[serde(default = "default_code_ttl")]
    code_ttl: u32,
    #[serde(default = "yes")]
    registration: bool,
    #[serde(default = "default_registration_per_minute")]
    registration_per_minute: u32,
    #[serde(default = "yes")]
    cimd: bool,
    #[serde(default = "yes")]
    require_resource: bool,
    token_key_secret: String,
    #[serde(default)]
    clients: Vec<ListedClient>,
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
    /// RFC 8693 token exchange at `/oauth/token`; absent: off.
    #[serde(default)]
    token_exchange: Option<ExchangeFile>,
}

/// `[workloads.server.config.token_exchange]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExchangeFile {
    /// The clients that may use the grant.
    clients: Vec<String>,
    #[serde(default = "default_exchange_ttl")]
    token_ttl: u32,
    /// Whether a request must name an actor (`actor_token`).
    #[serde(default = "yes")]
    require_actor: bool,
    #[serde(default)]
    trusted_issuers: Vec<TrustedIssuer>,
    #[serde(default)]
    actors: Vec<ActorRule>,
}

/// An issuer whose JWTs this server accepts as subject or actor tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// Its `iss`, compared exactly.
    pub issuer: String,
    /// Its key set (fetched through the `http` import; no discovery).
    pub jwks_uri: String,
    /// The `aud` its tokens must carry to be exchanged here.
    pub audience: String,
    /// The scopes of this server its tokens stand for (its own `scope`
    /// claim is in its namespace, not this server's).
    pub scopes: Vec<String>,
}

/// Who may act for whom: an actor (its token's `iss` and `sub`), the
/// subjects it may act for (absent: anyone) and the scopes it may carry
/// (absent: any the subject token has).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorRule {
    pub issuer: String,
    pub sub: String,
    #[serde(default)]
    pub subjects: Option<Vec<String>>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// The checked token-exchange configuration.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub clients: Vec<String>,
    /// Seconds; the issued token never outlives the subject (or actor) token.
    pub token_ttl: u32,
    /// Whether an exchange needs an `actor_token` (default): without one, the
    /// result is the subject's access re-issued to a client whose id proves
    /// nothing (public clients), with no actor to show in `act`.
    pub require_actor: bool,
    pub trusted_issuers: Vec<TrustedIssuer>,
    pub actors: Vec<ActorRule>,
}

/// A client listed in the policy: public, PKCE, exact redirect URIs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedClient {
    pub client_id: String,
    pub redirect_uris: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    vec!["mcp".to_owned()]
}
fn default_access_token_ttl() -> u32 {
    900
}
fn default_refresh_token_ttl() -> u32 {
    7 * 24 * 3600
}
fn default_code_ttl() -> u32 {
    60
}
fn default_registration_per_minute() -> u32 {
    10
}
fn default_exchange_ttl() -> u32 {
    300
}
fn yes() -> bool {
    true
}

/// The store's own cap on a TTL (90 days): a longer lifetime could not be kept.
const STORE_TTL_CAP: u32 = 90 * 24 * 3600;

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub scopes: Vec<String>,
    pub access_token_ttl: u32,
    pub refresh_token_ttl: u32,
    pub code_ttl: u32,
    pub registration: bool,
    pub registration_per_minute: u32,
    pub cimd: bool,
    /// Whether `/authorize` refuses a request without `resource` (RFC 8707,
    /// which MCP clients MUST send). Off, a missing `resource` means this
    /// server's one resource: for clients that predate resource indicators.
    pub require_resource: bool,
    pub token_key_secret: String,
    pub clients: Vec<ListedClient>,
    /// `https://gateway.example` (the public URL's origin).
    pub issuer: String,
    /// The resource clients must name (RFC 8707) and the tokens' `aud`.
    pub resource: Resource,
    /// RFC 8693 token exchange; `None`: the grant is off.
    pub exchange: Option<Exchange>,
}

impl Config {
    /// Checks `file` for the workload at `public_url`; the upstreams are left to federation.
    pub fn new(file: File, public_url: &str) -> Result<(Config, Vec<UpstreamConfig>), String> {
        let resource = Resource::new(public_url).map_err(|e| format!("the workload's public_url: {e}"))?;
        let issuer = resource.issuer();
        if file.scopes.is_empty() {
            return Err("`scopes`: list at least one scope a client may ask for".into());
        }
        for scope in &file.scopes {
            if !is_scope_token(scope) {
                return Err(format!("`scopes`: {scope:?} is not a scope (printable ASCII without spaces, quotes or backslashes, RFC 6749 §3.3)"));
            }
        }
        check_ttl("access_token_ttl", file.access_token_ttl, 60, 24 * 3600)?;
        check_ttl("refresh_token_ttl", file.refresh_token_ttl, 300, STORE_TTL_CAP)?;
        check_ttl("code_ttl", file.code_ttl, 10, 600)?;
        if file.registration && file.registration_per_minute == 0 {
            return Err("`registration_per_minute`: must be at least 1 (or set `registration = false`)".into());
        }
        if file.token_key_secret.trim().is_empty() {
            return Err("`token_key_secret`: name the secret holding the 32-byte key that seals upstream tokens".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, client) in file.clients.iter().enumerate() {
            let at = format!("`clients[{i}]`");
            if client.client_id.is_empty() || client.client_id.len() > 255 || client.client_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(format!("{at}.client_id: 1 to 255 characters, no spaces or control characters"));
            }
            if crate::cimd::is_cimd_client_id(&client.client_id) {
                return Err(format!("{at}.client_id: an https URL with a path is a Client ID Metadata Document's id; pick another id"));
            }
            if !seen.insert(client.client_id.as_str()) {
                return Err(format!("{at}.client_id: {:?} is listed twice", client.client_id));
            }
            crate::register::check_redirect_uris(&client.redirect_uris, None).map_err(|e| format!("{at}.redirect_uris: {e}"))?;
        }
        let exchange = file.token_exchange.map(|e| check_exchange(e, &file.scopes, &issuer)).transpose()?;
        // Each provider after the one users log in with is asked for by a
        // scope of its own: a login goes through it when the client asks.
        let mut scopes = file.scopes;
        for upstream in file.upstreams.iter().skip(1) {
            let scope = portcullis_contract::sessions::provider_scope(&upstream.name);
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        let config = Config {
            scopes,
            access_token_ttl: file.access_token_ttl,
            refresh_token_ttl: file.refresh_token_ttl,
            code_ttl: file.code_ttl,
            registration: file.registration,
            registration_per_minute: file.registration_per_minute,
            cimd: file.cimd,
            require_resource: file.require_resource,
            token_key_secret: file.token_key_secret,
            clients: file.clients,
            issuer,
            resource,
            exchange,
        };
        Ok((config, file.upstreams))
    }

    /// `{issuer}{path}`: where one of this server's endpoints is.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

fn check_exchange(file: ExchangeFile, scopes: &[String], issuer: &str) -> Result<Exchange, String> {
    let at = "`token_exchange`";
    if file.clients.is_empty() {
        return Err(format!("{at}.clients: list the clients that may exchange tokens"));
    }
    for client in &file.clients {
        if client.is_empty() || client.len() > 255 || client.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!("{at}.clients: {client:?} is not a client id (1 to 255 characters, no spaces or control characters)"));
        }
    }
    check_ttl("token_exchange.token_ttl", file.token_ttl, 10, 3600)?;
    let known_scopes = |what: &str, list: &[String]| match list.iter().find(|s| !scopes.contains(s)) {
        Some(scope) => Err(format!("{what}: {scope:?} is not among `scopes`")),
        None => Ok(()),
    };
    for (i, trusted) in file.trusted_issuers.iter().enumerate() {
        let what = format!("{at}.trusted_issuers[{i}]");
        if trusted.issuer.is_empty() || trusted.issuer == issuer {
            return Err(format!("{what}.issuer: name another issuer (this server's own tokens are always accepted)"));
        }
        if file.trusted_issuers[..i].iter().any(|t| t.issuer == trusted.issuer) {
            return Err(format!("{what}.issuer: {:?} is listed twice", trusted.issuer));
        }
        crate::upstream::check_url(&format!("token_exchange.trusted_issuers[{i}].jwks_uri"), &trusted.jwks_uri)?;
        if trusted.audience.is_empty() {
            return Err(format!("{what}.audience: name the `aud` its tokens carry for this server"));
        }
        if trusted.scopes.is_empty() {
            return Err(format!("{what}.scopes: list the scopes of this server its tokens stand for"));
        }
        known_scopes(&format!("{what}.scopes"), &trusted.scopes)?;
    }
    for (i, rule) in file.actors.iter().enumerate() {
        let what = format!("{at}.actors[{i}]");
        if rule.issuer != issuer && !file.trusted_issuers.iter().any(|t| t.issuer == rule.issuer) {
            return Err(format!("{what}.issuer: {:?} is neither this server's issuer ({issuer}) nor a trusted issuer", rule.issuer));
        }
        if rule.sub.is_empty() {
            return Err(format!("{what}.sub: name the actor"));
        }
        if let Some(scopes) = &rule.scopes {
            known_scopes(&format!("{what}.scopes"), scopes)?;
        }
    }
    Ok(Exchange {
        clients: file.clients,
        token_ttl: file.token_ttl,
        require_actor: file.require_actor,
        trusted_issuers: file.trusted_issuers,
        actors: file.actors,
    })
}

fn check_ttl(key: &str, value: u32, min: u32, max: u32) -> Result<(), String> {
    if (min..=max).contains(&value) { Ok(()) } else { Err(format!("`{key}`: {value} seconds is outside {min}..={max}")) }
}

/// A scope token (RFC 6749 §3.3: `%x21 / %x23-5B / %x5D-7E`).
pub fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, String> {
        let file: File = portcullis_plugin::parse_config(json)?;
        Config::new(file, "https://gw.example/mcp").map(|(c, _)| c)
    }

    #[test]
    fn defaults_and_refusals() {
        let c = parse(r#"{"token_key_secret": "oauth:token-key"}"#).unwrap();
        assert_eq!((c.access_token_ttl, c.refresh_token_ttl, c.code_ttl), (900, 604800, 60));
        assert_eq!(c.scopes, ["mcp"]);
        assert!(c.registration && c.cimd && c.require_resource);
        assert_eq!(c.registration_per_minute, 10);
        assert_eq!(c.issuer, "https://gw.example");
        assert_eq!(c.endpoint("/oauth/token"), "https://gw.example/oauth/token");

        assert!(parse("{}").unwrap_err().contains("token_key_secret"));
        assert!(parse(r#"{"token_key_secret": "k", "scope": []}"#).unwrap_err().contains("unknown field"));
        assert!(parse(r#"{"token_key_secret": "k", "scopes": []}"#).is_err());
        assert!(parse(r#"{"token_key_secret": "k", "scopes": ["a b"]}"#).is_err());
        assert!(parse(r#"{"token_key_secret": "k", "code_ttl": 3600}"#).is_err());
        assert!(parse(r#"{"token_key_secret": "k", "registration_per_minute": 0}"#).is_err());
        let twice = r#"{"token_key_secret": "k", "clients": [{"client_id": "a", "redirect_uris": ["http://127.0.0.1/cb"]}, {"client_id": "a", "redirect_uris": ["http://127.0.0.1/cb"]}]}"#;
        assert!(parse(twice).unwrap_err().contains("listed twice"));
        let bad_redirect = r#"{"token_key_secret": "k", "clients": [{"client_id": "a", "redirect_uris": ["http://evil.example/cb"]}]}"#;
        assert!(parse(bad_redirect).unwrap_err().contains("clients[0]"));
        let cimd_like = r#"{"token_key_secret": "k", "clients": [{"client_id": "https://c.example/id", "redirect_uris": ["http://127.0.0.1/cb"]}]}"#;
        assert!(parse(cimd_like).is_err());
    }

    #[test]
    fn each_further_provider_has_a_scope() {
        let upstream = |name: &str| format!(r#"{{"name": "{name}", "issuer": "https://{name}.example", "client_id": "c"}}"#);
        let json = format!(
            r#"{{"token_key_secret": "k", "scopes": ["mcp", "upstream:tracker"], "upstreams": [{}, {}, {}]}}"#,
            upstream("corp"),
            upstream("tracker"),
            upstream("github")
        );
        let c = parse(&json).unwrap();
        assert_eq!(c.scopes, ["mcp", "upstream:tracker", "upstream:github"], "the login's own provider has none; a listed one is not repeated");
    }
}
