//! The kinds of component, and the macros that export them.

use crate::__private::wit;
use crate::{Context, Decision, Identity, Injection, Manifest, McpCall, Request, Response, Route, Verdict, deny, parse_config};
use serde::de::DeserializeOwned;
use std::cell::OnceCell;

/// An inbound authenticator: decides about each request.
///
/// The gateway creates instances as it needs them; each gets `init` once and
/// then any number of `authenticate` calls, one at a time.
pub trait Authenticator: Sized + 'static {
    /// The policy's `config` table. Use `#[serde(deny_unknown_fields)]`.
    type Config: DeserializeOwned;

    /// Checks the configuration and sets up. An `Err` refuses the policy
    /// (`portcullis check` shows it against the policy entry). Do every check
    /// here, so that `authenticate` cannot fail on configuration.
    fn init(config: Self::Config, context: &Context) -> Result<Self, String>;

    /// The headers this component consumes and produces: asked once, after `init`.
    fn manifest(&self) -> Manifest;

    /// Decides about one request.
    fn authenticate(&self, request: &Request) -> Verdict;
}

/// An outbound credential injector: adds credentials to each request the
/// inbound chain allowed, on its way upstream.
pub trait Injector: Sized + 'static {
    /// The policy's `config` table. Use `#[serde(deny_unknown_fields)]`.
    type Config: DeserializeOwned;

    /// Checks the configuration and sets up; see [`Authenticator::init`].
    fn init(config: Self::Config, context: &Context) -> Result<Self, String>;

    /// The headers this component consumes and produces (an injector `produces`
    /// the credential header it sets): asked once, after `init`.
    fn manifest(&self) -> Manifest;

    /// The edits for one request, or a refusal.
    fn inject(&self, request: &Request) -> Injection;
}

/// An injector whose credential can be renewed when the upstream refuses it
/// (world `session-injector`): a user's own upstream token.
pub trait Retry: Injector {
    /// The upstream answered 401 to `request` as it was sent (with this
    /// injector's edits). `retried` is false the first time: forward the
    /// renewed credential's edits to have the gateway send the request once
    /// more, or deny to answer the client. `retried` is true when that second
    /// attempt was refused too: there is no third, deny (or forward nothing:
    /// the upstream's 401 goes to the client).
    fn upstream_refused(&self, request: &Request, retried: bool) -> Injection;
}

/// An authorizer: decides, per MCP call, what an authenticated caller may do
/// (`[[workloads.authorize]]`). It is also asked about each item of a list the
/// gateway filters (`tools/list`, ...), as if that item were called.
pub trait Authorizer: Sized + 'static {
    /// The policy's `config` table. Use `#[serde(deny_unknown_fields)]`.
    type Config: DeserializeOwned;

    /// Checks the configuration (and, say, compiles policies) and sets up.
    fn init(config: Self::Config, context: &Context) -> Result<Self, String>;

    /// Decides one call; `identity` is none on an anonymous workload.
    fn authorize(&self, request: &Request, identity: Option<&Identity>, call: &McpCall) -> Decision;
}

/// A component that answers requests itself, on routes it declares under the
/// workload (world `authorization-server`: the embedded OAuth authorization
/// server). The routes are public: the gateway mounts them ahead of the
/// inbound chain, and nothing they answer reaches the upstream.
pub trait Server: Sized + 'static {
    /// The policy's `config` table. Use `#[serde(deny_unknown_fields)]`.
    type Config: DeserializeOwned;

    /// Checks the configuration and sets up; see [`Authenticator::init`].
    fn init(config: Self::Config, context: &Context) -> Result<Self, String>;

    /// The routes this server answers: asked once, after `init`.
    fn routes(&self) -> Vec<Route>;

    /// Answers one request to a declared route ([`Request::body`] holds its
    /// body, bounded by the gateway).
    fn handle(&self, request: &Request) -> Response;
}

/// An injector whose credential comes from a person: `portcullis login
/// WORKLOAD` drives these calls on a fresh instance (after `init`), with a
/// loopback callback listener and the browser on the host's side.
pub trait Login: Injector {
    /// Starts a login whose callback will arrive at `redirect_uri`: returns the
    /// URL to open and the `state` the callback must carry back.
    fn begin_login(&self, redirect_uri: &str) -> Result<LoginStart, String>;

    /// Completes the login with the callback's query string (without `?`).
    fn finish_login(&self, callback_query: &str) -> Result<(), String>;

    /// Forgets the stored credentials (and revokes them where the provider allows).
    fn logout(&self) -> Result<(), String>;
}

/// A login completed on another device (RFC 8628), for machines without a
/// browser: `portcullis login --device` drives these calls.
pub trait DeviceLogin: Login {
    /// Starts a device login: what to show the person.
    fn begin_device_login(&self) -> Result<DeviceStart, String>;

    /// Whether the person has finished; an `Err` ends the login.
    fn poll_device_login(&self) -> Result<DevicePoll, String>;
}

/// What [`DeviceLogin::begin_device_login`] shows the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStart {
    /// Where to go, on any device.
    pub verification_uri: String,
    /// The same with the code filled in, when the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// The code to type there.
    pub user_code: String,
    /// Seconds until the code expires.
    pub expires_in: u32,
    /// Seconds to wait before the first poll.
    pub interval: u32,
}

/// Where a device login stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevicePoll {
    /// Not finished: poll again after this many seconds.
    Pending(u32),
    /// Finished: the credentials are stored.
    Done,
}

/// Where [`Login::begin_login`] sends the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStart {
    /// The URL to open in a browser.
    pub authorize_url: String,
    /// The `state` value the callback must echo.
    pub state: String,
}

/// Exports `$type`, an [`Authenticator`], as this crate's component (world
/// `portcullis:auth/authenticator`). Use it once, in the crate root.
#[macro_export]
macro_rules! export_authenticator {
    ($type:ty) => {
        $crate::__export_component!($type, "portcullis:auth/authenticator", init_authenticator, $crate::__export_request_call!(authenticate, Verdict););
    };
}

/// Exports `$type`, an [`Injector`], as this crate's component (world
/// `portcullis:auth/credential-injector`). Use it once, in the crate root.
#[macro_export]
macro_rules! export_injector {
    ($type:ty) => {
        $crate::__export_component!($type, "portcullis:auth/credential-injector", init_injector, $crate::__export_request_call!(inject, Injection););
    };
}

/// Exports `$type`, an [`Injector`] with [`Retry`], as this crate's component
/// (world `portcullis:auth/session-injector`). Use it once, in the crate root.
#[macro_export]
macro_rules! export_session_injector {
    ($type:ty) => {
        $crate::__export_component!(
            $type,
            "portcullis:auth/session-injector",
            init_injector,
            $crate::__export_request_call!(inject, Injection);
            $crate::__export_retry!();
        );
    };
}

/// Exports `$type`, an [`Authorizer`], as this crate's component (world
/// `portcullis:auth/authorizer`). Use it once, in the crate root.
#[macro_export]
macro_rules! export_authorizer {
    ($type:ty) => {
        $crate::__export_component!($type, "portcullis:auth/authorizer", init_authorizer, $crate::__export_authorize!(););
    };
}

/// Exports `$type`, an [`Injector`] with a [`Login`], as this crate's component
/// (world `portcullis:auth/interactive-injector`). Use it once, in the crate root.
#[macro_export]
macro_rules! export_interactive_injector {
    ($type:ty) => {
        $crate::__export_component!(
            $type,
            "portcullis:auth/interactive-injector",
            init_injector,
            $crate::__export_request_call!(inject, Injection);
            $crate::__export_login!();
        );
    };
}

/// Exports `$type`, an [`Injector`] with a [`Login`] and a [`DeviceLogin`], as
/// this crate's component (world `portcullis:auth/device-injector`). Use it
/// once, in the crate root.
#[macro_export]
macro_rules! export_device_injector {
    ($type:ty) => {
        $crate::__export_component!(
            $type,
            "portcullis:auth/device-injector",
            init_injector,
            $crate::__export_request_call!(inject, Injection);
            $crate::__export_login!();
            $crate::__export_device_login!();
        );
    };
}

/// Exports `$type`, a [`Server`], as this crate's component (world
/// `portcullis:auth/authorization-server`). Use it once, in the crate root.
#[macro_export]
macro_rules! export_server {
    ($type:ty) => {
        $crate::__export_component!($type, "portcullis:auth/authorization-server", init_server, $crate::__export_serve!(););
    };
}

/// What every export macro expands to: the world's bindings (generated in the
/// component's crate), an instance slot, `init`, and the world's other
/// exports (`$exports`: the `__export_*` macros below, which implement them
/// on `Component` with `exports` and `INSTANCE` in scope).
#[doc(hidden)]
#[macro_export]
macro_rules! __export_component {
    ($type:ty, $world:literal, $init:ident, $($exports:item)*) => {
        #[doc(hidden)]
        mod __portcullis_bindings {
            $crate::__bindings!($world);
        }
        const _: () = {
            use __portcullis_bindings::exports::portcullis::auth as exports;
            ::std::thread_local! {
                static INSTANCE: ::std::cell::OnceCell<$type> = const { ::std::cell::OnceCell::new() };
            }
            struct Component;
            impl exports::lifecycle::Guest for Component {
                fn init(settings: exports::lifecycle::Settings) -> ::std::result::Result<$crate::__private::wit::Manifest, ::std::string::String> {
                    INSTANCE.with(|instance| $crate::__private::$init(instance, &settings.config_json, settings.workload, settings.public_url))
                }
            }
            $($exports)*
            __portcullis_bindings::export!(Component with_types_in __portcullis_bindings);
        };
    };
}

/// `authenticate` or `inject`: one call on the request.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_request_call {
    ($call:ident, $result:ident) => {
        impl exports::$call::Guest for Component {
            fn $call(request: &$crate::__private::wit::Request) -> $crate::__private::wit::$result {
                INSTANCE.with(|instance| $crate::__private::$call(instance, request))
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_retry {
    () => {
        impl exports::retry::Guest for Component {
            fn upstream_refused(request: &$crate::__private::wit::Request, retried: bool) -> $crate::__private::wit::Injection {
                INSTANCE.with(|instance| $crate::__private::upstream_refused(instance, request, retried))
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_authorize {
    () => {
        impl exports::authorize::Guest for Component {
            fn authorize(
                request: &$crate::__private::wit::Request,
                identity: ::std::option::Option<$crate::__private::wit::Identity>,
                call: $crate::__private::capabilities::portcullis::auth::mcp::McpCall,
            ) -> exports::authorize::Decision {
                match INSTANCE.with(|instance| $crate::__private::authorize(instance, request, identity, call)) {
                    $crate::Decision::Allow { rule } => exports::authorize::Decision::Allow(rule),
                    $crate::Decision::Deny { reason, rule } => exports::authorize::Decision::Deny(exports::authorize::Denial { reason, rule }),
                    $crate::Decision::StepUp(scopes) => exports::authorize::Decision::StepUp(scopes),
                }
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_login {
    () => {
        impl exports::login::Guest for Component {
            fn begin_login(redirect_uri: ::std::string::String) -> ::std::result::Result<exports::login::LoginStart, ::std::string::String> {
                INSTANCE
                    .with(|instance| $crate::__private::begin_login(instance, &redirect_uri))
                    .map(|start| exports::login::LoginStart { authorize_url: start.authorize_url, state: start.state })
            }
            fn finish_login(callback_query: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                INSTANCE.with(|instance| $crate::__private::finish_login(instance, &callback_query))
            }
            fn logout() -> ::std::result::Result<(), ::std::string::String> {
                INSTANCE.with(|instance| $crate::__private::logout(instance))
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_device_login {
    () => {
        impl exports::device_login::Guest for Component {
            fn begin_device_login() -> ::std::result::Result<exports::device_login::DeviceStart, ::std::string::String> {
                INSTANCE.with(|instance| $crate::__private::begin_device_login(instance)).map(|start| exports::device_login::DeviceStart {
                    verification_uri: start.verification_uri,
                    verification_uri_complete: start.verification_uri_complete,
                    user_code: start.user_code,
                    expires_in: start.expires_in,
                    interval: start.interval,
                })
            }
            fn poll_device_login() -> ::std::result::Result<exports::device_login::DevicePoll, ::std::string::String> {
                INSTANCE.with(|instance| $crate::__private::poll_device_login(instance)).map(|poll| match poll {
                    $crate::DevicePoll::Pending(seconds) => exports::device_login::DevicePoll::Pending(seconds),
                    $crate::DevicePoll::Done => exports::device_login::DevicePoll::Done,
                })
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_serve {
    () => {
        impl exports::serve::Guest for Component {
            fn routes() -> ::std::vec::Vec<exports::serve::Route> {
                INSTANCE
                    .with(|instance| $crate::__private::routes(instance))
                    .into_iter()
                    .map(|route| exports::serve::Route { path: route.path, methods: route.methods })
                    .collect()
            }
            fn handle(request: &$crate::__private::wit::Request) -> exports::serve::Response {
                let (status, headers, body) = INSTANCE.with(|instance| $crate::__private::handle(instance, request)).into_wit_parts();
                exports::serve::Response { status, headers, body }
            }
        }
    };
}

pub fn init_authenticator<T: Authenticator>(slot: &OnceCell<T>, config_json: &str, workload: String, public_url: String) -> Result<wit::Manifest, String> {
    init(slot, config_json, Context { workload, public_url }, T::init, T::manifest)
}

pub fn init_injector<T: Injector>(slot: &OnceCell<T>, config_json: &str, workload: String, public_url: String) -> Result<wit::Manifest, String> {
    init(slot, config_json, Context { workload, public_url }, T::init, T::manifest)
}

/// `init` for either kind: parse the configuration, build the instance, keep
/// it, and return its manifest.
fn init<T, C: DeserializeOwned>(
    slot: &OnceCell<T>,
    config_json: &str,
    context: Context,
    construct: impl FnOnce(C, &Context) -> Result<T, String>,
    manifest: impl FnOnce(&T) -> Manifest,
) -> Result<wit::Manifest, String> {
    let config: C = parse_config(config_json)?;
    let instance = construct(config, &context)?;
    let declared = manifest(&instance).into_wit();
    slot.set(instance).map_err(|_| "init was called twice on one instance".to_string())?;
    Ok(declared)
}

pub fn authenticate<T: Authenticator>(slot: &OnceCell<T>, request: &wit::Request) -> wit::Verdict {
    match slot.get() {
        Some(instance) => instance.authenticate(&Request::new(request)).into_wit(),
        None => not_initialised().into_wit(),
    }
}

pub fn inject<T: Injector>(slot: &OnceCell<T>, request: &wit::Request) -> wit::Injection {
    match slot.get() {
        Some(instance) => instance.inject(&Request::new(request)).into_wit(),
        None => Injection::Deny(not_initialised_deny()).into_wit(),
    }
}

pub fn upstream_refused<T: Retry>(slot: &OnceCell<T>, request: &wit::Request, retried: bool) -> wit::Injection {
    match slot.get() {
        Some(instance) => instance.upstream_refused(&Request::new(request), retried).into_wit(),
        None => Injection::Deny(not_initialised_deny()).into_wit(),
    }
}

pub fn init_authorizer<T: Authorizer>(slot: &OnceCell<T>, config_json: &str, workload: String, public_url: String) -> Result<wit::Manifest, String> {
    // An authorizer handles no headers: its manifest is empty.
    init(slot, config_json, Context { workload, public_url }, T::init, |_| Manifest::new())
}

pub fn authorize<T: Authorizer>(
    slot: &OnceCell<T>,
    request: &wit::Request,
    identity: Option<wit::Identity>,
    call: crate::__private::capabilities::portcullis::auth::mcp::McpCall,
) -> Decision {
    match slot.get() {
        Some(instance) => instance.authorize(&Request::new(request), identity.map(Identity::from_wit).as_ref(), &McpCall::from_wit(call)),
        None => crate::forbid("The component was called before init."),
    }
}

pub fn init_server<T: Server>(slot: &OnceCell<T>, config_json: &str, workload: String, public_url: String) -> Result<wit::Manifest, String> {
    // A server's routes are answered, never forwarded: it handles no headers.
    init(slot, config_json, Context { workload, public_url }, T::init, |_| Manifest::new())
}

pub fn routes<T: Server>(slot: &OnceCell<T>) -> Vec<Route> {
    // Before init there is nothing to serve: declare no routes.
    slot.get().map(T::routes).unwrap_or_default()
}

pub fn handle<T: Server>(slot: &OnceCell<T>, request: &wit::Request) -> Response {
    match slot.get() {
        Some(instance) => instance.handle(&Request::new(request)),
        None => Response::new(500).json(&serde_json::json!({ "error": "not_initialised", "message": "The component was called before init." })),
    }
}

pub fn begin_login<T: Login>(slot: &OnceCell<T>, redirect_uri: &str) -> Result<LoginStart, String> {
    slot.get().ok_or_else(not_initialised_text)?.begin_login(redirect_uri)
}

pub fn finish_login<T: Login>(slot: &OnceCell<T>, callback_query: &str) -> Result<(), String> {
    slot.get().ok_or_else(not_initialised_text)?.finish_login(callback_query)
}

pub fn logout<T: Login>(slot: &OnceCell<T>) -> Result<(), String> {
    slot.get().ok_or_else(not_initialised_text)?.logout()
}

pub fn begin_device_login<T: DeviceLogin>(slot: &OnceCell<T>) -> Result<DeviceStart, String> {
    slot.get().ok_or_else(not_initialised_text)?.begin_device_login()
}

pub fn poll_device_login<T: DeviceLogin>(slot: &OnceCell<T>) -> Result<DevicePoll, String> {
    slot.get().ok_or_else(not_initialised_text)?.poll_device_login()
}

fn not_initialised_text() -> String {
    "the component was called before init".to_owned()
}

/// The gateway always calls `init` first; refuse rather than guess.
fn not_initialised() -> Verdict {
    not_initialised_deny().into()
}

fn not_initialised_deny() -> crate::Deny {
    deny(500).error("not_initialised", "The component was called before init.")
}
