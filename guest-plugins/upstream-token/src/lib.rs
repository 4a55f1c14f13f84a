//! `builtin:upstream-token`: each user's own access token toward the MCP
//! server. The workload's authorization server (`builtin:oauth-server`)
//! stores, when a user logs in, the upstream provider's tokens sealed under
//! the user's session (`session:{sid}:{provider}`); the access token it
//! issues carries that `sid`. This injector reads the `sid` of the caller the
//! inbound chain verified, and sets the stored access token on the request
//! in place of the client's (which the verifier consumed: it never goes on).
//!
//! - **Renewal** ([`renew`]): a token due within `renew_before_seconds` is
//!   refreshed with the provider's refresh token, by one request across
//!   every replica sharing the store (a lease), the others waiting for its
//!   result; the rotated record replaces the old one in one atomic swap.
//! - **The upstream's 401** (`retry`): renewed once and the request sent
//!   again; a renewal that fails, or a second 401, ends the session's tokens
//!   from this provider and answers the client 401 with the resource's
//!   metadata, so it logs in again. Never a loop.
//! - **Several providers** (`tools`): an entry per provider, each for the
//!   calls of its tools. A session whose login did not go through the
//!   provider (not asked for, or declined there) is answered 403
//!   `insufficient_scope` naming the provider's scope (`upstream:{name}`),
//!   so the client asks for it; the other providers' calls go on.
//!
//! Grants: the store namespace the server writes in (`store = "<name>"` on
//! both), the token key and the provider's client secret (if any), and
//! `http` to the provider's token endpoint.

mod challenge;
mod config;
mod renew;

use config::{Checked, Config};
use portcullis_plugin::prelude::*;
use provider_tokens::exchange::RefreshError;
use provider_tokens::seal::TokenKey;
use provider_tokens::session::Session;
use provider_tokens::tokens::StoredTokens;
use renew::{Outcome, Renewer};
use std::rc::Rc;

struct UpstreamToken {
    config: Checked,
    token_key: TokenKey,
    challenge: challenge::Challenge,
}

impl Injector for UpstreamToken {
    type Config = Config;

    fn init(config: Config, context: &Context) -> Result<Self, String> {
        let mut config = config.check()?;
        if store::get("grant-check") == Err(store::StoreError::NotGranted) {
            return Err(
                "the policy does not grant this component the store: give it the authorization server's namespace (`store = \"sessions\"` on both)".into()
            );
        }
        let token_key = TokenKey::new(&config.token_key_secret)?;
        let challenge = challenge::Challenge::new(&context.public_url, &config.provider)?;
        config.issuer.get_or_insert_with(|| challenge.origin().to_owned());
        Ok(UpstreamToken { config, token_key, challenge })
    }

    fn manifest(&self) -> Manifest {
        Manifest::new().produces(&self.config.header)
    }

    fn inject(&self, request: &Request) -> Injection {
        if !self.needed_by(request) {
            return forward().into();
        }
        match self.current(request) {
            Ok(tokens) => self.forward(&tokens),
            Err(refusal) => refusal.into_injection(&self.challenge),
        }
    }
}

impl Retry for UpstreamToken {
    fn upstream_refused(&self, request: &Request, retried: bool) -> Injection {
        if !self.needed_by(request) {
            return forward().into();
        }
        match self.after_refusal(request, retried) {
            Ok(tokens) => self.forward(&tokens),
            Err(refusal) => refusal.into_injection(&self.challenge),
        }
    }
}

/// Why no token goes upstream.
enum Refusal {
    /// No session, or its tokens are gone or dead: the client logs in again (401).
    LogIn(String),
    /// The session never logged in at the provider: the client asks for its scope (403).
    Connect,
    /// The store or the provider cannot answer now; nothing was decided (503).
    Unavailable(String),
}

impl Refusal {
    fn into_injection(self, challenge: &challenge::Challenge) -> Injection {
        match self {
            Refusal::LogIn(why) => {
                log::info(&format!("no upstream token for this request: {why}"));
                Injection::Deny(challenge.log_in_again())
            }
            Refusal::Connect => {
                log::info("no upstream token for this request: the session's login did not go through the provider; its scope is asked for");
                Injection::Deny(challenge.connect())
            }
            Refusal::Unavailable(why) => {
                log::warn(&format!("the upstream token cannot be had now: {why}"));
                Injection::Deny(
                    deny(503).header("retry-after", "1").error("temporarily_unavailable", "the upstream credential cannot be read or renewed now; try again"),
                )
            }
        }
    }
}

impl UpstreamToken {
    /// Whether `request` needs the provider's token: every request, or,
    /// with `tools`, one whose MCP calls include a call of one of them.
    fn needed_by(&self, request: &Request) -> bool {
        let Some(tools) = &self.config.tools else { return true };
        request.mcp_calls().iter().any(|call| call.method == "tools/call" && call.name.as_ref().is_some_and(|name| tools.contains(name)))
    }

    fn forward(&self, tokens: &StoredTokens) -> Injection {
        let value = match self.config.prefix.as_deref() {
            Some(prefix) => format!("{prefix}{}", tokens.access_token),
            None => tokens.access_token.clone(),
        };
        forward().set_header(&self.config.header, value).into()
    }

    /// The session's tokens for this request, renewed when due.
    fn current(&self, request: &Request) -> Result<Rc<StoredTokens>, Refusal> {
        let session = session_of(request, self.config.issuer.as_deref().unwrap_or_default()).map_err(Refusal::LogIn)?;
        let renewer = self.renewer(&session)?;
        let Some((sealed, stored)) = renewer.load().map_err(Refusal::Unavailable)? else {
            return Err(self.missing(&renewer));
        };
        let now = renew::now();
        if !stored.due(now, self.config.renew_before_seconds) {
            return Ok(stored);
        }
        match renewer.renew(&sealed, &stored) {
            Outcome::Renewed(tokens) => Ok(tokens),
            Outcome::Failed(RefreshError::Refused(why)) => Err(self.end(&renewer, &session, why)),
            // The provider or the store failed: the old token serves while it is valid.
            Outcome::Failed(RefreshError::Failed(why)) if stored.expires_at.is_some_and(|expires| expires > now) => {
                log::warn(&format!("the upstream token could not be renewed ({why}); the current one serves until it expires"));
                Ok(stored)
            }
            Outcome::Failed(RefreshError::Failed(why)) => Err(Refusal::Unavailable(why)),
            Outcome::Cannot(why) => Err(Refusal::LogIn(why)),
        }
    }

    /// After the upstream refused the token this request carried.
    fn after_refusal(&self, request: &Request, retried: bool) -> Result<Rc<StoredTokens>, Refusal> {
        let session = session_of(request, self.config.issuer.as_deref().unwrap_or_default()).map_err(Refusal::LogIn)?;
        let renewer = self.renewer(&session)?;
        if retried {
            return Err(self.end(&renewer, &session, "the upstream refused the renewed token too".into()));
        }
        let Some((sealed, stored)) = renewer.load().map_err(Refusal::Unavailable)? else {
            return Err(Refusal::LogIn(format!("the session has no tokens from `{}`", self.config.provider)));
        };
        // Another request (or replica) renewed it since this one was sent: use that.
        let sent = request.header(&self.config.header);
        if !sent.iter().any(|value| value.ends_with(stored.access_token.as_str())) {
            return Ok(stored);
        }
        match renewer.renew(&sealed, &stored) {
            Outcome::Renewed(tokens) => Ok(tokens),
            Outcome::Failed(why) => Err(self.end(&renewer, &session, format!("the upstream refused the token and the renewal failed: {why}"))),
            Outcome::Cannot(why) => Err(self.end(&renewer, &session, why)),
        }
    }

    /// Why the session has no tokens from the provider: it ended, they were
    /// ended (log in again), or its login never went there (ask for it).
    fn missing(&self, renewer: &Renewer) -> Refusal {
        let provider = &self.config.provider;
        match renewer.logged_in_there() {
            Ok(Some(false)) => Refusal::Connect,
            Ok(Some(true)) => Refusal::LogIn(format!("the session's tokens from `{provider}` were ended")),
            Ok(None) => Refusal::LogIn("the session has ended".into()),
            Err(why) => Refusal::Unavailable(why),
        }
    }

    fn renewer<'a>(&'a self, session: &'a Session) -> Result<Renewer<'a>, Refusal> {
        let key = self.token_key.get().map_err(Refusal::Unavailable)?;
        Ok(Renewer::new(&session.id, &session.subject, &self.config.provider, key, self.config.wait_ms))
    }

    /// Ends the session's tokens from the provider: the client logs in again.
    fn end(&self, renewer: &Renewer, session: &Session, why: String) -> Refusal {
        renewer.forget();
        events::report(events::Event::SessionEnded);
        log::warn(&format!("audit: the upstream tokens of `{}` from `{}` were ended: {why}", session.subject, self.config.provider));
        Refusal::LogIn(why)
    }
}

/// The request's caller's session (see `provider_tokens::session`).
fn session_of(request: &Request, issuer: &str) -> Result<Session, String> {
    let identity = request.identity().ok_or("the request has no verified caller (is an authenticator in front of this injector?)")?;
    Session::of(&identity, issuer)
}

portcullis_plugin::export_session_injector!(UpstreamToken);
