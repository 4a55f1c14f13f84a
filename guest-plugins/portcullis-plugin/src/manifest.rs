//! The headers a component handles, declared once and enforced by the gateway.

use crate::__private::wit;

/// What the component declares about headers (WIT `types.manifest`):
/// - `consumes`: credential headers it reads; the gateway removes them from the
///   request toward the upstream, whichever component allowed.
/// - `forwards`: consumed headers its configuration asks to pass upstream.
/// - `produces`: headers it sets; the gateway strips client-sent copies before
///   the chain, and refuses edits to any header not listed here.
///
/// Names are header names in any case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    consumes: Vec<String>,
    forwards: Vec<String>,
    produces: Vec<String>,
}

impl Manifest {
    pub fn new() -> Self {
        Self::default()
    }

    /// A credential header this component reads.
    pub fn consumes(mut self, header: impl AsRef<str>) -> Self {
        self.consumes.push(header.as_ref().to_ascii_lowercase());
        self
    }

    /// A consumed header to pass upstream anyway.
    pub fn forwards(mut self, header: impl AsRef<str>) -> Self {
        self.forwards.push(header.as_ref().to_ascii_lowercase());
        self
    }

    /// A header this component sets toward the upstream.
    pub fn produces(mut self, header: impl AsRef<str>) -> Self {
        self.produces.push(header.as_ref().to_ascii_lowercase());
        self
    }

    pub(crate) fn into_wit(self) -> wit::Manifest {
        wit::Manifest { consumes: self.consumes, forwards: self.forwards, produces: self.produces }
    }
}
