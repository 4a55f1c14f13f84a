//! JSON values (claims, arguments) as Cedar values.
//!
//! - string → String, `true`/`false` → Bool
//! - an integer (also `5.0`) in i64 range → Long
//! - another number → `decimal`, when Cedar's decimal holds it exactly (at
//!   most four digits after the point, within ±922337203685477.5807); else
//!   left out
//! - list → Set of its convertible elements
//! - object → Record of its convertible members
//! - null → left out
//!
//! A value left out is an absent attribute: `has` is false, and a policy that
//! reads it anyway fails with an error, which refuses the call.

use cedar_policy::RestrictedExpression;
use serde_json::Value;

/// Lists and objects nested deeper than this are left out, as in ToolHive:
/// claims and arguments are data a caller chose, and evaluation should not
/// pay for arbitrary depth.
const MAX_DEPTH: usize = 10;

/// `value` as a Cedar value, or `None` when Cedar has no faithful form for it.
pub fn to_cedar(value: &Value) -> Option<RestrictedExpression> {
    convert(value, 0)
}

fn convert(value: &Value, depth: usize) -> Option<RestrictedExpression> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(RestrictedExpression::new_bool(*b)),
        Value::String(s) => Some(RestrictedExpression::new_string(s.clone())),
        Value::Number(n) => number(n),
        Value::Array(items) if depth < MAX_DEPTH => Some(RestrictedExpression::new_set(items.iter().filter_map(|item| convert(item, depth + 1)))),
        Value::Object(members) if depth < MAX_DEPTH => {
            RestrictedExpression::new_record(members.iter().filter_map(|(key, member)| Some((key.clone(), convert(member, depth + 1)?)))).ok()
        }
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn number(n: &serde_json::Number) -> Option<RestrictedExpression> {
    if let Some(long) = n.as_i64() {
        return Some(RestrictedExpression::new_long(long));
    }
    let float = n.as_f64()?;
    // `5.0` is the integer 5 written another way. (The bounds are exact
    // powers of two, so the comparison is exact too.)
    if float.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&float) {
        return Some(RestrictedExpression::new_long(float as i64));
    }
    decimal(float).map(RestrictedExpression::new_decimal)
}

/// The text of `decimal(...)` for a float Cedar's decimal holds exactly:
/// Rust prints the shortest text that reads back as the same float, so
/// `0.1` is `0.1`, and one with five or more digits after the point is not
/// a decimal.
fn decimal(float: f64) -> Option<String> {
    if !float.is_finite() {
        return None;
    }
    let text = format!("{float}");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "0"));
    if fraction.is_empty() || fraction.len() > 4 {
        return None;
    }
    // Cedar stores a decimal as an i64 count of ten-thousandths.
    let negative = whole.starts_with('-');
    let magnitude: i128 = whole.trim_start_matches('-').parse::<i128>().ok()? * 10_000 + format!("{fraction:0<4}").parse::<i128>().ok()?;
    let scaled = if negative { -magnitude } else { magnitude };
    i64::try_from(scaled).ok()?;
    Some(format!("{whole}.{fraction}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The value's Cedar text, evaluated as a context attribute.
    fn cedar(value: Value) -> Option<String> {
        let expression = to_cedar(&value)?;
        let context = cedar_policy::Context::from_pairs([("v".to_string(), expression)]).expect("a value Cedar accepts");
        let json = context.to_json_value().expect("JSON");
        Some(json["v"].to_string())
    }

    #[test]
    fn scalars() {
        assert_eq!(cedar(json!("x")).as_deref(), Some("\"x\""));
        assert_eq!(cedar(json!(true)).as_deref(), Some("true"));
        assert_eq!(cedar(json!(42)).as_deref(), Some("42"));
        assert_eq!(cedar(json!(-7)).as_deref(), Some("-7"));
        assert_eq!(cedar(json!(5.0)).as_deref(), Some("5"), "an integral float is a Long");
        assert_eq!(cedar(json!(i64::MAX)).as_deref(), Some("9223372036854775807"));
        assert_eq!(cedar(Value::Null), None);
    }

    #[test]
    fn fractions_become_decimals_when_exact() {
        assert_eq!(cedar(json!(9.5)).as_deref(), Some(r#"{"__extn":{"fn":"decimal","arg":"9.5"}}"#));
        assert_eq!(cedar(json!(-0.25)).as_deref(), Some(r#"{"__extn":{"fn":"decimal","arg":"-0.25"}}"#));
        assert_eq!(cedar(json!(0.1234)).as_deref(), Some(r#"{"__extn":{"fn":"decimal","arg":"0.1234"}}"#));
        assert_eq!(cedar(json!(0.12345)), None, "five digits: not a decimal");
        assert_eq!(cedar(json!(1e-7)), None);
        assert_eq!(cedar(json!(922337203685477.5)).as_deref(), Some(r#"{"__extn":{"fn":"decimal","arg":"922337203685477.5"}}"#));
        assert_eq!(cedar(json!(922337203685478.5)), None, "beyond decimal's range");
        assert_eq!(cedar(json!(u64::MAX)), None, "beyond Long's range");
        assert_eq!(cedar(json!(1e300)), None);
    }

    #[test]
    fn lists_and_objects() {
        // A set has no order; compare its elements.
        let set: Value = serde_json::from_str(&cedar(json!(["a", 1, null, true])).unwrap()).unwrap();
        let mut elements: Vec<String> = set.as_array().unwrap().iter().map(Value::to_string).collect();
        elements.sort();
        assert_eq!(elements, ["\"a\"", "1", "true"]);
        assert_eq!(cedar(json!({"a": 1, "b": null, "c": {"d": "e"}})).as_deref(), Some(r#"{"a":1,"c":{"d":"e"}}"#));
        assert_eq!(cedar(json!([])).as_deref(), Some("[]"));
    }

    #[test]
    fn depth_is_bounded() {
        let mut deep = json!("bottom");
        for _ in 0..20 {
            deep = json!([deep]);
        }
        // Ten levels of list survive; the eleventh is left out, so the tenth is empty.
        let text = cedar(deep).unwrap();
        assert_eq!(text, format!("{}{}", "[".repeat(10), "]".repeat(10)));
    }
}
