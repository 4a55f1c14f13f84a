//! `builtin:registry-token`: sends `Authorization: Bearer <token>` to a
//! registry that wants one (RFC THV-0043), from a static token or from an
//! OAuth login that it keeps renewed.
//!
//! - Static token: the secret `portcullis:static-token` (which the gateway fills
//!   from `PORTCULLIS_REGISTRY_TOKEN` or `token_file`), else the secret named by
//!   `token_secret`. When there is one, OAuth is not used (see `static_token`).
//! - OAuth: `portcullis login WORKLOAD` drives `begin_login`/`finish_login`
//!   (authorization code with PKCE S256, state checked in constant time); the
//!   tokens are stored as one secret under `token_key` and renewed under a lock
//!   shared by all instances and gateways (see `renewal`). Without a usable
//!   login, requests get 503 `registry_auth_required`, never a browser.
//! - Device login: `portcullis login WORKLOAD --device` drives
//!   `begin_device_login`/`poll_device_login` (RFC 8628, see `device`) where the
//!   provider advertises a `device_authorization_endpoint`; the tokens are
//!   stored exactly as after a browser login.
//!
//! Configuration:
//! - `issuer`: the OAuth issuer, https (http only on loopback); compared exactly
//!   with the discovery document's `issuer`, trailing slash included.
//! - `client_id`: required with `issuer` (a public client: no secret).
//! - `scopes`: default `["openid", "offline_access"]`.
//! - `audience`: the IdP-specific `audience` parameter (Auth0, Okta custom servers).
//! - `resource`: an RFC 8707 resource indicator (an absolute URI).
//! - `token_secret`: a secret holding a static token.
//! - `token_key` (required): the secret that keeps the OAuth tokens; the gateway sets it.
//! - `callback_port`, `token_file`: used by the gateway; accepted here.
//!
//! Token values never appear in logs, errors or refusals: log lines name
//! secrets, expiry times and OAuth error codes only.

mod backoff;
mod config;
mod device;
mod discovery;
mod endpoint;
mod login;
mod pkce;
mod refusal;
mod renewal;
mod static_token;
mod store;
// Provider text made safe for a message: the rule the other OAuth components use.
use provider_tokens::text;
mod token;
mod uri;

use config::{Config, OAuth, STATIC_TOKEN_SECRET};
use login::Pending;
use pkce::Pkce;
use portcullis_plugin::prelude::*;
use portcullis_plugin::secrets::SecretError;
use renewal::{LOCK_WAIT, Tokens};
use static_token::{Lookup, Source};
use std::cell::{Cell, RefCell};
use token::{Exchange, StoredToken};

struct RegistryToken {
    config: Config,
    /// Whether the policy grants `portcullis:static-token`, learnt at `init`:
    /// without the grant, asking on every request would only log refusals.
    gateway_token_granted: bool,
    tokens: Tokens,
    /// The login between `begin_login` and `finish_login`.
    pending: RefCell<Option<Pending>>,
    /// The device login between `begin_device_login` and its last poll.
    device: RefCell<Option<device::Pending>>,
    /// The static source last used, so that a change is logged once, not every request.
    static_source: Cell<Option<Source>>,
}

impl Injector for RegistryToken {
    type Config = config::File;

    fn init(file: config::File, context: &Context) -> Result<Self, String> {
        let config = Config::new(file, &context.workload)?;
        // Grants are fixed for this configuration: check the ones it depends on now,
        // so that a missing grant is a refusal of the policy, not of every request.
        if let Some(name) = &config.token_secret
            && secrets::get(name) == Err(SecretError::NotGranted)
        {
            return Err(format!("`token_secret`: the policy does not grant the secret {name:?} to this component"));
        }
        if config.oauth.is_some() && secrets::get(&config.token_key) == Err(SecretError::NotGranted) {
            return Err(format!("`token_key`: the policy does not grant the secret {:?} to this component (it needs reading and writing)", config.token_key));
        }
        let gateway_token_granted = secrets::get(STATIC_TOKEN_SECRET) != Err(SecretError::NotGranted);
        Ok(RegistryToken {
            config,
            gateway_token_granted,
            tokens: Tokens::default(),
            pending: RefCell::new(None),
            device: RefCell::new(None),
            static_source: Cell::new(None),
        })
    }

    fn manifest(&self) -> Manifest {
        Manifest::new().produces("authorization")
    }

    fn inject(&self, _request: &Request) -> Injection {
        match self.authorization() {
            Ok(value) => forward().set_header("authorization", value).into(),
            Err(refusal) => refusal.into(),
        }
    }
}

impl Login for RegistryToken {
    fn begin_login(&self, redirect_uri: &str) -> Result<LoginStart, String> {
        let oauth = self.oauth()?;
        login::check_redirect_uri(redirect_uri)?;
        let endpoints = discovery::endpoints(oauth)?;
        let pkce = Pkce::new()?;
        let state = pkce::random_value()?;
        let authorize_url = login::authorize_url(&endpoints.authorization, oauth, redirect_uri, &state, &pkce.challenge);
        *self.pending.borrow_mut() = Some(Pending {
            state: state.clone(),
            verifier: pkce.verifier,
            redirect_uri: redirect_uri.to_owned(),
            token_endpoint: endpoints.token,
            iss_required: endpoints.iss_required,
        });
        log::info(&format!("registry login started with {}", oauth.issuer));
        Ok(LoginStart { authorize_url, state })
    }

    fn finish_login(&self, callback_query: &str) -> Result<(), String> {
        let oauth = self.oauth()?;
        // Taken out whatever happens next: a code, a verifier and a state are good for one attempt.
        let pending = self.pending.borrow_mut().take().ok_or("no login is in progress on this instance; begin-login comes first")?;
        let code = login::code_from_callback(callback_query, &pending.state, &oauth.issuer, pending.iss_required)?;
        let form = endpoint::code_form(oauth, &code, &pending.redirect_uri, &pending.verifier);
        let token = match endpoint::exchange(&pending.token_endpoint, form, None, now_ms() / 1000) {
            Exchange::Issued(token) => token,
            Exchange::Refused { status, error } => {
                let error = error.map(|e| format!(", error `{e}`")).unwrap_or_default();
                return Err(format!("the token endpoint refused the authorization code (HTTP {status}{error})"));
            }
            Exchange::Failed(cause) => return Err(format!("the login could not be completed: {cause}")),
        };
        self.store_login(token)
    }

    fn logout(&self) -> Result<(), String> {
        let key = &self.config.token_key;
        let lock = secrets::lock(key, LOCK_WAIT);
        if let Err(error) = &lock {
            log::warn(&format!("could not take the lock `{key}` to log out: {error}; logging out anyway"));
        }
        let stored = store::read(key).unwrap_or_else(|error| {
            log::warn(&format!("cannot read the registry tokens under `{key}` to revoke them: {error}"));
            None
        });
        // Forget first, so that the local logout happens even if revocation is slow.
        let deleted = store::delete(key);
        drop(lock);
        self.tokens.forget();
        self.pending.borrow_mut().take();
        self.device.borrow_mut().take();
        backoff::clear();
        if let (Some(oauth), Some(refresh_token)) = (&self.config.oauth, stored.and_then(|t| t.refresh_token)) {
            revoke(oauth, &refresh_token);
        }
        deleted.map_err(|e| format!("could not remove the registry tokens under `{key}`: {e}"))?;
        log::info(&format!("registry credentials under `{key}` cleared"));
        Ok(())
    }
}

impl DeviceLogin for RegistryToken {
    fn begin_device_login(&self) -> Result<DeviceStart, String> {
        let oauth = self.oauth()?;
        // A new device login replaces any earlier one, even if it fails to start.
        self.device.borrow_mut().take();
        let endpoints = discovery::endpoints(oauth)?;
        let (status, body) = endpoint::authorize_device(endpoints.device_authorization()?, endpoint::device_authorization_form(oauth))?;
        let authorization = device::authorization(status, &body, oauth.issuer_is_local)?;
        if let Some(why) = &authorization.ignored {
            log::warn(&format!("{why}; showing `verification_uri` and the user code instead"));
        }
        let start = authorization.start.clone();
        *self.device.borrow_mut() = Some(device::Pending::new(authorization, endpoints.token, now_ms()));
        log::info(&format!("registry device login started with {} (the code expires in {} s)", oauth.issuer, start.expires_in));
        Ok(start)
    }

    fn poll_device_login(&self) -> Result<DevicePoll, String> {
        let oauth = self.oauth()?;
        // Taken out, and put back only while the login goes on: every end clears it.
        let mut pending = self.device.borrow_mut().take().ok_or("no device login is in progress on this instance; begin-device-login comes first")?;
        if pending.is_expired(now_ms()) {
            return Err(device::EXPIRED.into());
        }
        let form = endpoint::device_code_form(oauth, &pending.device_code);
        let step = pending.step(endpoint::exchange(&pending.token_endpoint, form, None, now_ms() / 1000));
        let interval = pending.interval;
        match step {
            device::Step::Done(token) => self.store_login(token).map(|()| DevicePoll::Done),
            device::Step::Wait => {
                *self.device.borrow_mut() = Some(pending);
                Ok(DevicePoll::Pending(interval))
            }
            device::Step::Retry(cause) => {
                log::warn(&format!("polling the token endpoint for the device login failed ({cause}); trying again in {interval} s"));
                *self.device.borrow_mut() = Some(pending);
                Ok(DevicePoll::Pending(interval))
            }
            device::Step::End(message) => Err(message),
        }
    }
}

export_device_injector!(RegistryToken);

impl RegistryToken {
    /// Stores the tokens of a completed login (browser or device) and starts using them.
    fn store_login(&self, token: StoredToken) -> Result<(), String> {
        let key = &self.config.token_key;
        // Under the renewal lock, so that a renewal running in a gateway does not
        // overwrite the new login with the old one's tokens. A login is not lost
        // for want of the lock, though.
        let lock = secrets::lock(key, LOCK_WAIT);
        if let Err(error) = &lock {
            log::warn(&format!("could not take the lock `{key}` to store the login: {error}; storing it anyway"));
        }
        store::write(key, &token).map_err(|e| format!("the login worked, but the tokens could not be stored under `{key}`: {e}"))?;
        drop(lock);
        backoff::clear();
        let refresh = if token.refresh_token.is_some() { "present" } else { "none: a new login is needed when it expires" };
        log::info(&format!("registry login completed; tokens stored under `{key}` (expires at {}, refresh token {refresh})", token.expires_at));
        self.tokens.adopt(token);
        Ok(())
    }

    /// The `Authorization` value: a static token if there is one, else OAuth.
    fn authorization(&self) -> Result<String, Deny> {
        match static_token::lookup(&self.config, self.gateway_token_granted) {
            Ok(Lookup::Token(token, source)) => {
                if self.static_source.replace(Some(source)) != Some(source) {
                    log::info(&format!("using the static registry token from {}", source.describe(&self.config)));
                }
                return Ok(format!("Bearer {token}"));
            }
            Ok(Lookup::Unusable(source)) => return Err(refusal::static_token_unusable(&source.describe(&self.config))),
            Ok(Lookup::None) => {}
            Err(error) if self.config.oauth.is_none() => return Err(refusal::store_unreadable(error)),
            Err(error) => log::debug(&format!("cannot read the static registry token: {error}; using the OAuth login")),
        }
        if self.static_source.take().is_some() {
            log::info("no static registry token any more");
        }
        match &self.config.oauth {
            Some(oauth) => self.tokens.authorization(&self.config, oauth),
            None => Err(refusal::no_static_token(self.config.token_secret.as_deref())),
        }
    }

    fn oauth(&self) -> Result<&OAuth, String> {
        self.config.oauth.as_ref().ok_or_else(|| "no `issuer` is configured: this workload's registry token is static, so there is no login".to_owned())
    }
}

/// Best-effort revocation of a refresh token (RFC 7009): the local logout
/// stands whether or not the provider hears of it.
fn revoke(oauth: &OAuth, refresh_token: &str) {
    match discovery::endpoints(oauth) {
        Ok(discovery::Endpoints { revocation: Some(url), .. }) => match endpoint::revoke(&url, endpoint::revocation_form(oauth, refresh_token)) {
            Ok(()) => log::info("the refresh token was revoked at the identity provider"),
            Err(why) => {
                log::warn(&format!("could not revoke the refresh token ({why}); it is forgotten here but stays valid at the provider until it expires"))
            }
        },
        Ok(_) => log::info("the identity provider offers no revocation endpoint; the refresh token is forgotten here only"),
        Err(why) => log::warn(&format!("could not find the revocation endpoint ({why}); the refresh token is forgotten here only")),
    }
}

/// Milliseconds since the Unix epoch, from WASI's wall clock.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}
