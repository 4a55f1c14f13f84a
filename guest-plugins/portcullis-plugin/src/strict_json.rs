//! JSON parsing that refuses duplicate object keys, at any depth:
//! `{"sub":"a","sub":"b"}` means different things to different parsers, so a
//! document carrying it (a token's claims, a provider's metadata) is refused
//! rather than read one way here and another way elsewhere.

use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Parses a JSON object, refusing duplicate keys at any depth. The error
/// names the problem and at most 40 printable characters of a key.
pub fn object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let Strict(value) = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON ({})", printable(&e.to_string())))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err("not a JSON object".into()),
    }
}

/// Printable ASCII only, at most 100 characters: text from the document
/// never forges a log line.
fn printable(text: &str) -> String {
    text.chars().filter(|c| (' '..='~').contains(c)).take(100).collect()
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if out.insert(key.clone(), value).is_some() {
                return Err(A::Error::custom(format!("duplicate key `{}`", printable(&key))));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert_eq!(super::object(br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).unwrap().len(), 2);
        assert!(super::object(br#"{"sub":"a","sub":"b"}"#).unwrap_err().contains("duplicate key `sub`"));
        assert!(super::object(br#"{"x":{"y":1,"y":2}}"#).unwrap_err().contains("duplicate key `y`"));
        assert!(super::object(br#"{"x":[{"z":1,"z":1}]}"#).unwrap_err().contains("duplicate key `z`"));
        assert_eq!(super::object(b"[]").unwrap_err(), "not a JSON object");
        assert!(super::object(b"<html>").unwrap_err().starts_with("not valid JSON"));
    }
}
