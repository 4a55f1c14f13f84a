//! The query of `/oauth/callback`, read strictly: each parameter once (a
//! repeated `state` or `code` could be read one way here and another way by
//! a proxy), and nothing used before the `state` is known to be ours.

use crate::upstream::text::printable;

/// What the provider sent back.
#[derive(Debug, PartialEq, Eq)]
pub struct Callback {
    pub state: String,
    pub outcome: Outcome,
    /// RFC 9207 `iss`, when the provider sends it.
    pub iss: Option<String>,
}

#[derive(PartialEq, Eq)]
pub enum Outcome {
    Code(String),
    /// The provider's `error` (sanitised, short); its description is prose
    /// from outside and stays out of messages.
    Error(String),
    /// Neither a code nor an error.
    Nothing,
}

/// Never prints the code.
impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Code(_) => f.write_str("Code(..)"),
            Outcome::Error(error) => write!(f, "Error({error:?})"),
            Outcome::Nothing => f.write_str("Nothing"),
        }
    }
}

/// Parses the callback's query (without `?`). `Err` when it is not one this
/// server can attribute to a login: no `state`, or a repeated parameter.
pub fn parse(query: &str) -> Result<Callback, String> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if params.iter().any(|(seen, _)| *seen == name) {
            return Err(format!("the callback carries `{}` more than once", printable(&name, 40)));
        }
        params.push((name.into_owned(), value.into_owned()));
    }
    let param = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let state = param("state").filter(|s| !s.is_empty()).ok_or("the callback has no `state`")?;
    let outcome = match (param("error"), param("code")) {
        // An error wins over a code: a provider that sends both did not mean the code.
        (Some(error), _) => Outcome::Error(Some(printable(&error, 64)).filter(|e| !e.is_empty()).unwrap_or_else(|| "an empty error".into())),
        (None, Some(code)) if !code.is_empty() => Outcome::Code(code),
        _ => Outcome::Nothing,
    };
    Ok(Callback { state, outcome, iss: param("iss") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code() {
        let callback = parse("code=abc%2B1&state=s1&iss=https%3A%2F%2Fidp&session_state=x").unwrap();
        assert_eq!(callback, Callback { state: "s1".into(), outcome: Outcome::Code("abc+1".into()), iss: Some("https://idp".into()) });
        assert_eq!(format!("{:?}", callback.outcome), "Code(..)");
    }

    #[test]
    fn an_error() {
        let callback = parse("error=access_denied%0D%0Aforged&error_description=The+user+said+no&state=s1").unwrap();
        assert_eq!(callback.outcome, Outcome::Error("access_deniedforged".into()));
        assert_eq!(parse("error=access_denied&code=abc&state=s1").unwrap().outcome, Outcome::Error("access_denied".into()));
        assert_eq!(parse("error=&state=s1").unwrap().outcome, Outcome::Error("an empty error".into()));
        assert_eq!(parse(&format!("error={}&state=s", "x".repeat(500))).unwrap().outcome, Outcome::Error(format!("{}...", "x".repeat(61))));
    }

    #[test]
    fn no_code() {
        assert_eq!(parse("state=s1").unwrap().outcome, Outcome::Nothing);
        assert_eq!(parse("state=s1&code=").unwrap().outcome, Outcome::Nothing);
    }

    #[test]
    fn refused() {
        assert!(parse("code=abc").unwrap_err().contains("no `state`"));
        assert!(parse("code=abc&state=").unwrap_err().contains("no `state`"));
        assert!(parse("").unwrap_err().contains("no `state`"));
        assert!(parse("code=a&state=s1&code=b").unwrap_err().contains("`code` more than once"));
        assert!(parse("code=a&state=s1&state=s2").unwrap_err().contains("`state` more than once"));
        assert!(parse("code=a&state=s1&iss=x&iss=x").unwrap_err().contains("`iss` more than once"));
        assert!(parse("state=s1&error=a&error=b").unwrap_err().contains("more than once"));
    }
}
