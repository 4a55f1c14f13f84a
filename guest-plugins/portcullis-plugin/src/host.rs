//! The gateway's capabilities, as functions that return `Result`s. Each is
//! refused unless the policy grants it to the component (`grants = { ... }`).

use crate::__private::capabilities::portcullis::auth as wit;

/// Named secrets from the gateway's secret store (`grants.secrets`, `grants.secrets_write`).
pub mod secrets {
    use super::wit::secrets as imp;

    pub use imp::SecretError;

    /// Reads the secret `name`.
    pub fn get(name: &str) -> Result<String, SecretError> {
        imp::get(name)
    }

    /// Stores `value` under `name` (needs `grants.secrets_write`).
    pub fn set(name: &str, value: &str) -> Result<(), SecretError> {
        imp::set(name, value)
    }
}

/// Outbound HTTP(S) to the origins granted in `grants.http`.
pub mod http {
    use super::wit::http_client as imp;
    use super::wit::types::Header;
    use std::time::Duration;

    pub use imp::HttpError;

    /// An outgoing request being built: `http::Request::get(url).header(..).send()`.
    #[derive(Debug, Clone)]
    pub struct Request {
        inner: imp::OutgoingRequest,
    }

    impl Request {
        pub fn new(method: &str, url: &str) -> Self {
            Request { inner: imp::OutgoingRequest { method: method.into(), url: url.into(), headers: Vec::new(), body: Vec::new(), timeout_ms: None } }
        }

        pub fn get(url: &str) -> Self {
            Self::new("GET", url)
        }

        pub fn post(url: &str) -> Self {
            Self::new("POST", url)
        }

        pub fn header(mut self, name: &str, value: &str) -> Self {
            self.inner.headers.push(Header { name: name.to_ascii_lowercase(), value: value.into() });
            self
        }

        /// A form body (`application/x-www-form-urlencoded`), already encoded.
        pub fn form(self, encoded: &str) -> Self {
            self.header("content-type", "application/x-www-form-urlencoded").body(encoded.as_bytes().to_vec())
        }

        pub fn body(mut self, body: Vec<u8>) -> Self {
            self.inner.body = body;
            self
        }

        /// An overall limit; the gateway caps it, and the call's deadline still applies.
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.inner.timeout_ms = Some(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
            self
        }

        pub fn send(self) -> Result<Response, HttpError> {
            imp::send(&self.inner).map(|r| Response { status: r.status, headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(), body: r.body })
        }
    }

    /// `GET url`.
    pub fn get(url: &str) -> Result<Response, HttpError> {
        Request::get(url).send()
    }

    /// A complete response (at most 1 MiB of body).
    #[derive(Debug, Clone)]
    pub struct Response {
        pub status: u16,
        /// (lower-case name, value), in order.
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Response {
        /// The first value of header `name` (any case).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }

        pub fn is_success(&self) -> bool {
            (200..300).contains(&self.status)
        }

        /// The body parsed as JSON.
        pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
            serde_json::from_slice(&self.body)
        }

        /// The body as text (invalid UTF-8 replaced).
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }
}

/// A key-value cache with expiry, private to this component in this workload,
/// shared by its instances.
pub mod cache {
    use super::wit::cache as imp;
    use std::time::Duration;

    /// The value under `key`, if present and not expired.
    pub fn get(key: &str) -> Option<Vec<u8>> {
        imp::get(key)
    }

    /// Stores `value` for `ttl` (capped by the gateway at one day). `false`
    /// when the gateway refused it (over its size limits).
    pub fn set(key: &str, value: &[u8], ttl: Duration) -> bool {
        imp::set(key, value, u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX))
    }

    pub fn delete(key: &str) {
        imp::delete(key)
    }
}

/// Log lines, attributed by the gateway to the component and workload. Never
/// log credentials or secret values.
pub mod log {
    use super::wit::log::{Level, log};

    pub fn trace(message: &str) {
        log(Level::Trace, message)
    }
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// Signature checks done natively by the gateway (always available).
pub mod crypto {
    use super::wit::crypto as imp;

    pub use imp::CryptoError;

    /// Verifies a compact JWS signature: `alg` (`RS256`, `ES256`, `EdDSA`,
    /// `HS256`, ...), `jwk` the key as JWK JSON, `signing_input` the
    /// `header.payload` part, `signature` the third part (base64url).
    /// A wrong signature is `Ok(false)`.
    pub fn verify_jws(alg: &str, jwk: &str, signing_input: &str, signature: &str) -> Result<bool, CryptoError> {
        imp::verify_jws(alg, jwk, signing_input, signature)
    }
}
