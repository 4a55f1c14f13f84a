//! The request being decided on: a read-only view the component queries.

use crate::__private::wit;

/// The request (WIT `types.request`). Every method asks the gateway for one
/// piece, so a component pays only for what it reads.
///
/// Header names are matched without regard to case, by the gateway: `"X-Api-Key"`
/// and `"x-api-key"` are the same header.
pub struct Request<'a> {
    inner: &'a wit::Request,
}

/// A header that should occur once came several times; which one counts would
/// be ambiguous, so refuse the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedHeader {
    pub name: String,
}

impl std::fmt::Display for RepeatedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the header `{}` was sent more than once", self.name)
    }
}

impl std::error::Error for RepeatedHeader {}

impl<'a> Request<'a> {
    #[doc(hidden)]
    pub fn new(inner: &'a wit::Request) -> Self {
        Request { inner }
    }

    /// `GET`, `POST`, ... as received.
    pub fn method(&self) -> String {
        self.inner.method()
    }

    /// `http` or `https`: how the client reached the gateway.
    pub fn scheme(&self) -> String {
        self.inner.scheme()
    }

    /// The host (and port) the client addressed, already accepted by the workload's Host check.
    pub fn authority(&self) -> String {
        self.inner.authority()
    }

    /// The path, percent-encoded as received; starts with `/`, no dot segments.
    pub fn path(&self) -> String {
        self.inner.path()
    }

    /// The query string without `?`, if any.
    pub fn query(&self) -> Option<String> {
        self.inner.query()
    }

    /// Every value of the header `name`, in the order received; empty when absent.
    pub fn header(&self, name: &str) -> Vec<String> {
        self.inner.header(name)
    }

    /// The value of a header that must occur at most once: `Ok(None)` when
    /// absent, an error when repeated. Use this for credentials.
    pub fn single_header(&self, name: &str) -> Result<Option<String>, RepeatedHeader> {
        let mut values = self.inner.header(name);
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop()),
            _ => Err(RepeatedHeader { name: name.to_ascii_lowercase() }),
        }
    }

    /// Every header as (lower-case name, value), in order. Prefer [`Request::header`]:
    /// this copies all of them.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.inner.headers().into_iter().map(|h| (h.name, h.value)).collect()
    }

    /// The client's socket address, e.g. `127.0.0.1:53122`.
    pub fn remote_addr(&self) -> String {
        self.inner.peer().remote_addr
    }

    /// The MCP calls of the request's JSON-RPC message (one, or several for a
    /// batch), parsed by the gateway; empty unless the workload is MCP and the
    /// request is a POST.
    pub fn mcp_calls(&self) -> Vec<crate::McpCall> {
        self.inner.mcp_calls().into_iter().map(crate::McpCall::from_wit).collect()
    }

    /// The subject of the client's TLS certificate, when there is one.
    pub fn tls_client_identity(&self) -> Option<String> {
        self.inner.peer().tls_client_identity
    }

    /// The request body, read whole and bounded by the gateway: set only on a
    /// route a `serve` component declared, empty otherwise.
    pub fn body(&self) -> Vec<u8> {
        self.inner.body()
    }

    /// Who the inbound chain established: set in an injector's calls (the
    /// allowing authenticator's identity); `None` in an authenticator's or a
    /// route's call, and on an anonymous workload.
    pub fn identity(&self) -> Option<crate::Identity> {
        self.inner.identity().map(crate::Identity::from_wit)
    }
}
