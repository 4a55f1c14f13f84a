//! The gateway's capabilities, as functions that return `Result`s. Each is
//! refused unless the policy grants it to the component (`grants = { ... }`).

use crate::__private::capabilities::portcullis::auth as wit;

/// Named secrets from the gateway's secret store (`grants.secrets`, `grants.secrets_write`).
pub mod secrets {
    use super::wit::secrets as imp;

    /// Why a secret could not be read or written.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum SecretError {
        /// The policy does not grant this name to this component.
        NotGranted,
        /// The name is granted but no such secret exists.
        NotFound,
        /// The secret store could not be opened.
        Unavailable,
    }

    impl From<imp::SecretError> for SecretError {
        fn from(error: imp::SecretError) -> Self {
            match error {
                imp::SecretError::NotGranted => SecretError::NotGranted,
                imp::SecretError::NotFound => SecretError::NotFound,
                imp::SecretError::Unavailable => SecretError::Unavailable,
            }
        }
    }

    impl std::fmt::Display for SecretError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(match self {
                SecretError::NotGranted => "the policy does not grant this secret to the component",
                SecretError::NotFound => "no such secret is stored",
                SecretError::Unavailable => "the secret store could not be opened",
            })
        }
    }

    impl std::error::Error for SecretError {}

    /// Reads the secret `name`.
    pub fn get(name: &str) -> Result<String, SecretError> {
        imp::get(name).map_err(Into::into)
    }

    /// Stores `value` under `name` (needs `grants.secrets_write`).
    pub fn set(name: &str, value: &str) -> Result<(), SecretError> {
        imp::set(name, value).map_err(Into::into)
    }

    /// Removes `name` (needs `grants.secrets_write`); a name not stored is not an error.
    pub fn delete(name: &str) -> Result<(), SecretError> {
        imp::delete(name).map_err(Into::into)
    }

    /// Takes the exclusive lock `name` (a name granted in `grants.secrets_write`),
    /// shared by every instance and every gateway process on the same secret
    /// store, waiting at most `timeout`. While it is held, [`get`] reads the
    /// store afresh (a compare-and-set re-reads before it writes). Released
    /// when the guard drops, or at the end of the call.
    pub fn lock(name: &str, timeout: std::time::Duration) -> Result<Lock, SecretError> {
        let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        imp::lock(name, millis)?;
        Ok(Lock { name: name.to_owned() })
    }

    /// A held lock; see [`lock`].
    #[must_use = "the lock is released when this guard is dropped"]
    pub struct Lock {
        name: String,
    }

    impl Drop for Lock {
        fn drop(&mut self) {
            imp::unlock(&self.name);
        }
    }
}

/// Outbound HTTP(S) to the origins granted in `grants.http`.
pub mod http {
    use super::wit::http_client as imp;
    use super::wit::types::Header;
    use std::time::Duration;

    /// Why a request was not completed.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum HttpError {
        /// The origin (given back) is not granted to this component.
        NotGranted(String),
        /// The name resolved to a private or loopback address that is not granted.
        AddressRefused(String),
        /// The URL or a header could not be used.
        InvalidRequest(String),
        /// No response within the time limit.
        Timeout,
        /// The connection or TLS handshake failed.
        Connection(String),
        /// The response body exceeded the gateway's size limit (1 MiB).
        TooLarge,
    }

    impl From<imp::HttpError> for HttpError {
        fn from(error: imp::HttpError) -> Self {
            match error {
                imp::HttpError::NotGranted(origin) => HttpError::NotGranted(origin),
                imp::HttpError::AddressRefused(address) => HttpError::AddressRefused(address),
                imp::HttpError::InvalidRequest(why) => HttpError::InvalidRequest(why),
                imp::HttpError::Timeout => HttpError::Timeout,
                imp::HttpError::Connection(why) => HttpError::Connection(why),
                imp::HttpError::TooLarge => HttpError::TooLarge,
            }
        }
    }

    impl std::fmt::Display for HttpError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                HttpError::NotGranted(origin) => write!(f, "the policy does not grant the origin {origin} to the component"),
                HttpError::AddressRefused(why) => write!(f, "a private or loopback address the policy does not grant: {why}"),
                HttpError::InvalidRequest(why) => write!(f, "the request could not be sent: {why}"),
                HttpError::Timeout => f.write_str("no response within the time limit"),
                HttpError::Connection(why) => write!(f, "the connection failed: {why}"),
                HttpError::TooLarge => f.write_str("the response body is over the size limit"),
            }
        }
    }

    impl std::error::Error for HttpError {}

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
            imp::send(&self.inner).map_err(HttpError::from).map(|r| Response {
                status: r.status,
                headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
                body: r.body,
            })
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

    /// Stores `value` for `ttl`, in whole seconds rounded up (capped by the
    /// gateway at one day). `false` when the gateway refused it (over its size
    /// limits).
    pub fn set(key: &str, value: &[u8], ttl: Duration) -> bool {
        let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        imp::set(key, value, u32::try_from(seconds).unwrap_or(u32::MAX))
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

    /// Why a signature could not be checked (a wrong signature is `Ok(false)`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CryptoError {
        UnsupportedAlgorithm,
        InvalidKey,
        MalformedSignature,
    }

    impl std::fmt::Display for CryptoError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(match self {
                CryptoError::UnsupportedAlgorithm => "the algorithm is not one the gateway verifies",
                CryptoError::InvalidKey => "the key is not a valid JWK of the algorithm's type",
                CryptoError::MalformedSignature => "the signature is not valid base64url",
            })
        }
    }

    impl std::error::Error for CryptoError {}

    /// Verifies a compact JWS signature: `alg` (`RS256`, `ES256`, `EdDSA`,
    /// `HS256`, ...), `jwk` the key as JWK JSON, `signing_input` the
    /// `header.payload` part, `signature` the third part (base64url).
    /// A wrong signature is `Ok(false)`.
    pub fn verify_jws(alg: &str, jwk: &str, signing_input: &str, signature: &str) -> Result<bool, CryptoError> {
        imp::verify_jws(alg, jwk, signing_input, signature).map_err(|error| match error {
            imp::CryptoError::UnsupportedAlgorithm => CryptoError::UnsupportedAlgorithm,
            imp::CryptoError::InvalidKey => CryptoError::InvalidKey,
            imp::CryptoError::MalformedSignature => CryptoError::MalformedSignature,
        })
    }
}

/// JWS signing with keys the gateway holds (`grants.signing_keys`); the private
/// keys never enter the component.
pub mod signing {
    use super::wit::signing as imp;

    /// Why nothing was signed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum SigningError {
        /// The policy grants this component no signing keys.
        NotGranted,
        /// The claims are not a JSON object, or the type is not a token type.
        InvalidClaims,
    }

    impl std::fmt::Display for SigningError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(match self {
                SigningError::NotGranted => "the policy grants this component no signing keys",
                SigningError::InvalidClaims => "the claims are not a JSON object, or the type is not a token type",
            })
        }
    }

    impl std::error::Error for SigningError {}

    impl From<imp::SigningError> for SigningError {
        fn from(error: imp::SigningError) -> Self {
            match error {
                imp::SigningError::NotGranted => SigningError::NotGranted,
                imp::SigningError::InvalidClaims => SigningError::InvalidClaims,
            }
        }
    }

    /// Signs `claims_json` (a JSON object) with the first listed key as a
    /// compact JWS whose header carries `alg`, `kid` and `typ`.
    pub fn sign(claims_json: &str, typ: &str) -> Result<String, SigningError> {
        imp::sign(claims_json, typ).map_err(Into::into)
    }

    /// Every listed public key, as a JWK Set JSON document.
    pub fn jwks() -> Result<String, SigningError> {
        imp::jwks().map_err(Into::into)
    }
}

/// A key-value store shared by the gateway's replicas (`grants.store`),
/// namespaced by the gateway per workload and component. Every operation is
/// atomic on the backend.
pub mod store {
    use super::wit::store as imp;

    /// Why an operation did not happen.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum StoreError {
        /// The policy does not grant this component the store.
        NotGranted,
        /// The backend is unreachable or failed.
        Unavailable(String),
        /// The key or value exceeds the gateway's size limits.
        TooLarge,
    }

    impl std::fmt::Display for StoreError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                StoreError::NotGranted => f.write_str("the policy does not grant this component the store"),
                StoreError::Unavailable(why) => write!(f, "the store is unavailable: {why}"),
                StoreError::TooLarge => f.write_str("the key or value exceeds the store's size limits"),
            }
        }
    }

    impl std::error::Error for StoreError {}

    impl From<imp::StoreError> for StoreError {
        fn from(error: imp::StoreError) -> Self {
            match error {
                imp::StoreError::NotGranted => StoreError::NotGranted,
                imp::StoreError::Unavailable(why) => StoreError::Unavailable(why),
                imp::StoreError::TooLarge => StoreError::TooLarge,
            }
        }
    }

    /// The value under `key`, if present and not expired.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        imp::get(key).map_err(Into::into)
    }

    /// Stores `value` under `key` for `ttl_seconds`.
    pub fn put(key: &str, value: &[u8], ttl_seconds: u32) -> Result<(), StoreError> {
        imp::put(key, value, ttl_seconds).map_err(Into::into)
    }

    /// Stores `value` only when `key` is absent; whether it was stored.
    pub fn put_new(key: &str, value: &[u8], ttl_seconds: u32) -> Result<bool, StoreError> {
        imp::put_new(key, value, ttl_seconds).map_err(Into::into)
    }

    /// Replaces the value only when it is exactly `expected`; whether it was replaced.
    pub fn swap(key: &str, expected: &[u8], value: &[u8], ttl_seconds: u32) -> Result<bool, StoreError> {
        imp::swap(key, expected, value, ttl_seconds).map_err(Into::into)
    }

    /// Removes `key` and gives back its value: of several callers, exactly one gets it.
    pub fn take(key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        imp::take(key).map_err(Into::into)
    }

    /// Removes `key` (absent is fine).
    pub fn delete(key: &str) -> Result<(), StoreError> {
        imp::delete(key).map_err(Into::into)
    }

    /// Adds one to the counter `key` (expiring `window_seconds` after its first
    /// count) and gives the count.
    pub fn count(key: &str, window_seconds: u32) -> Result<u64, StoreError> {
        imp::count(key, window_seconds).map_err(Into::into)
    }
}

/// Events for the gateway's metrics (`portcullis_component_events_total`):
/// a fixed set, counted per workload and component. Always available.
pub mod events {
    use super::wit::events as imp;

    pub use imp::Event;

    /// Counts one `event`.
    pub fn report(event: Event) {
        imp::report(event);
    }
}
