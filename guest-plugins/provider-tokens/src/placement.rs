//! Where an injector puts the token toward the upstream: a header, and what
//! goes before the token. One rule for both injectors.

/// The header (lower case) and its prefix: `Bearer ` for `authorization`
/// unless `prefix` says otherwise, none for another header.
pub fn check(header: &str, prefix: Option<String>) -> Result<(String, Option<String>), String> {
    let header = header.to_ascii_lowercase();
    if header.is_empty() || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("`header`: {header:?} is not a header name"));
    }
    let prefix = match (prefix, header.as_str()) {
        (Some(prefix), _) => Some(prefix),
        (None, "authorization") => Some("Bearer ".to_owned()),
        (None, _) => None,
    };
    Ok((header, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_prefixes() {
        assert_eq!(check("Authorization", None).unwrap(), ("authorization".into(), Some("Bearer ".into())));
        assert_eq!(check("X-GitHub-Token", None).unwrap(), ("x-github-token".into(), None));
        assert_eq!(check("authorization", Some("token ".into())).unwrap().1.as_deref(), Some("token "));
        assert!(check("bad header", None).is_err() && check("", None).is_err());
    }
}
