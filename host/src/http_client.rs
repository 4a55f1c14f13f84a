//! The one way the gateway makes an HTTP client (reqwest), so that every client
//! has the same TLS: ring, as everywhere in the gateway, and the bundled Mozilla
//! roots, so a machine without a CA bundle still reaches public servers.
//! reqwest is built without a crypto provider of its own (it would be
//! aws-lc-rs); a client built without this configuration would have none.

use std::sync::Arc;

/// A client builder with the gateway's TLS; callers add the rest (proxy,
/// redirects, timeouts).
pub fn builder() -> reqwest::ClientBuilder {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring offers TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A configuration handed to reqwest is used as it is: ALPN is ours to set.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder().tls_backend_preconfigured(tls)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tls_configuration_is_accepted() {
        // reqwest takes a configuration of its own rustls version only; any
        // other would fail every request as an unknown TLS backend.
        super::builder().build().unwrap();
    }
}
