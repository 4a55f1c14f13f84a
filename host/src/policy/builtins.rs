//! What the host knows of the built-in components' configuration, in one place.
//!
//! Components validate their own `config`; the host reads a few keys of the
//! built-ins' tables for jobs a component cannot do: serving the RFC 9728
//! metadata, reading `jwks_file` and Cedar's `policies_file` (components have
//! no file access: [`FileOrInline`]), warning about `audiences = []`, filling in a verifier
//! that trusts the workload's own server ([`embedded_verifier_config`]), and the registry token's
//! secret name, static tokens and login port. (`builtin:shared-key`'s keys are read by [`crate::keys`].)

use super::file::ChainEntryFile;
use super::location::KeyPath;
use serde_json::{Map, Value};
use std::path::PathBuf;

pub const OIDC_VERIFIER: &str = "builtin:oidc-verifier";

/// The issuers and advertised scopes of every OIDC verifier in `inbound`,
/// the workload's own server's issuer first when it has one (`server_issuer`);
/// `None` when no verifier guards the workload.
pub fn oidc_metadata(inbound: &[ChainEntryFile], server_issuer: Option<&str>) -> Option<(Vec<String>, Vec<String>)> {
    let verifiers: Vec<&Map<String, Value>> = inbound.iter().filter(|e| e.component == OIDC_VERIFIER).map(|e| &e.config).collect();
    if verifiers.is_empty() {
        return None;
    }
    let mut issuers: Vec<String> = server_issuer.map(str::to_owned).into_iter().collect();
    let mut scopes: Vec<String> = Vec::new();
    for config in verifiers {
        for provider in providers(config) {
            if let Some(issuer) = provider.get("issuer").and_then(Value::as_str)
                && !issuers.iter().any(|i| i == issuer)
            {
                issuers.push(issuer.to_owned());
            }
        }
        for key in ["scopes_supported", "required_scopes"] {
            let listed = config.get(key).and_then(Value::as_array).into_iter().flatten();
            scopes.extend(listed.filter_map(|s| s.as_str().map(str::to_owned)));
        }
    }
    scopes.sort();
    scopes.dedup();
    Some((issuers, scopes))
}

/// Whether an OIDC verifier's table turns the audience check off (`audiences = []`).
pub fn audience_check_off(entry: &ChainEntryFile) -> bool {
    entry.component == OIDC_VERIFIER && providers(&entry.config).any(|p| p.get("audiences").and_then(Value::as_array).is_some_and(|a| a.is_empty()))
}

/// The provider tables of a verifier's config: the top level (single-provider
/// form) and each of `providers`.
fn providers(config: &Map<String, Value>) -> impl Iterator<Item = &Map<String, Value>> {
    let listed = config.get("providers").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object);
    std::iter::once(config).chain(listed)
}

/// The verifier's key that makes it trust the workload's own server.
pub const EMBEDDED_SERVER: &str = "embedded_server";

/// The verifier's keys the host fills in for `embedded_server = true`, so the
/// policy may not give them too.
const EMBEDDED_FILLS: [&str; 5] = ["issuer", "audiences", "jwks", "jwks_file", "jwks_uri"];

/// Whether an entry is an OIDC verifier with `embedded_server = true`; an
/// error (the key and why) when the value is not a boolean, or when the
/// table also names what the host fills in.
pub fn embedded_server(entry: &ChainEntryFile) -> Result<bool, (&'static str, String)> {
    if entry.component != OIDC_VERIFIER {
        return Ok(false);
    }
    match entry.config.get(EMBEDDED_SERVER) {
        None | Some(Value::Bool(false)) => Ok(false),
        Some(Value::Bool(true)) => match EMBEDDED_FILLS.iter().find(|k| entry.config.contains_key(**k)) {
            Some(key) => Err((key, format!("`{key}` comes from the workload's server with `embedded_server = true`: remove it"))),
            None => Ok(true),
        },
        Some(_) => Err((EMBEDDED_SERVER, "`embedded_server` is `true` or `false`".into())),
    }
}

/// The issuer of a workload's own server: the origin of its `public_url`
/// (scheme and authority; no path, no trailing `/`).
pub fn server_issuer(public_url: &url::Url) -> String {
    public_url.origin().ascii_serialization()
}

/// A verifier's `config` as its component receives it: `embedded_server`
/// taken out (the component does not know it) and, when it was `true`, the
/// server's issuer, the workload's resource identifier (`public_url`, as
/// written) as the audience, and the server's key set (`jwks_json`, its
/// public keys) inline, with the algorithms of its keys unless the table
/// lists some. No HTTP to itself: the keys are the host's own.
pub fn embedded_verifier_config(config: &mut Map<String, Value>, public_url: &url::Url, written: &str, jwks_json: Option<&str>) -> Result<(), String> {
    if config.remove(EMBEDDED_SERVER) != Some(Value::Bool(true)) {
        return Ok(());
    }
    let jwks_json = jwks_json.ok_or("`embedded_server = true`, and the workload's server has no signing keys: grant it `signing_keys`")?;
    let jwks: Value = serde_json::from_str(jwks_json).map_err(|e| format!("the server's key set is not JSON: {e}"))?;
    let keys = jwks.get("keys").and_then(Value::as_array).filter(|k| !k.is_empty()).ok_or("the workload's server publishes no keys")?;
    let mut algorithms: Vec<String> = Vec::new();
    for alg in keys.iter().filter_map(key_algorithm) {
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    if !config.contains_key("algorithms") && !algorithms.is_empty() {
        config.insert("algorithms".into(), Value::from(algorithms));
    }
    config.insert("issuer".into(), Value::String(server_issuer(public_url)));
    config.insert("audiences".into(), Value::from(vec![written.to_owned()]));
    config.insert("jwks".into(), jwks);
    Ok(())
}

/// The JWS algorithm of a public JWK: its `alg`, else the one its key type implies.
fn key_algorithm(jwk: &Value) -> Option<String> {
    if let Some(alg) = jwk.get("alg").and_then(Value::as_str) {
        return Some(alg.to_owned());
    }
    let alg = match (jwk.get("kty").and_then(Value::as_str)?, jwk.get("crv").and_then(Value::as_str)) {
        ("EC", Some("P-256")) => "ES256",
        ("EC", Some("P-384")) => "ES384",
        ("OKP", Some("Ed25519")) => "EdDSA",
        ("RSA", _) => "RS256",
        _ => return None,
    };
    Some(alg.to_owned())
}

pub const REGISTRY_TOKEN: &str = "builtin:registry-token";

pub const CEDAR: &str = "builtin:cedar";

/// A value a built-in takes either inline (`jwks`, `policies`) or from a file
/// beside the policy (`jwks_file`, `policies_file`). Components have no file
/// access: the host reads the file and hands its content inline. A table
/// gives one or the other, not both.
pub struct FileOrInline {
    pub file: &'static str,
    pub inline: &'static str,
    /// The file holds JSON, handed on as JSON (a key set); otherwise as text.
    json: bool,
}

/// Every "path or text" value of the built-ins, by component.
const FILE_OR_INLINE: &[(&str, FileOrInline)] = &[
    (OIDC_VERIFIER, FileOrInline { file: "jwks_file", inline: "jwks", json: true }),
    (CEDAR, FileOrInline { file: "policies_file", inline: "policies", json: false }),
    (CEDAR, FileOrInline { file: "schema_file", inline: "schema", json: false }),
    (CEDAR, FileOrInline { file: "entities_file", inline: "entities", json: false }),
];

/// A problem with a config value the host reads: where, what, and how to fix it.
pub type ConfigError = (KeyPath, String, Option<String>);

impl FileOrInline {
    /// Replaces `file` in `table` (at `key`) by `inline`, holding the file's
    /// content; `resolve` makes the path relative to the policy.
    fn inline(&self, table: &mut Map<String, Value>, key: &KeyPath, resolve: &impl Fn(&str) -> PathBuf) -> Result<(), ConfigError> {
        let Some(file) = table.remove(self.file) else {
            return Ok(());
        };
        let key = key.key(self.file);
        if table.contains_key(self.inline) {
            return Err((key, format!("give `{}` or `{}`, not both", self.file, self.inline), None));
        }
        let path = resolve(file.as_str().unwrap_or_default());
        let text = std::fs::read_to_string(&path)
            .map_err(|e| (key.clone(), format!("cannot read {}: {e}", path.display()), Some("the path is relative to the policy file".into())))?;
        let value = match self.json {
            true => serde_json::from_str(&text).map_err(|e| (key.clone(), format!("{} is not a JSON key set: {e}", path.display()), None))?,
            false => Value::String(text),
        };
        table.insert(self.inline.into(), value);
        Ok(())
    }
}

/// Reads the files a built-in's `config` (at `key`) names, and puts their
/// content inline: in the table itself, and in each of an OIDC verifier's `providers`.
pub fn inline_files(component: &str, config: &mut Map<String, Value>, key: &KeyPath, resolve: impl Fn(&str) -> PathBuf) -> Result<(), ConfigError> {
    for (_, value) in FILE_OR_INLINE.iter().filter(|(c, _)| *c == component) {
        value.inline(config, key, &resolve)?;
        if component == OIDC_VERIFIER
            && let Some(Value::Array(providers)) = config.get_mut("providers")
        {
            for (n, provider) in providers.iter_mut().enumerate() {
                if let Value::Object(provider) = provider {
                    value.inline(provider, &key.key("providers").index(n), &resolve)?;
                }
            }
        }
    }
    Ok(())
}

/// The secret under which a component's static bearer token is served when the
/// host has one for it (`PORTCULLIS_REGISTRY_TOKEN`, or the entry's `token_file`).
pub const STATIC_TOKEN_SECRET: &str = portcullis_contract::secrets::STATIC_TOKEN;

/// The environment variable that gives every registry-token entry a static
/// bearer token (CI, headless machines); it wins over `token_file`.
pub const STATIC_TOKEN_ENV: &str = "PORTCULLIS_REGISTRY_TOKEN";

/// The loopback port `portcullis login` listens on for an interactive
/// injector's callback, from its `callback_port` (THV-0043's 8666 by default:
/// identity providers that match redirect URIs exactly need a fixed port).
pub fn callback_port(entry: &ChainEntryFile) -> u16 {
    entry.config.get("callback_port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()).unwrap_or(8666)
}

/// The deadline of a built-in's calls when the policy sets none: the
/// registry token's calls may wait for the refresh lock (up to 3 s) and then
/// refresh at the identity provider (an HTTP round trip of up to 3 s), which
/// 100 ms does not fit. `builtin:oauth-server`'s calls may fetch a client's metadata document
/// (CIMD) or complete a login at the identity provider (discovery, token,
/// keys): several HTTP round trips in one call.
pub fn default_deadline(entry: &ChainEntryFile) -> Option<std::time::Duration> {
    match entry.component.as_str() {
        REGISTRY_TOKEN => Some(std::time::Duration::from_secs(8)),
        OAUTH_SERVER => Some(std::time::Duration::from_secs(5)),
        _ => None,
    }
}

pub const OAUTH_SERVER: &str = "builtin:oauth-server";

/// The secret name a registry-token entry keeps its OAuth tokens under:
/// `REGISTRY_OAUTH_` and 8 hex digits of SHA-256(registry URL, NUL, issuer)
/// (THV-0043), so two registries, or one registry behind two issuers, never
/// overwrite each other's tokens. Both URLs are normalised first, so that
/// spellings of one URL share tokens: see [`normalise_url`].
pub fn registry_token_key(registry_url: &str, issuer: &str) -> String {
    use sha2::Digest;
    let mut input = normalise_url(registry_url).into_bytes();
    input.push(0);
    input.extend_from_slice(normalise_url(issuer).as_bytes());
    format!("REGISTRY_OAUTH_{}", hex::encode(&sha2::Sha256::digest(&input)[..4]))
}

/// The scheme and host in lower case, no default port, no fragment, and no
/// trailing `/` on the path. Text that is not a URL is used as given.
fn normalise_url(text: &str) -> String {
    match url::Url::parse(text.trim()) {
        Ok(mut url) => {
            url.set_fragment(None);
            let mut s = url.to_string();
            if url.query().is_none() {
                while s.ends_with('/') {
                    s.pop();
                }
            }
            s
        }
        Err(_) => text.trim().to_owned(),
    }
}

/// A registry-token entry's config as its component receives it: the token
/// key added, and whether the host holds a static token for it.
pub fn registry_token_config(config: &mut Map<String, Value>, registry_url: &str) {
    let issuer = config.get("issuer").and_then(Value::as_str).unwrap_or_default().to_owned();
    config.insert("token_key".into(), Value::String(registry_token_key(registry_url, &issuer)));
}

/// A registry-token entry's static bearer token, if the host has one for
/// it: `PORTCULLIS_REGISTRY_TOKEN`, else the file named by `token_file`
/// (`resolve` makes its path relative to the policy). Read at every (re)load.
/// `entries` is how many registry-token entries the policy has: the
/// environment variable names no registry, so it is refused when there is
/// more than one (one registry's token must not reach another).
pub fn static_token(entry: &ChainEntryFile, entries: usize, resolve: impl Fn(&str) -> std::path::PathBuf) -> Result<Option<secrecy::SecretString>, String> {
    static_token_from(std::env::var(STATIC_TOKEN_ENV).ok(), entry, entries, resolve)
}

fn static_token_from(
    env: Option<String>,
    entry: &ChainEntryFile,
    entries: usize,
    resolve: impl Fn(&str) -> std::path::PathBuf,
) -> Result<Option<secrecy::SecretString>, String> {
    if entry.component != REGISTRY_TOKEN {
        return Ok(None);
    }
    if let Some(token) = env.filter(|t| !t.trim().is_empty()) {
        if entries > 1 {
            return Err(format!(
                "{STATIC_TOKEN_ENV} is set, and the policy has {entries} registry-token entries: it would send one token to every registry; give each entry its own `token_file` or `token_secret`"
            ));
        }
        return Ok(Some(token.trim().to_owned().into()));
    }
    let Some(file) = entry.config.get("token_file").and_then(Value::as_str) else {
        return Ok(None);
    };
    let path = resolve(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    match text.trim() {
        "" => Err(format!("the token file {} is empty", path.display())),
        token => Ok(Some(token.to_owned().into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_path_or_text_value_is_read_inline_once_and_never_both() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.cedar"), "permit(principal, action, resource);").unwrap();
        std::fs::write(dir.path().join("keys.json"), r#"{"keys": []}"#).unwrap();
        let resolve = |file: &str| dir.path().join(file);
        let key = KeyPath::root().key("config");
        let table = |json: Value| json.as_object().unwrap().clone();

        let mut cedar = table(serde_json::json!({ "policies_file": "p.cedar" }));
        inline_files(CEDAR, &mut cedar, &key, resolve).unwrap();
        assert_eq!(Value::Object(cedar), serde_json::json!({ "policies": "permit(principal, action, resource);" }));

        let mut oidc = table(serde_json::json!({ "jwks_file": "keys.json", "providers": [{ "jwks_file": "keys.json" }] }));
        inline_files(OIDC_VERIFIER, &mut oidc, &key, resolve).unwrap();
        assert_eq!(Value::Object(oidc), serde_json::json!({ "jwks": { "keys": [] }, "providers": [{ "jwks": { "keys": [] } }] }));

        for (component, json) in [
            (CEDAR, serde_json::json!({ "schema_file": "p.cedar", "schema": "inline" })),
            (OIDC_VERIFIER, serde_json::json!({ "providers": [{ "jwks_file": "keys.json", "jwks": {} }] })),
        ] {
            let (at, message, _) = inline_files(component, &mut table(json), &key, resolve).unwrap_err();
            assert!(message.contains("not both"), "{component}: {message}");
            assert!(at.to_string().ends_with("_file"), "{at}");
        }
        let (at, message, _) = inline_files(CEDAR, &mut table(serde_json::json!({ "entities_file": "missing.json" })), &key, resolve).unwrap_err();
        assert_eq!(at.to_string(), "config.entities_file");
        assert!(message.contains("cannot read"), "{message}");
        let mut other = table(serde_json::json!({ "jwks_file": "keys.json" }));
        inline_files("builtin:shared-key", &mut other, &key, resolve).unwrap();
        assert!(other.contains_key("jwks_file"), "only the built-ins that read files");
    }

    #[test]
    fn the_environment_token_serves_only_a_single_registry() {
        let entry: ChainEntryFile = toml::from_str("component = \"builtin:registry-token\"").unwrap();
        let nowhere = |_: &str| std::path::PathBuf::from("/nonexistent");
        let token = static_token_from(Some(" t0ken ".into()), &entry, 1, nowhere).unwrap().unwrap();
        assert_eq!(token.expose_secret(), "t0ken");
        assert!(static_token_from(Some("t0ken".into()), &entry, 2, nowhere).unwrap_err().contains("2 registry-token entries"));
        assert!(static_token_from(None, &entry, 2, nowhere).unwrap().is_none());
        let other: ChainEntryFile = toml::from_str("component = \"builtin:shared-key\"").unwrap();
        assert!(static_token_from(Some("t0ken".into()), &other, 1, nowhere).unwrap().is_none());
    }

    /// Known inputs and outputs: SHA-256("https://registry.example.com/api\0https://auth.example.com")[..4].
    #[test]
    fn registry_token_keys_are_stable_and_normalised() {
        let key = registry_token_key("https://registry.example.com/api", "https://auth.example.com");
        assert_eq!(key, KNOWN_KEY);
        for (registry, issuer) in [
            ("https://registry.example.com/api/", "https://auth.example.com/"),
            ("HTTPS://Registry.Example.COM:443/api", "https://AUTH.example.com"),
            ("https://registry.example.com/api#x", "https://auth.example.com"),
        ] {
            assert_eq!(registry_token_key(registry, issuer), KNOWN_KEY, "{registry} {issuer}");
        }
        assert_ne!(registry_token_key("https://registry.example.com/other", "https://auth.example.com"), KNOWN_KEY);
        assert_ne!(registry_token_key("https://registry.example.com/api", "https://auth.example.com/tenant"), KNOWN_KEY);
        // The NUL keeps (url + issuer) pairs from running into each other.
        assert_ne!(registry_token_key("https://a.example/x", "https://b.example"), registry_token_key("https://a.example", "/xhttps://b.example"));
        assert!(key.len() == "REGISTRY_OAUTH_".len() + 8 && key[15..].bytes().all(|b| b.is_ascii_hexdigit()));
    }

    const KNOWN_KEY: &str = "REGISTRY_OAUTH_48230903";

    #[test]
    fn an_embedded_verifier_gets_the_servers_issuer_audience_and_keys() {
        let public_url = url::Url::parse("HTTPS://MCP.example.com:443/mcp").unwrap();
        let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"x","y":"y","kid":"a"},{"kty":"RSA","n":"n","e":"AQAB","kid":"b","alg":"PS256"}]}"#;
        let mut config = serde_json::json!({ "embedded_server": true, "required_scopes": ["mcp"] }).as_object().unwrap().clone();
        embedded_verifier_config(&mut config, &public_url, "https://mcp.example.com/mcp", Some(jwks)).unwrap();
        assert_eq!(
            Value::Object(config),
            serde_json::json!({
                "issuer": "https://mcp.example.com",
                "audiences": ["https://mcp.example.com/mcp"],
                "jwks": serde_json::from_str::<Value>(jwks).unwrap(),
                "algorithms": ["ES256", "PS256"],
                "required_scopes": ["mcp"],
            })
        );
        // The key is taken out either way: the component refuses keys it does not know.
        let mut off = serde_json::json!({ "embedded_server": false, "issuer": "https://idp.example" }).as_object().unwrap().clone();
        embedded_verifier_config(&mut off, &public_url, "x", None).unwrap();
        assert_eq!(Value::Object(off), serde_json::json!({ "issuer": "https://idp.example" }));
        let mut keyless = serde_json::json!({ "embedded_server": true }).as_object().unwrap().clone();
        assert!(embedded_verifier_config(&mut keyless, &public_url, "x", None).unwrap_err().contains("signing_keys"));
        let mut keyless = serde_json::json!({ "embedded_server": true }).as_object().unwrap().clone();
        assert!(embedded_verifier_config(&mut keyless, &public_url, "x", Some(r#"{"keys":[]}"#)).unwrap_err().contains("no keys"));
    }

    #[test]
    fn embedded_server_is_a_boolean_and_excludes_what_it_fills() {
        let entry = |config: &str| toml::from_str::<ChainEntryFile>(&format!("component = \"builtin:oidc-verifier\"\nconfig = {{ {config} }}")).unwrap();
        assert_eq!(embedded_server(&entry("embedded_server = true")), Ok(true));
        assert_eq!(embedded_server(&entry("embedded_server = false, issuer = \"https://i.example\"")), Ok(false));
        assert_eq!(embedded_server(&entry("embedded_server = \"yes\"")).unwrap_err().0, "embedded_server");
        for key in ["issuer = \"https://i.example\"", "jwks_uri = \"https://i.example/k\"", "audiences = []", "jwks_file = \"k.json\""] {
            let (at, message) = embedded_server(&entry(&format!("embedded_server = true, {key}"))).unwrap_err();
            assert!(key.starts_with(at) && message.contains("remove it"), "{key}: {at} {message}");
        }
        let other: ChainEntryFile = toml::from_str("component = \"builtin:shared-key\"\nconfig = { embedded_server = true }").unwrap();
        assert_eq!(embedded_server(&other), Ok(false));
    }
}
