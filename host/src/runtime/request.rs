//! The `request` resource: the read-only request a component queries during
//! one call (WIT `types.request`).
//!
//! The pipeline moves the request's headers into a [`RequestData`] behind an
//! `Arc` for the length of the chain, so a call hands the component a handle,
//! not a copy: a component that reads one header pays for one string. The
//! store holds the request of the call in flight in one slot
//! ([`super::state::HostState`]), and the handle the component gets is a
//! borrow that ends with the call.

use super::bindings::RequestHandle;
use super::bindings::types::{Header, HostRequest, Peer};
use super::state::HostState;
use http::{HeaderMap, HeaderName, Method, Uri};
use std::net::SocketAddr;
use wasmtime::component::Resource;

/// What a component may read of a request.
#[derive(Debug, Clone)]
pub struct RequestData {
    pub method: Method,
    /// `http` or `https`.
    pub scheme: &'static str,
    pub authority: String,
    /// The request target; its path starts with `/` (the pipeline refuses other forms).
    pub uri: Uri,
    pub headers: HeaderMap,
    pub remote: SocketAddr,
    pub tls_client_identity: Option<String>,
}

/// The handle passed to a component: a borrow of the one request in flight.
pub(crate) fn handle() -> Resource<RequestHandle> {
    Resource::new_borrow(0)
}

impl HostState {
    fn request(&self) -> wasmtime::Result<&RequestData> {
        self.request.as_deref().ok_or_else(|| wasmtime::format_err!("a request method was called outside a call"))
    }
}

impl HostRequest for HostState {
    fn method(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request()?.method.as_str().to_owned())
    }

    fn scheme(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request()?.scheme.to_owned())
    }

    fn authority(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request()?.authority.clone())
    }

    fn path(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request()?.uri.path().to_owned())
    }

    fn query(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<Option<String>> {
        Ok(self.request()?.uri.query().map(str::to_owned))
    }

    fn header(&mut self, _: Resource<RequestHandle>, name: String) -> wasmtime::Result<Vec<String>> {
        let request = self.request()?;
        // `from_bytes` lower-cases, so the component cannot get the case wrong.
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            return Ok(Vec::new());
        };
        Ok(request.headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect())
    }

    fn headers(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<Vec<Header>> {
        let request = self.request()?;
        Ok(request
            .headers
            .iter()
            .map(|(name, value)| Header { name: name.as_str().to_owned(), value: String::from_utf8_lossy(value.as_bytes()).into_owned() })
            .collect())
    }

    fn peer(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<Peer> {
        let request = self.request()?;
        Ok(Peer { remote_addr: request.remote.to_string(), tls_client_identity: request.tls_client_identity.clone() })
    }

    fn drop(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<()> {
        // Components only ever hold a borrow; there is nothing to free.
        Ok(())
    }
}
