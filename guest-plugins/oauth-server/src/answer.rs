//! The shapes of this server's answers: OAuth error JSON, pages for a
//! person, and 503 when the store is down.

use crate::token::Failure;
use portcullis_plugin::store::StoreError;
use portcullis_plugin::{Response, log};
use serde_json::{Value, json};

/// A JSON answer that must not be cached (tokens, errors, registrations).
pub fn json(status: u16, body: &Value) -> Response {
    Response::new(status).json(body).no_store().header("pragma", "no-cache")
}

/// An OAuth error (RFC 6749 §5.2).
pub fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json(status, &json!({ "error": error, "error_description": description }))
}

/// A page for the person in the browser: plain text, so nothing in it is markup.
pub fn page(status: u16, message: &str) -> Response {
    Response::new(status).text(format!("{message}\n")).no_store()
}

/// The store failed: 503, and the log says why (the error names no value).
pub fn unavailable(error: &StoreError) -> Response {
    log::error(&format!("the store failed: {error}"));
    oauth_error(503, "temporarily_unavailable", "the authorization server's store is unavailable; try again shortly")
}

/// A token-logic failure as an answer.
pub fn failure(failure: Failure) -> Response {
    match failure {
        Failure::OAuth { status, error, description } => oauth_error(status, error, &description),
        Failure::Store(error) => unavailable(&error),
        Failure::Server(why) => {
            log::error(&why);
            oauth_error(500, "server_error", "the authorization server failed; see its log")
        }
    }
}
