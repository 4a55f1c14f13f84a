//! The component's configuration, validated once in `init`.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProviderFile {
    issuer: Option<String>,
    jwks_uri: Option<String>,
    jwks: Option<Value>,
    audiences: Option<Vec<String>>,
    algorithms: Option<Vec<String>>,
    hs_secret: Option<String>,
    require_at_jwt: Option<bool>,
}

/// The policy's `config` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(flatten)]
    single: ProviderFile,
    #[serde(default)]
    providers: Vec<ProviderFile>,
    leeway: Option<u64>,
    require_exp: Option<bool>,
    #[serde(default)]
    required_claims: Vec<String>,
    #[serde(default)]
    required_scopes: Vec<String>,
    /// Advertised in the protected-resource metadata (read by the gateway).
    #[serde(default)]
    #[allow(dead_code)]
    scopes_supported: Vec<String>,
    #[serde(default)]
    claims_to_headers: BTreeMap<String, String>,
    #[serde(default)]
    forward_token: bool,
    max_token_bytes: Option<usize>,
    token_cache: Option<bool>,
}

/// One trusted issuer.
pub struct Provider {
    pub issuer: String,
    pub jwks_uri: Option<String>,
    /// Keys given in the policy (inline or from `jwks_file`): never fetched.
    pub static_keys: Option<Vec<Value>>,
    /// Empty: the audience is not checked (`portcullis check` warns).
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    /// Secret name of the HMAC key; HS* algorithms need it.
    pub hs_secret: Option<String>,
    /// Require the JOSE header `typ: at+jwt` (RFC 9068); `false` for providers
    /// that do not set it, which still refuses tokens shaped like ID tokens.
    pub require_at_jwt: bool,
}

pub struct Config {
    pub providers: Vec<Provider>,
    pub leeway: u64,
    pub require_exp: bool,
    pub required_claims: Vec<String>,
    pub required_scopes: Vec<String>,
    /// (claim, lower-case header).
    pub claims_to_headers: Vec<(String, String)>,
    pub forward_token: bool,
    pub max_token_bytes: usize,
    /// Remember verified tokens (by SHA-256) until they expire (default true).
    pub token_cache: bool,
    /// The RFC 9728 metadata URL named in every challenge.
    pub resource_metadata: String,
}

/// What the gateway's `crypto` import verifies (jsonwebtoken's algorithms);
/// anything else is refused at `init`, not discovered failing on a request.
const KNOWN_ALGORITHMS: [&str; 12] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256", "HS384", "HS512"];
const MAX_LEEWAY: u64 = 300;

impl Config {
    pub fn new(file: File, public_url: &str) -> Result<Config, String> {
        let mut provider_files = file.providers;
        if file.single.issuer.is_some() || file.single.jwks_uri.is_some() || file.single.jwks.is_some() {
            provider_files.insert(0, file.single);
        }
        if provider_files.is_empty() {
            return Err("set `issuer` (or `providers = [{ issuer = ... }]`)".into());
        }
        let providers = provider_files.into_iter().map(|p| provider(p, public_url)).collect::<Result<Vec<_>, _>>()?;
        for (i, p) in providers.iter().enumerate() {
            if providers[..i].iter().any(|q| q.issuer == p.issuer) {
                return Err(format!("issuer {:?} is configured twice", p.issuer));
            }
        }
        let leeway = file.leeway.unwrap_or(60);
        if leeway > MAX_LEEWAY {
            return Err(format!("`leeway` is at most {MAX_LEEWAY} seconds (got {leeway})"));
        }
        let mut claims_to_headers = Vec::new();
        for (claim, header) in file.claims_to_headers {
            let header = header.to_ascii_lowercase();
            if header.is_empty() || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(format!("`claims_to_headers.{claim}`: {header:?} is not a header name"));
            }
            // The gateway refuses headers it manages (framing, `x-forwarded-for`, ...);
            // these two would be mistaken for credentials.
            if matches!(header.as_str(), "authorization" | "cookie") {
                return Err(format!("`claims_to_headers.{claim}`: the header {header:?} cannot carry claims"));
            }
            claims_to_headers.push((claim, header));
        }
        Ok(Config {
            providers,
            leeway,
            require_exp: file.require_exp.unwrap_or(true),
            required_claims: file.required_claims,
            required_scopes: file.required_scopes,
            claims_to_headers,
            forward_token: file.forward_token,
            max_token_bytes: file.max_token_bytes.unwrap_or(8192),
            token_cache: file.token_cache.unwrap_or(true),
            resource_metadata: metadata_url(public_url)?,
        })
    }
}

fn provider(file: ProviderFile, public_url: &str) -> Result<Provider, String> {
    let issuer = file.issuer.ok_or("every provider needs an `issuer`")?;
    require_https("issuer", &issuer)?;
    if let Some(uri) = &file.jwks_uri {
        require_https("jwks_uri", uri)?;
    }
    let static_keys = match file.jwks {
        None => None,
        Some(Value::Object(mut set)) => match set.remove("keys") {
            Some(Value::Array(keys)) => Some(keys),
            _ => return Err("`jwks` must be a JWK set: { keys = [...] }".into()),
        },
        Some(_) => return Err("`jwks` must be a JWK set: { keys = [...] }".into()),
    };
    let algorithms = file.algorithms.unwrap_or_else(|| vec!["RS256".into(), "ES256".into()]);
    for alg in &algorithms {
        if alg.eq_ignore_ascii_case("none") {
            return Err("`none` is never an allowed algorithm".into());
        }
        if !KNOWN_ALGORITHMS.contains(&alg.as_str()) {
            return Err(format!("the algorithm {alg:?} is not supported; use one of {}", KNOWN_ALGORITHMS.join(", ")));
        }
        if alg.starts_with("HS") && file.hs_secret.is_none() {
            return Err(format!("{alg} needs `hs_secret`: HMAC keys are never taken from a JWKS"));
        }
    }
    Ok(Provider {
        issuer,
        jwks_uri: file.jwks_uri,
        static_keys,
        audiences: file.audiences.unwrap_or_else(|| vec![public_url.to_owned()]),
        algorithms,
        hs_secret: file.hs_secret,
        require_at_jwt: file.require_at_jwt.unwrap_or(true),
    })
}

/// `https` except on loopback, where a local test provider is fine.
pub fn require_https(what: &str, text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|_| format!("`{what}` {text:?} is not a URL"))?;
    if portcullis_contract::net::is_secure_or_loopback(url.scheme(), url.host_str()) {
        Ok(())
    } else {
        Err(format!("`{what}` must use https (plain http only for loopback): {text:?}"))
    }
}

/// Where the gateway serves the workload's protected-resource metadata
/// (RFC 9728 §3.1), by the gateway's own rule on the same parse.
fn metadata_url(public_url: &str) -> Result<String, String> {
    let url = url::Url::parse(public_url).map_err(|_| "the workload's public_url is not a URL")?;
    Ok(portcullis_contract::resource_metadata::url(&url.origin().ascii_serialization(), url.path()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn metadata_urls() {
        assert_eq!(super::metadata_url("http://127.0.0.1:8080/mcp").unwrap(), "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp");
        assert_eq!(super::metadata_url("https://x.example").unwrap(), "https://x.example/.well-known/oauth-protected-resource");
    }

    /// Plain http only to loopback, as the gateway means it (portcullis-contract).
    #[test]
    fn https_except_on_loopback() {
        for good in ["https://idp.example.com", "HTTPS://IDP.example.com/x", "http://localhost:9000", "http://127.0.0.2:9000/realms/x", "http://[::1]/"] {
            assert!(super::require_https("issuer", good).is_ok(), "{good}");
        }
        for bad in [
            "http://idp.example.com",
            "http://127.0.0.1.nip.io",
            "http://a.localhost",
            "http://[::ffff:127.0.0.1]",
            "idp.example.com",
            "ftp://localhost",
            "https://",
        ] {
            assert!(super::require_https("issuer", bad).is_err(), "{bad}");
        }
    }

    /// A `public_url` written otherwise than `url` writes it: the challenge
    /// must name the URL the gateway serves the metadata at (the gateway's
    /// `proxy/resource_metadata.rs` test has the same case), not a copy of
    /// the text as written.
    #[test]
    fn metadata_urls_of_non_canonical_public_urls() {
        let served = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        for written in ["HTTPS://MCP.Example.com:443/mcp/", "https://mcp.example.com/mcp?tenant=a", "https://mcp.example.com/mcp#x"] {
            assert_eq!(super::metadata_url(written).unwrap(), served, "{written}");
        }
    }
}
