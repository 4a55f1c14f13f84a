//! The static bearer token (RFC THV-0043 phase 2: CI and other places where no
//! person can log in). It is looked for first, and when there is one OAuth is
//! not used for the request. Sources, in order:
//! 1. the secret `portcullis:static-token`, which the gateway fills from
//!    `PORTCULLIS_REGISTRY_TOKEN` or the file `token_file`;
//! 2. the secret named by `token_secret`.
//!
//! Both are read on every request: the gateway serves secrets from memory, so
//! this is cheap, and a replaced token takes effect at once, with no cache to
//! outlive it.

use crate::config::{Config, STATIC_TOKEN_SECRET};
use crate::token::is_header_safe;
use portcullis_plugin::secrets::{self, SecretError};

/// Where a static token came from (secret names, not values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `portcullis:static-token`.
    Gateway,
    /// The secret named by `token_secret`.
    TokenSecret,
}

impl Source {
    pub fn describe(self, config: &Config) -> String {
        match self {
            Source::Gateway => format!("the secret '{STATIC_TOKEN_SECRET}' (PORTCULLIS_REGISTRY_TOKEN or `token_file`)"),
            Source::TokenSecret => format!("the secret '{}'", config.token_secret.as_deref().unwrap_or_default()),
        }
    }
}

/// What the static sources hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The token to send as `Bearer <token>`.
    Token(String, Source),
    /// A source holds something that cannot be a header value.
    Unusable(Source),
    /// No static token: use OAuth, if configured.
    None,
}

/// Looks through the sources. `gateway_granted` is whether the policy grants
/// `portcullis:static-token` (learnt at `init`; asking without the grant
/// would log a refusal on every request). An error reading `token_secret`
/// (other than "not stored") is returned: with no OAuth to fall back on, the
/// client should learn that the store failed rather than that no token is set.
pub fn lookup(config: &Config, gateway_granted: bool) -> Result<Lookup, SecretError> {
    if gateway_granted {
        // "Not found", "not granted", and an unavailable store all mean none here:
        // the gateway fills this secret itself, from memory.
        if let Ok(raw) = secrets::get(STATIC_TOKEN_SECRET) {
            match normalise(&raw) {
                Normalised::Token(token) => return Ok(Lookup::Token(token, Source::Gateway)),
                Normalised::Unusable => return Ok(Lookup::Unusable(Source::Gateway)),
                Normalised::Empty => {}
            }
        }
    }
    if let Some(name) = &config.token_secret {
        match secrets::get(name) {
            Ok(raw) => match normalise(&raw) {
                Normalised::Token(token) => return Ok(Lookup::Token(token, Source::TokenSecret)),
                Normalised::Unusable => return Ok(Lookup::Unusable(Source::TokenSecret)),
                Normalised::Empty => {}
            },
            Err(SecretError::NotFound) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(Lookup::None)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Normalised {
    Token(String),
    Unusable,
    Empty,
}

/// The token in a secret's value: surrounding whitespace (a file's final
/// newline) and a `Bearer ` prefix (a pasted header value) are removed.
pub fn normalise(raw: &str) -> Normalised {
    let trimmed = raw.trim();
    let token = match trimmed.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => trimmed[7..].trim_start(),
        // A scheme with nothing after it.
        _ if trimmed.eq_ignore_ascii_case("bearer") => "",
        _ => trimmed,
    };
    if token.is_empty() {
        Normalised::Empty
    } else if is_header_safe(token) {
        Normalised::Token(token.to_owned())
    } else {
        Normalised::Unusable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_become_tokens() {
        assert_eq!(normalise("ghp_abc123\n"), Normalised::Token("ghp_abc123".into()));
        assert_eq!(normalise("  Bearer eyJ.a.b  "), Normalised::Token("eyJ.a.b".into()));
        assert_eq!(normalise("bearer   x"), Normalised::Token("x".into()));
        assert_eq!(normalise("Bearerx"), Normalised::Token("Bearerx".into()));
        assert_eq!(normalise(""), Normalised::Empty);
        assert_eq!(normalise(" \n"), Normalised::Empty);
        assert_eq!(normalise("Bearer "), Normalised::Empty);
        assert_eq!(normalise("two words"), Normalised::Unusable);
        assert_eq!(normalise("tok\r\nx-evil: 1"), Normalised::Unusable);
        assert_eq!(normalise("tokén"), Normalised::Unusable);
        assert_eq!(normalise("é"), Normalised::Unusable, "a multi-byte first character is not sliced");
    }
}
