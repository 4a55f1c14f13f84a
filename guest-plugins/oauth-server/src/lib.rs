//! `builtin:oauth-server`: the workload's own OAuth 2.1 authorization server,
//! in the MCP profile, that federates the login to the company's identity
//! provider (`upstream`).
//!
//! Routes, under the workload's origin (the issuer is that origin):
//! - `/.well-known/oauth-authorization-server` (and the path-inserted form
//!   for the public URL's path): RFC 8414 metadata (`metadata`);
//! - `/oauth/jwks`: the gateway's signing keys, every listed one;
//! - `/oauth/authorize`: checks the request (`authorize`), keeps it under
//!   `pending:{id}`, binds it to the browser (`browser`), asks the person
//!   about a client the policy does not list (`consent`, posted back here),
//!   and sends the person to the identity provider;
//! - `/oauth/callback`: the provider's answer (`upstream::finish`), in the
//!   browser the request is bound to; issues the code;
//! - `/oauth/token`: codes and refresh tokens (`token`);
//! - `/oauth/register`: RFC 7591 registration (`register`), unless `registration = false`;
//! - `/oauth/revoke`: RFC 7009 revocation.
//!
//! Clients are public and use PKCE S256: listed in the policy, registered,
//! or described by a Client ID Metadata Document (`clients`, `cimd`).
//! Codes and refresh tokens are stored hashed; no token value is logged.

mod answer;
mod authorize;
mod browser;
mod cimd;
mod clients;
mod config;
mod consent;
mod cors;
mod exchange;
mod form;
mod kv;
mod metadata;
mod pkce;
mod random;
mod redirect;
mod register;
mod resource;
mod routes;
mod session;
use provider_tokens::seal;
mod token;
mod upstream;

use answer::{oauth_error, page, unavailable};
use authorize::{Pending, Refusal};
use form::{Params, is_media_type};
use portcullis_plugin::prelude::*;
use portcullis_plugin::signing::SigningError;
use portcullis_plugin::store::StoreError;
use token::Tokens;
use upstream::{CallbackError, Upstreams};

/// How long an authorization request waits for the person to log in upstream.
const LOGIN_TTL: u32 = 600;
/// The registration rate limit's window.
const RATE_WINDOW: u32 = 60;

struct OAuthServer {
    config: config::Config,
    upstreams: Upstreams,
    /// The key that seals upstream tokens, read from the secret store on first use.
    token_key: seal::TokenKey,
}

impl Server for OAuthServer {
    type Config = config::File;

    fn init(file: config::File, context: &Context) -> Result<Self, String> {
        let (config, upstreams) = config::Config::new(file, &context.public_url)?;
        let upstreams = Upstreams::from_config(upstreams)?.with_session_ttl(config.refresh_token_ttl);
        // Grants are fixed for this configuration: a missing one refuses the policy, not every request.
        if signing::jwks() == Err(SigningError::NotGranted) {
            return Err("the policy grants this component no signing keys: add `signing_keys` to its grants".into());
        }
        if store::get("grant-check") == Err(StoreError::NotGranted) {
            return Err("the policy does not grant this component the store: add `store = true` to its grants".into());
        }
        let token_key = seal::TokenKey::new(&config.token_key_secret)?;
        Ok(OAuthServer { config, upstreams, token_key })
    }

    fn routes(&self) -> Vec<Route> {
        let mut paths = metadata::paths(&self.config);
        paths.extend([routes::JWKS, routes::AUTHORIZE, routes::CALLBACK, routes::TOKEN, routes::REVOKE, routes::REGISTER].map(str::to_owned));
        paths
            .into_iter()
            .filter_map(|path| {
                let (methods, cross_origin) = self.route(&path)?;
                let options: &[&str] = if cross_origin { &["OPTIONS"] } else { &[] };
                Some(Route::new(path, &[methods, options].concat()))
            })
            .collect()
    }

    fn handle(&self, request: &Request) -> Response {
        let path = request.path();
        let method = request.method();
        let Some((methods, cross_origin)) = self.route(&path) else {
            return Response::new(404);
        };
        if cross_origin && method == "OPTIONS" {
            return cors::preflight(methods);
        }
        if !methods.contains(&method.as_str()) {
            return Response::new(405).header("allow", methods.join(", "));
        }
        let answer = match path.as_str() {
            routes::JWKS => self.jwks(),
            routes::AUTHORIZE if method == "POST" => self.consented(request),
            routes::AUTHORIZE => self.authorize(request),
            routes::CALLBACK => self.callback(request),
            routes::TOKEN => self.token(request),
            routes::REVOKE => self.revoke(request),
            routes::REGISTER => self.register(request),
            _ => Response::new(200).json(&metadata::document(&self.config)).header("cache-control", "public, max-age=300"),
        };
        if cross_origin { cors::allow_any_origin(answer) } else { answer }
    }
}

impl OAuthServer {
    /// The methods the route `path` answers, and whether pages of other
    /// origins may call it (`cors`); `None`: not a route of this server.
    /// (Switched off, registration is not mounted at all: the gateway answers 404.)
    fn route(&self, path: &str) -> Option<(&'static [&'static str], bool)> {
        match path {
            routes::AUTHORIZE => Some((&["GET", "POST"], false)),
            routes::CALLBACK => Some((&["GET"], false)),
            routes::TOKEN | routes::REVOKE => Some((&["POST"], true)),
            routes::REGISTER if self.config.registration => Some((&["POST"], true)),
            routes::JWKS => Some((&["GET"], true)),
            other if metadata::paths(&self.config).iter().any(|p| p == other) => Some((&["GET"], true)),
            _ => None,
        }
    }

    fn tokens<'a>(&'a self, sign: &'a dyn Fn(&str) -> Result<String, String>) -> Tokens<'a> {
        Tokens {
            config: &self.config,
            kv: &kv::HostStore,
            now: now(),
            sign,
            client_known: clients::still_trusted,
            warn: log::warn,
            verify: &verify_signature,
            audit: log::info,
        }
    }

    fn jwks(&self) -> Response {
        match signing::jwks() {
            Ok(jwks) => Response::new(200).body("application/json", jwks).header("cache-control", "public, max-age=300"),
            Err(e) => {
                log::error(&format!("the key set: {e}"));
                oauth_error(500, "server_error", "the key set is not available")
            }
        }
    }

    fn authorize(&self, request: &Request) -> Response {
        let params = match Params::parse(request.query().unwrap_or_default().as_bytes()) {
            Ok(params) => params,
            Err(e) => return page(400, &format!("The authorization request is malformed: {}.", e.0)),
        };
        let client_id = match authorize::client_id(&params) {
            Ok(id) => id,
            Err(refusal) => return refused(refusal),
        };
        let client = match clients::lookup(&self.config, client_id) {
            Ok(Some(client)) => client,
            Ok(None) => return page(400, "The client is not known to this server (not listed, not registered, or its metadata document is unusable)."),
            Err(e) => return store_page(&e),
        };
        let mut pending = match authorize::check(&params, &client, &self.config) {
            Ok(pending) => pending,
            Err(refusal) => return refused(refusal),
        };
        let (Ok(pending_id), Ok(binding), Ok(session)) = (random::value(), browser::Binding::new(), random::value()) else {
            return page(500, "The authorization server has no random numbers.");
        };
        pending.browser = binding.hash;
        pending.session = session;
        pending.next = self.upstreams.further(&pending.scope);
        if let Err(e) = store::put(&pending_key(&pending_id), &serde_json::to_vec(&pending).unwrap_or_default(), LOGIN_TTL) {
            return store_page(&e);
        }
        let answer =
            if consent::needed(&self.config, &client) { consent::page(&client, &pending, &pending_id) } else { self.log_in(&pending, &pending_id, 302) };
        answer.header("set-cookie", browser::set_cookie(&self.config.issuer, &pending_id, &binding.secret, LOGIN_TTL))
    }

    /// The consent page's answer (a form post to `/oauth/authorize`): in the
    /// browser the request is bound to, from this origin, or nothing happens.
    fn consented(&self, request: &Request) -> Response {
        // A header sent twice is read as neither copy: refused, not skipped.
        let from_here = match (request.single_header("origin"), request.single_header("sec-fetch-site")) {
            (Ok(origin), Ok(fetch_site)) => consent::same_origin(origin.as_deref(), fetch_site.as_deref(), &self.config.issuer),
            _ => false,
        };
        if !from_here {
            return page(403, "This form must be sent from the authorization server's own page.");
        }
        if !matches!(request.single_header("content-type"), Ok(Some(t)) if is_media_type(&t, "application/x-www-form-urlencoded")) {
            return page(400, "The answer must be a form.");
        }
        let params = match Params::parse(&request.body()) {
            Ok(params) => params,
            Err(e) => return page(400, &format!("The answer is malformed: {}.", e.0)),
        };
        let (Some(pending_id), Some(decision)) = (params.get("pending").filter(|id| random::is_value(id)), consent::Decision::parse(params.get("decision")))
        else {
            return page(400, "The answer names no authorization request or no decision.");
        };
        let pending = match get_pending(pending_id) {
            Ok(Some(pending)) => pending,
            Ok(None) => return page(400, "This authorization request expired or was already completed. Start again from your application."),
            Err(response) => return response,
        };
        if !browser::is_bound(request, &self.config.issuer, pending_id, &pending.browser) {
            return page(403, "This authorization request was started in another browser. Start again from your application.");
        }
        let clear = browser::clear_cookie(&self.config.issuer, pending_id);
        match decision {
            consent::Decision::Allow => self.log_in(&pending, pending_id, 303),
            consent::Decision::Deny => match take_pending(pending_id) {
                Ok(_) => see_other(authorize::error_location(
                    &pending.redirect_uri,
                    "access_denied",
                    "the person declined the request",
                    pending.state.as_deref(),
                    &self.config.issuer,
                ))
                .header("set-cookie", clear),
                Err(response) => response,
            },
        }
    }

    /// Sends the person to the identity provider for `pending` (`status`:
    /// 302 after the authorization request, 303 after the consent form).
    fn log_in(&self, pending: &Pending, pending_id: &str, status: u16) -> Response {
        match self.upstreams.begin(self.upstreams.identity_provider(), pending_id, &self.config.endpoint(routes::CALLBACK)) {
            Ok(url) => Response::new(status).header("location", url).no_store(),
            Err(why) => {
                log::error(&format!("the login at the identity provider could not start: {why}"));
                let _ = store::delete(&pending_key(pending_id));
                let description = "the login at the identity provider could not start";
                see_other(authorize::error_location(
                    &pending.redirect_uri,
                    "temporarily_unavailable",
                    description,
                    pending.state.as_deref(),
                    &self.config.issuer,
                ))
            }
        }
    }

    /// A provider's answer to one leg of a login: the login's own provider
    /// first, then each further one the request's scope asks for (`after_leg`).
    fn callback(&self, request: &Request) -> Response {
        let key = match self.token_key() {
            Ok(key) => key,
            Err(why) => {
                log::error(&why);
                return page(503, "The authorization server cannot complete logins: its token key is not available.");
            }
        };
        let query = request.query().unwrap_or_default();
        // The browser first: a login started elsewhere ends before its code is redeemed.
        let (pending_id, mut pending) = match upstream::waiting_login(&query) {
            Ok(Some((state, pending_id))) => match get_pending(&pending_id) {
                Ok(Some(pending)) if browser::is_bound(request, &self.config.issuer, &pending_id, &pending.browser) => (pending_id, pending),
                Ok(Some(_)) => {
                    upstream::abandon(&state);
                    log::warn("a login came back to a browser other than the one that started it: refused");
                    return page(403, "This login was started in another browser. Start again from your application.");
                }
                Ok(None) => {
                    upstream::abandon(&state);
                    return page(400, "This authorization request expired or was already completed. Start again from your application.");
                }
                Err(response) => return response,
            },
            Ok(None) => return page(400, "This login is unknown or already completed. Start again from your application."),
            Err(why) => {
                log::error(&why);
                return page(503, "The authorization server's store is unavailable. Try again shortly.");
            }
        };
        if pending.session.is_empty() {
            // Stored before requests drew their session: a login of one leg.
            let Ok(session) = random::value() else {
                return page(500, "The authorization server has no random numbers.");
            };
            pending.session = session;
        }
        let identity_provider = self.upstreams.identity_provider();
        match self.upstreams.finish(&query, &self.config.endpoint(routes::CALLBACK), &pending.session, &key) {
            Ok(finished) if finished.provider == identity_provider => {
                pending.subject = finished.subject;
                pending.connect(finished.provider);
            }
            Ok(finished) => {
                log::info(&format!("audit: `{}` connected the upstream `{}` (as `{}` there)", pending.subject, finished.provider, finished.subject));
                pending.connect(finished.provider);
            }
            Err(CallbackError::ForeignState) => return page(400, "This login is unknown or already completed. Start again from your application."),
            Err(CallbackError::Unavailable(why)) => {
                log::error(&why);
                self.forget_tokens(&pending);
                return page(503, "The authorization server's store is unavailable. Try again shortly.");
            }
            // A further provider declined or failed: the login goes on
            // without it, and a call that needs it asks for its scope later.
            Err(CallbackError::Upstream { provider, .. }) if provider != identity_provider => {
                log::warn(&format!("the login of `{}` goes on without the upstream `{provider}`", pending.subject));
                pending.without_provider(&provider);
            }
            // The client is waiting on its redirect URI: it is told (RFC 6749
            // §4.1.2.1), with its `state` and our `iss`, rather than left waiting.
            // (The federation logged why; the client learns only that it failed.)
            Err(CallbackError::Upstream { .. }) => return self.login_failed(&pending_id, "the login at the identity provider did not complete"),
        }
        self.after_leg(&pending_id, pending)
    }

    /// After one provider's leg: the next provider's login, or the code.
    fn after_leg(&self, pending_id: &str, mut pending: Pending) -> Response {
        while !pending.next.is_empty() {
            let provider = pending.next.remove(0);
            // Kept before the provider is asked: its answer reads it.
            if let Err(e) = store::put(&pending_key(pending_id), &serde_json::to_vec(&pending).unwrap_or_default(), LOGIN_TTL) {
                self.forget_tokens(&pending);
                return store_page(&e);
            }
            match self.upstreams.begin(&provider, pending_id, &self.config.endpoint(routes::CALLBACK)) {
                Ok(url) => return Response::redirect(url),
                Err(why) => {
                    log::warn(&format!("the login at the upstream `{provider}` could not start, and goes on without it: {why}"));
                    pending.without_provider(&provider);
                }
            }
        }
        if pending.scope.is_empty() {
            // Every provider asked for declined: nothing is granted.
            self.forget_tokens(&pending);
            return self.login_failed(pending_id, "no provider the request asked for completed its login");
        }
        let clear = |response: Response| response.header("set-cookie", browser::clear_cookie(&self.config.issuer, pending_id));
        // Taken once: a second completion of the same request finds nothing.
        match take_pending(pending_id) {
            Ok(Some(_)) => {}
            Ok(None) => {
                // The upstream tokens were stored first (#6194); with no request to complete, they go.
                self.forget_tokens(&pending);
                return page(400, "This authorization request expired or was already completed. Start again from your application.");
            }
            Err(response) => return response,
        }
        // The session's info first: the code's family refreshes only while it lives.
        if let Err(e) = session::start(&kv::HostStore, &pending, now(), self.config.refresh_token_ttl) {
            self.forget_tokens(&pending);
            return store_page(&e);
        }
        let sign = |_: &str| Err("not used".to_owned());
        match self.tokens(&sign).issue_code(&pending, &pending.subject, &pending.session) {
            Ok(code) => clear(Response::redirect(authorize::code_location(&pending.redirect_uri, &code, pending.state.as_deref(), &self.config.issuer))),
            Err(token::Failure::Store(e)) => store_page(&e),
            Err(_) => page(500, "The authorization server could not issue a code."),
        }
    }

    /// Ends the login of `pending_id` with `access_denied` at the client's redirect URI.
    fn login_failed(&self, pending_id: &str, description: &str) -> Response {
        match take_pending(pending_id) {
            Ok(Some(pending)) => Response::redirect(authorize::error_location(
                &pending.redirect_uri,
                "access_denied",
                description,
                pending.state.as_deref(),
                &self.config.issuer,
            ))
            .header("set-cookie", browser::clear_cookie(&self.config.issuer, pending_id)),
            Ok(None) => page(502, "The login at the identity provider failed. Start again from your application."),
            Err(response) => response,
        }
    }

    /// Removes the tokens a login stored before it failed.
    fn forget_tokens(&self, pending: &Pending) {
        for provider in &pending.connected {
            upstream::forget(&pending.session, provider);
        }
    }

    fn token(&self, request: &Request) -> Response {
        let params = match form_body(request) {
            Ok(params) => params,
            Err(response) => return response,
        };
        let sign = |claims: &str| signing::sign(claims, "at+jwt").map_err(|e| format!("an access token could not be signed: {e}"));
        let granted = self.tokens(&sign).grant(&params);
        // Exchanges are counted for the operator (their audit line is the exchange's own).
        if params.get("grant_type") == Some(exchange::GRANT_TYPE) {
            events::report(if granted.is_ok() { events::Event::TokenExchanged } else { events::Event::TokenExchangeFailed });
        }
        match granted {
            Ok(body) => answer::json(200, &body),
            Err(failure) => answer::failure(failure),
        }
    }

    fn revoke(&self, request: &Request) -> Response {
        let params = match form_body(request) {
            Ok(params) => params,
            Err(response) => return response,
        };
        let sign = |_: &str| Err("not used".to_owned());
        match self.tokens(&sign).revoke(&params) {
            Ok(()) => Response::new(200).no_store(),
            Err(failure) => answer::failure(failure),
        }
    }

    fn register(&self, request: &Request) -> Response {
        let source = rate_limit_source(&request.remote_addr());
        match store::count(&format!("rl:register:{source}"), RATE_WINDOW) {
            Ok(count) if count > u64::from(self.config.registration_per_minute) => {
                return oauth_error(429, "too_many_requests", "too many registrations from this address; try again in a minute")
                    .header("retry-after", RATE_WINDOW.to_string());
            }
            Ok(_) => {}
            Err(e) => return unavailable(&e),
        }
        if !matches!(request.single_header("content-type"), Ok(Some(t)) if is_media_type(&t, "application/json")) {
            return oauth_error(400, "invalid_client_metadata", "send the client metadata as application/json");
        }
        let Ok(metadata) = serde_json::from_slice::<serde_json::Value>(&request.body()) else {
            return oauth_error(400, "invalid_client_metadata", "the body is not JSON");
        };
        let Ok(client_id) = random::value() else {
            return oauth_error(500, "server_error", "no random numbers");
        };
        let client = match register::check_metadata(&metadata, &client_id) {
            Ok(client) => client,
            Err(refused) => return oauth_error(400, refused.error, &refused.description),
        };
        match store::put_new(&clients::registered_key(&client_id), &serde_json::to_vec(&client).unwrap_or_default(), clients::REGISTERED_TTL) {
            Ok(true) => {}
            Ok(false) => return oauth_error(500, "server_error", "a client id was drawn twice"),
            Err(e) => return unavailable(&e),
        }
        let mut body = serde_json::json!({
            "client_id": client.client_id,
            "client_id_issued_at": now(),
            "redirect_uris": client.redirect_uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "application_type": client.application_type,
        });
        if let Some(name) = client.client_name {
            body["client_name"] = name.into();
        }
        answer::json(201, &body)
    }

    fn token_key(&self) -> Result<[u8; 32], String> {
        self.token_key.get()
    }
}

/// Verifies a presented token's signature (token exchange) with this
/// server's own key set or a trusted issuer's (fetched, cached, its refetch limited).
fn verify_signature(source: exchange::KeySource<'_>, alg: &str, kid: Option<&str>, signing_input: &str, signature: &str) -> Result<bool, String> {
    let jwk = match source {
        exchange::KeySource::Own => {
            let jwks = signing::jwks().map_err(|e| format!("this server's key set: {e}"))?;
            let keys = upstream::jwks::parse(jwks.as_bytes())?;
            portcullis_plugin::jwk::find(&keys, alg, kid).ok_or("no key of this server's key set fits its `kid` and `alg`")?
        }
        exchange::KeySource::Jwks(uri) => upstream::jwks::key(uri, alg, kid)?,
    };
    crypto::verify_jws(alg, &jwk, signing_input, signature).map_err(|e| e.to_string())
}

/// A page for an authorization error, or the redirect back to the client.
fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(message) => page(400, &message),
        Refusal::Redirect { location } => Response::redirect(location),
    }
}

fn store_page(error: &StoreError) -> Response {
    log::error(&format!("the store failed: {error}"));
    page(503, "The authorization server's store is unavailable. Try again shortly.")
}

fn pending_key(id: &str) -> String {
    format!("pending:{id}")
}

/// Takes the authorization request `id` waits for (once): `None` when it
/// expired or was completed; the answer to give when the store failed.
fn take_pending(id: &str) -> Result<Option<Pending>, Response> {
    read_pending(store::take(&pending_key(id)))
}

/// The authorization request `id`, left in place.
fn get_pending(id: &str) -> Result<Option<Pending>, Response> {
    read_pending(store::get(&pending_key(id)))
}

fn read_pending(stored: Result<Option<Vec<u8>>, StoreError>) -> Result<Option<Pending>, Response> {
    match stored {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).map(Some).map_err(|_| page(500, "The authorization request could not be read back.")),
        Ok(None) => Ok(None),
        Err(e) => Err(store_page(&e)),
    }
}

/// `303 See Other` to `location`: after a form post, the browser follows with a GET.
fn see_other(location: String) -> Response {
    Response::new(303).header("location", location).no_store()
}

/// A form body (`/token`, `/revoke`), strictly parsed.
fn form_body(request: &Request) -> Result<Params, Response> {
    if !matches!(request.single_header("content-type"), Ok(Some(t)) if is_media_type(&t, "application/x-www-form-urlencoded")) {
        return Err(oauth_error(400, "invalid_request", "send the parameters as application/x-www-form-urlencoded"));
    }
    Params::parse(&request.body()).map_err(|e| oauth_error(400, "invalid_request", &e.0))
}

/// Whom a registration counts against: the peer's IPv4 address, or its
/// IPv6 /64 (one host usually holds a whole /64). Behind a proxy this is
/// the proxy: the gateway does not trust forwarding headers.
fn rate_limit_source(remote_addr: &str) -> String {
    match remote_addr.parse::<std::net::SocketAddr>().map(|a| a.ip()) {
        Ok(std::net::IpAddr::V4(ip)) => ip.to_string(),
        Ok(std::net::IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = ip.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => remote_addr.to_owned(),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

export_server!(OAuthServer);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_sources() {
        assert_eq!(rate_limit_source("203.0.113.9:5000"), "203.0.113.9");
        assert_eq!(rate_limit_source("[2001:db8:1:2:3:4:5:6]:443"), "2001:db8:1:2::/64");
        assert_eq!(rate_limit_source("[2001:db8:1:2:ffff::1]:1"), "2001:db8:1:2::/64");
        assert_eq!(rate_limit_source("[::ffff:203.0.113.9]:1"), "203.0.113.9");
    }
}
