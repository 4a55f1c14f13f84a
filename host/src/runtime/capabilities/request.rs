//! The `request` resource: the read-only request a component queries during
//! one call. Always available: it reaches nothing outside the request.

use super::HostState;
use crate::runtime::bindings::RequestHandle;
use crate::runtime::bindings::mcp::McpCall;
use crate::runtime::bindings::types::{Header, HostRequest, Identity, Peer};
use crate::runtime::request::RequestData;
use http::HeaderName;
use wasmtime::component::Resource;

/// The handle passed to a component: a borrow of the one request in flight.
pub(crate) fn handle() -> Resource<RequestHandle> {
    Resource::new_borrow(0)
}

impl HostState {
    fn request(&self) -> wasmtime::Result<&RequestData> {
        self.request.as_deref().ok_or_else(|| wasmtime::format_err!("a request method was called outside a call"))
    }
}

/// The `mcp` interface holds only types: nothing to implement.
impl crate::runtime::bindings::mcp::Host for HostState {}

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

    fn mcp_calls(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<Vec<McpCall>> {
        Ok(self.request()?.mcp_calls.clone())
    }

    fn body(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.request()?.body.to_vec())
    }

    fn identity(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<Option<Identity>> {
        Ok(self.request()?.identity.clone())
    }

    fn drop(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<()> {
        // Components only ever hold a borrow; there is nothing to free.
        Ok(())
    }
}
