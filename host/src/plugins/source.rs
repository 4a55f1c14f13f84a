//! Where a module comes from, and fetching it: a file (with `FILE.minisig`
//! beside it), an `https://` URL (with `URL.minisig`), or an `oci://`
//! reference. Downloads are capped at [`super::MAX_MODULE_BYTES`]; plain
//! `http` is accepted only to a loopback address.

use super::MAX_MODULE_BYTES;
use crate::secrets::{ExposeSecret, SecretStore};
use anyhow::Context as _;
use oci_client::secrets::RegistryAuth;
use portcullis_contract::net::is_loopback_authority;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Url(url::Url),
    Oci(String),
}

/// A fetched module, not yet stored.
pub struct Fetched {
    pub wasm: Vec<u8>,
    pub signature: Option<String>,
    /// The OCI tag, when the reference had one.
    pub tag: Option<String>,
}

impl Source {
    pub fn parse(text: &str) -> anyhow::Result<Source> {
        if text.starts_with("oci://") {
            super::oci::parse(text)?;
            return Ok(Source::Oci(text.to_owned()));
        }
        if text.starts_with("https://") || text.starts_with("http://") {
            let url = url::Url::parse(text).with_context(|| format!("{text:?} is not a URL"))?;
            let loopback = url.host_str().is_some_and(is_loopback_authority);
            anyhow::ensure!(url.scheme() == "https" || loopback, "{text}: only https:// is accepted (plain http only to a loopback address)");
            return Ok(Source::Url(url));
        }
        anyhow::ensure!(!text.contains("://"), "{text:?}: a source is a file, an https:// URL or an oci:// reference");
        Ok(Source::File(PathBuf::from(text)))
    }

    /// How the lock file records it (files as absolute paths).
    pub fn describe(&self) -> String {
        match self {
            Source::File(path) => std::path::absolute(path).unwrap_or_else(|_| path.clone()).display().to_string(),
            Source::Url(url) => url.to_string(),
            Source::Oci(reference) => reference.clone(),
        }
    }

    pub async fn fetch(&self, secrets: &SecretStore) -> anyhow::Result<Fetched> {
        match self {
            Source::File(path) => {
                let size = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
                anyhow::ensure!(size <= MAX_MODULE_BYTES, "{} is {size} bytes, over the limit of {MAX_MODULE_BYTES}", path.display());
                let wasm = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                let mut signature_path = path.clone().into_os_string();
                signature_path.push(".minisig");
                let signature = std::fs::read_to_string(&signature_path).ok();
                Ok(Fetched { wasm, signature, tag: None })
            }
            Source::Url(url) => {
                let client = crate::http_client::builder().redirect(reqwest::redirect::Policy::none()).timeout(std::time::Duration::from_secs(60)).build()?;
                let wasm = download(&client, url.as_str()).await?.ok_or_else(|| anyhow::anyhow!("{url} answered 404"))?;
                let signature = download(&client, &format!("{url}.minisig")).await?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
                Ok(Fetched { wasm, signature, tag: None })
            }
            Source::Oci(text) => {
                let reference = super::oci::parse(text)?;
                let auth = registry_auth(reference.registry(), secrets);
                let pulled = super::oci::pull(&reference, &auth, MAX_MODULE_BYTES).await?;
                Ok(Fetched { wasm: pulled.wasm, signature: pulled.signature, tag: reference.tag().map(str::to_owned) })
            }
        }
    }
}

/// GETs `url` into memory, capped; `None` for 404.
async fn download(client: &reqwest::Client, url: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let mut response = client.get(url).send().await.with_context(|| format!("cannot download {url}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    anyhow::ensure!(response.status().is_success(), "{url} answered {}", response.status());
    anyhow::ensure!(response.content_length().is_none_or(|n| n <= MAX_MODULE_BYTES), "{url} is over the limit of {MAX_MODULE_BYTES} bytes");
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.with_context(|| format!("downloading {url}"))? {
        anyhow::ensure!((bytes.len() + chunk.len()) as u64 <= MAX_MODULE_BYTES, "{url} is over the limit of {MAX_MODULE_BYTES} bytes");
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

/// Credentials for `registry`: the secret `registry:<registry>` (`user:password`),
/// else the `auths` entry of `~/.docker/config.json`, else anonymous.
pub fn registry_auth(registry: &str, secrets: &SecretStore) -> RegistryAuth {
    if let Ok(Some(secret)) = secrets.get(&format!("registry:{registry}"))
        && let Some((user, password)) = secret.expose_secret().split_once(':')
    {
        return RegistryAuth::Basic(user.to_owned(), password.to_owned());
    }
    docker_config_auth(registry).unwrap_or(RegistryAuth::Anonymous)
}

fn docker_config_auth(registry: &str) -> Option<RegistryAuth> {
    use base64::Engine as _;
    // Docker's own rule: `DOCKER_CONFIG`, else `.docker` in the home directory (`%USERPROFILE%` on Windows).
    let user_home = || std::env::var_os("HOME").or_else(|| if cfg!(windows) { std::env::var_os("USERPROFILE") } else { None });
    let home = std::env::var_os("DOCKER_CONFIG").map(PathBuf::from).or_else(|| user_home().map(|h| PathBuf::from(h).join(".docker")))?;
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(home.join("config.json")).ok()?).ok()?;
    let encoded = config["auths"][registry]["auth"].as_str()?;
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some(RegistryAuth::Basic(user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_parsed_and_plain_http_is_loopback_only() {
        assert!(matches!(Source::parse("plugins/a.wasm").unwrap(), Source::File(_)));
        assert!(matches!(Source::parse("https://example.com/a.wasm").unwrap(), Source::Url(_)));
        assert!(matches!(Source::parse("http://127.0.0.1:8000/a.wasm").unwrap(), Source::Url(_)));
        assert!(Source::parse("http://example.com/a.wasm").is_err());
        assert!(Source::parse("ftp://example.com/a.wasm").is_err());
        assert!(matches!(Source::parse("oci://127.0.0.1:5000/auth/api-key:1.0.0").unwrap(), Source::Oci(_)));
        assert!(is_loopback_authority("127.0.0.1:5000") && is_loopback_authority("localhost") && is_loopback_authority("[::1]:80"));
        assert!(!is_loopback_authority("registry.example.com:5000") && !is_loopback_authority("10.0.0.1"));
    }
}
