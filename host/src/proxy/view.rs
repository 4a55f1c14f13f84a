//! The request as components see it, and applying the header edits they return.

use crate::runtime::bindings::types::{Header, HeaderEdit, Peer, RequestView};
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use std::net::SocketAddr;

/// Who is connected, recorded once per connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub remote: SocketAddr,
    /// `https` on TLS listeners.
    pub scheme: &'static str,
    pub tls_client_identity: Option<String>,
}

/// Builds the component's view of a request. Header values that are not UTF-8
/// are left out (components compare text; a credential is never binary).
pub fn request_view(workload: &str, parts: &Parts, authority: &str, conn: &ConnectionInfo) -> RequestView {
    let headers = parts
        .headers
        .iter()
        .filter_map(|(name, value)| Some(Header { name: name.as_str().to_owned(), value: value.to_str().ok()?.to_owned() }))
        .collect();
    RequestView {
        workload: workload.to_owned(),
        method: parts.method.as_str().to_owned(),
        scheme: conn.scheme.to_owned(),
        authority: authority.to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        peer: Peer { remote_addr: conn.remote.to_string(), tls_client_identity: conn.tls_client_identity.clone() },
    }
}

/// Why a component's header edit cannot be applied.
#[derive(Debug)]
pub struct BadEdit(pub String);

/// Headers a component may not touch: they decide how the request is framed
/// and routed, and are the gateway's alone (request smuggling otherwise).
pub fn protected(name: &HeaderName) -> bool {
    name == header::HOST
        || name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name == header::CONNECTION
        || name == header::UPGRADE
        || name == header::TE
        || name.as_str().starts_with("x-forwarded-")
}

/// A header edit that passed [`check_edits`].
enum Checked {
    Set(HeaderName, HeaderValue),
    Append(HeaderName, HeaderValue),
    Remove(HeaderName),
}

fn parse_edits(edits: &[HeaderEdit]) -> Result<Vec<Checked>, BadEdit> {
    edits
        .iter()
        .map(|edit| {
            let raw_name = match edit {
                HeaderEdit::Set(h) | HeaderEdit::Append(h) => &h.name,
                HeaderEdit::Remove(name) => name,
            };
            let name = HeaderName::from_bytes(raw_name.as_bytes()).map_err(|_| BadEdit(format!("invalid header name {raw_name:?}")))?;
            if protected(&name) {
                return Err(BadEdit(format!("the header `{name}` is managed by the gateway")));
            }
            let value = |v: &str| HeaderValue::from_str(v).map_err(|_| BadEdit(format!("invalid value for header `{name}`")));
            Ok(match edit {
                HeaderEdit::Set(h) => Checked::Set(name.clone(), value(&h.value)?),
                HeaderEdit::Append(h) => Checked::Append(name.clone(), value(&h.value)?),
                HeaderEdit::Remove(_) => Checked::Remove(name),
            })
        })
        .collect()
}

/// Checks edits without applying them (the runtime checks every verdict).
pub fn check_edits(edits: &[HeaderEdit]) -> Result<(), BadEdit> {
    parse_edits(edits).map(|_| ())
}

/// Applies `edits` in order. Every edit is checked before any is applied.
pub fn apply_edits(headers: &mut http::HeaderMap, edits: &[HeaderEdit]) -> Result<(), BadEdit> {
    for edit in parse_edits(edits)? {
        match edit {
            Checked::Set(name, value) => {
                headers.insert(name, value);
            }
            Checked::Append(name, value) => {
                headers.append(name, value);
            }
            Checked::Remove(name) => {
                headers.remove(name);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> Header {
        Header { name: name.into(), value: value.into() }
    }

    #[test]
    fn edits_apply_in_order() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-key", "secret".parse().unwrap());
        headers.insert("a", "1".parse().unwrap());
        apply_edits(&mut headers, &[HeaderEdit::Remove("x-key".into()), HeaderEdit::Set(h("a", "2")), HeaderEdit::Append(h("a", "3"))]).unwrap();
        assert!(headers.get("x-key").is_none());
        let a: Vec<_> = headers.get_all("a").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(a, ["2", "3"]);
    }

    #[test]
    fn protected_and_invalid_edits_are_refused_whole() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-key", "secret".parse().unwrap());
        for bad in [
            vec![HeaderEdit::Remove("x-key".into()), HeaderEdit::Set(h("host", "evil"))],
            vec![HeaderEdit::Remove("x-key".into()), HeaderEdit::Set(h("transfer-encoding", "chunked"))],
            vec![HeaderEdit::Remove("x-key".into()), HeaderEdit::Set(h("x-forwarded-for", "1.2.3.4"))],
            vec![HeaderEdit::Remove("x-key".into()), HeaderEdit::Set(h("bad name", "v"))],
            vec![HeaderEdit::Remove("x-key".into()), HeaderEdit::Set(h("a", "line\nbreak"))],
        ] {
            assert!(apply_edits(&mut headers, &bad).is_err());
            assert!(headers.get("x-key").is_some(), "nothing applied when one edit is bad");
        }
    }
}
