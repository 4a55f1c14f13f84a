//! The JSON-RPC message of an MCP POST, read once by the gateway: what the
//! authorizers, the audit log and the components' `request.mcp-calls` see.
//!
//! "Once" means one reading for every server behind the gateway too: a message
//! that another JSON parser could read differently is refused (400), not
//! guessed at. Go's `encoding/json` and many C# servers match keys without
//! regard to case, and parsers disagree on which of two equal keys wins, so a
//! message may not have two keys equal under case folding in any object, nor a
//! key that folds to one the gateway reads without being spelt exactly so
//! ([`keys`]). Integer ids stay within what every server holds exactly
//! (I-JSON, RFC 7493), and resource URIs are in the one spelling policies
//! match ([`crate::paths::resource_uri_problem`]).

use crate::runtime::bindings::mcp::McpCall;
use http::HeaderMap;
use portcullis_contract::mcp::{McpMethod, Subject};
use serde_json::Value;

/// The largest integer id: ±(2^53 − 1), what an IEEE double (JavaScript's
/// number, Go's `float64` in `any`) holds exactly (I-JSON, RFC 7493 2.2).
const MAX_ID: u64 = (1 << 53) - 1;

/// Why a POST to an MCP workload is not a usable JSON-RPC message (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    NotJson,
    NotJsonRpc(&'static str),
    /// `Mcp-Method` or `Mcp-Name` says something else than the body.
    HeadersDisagree(&'static str),
    /// Keys another parser could read differently.
    AmbiguousKeys(&'static str),
    /// A resource URI that is not the one spelling of its resource.
    ResourceUri(&'static str),
}

impl MessageError {
    pub fn describe(self) -> &'static str {
        match self {
            MessageError::NotJson => "the body is not JSON",
            MessageError::NotJsonRpc(why) | MessageError::HeadersDisagree(why) | MessageError::AmbiguousKeys(why) | MessageError::ResourceUri(why) => why,
        }
    }
}

/// The calls (requests and notifications) of one message or batch. Responses
/// the client sends back to the server (to sampling or elicitation requests)
/// are not calls: they are checked for shape and left out.
pub fn parse(body: &[u8]) -> Result<Vec<McpCall>, MessageError> {
    keys::check(body)?;
    let value: Value = serde_json::from_slice(body).map_err(|_| MessageError::NotJson)?;
    let messages = match value {
        Value::Object(message) => vec![message],
        Value::Array(batch) if batch.is_empty() => return Err(MessageError::NotJsonRpc("an empty batch")),
        Value::Array(batch) => batch
            .into_iter()
            .map(|m| match m {
                Value::Object(message) => Ok(message),
                _ => Err(MessageError::NotJsonRpc("a batch entry is not an object")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(MessageError::NotJsonRpc("the body is neither a JSON-RPC message nor a batch")),
    };
    let mut calls = Vec::with_capacity(messages.len());
    for message in messages {
        if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(MessageError::NotJsonRpc("`jsonrpc` is not \"2.0\""));
        }
        let id = match message.get("id") {
            None => None,
            // Integers only: `1.0` or `1e22` would not match the `1` a server answers with,
            // and past 2^53 a server that reads numbers as doubles answers with another id.
            Some(Value::Number(n)) if n.as_i64().is_some_and(|i| i.unsigned_abs() <= MAX_ID) => Some(n.to_string()),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
                return Err(MessageError::NotJsonRpc("`id` is an integer outside ±(2^53 − 1), which not every server reads exactly"));
            }
            Some(id @ Value::String(_)) => Some(id.to_string()),
            Some(_) => return Err(MessageError::NotJsonRpc("`id` is neither a string nor an integer")),
        };
        match message.get("method") {
            Some(Value::String(method)) => calls.push(call(method, message.get("params"), id)?),
            Some(_) => return Err(MessageError::NotJsonRpc("`method` is not a string")),
            None if id.is_some() && (message.contains_key("result") || message.contains_key("error")) => {}
            None => return Err(MessageError::NotJsonRpc("neither a request, a notification nor a response")),
        }
    }
    Ok(calls)
}

/// One request or notification; the subject of the call comes from where
/// each method keeps it.
fn call(method: &str, params: Option<&Value>, id: Option<String>) -> Result<McpCall, MessageError> {
    let field = |key: &str| params.and_then(|p| p.get(key));
    let uri = |uri: Option<&Value>| -> Result<String, MessageError> {
        let uri = uri.and_then(Value::as_str).ok_or(MessageError::NotJsonRpc("the call has no `params.uri` string"))?;
        match crate::paths::resource_uri_problem(uri) {
            Some(why) => Err(MessageError::ResourceUri(why)),
            None => Ok(uri.to_owned()),
        }
    };
    let mut arguments_json = match field("arguments") {
        None | Some(Value::Null) => None,
        Some(arguments @ Value::Object(_)) => Some(arguments.to_string()),
        Some(_) => return Err(MessageError::NotJsonRpc("`params.arguments` is not an object")),
    };
    let name = match McpMethod::parse(method).and_then(McpMethod::subject) {
        Some(Subject::Name) => Some(field("name").and_then(Value::as_str).ok_or(MessageError::NotJsonRpc("the call has no `params.name` string"))?.to_owned()),
        Some(Subject::Uri) => Some(uri(field("uri"))?),
        // A completion is about the prompt or resource its `ref` names; the
        // `ref` itself is its `arguments_json`, which [`completion_subject`] reads.
        Some(Subject::Reference) => {
            const NO_REF: MessageError =
                MessageError::NotJsonRpc("`completion/complete` needs a `params.ref` of type `ref/prompt` with a `name`, or `ref/resource` with a `uri`");
            let reference = field("ref").filter(|r| r.is_object()).ok_or(NO_REF)?;
            let decided_as = reference.get("type").and_then(Value::as_str).and_then(McpMethod::of_reference);
            let subject = match decided_as.and_then(McpMethod::subject) {
                Some(Subject::Name) => reference.get("name").and_then(Value::as_str).ok_or(NO_REF)?.to_owned(),
                Some(Subject::Uri) => uri(Some(reference.get("uri").ok_or(NO_REF)?))?,
                _ => return Err(NO_REF),
            };
            arguments_json = Some(reference.to_string());
            Some(subject)
        }
        None => None,
    };
    Ok(McpCall { method: method.to_owned(), name, arguments_json, annotations_json: None, id })
}

/// What a `completion/complete` call is decided as: `prompts/get` of a
/// `ref/prompt`, `resources/read` of a `ref/resource` (`None` for a call
/// [`parse`] did not make).
pub fn completion_subject(call: &McpCall) -> Option<McpCall> {
    let reference: Value = serde_json::from_str(call.arguments_json.as_deref()?).ok()?;
    let method = McpMethod::of_reference(reference.get("type")?.as_str()?)?;
    Some(McpCall { method: method.as_str().to_owned(), name: Some(call.name.clone()?), arguments_json: None, annotations_json: None, id: call.id.clone() })
}

/// The headers of MCP revisions that name the method and its subject outside
/// the body must say what the body says: a proxy that routes or authorizes
/// by header and a server that acts on the body must not see two requests.
pub fn check_headers(headers: &HeaderMap, calls: &[McpCall]) -> Result<(), MessageError> {
    for (header, what) in [("mcp-method", "`Mcp-Method`"), ("mcp-name", "`Mcp-Name`")] {
        let mut values = headers.get_all(header).iter();
        let Some(value) = values.next() else {
            continue;
        };
        if values.next().is_some() {
            return Err(MessageError::HeadersDisagree("`Mcp-Method` or `Mcp-Name` is sent more than once"));
        }
        let [call] = calls else {
            return Err(MessageError::HeadersDisagree("`Mcp-Method` and `Mcp-Name` need a message with exactly one call"));
        };
        let expected = if what == "`Mcp-Method`" { Some(call.method.as_str()) } else { call.name.as_deref() };
        if expected.map(str::as_bytes) != Some(value.as_bytes()) {
            return Err(MessageError::HeadersDisagree(if what == "`Mcp-Method`" {
                "`Mcp-Method` does not match the body's method"
            } else {
                "`Mcp-Name` does not match the body's tool, prompt or resource"
            }));
        }
    }
    Ok(())
}

/// The key check: one pass over the raw message, before it is read.
mod keys {
    use super::MessageError;
    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::collections::HashSet;
    use std::fmt;

    const TWO_KEYS: &str = "an object has two keys that are equal, or equal but for case";
    const MISSPELT: &str = "a key differs from one the gateway reads only by case";

    /// Where an object sits, and so which of its keys the gateway reads.
    #[derive(Clone, Copy)]
    enum Level {
        /// The body: a message, or a batch of them.
        Body,
        Message,
        Params,
        /// `params.ref` of `completion/complete`.
        Ref,
        /// Anything deeper (`arguments`, `result`, `_meta`, ...): only the
        /// rule on two keys applies, since a tool's argument may be `Name`.
        Other,
    }

    impl Level {
        fn read(self) -> &'static [&'static str] {
            match self {
                Level::Body | Level::Message => &["jsonrpc", "id", "method", "params", "result", "error"],
                Level::Params => &["name", "uri", "arguments", "ref"],
                Level::Ref => &["type", "name", "uri"],
                Level::Other => &[],
            }
        }

        fn member(self, key: &str) -> Level {
            match (self, key) {
                (Level::Body | Level::Message, "params") => Level::Params,
                (Level::Params, "ref") => Level::Ref,
                _ => Level::Other,
            }
        }

        fn item(self) -> Level {
            match self {
                Level::Body => Level::Message,
                _ => Level::Other,
            }
        }
    }

    /// Refuses what another parser could read differently (see the module docs).
    pub(super) fn check(body: &[u8]) -> Result<(), MessageError> {
        let mut reader = serde_json::Deserializer::from_slice(body);
        match Level::Body.deserialize(&mut reader).and_then(|()| reader.end()) {
            Ok(()) => Ok(()),
            Err(error) if error.is_data() && error.to_string().starts_with(TWO_KEYS) => Err(MessageError::AmbiguousKeys(TWO_KEYS)),
            Err(error) if error.is_data() && error.to_string().starts_with(MISSPELT) => Err(MessageError::AmbiguousKeys(MISSPELT)),
            Err(_) => Err(MessageError::NotJson),
        }
    }

    /// A key as case-insensitive parsers compare it: Unicode simple case
    /// folding, which Go's `EqualFold` uses, closed over what .NET's
    /// `OrdinalIgnoreCase` (upper case) and Java's `equalsIgnoreCase` (lower
    /// case) equate. Each character goes to the lower case of its upper case,
    /// so `ſ` (long s) meets `s`, `ı` meets `i`, `ς` meets `σ`, and the Kelvin
    /// sign meets `k`, as they do under folding; `char::to_lowercase` alone
    /// misses these. `İ` is Java's `i`. A character whose upper case is longer
    /// (`ß`, whose full upper case is `SS`) keeps its lower case, as simple
    /// folding does. Over-equating errs on the side of refusing.
    pub(super) fn fold(key: &str) -> String {
        let mut folded = String::with_capacity(key.len());
        for c in key.chars() {
            if c == '\u{130}' {
                folded.push('i');
                continue;
            }
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => folded.extend(u.to_lowercase()),
                _ => folded.extend(c.to_lowercase()),
            }
        }
        folded
    }

    impl<'de> DeserializeSeed<'de> for Level {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Level {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("JSON")
        }

        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(self.item())?.is_some() {}
            Ok(())
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let level = if matches!(self, Level::Body) { Level::Message } else { self };
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                let folded = fold(&key);
                if level.read().iter().any(|read| *read == folded && *read != key) {
                    return Err(de::Error::custom(MISSPELT));
                }
                let member = level.member(&key);
                if !seen.insert(folded) {
                    return Err(de::Error::custom(TWO_KEYS));
                }
                map.next_value_seed(member)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
