//! The policy's `config` table, parsed into the component's own type.

use serde::de::DeserializeOwned;

/// Where the component runs: given to `init` with the parsed configuration.
#[derive(Debug, Clone)]
pub struct Context {
    /// The workload's name (from the policy).
    pub workload: String,
    /// The workload's `public_url`: the resource identifier clients use.
    pub public_url: String,
}

/// Parses the `config` table (a JSON object) into `T`. A refusal names the
/// key at fault, e.g. ``config.grace: invalid type: boolean `true`, expected a string``.
/// Add `#[serde(deny_unknown_fields)]` to `T` so that a misspelt key is an
/// error rather than a silently ignored setting.
pub fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = without_position(error.into_inner().to_string());
        if path == "." { format!("config: {inner}") } else { format!("config.{path}: {inner}") }
    })?;
    deserializer.end().map_err(|e| format!("config: {e}"))?;
    Ok(value)
}

/// serde_json's " at line 1 column 17" points into JSON the author never wrote
/// (the gateway made it from the policy's TOML); the key path says where.
fn without_position(message: String) -> String {
    match message.rfind(" at line ") {
        Some(at) if message[at..].contains(" column ") => message[..at].to_owned(),
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        header: String,
        limits: Option<Limits>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Limits {
        max: u32,
    }

    #[test]
    fn errors_name_the_key() {
        let error = parse_config::<Config>(r#"{"header": 3}"#).unwrap_err();
        assert_eq!(error, "config.header: invalid type: integer `3`, expected a string");
        let error = parse_config::<Config>(r#"{"header": "x", "limits": {"max": "a"}}"#).unwrap_err();
        assert!(error.starts_with("config.limits.max: "), "{error}");
        let error = parse_config::<Config>(r#"{"header": "x", "hedaer": 1}"#).unwrap_err();
        assert!(error.contains("unknown field `hedaer`"), "{error}");
        assert!(parse_config::<Config>(r#"{"header": "x"}"#).is_ok());
    }
}
