//! The user's id at an OAuth 2 provider (one without ID tokens): a claim
//! path in its userinfo document, or in the token response.

use crate::upstream::fetch::{self, RESPONSE_LIMIT};
use crate::upstream::text::strict_object;
use portcullis_plugin::http;
use serde_json::{Map, Value};

/// The value at `path` (`["authed_user", "id"]`) as the subject: a non-empty
/// text, or a whole number (GitHub's `id`) written in decimal.
pub fn at_path(doc: &Map<String, Value>, path: &[String]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let value = rest.iter().try_fold(doc.get(first)?, |value, name| value.get(name))?;
    match value {
        Value::String(text) if !text.is_empty() && !text.chars().any(char::is_control) => Some(text.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// The userinfo document, asked for with the access token. `Err` follows
/// "the userinfo endpoint of `corp` ".
pub fn userinfo(endpoint: &str, access_token: &str) -> Result<Map<String, Value>, String> {
    let request = http::Request::get(endpoint).header("accept", "application/json").header("authorization", &format!("Bearer {access_token}"));
    let fetched = fetch::send(request, RESPONSE_LIMIT).map_err(|why| format!("could not be reached: {why}"))?;
    if fetched.status != 200 {
        return Err(format!("answered HTTP {}", fetched.status));
    }
    strict_object(&fetched.body).map_err(|why| format!("answered with a body that is {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(text: &str) -> Vec<String> {
        text.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn claim_paths() {
        let doc = json!({"id": 583231, "login": "octocat", "authed_user": {"id": "U123"}, "neg": -5, "float": 1.5, "empty": "", "list": ["a"],
            "bad": "a\nb"});
        let doc = doc.as_object().unwrap();
        assert_eq!(at_path(doc, &path("id")).as_deref(), Some("583231"));
        assert_eq!(at_path(doc, &path("login")).as_deref(), Some("octocat"));
        assert_eq!(at_path(doc, &path("authed_user.id")).as_deref(), Some("U123"));
        assert_eq!(at_path(doc, &path("neg")).as_deref(), Some("-5"));
        for missing in ["float", "empty", "list", "authed_user", "authed_user.name", "nope", "id.x", "bad"] {
            assert_eq!(at_path(doc, &path(missing)), None, "{missing}");
        }
        assert_eq!(at_path(doc, &[]), None);
    }
}
