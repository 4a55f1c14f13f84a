//! Modules in OCI registries, in the CNCF Wasm OCI artifact layout: a config of
//! media type `application/vnd.wasm.config.v0+json` and one `application/wasm`
//! layer. A module's minisign signature travels in the manifest's annotations
//! (`dev.portcullis.minisign`, the `.minisig` file in base64: annotation
//! values stay on one line), so one reference carries both.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
pub const SIGNATURE_ANNOTATION: &str = "dev.portcullis.minisign";

/// `oci://registry/repository:tag` or `oci://registry/repository@sha256:…`.
pub fn parse(reference: &str) -> anyhow::Result<Reference> {
    let rest = reference.strip_prefix("oci://").ok_or_else(|| anyhow::anyhow!("{reference:?} is not an oci:// reference"))?;
    let parsed: Reference = rest.parse().map_err(|e| anyhow::anyhow!("{reference:?} is not an OCI reference: {e}"))?;
    anyhow::ensure!(rest.starts_with(parsed.registry()), "{reference:?} must name its registry (oci://registry/repository:tag)");
    Ok(parsed)
}

/// A client that speaks HTTPS, and plain HTTP only to a registry on loopback (tests, local mirrors).
fn client(reference: &Reference) -> Client {
    // oci-client leaves the TLS provider to us; ours is ring, as for every other TLS in the gateway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = reference.registry().to_owned();
    let protocol = if portcullis_contract::net::is_loopback_authority(&registry) { ClientProtocol::HttpsExcept(vec![registry]) } else { ClientProtocol::Https };
    Client::new(ClientConfig {
        protocol,
        read_timeout: Some(std::time::Duration::from_secs(60)),
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    })
}

/// A pulled module.
pub struct Pulled {
    pub wasm: Vec<u8>,
    pub signature: Option<String>,
    /// `registry/repository@sha256:…` of the manifest.
    pub pinned: String,
}

/// Pulls the module at `reference`: checks the layout, refuses a layer over
/// `max_bytes` (by its descriptor and while streaming), and checks the bytes
/// against the layer's digest.
pub async fn pull(reference: &Reference, auth: &RegistryAuth, max_bytes: u64) -> anyhow::Result<Pulled> {
    let client = client(reference);
    let (manifest, manifest_digest, _config) =
        client.pull_manifest_and_config(reference, auth).await.map_err(|e| anyhow::anyhow!("cannot get the manifest of {reference}: {e}"))?;
    anyhow::ensure!(
        manifest.config.media_type == CONFIG_MEDIA_TYPE,
        "{reference} is not a Wasm component artifact (config media type {:?}, expected {CONFIG_MEDIA_TYPE})",
        manifest.config.media_type
    );
    let [layer] = manifest.layers.as_slice() else {
        anyhow::bail!("{reference} has {} layers; a Wasm component artifact has one", manifest.layers.len());
    };
    anyhow::ensure!(layer.media_type == LAYER_MEDIA_TYPE, "{reference}'s layer is {:?}, not {LAYER_MEDIA_TYPE}", layer.media_type);
    anyhow::ensure!(
        u64::try_from(layer.size).is_ok_and(|size| size <= max_bytes),
        "{reference}'s module is {} bytes, over the limit of {max_bytes}",
        layer.size
    );
    let mut sink = Capped { bytes: Vec::new(), max: max_bytes };
    client.pull_blob(reference, layer, &mut sink).await.map_err(|e| anyhow::anyhow!("cannot download {reference}'s module: {e}"))?;
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(&sink.bytes)));
    anyhow::ensure!(actual == layer.digest, "{reference}: the registry sent bytes with digest {actual}, not the manifest's {}", layer.digest);
    let signature = manifest
        .annotations
        .as_ref()
        .and_then(|a| a.get(SIGNATURE_ANNOTATION))
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    let pinned = format!("{}/{}@{manifest_digest}", reference.registry(), reference.repository());
    Ok(Pulled { wasm: sink.bytes, signature, pinned })
}

/// Pushes `wasm` (and its signature) to `reference`; returns the manifest's URL.
pub async fn push(
    reference: &Reference,
    auth: &RegistryAuth,
    wasm: Vec<u8>,
    signature: Option<String>,
    description: serde_json::Value,
) -> anyhow::Result<String> {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&wasm)));
    let config = serde_json::json!({
        "created": null,
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [digest],
        "component": description,
    });
    let config = Config::new(serde_json::to_vec(&config)?, CONFIG_MEDIA_TYPE.to_owned(), None);
    let layers = [ImageLayer::new(wasm, LAYER_MEDIA_TYPE.to_owned(), None)];
    let annotations = signature.map(|s| BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), STANDARD.encode(s))]));
    let manifest = OciImageManifest::build(&layers, &config, annotations);
    let pushed =
        client(reference).push(reference, &layers, config, auth, Some(manifest)).await.map_err(|e| anyhow::anyhow!("cannot push to {reference}: {e}"))?;
    Ok(pushed.manifest_url)
}

/// A download buffer that refuses to grow past `max` bytes.
struct Capped {
    bytes: Vec<u8>,
    max: u64,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if (self.bytes.len() + buf.len()) as u64 > self.max {
            return Poll::Ready(Err(std::io::Error::other(format!("the module is over the limit of {} bytes", self.max))));
        }
        self.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
