//! One instance of an interactive injector, for `portcullis login` and
//! `logout`: `init` with the policy entry's configuration and grants, then the
//! `login` (or `device-login`) interface's calls, in order, on that same
//! instance (it keeps the PKCE verifier and `state` between `begin-login` and
//! `finish-login`, the device code between `begin-device-login` and the polls).

use super::Runtime;
use super::bindings::device::DeviceInjector;
use super::bindings::device::exports::portcullis::auth::device_login::DevicePoll;
use super::bindings::interactive::{InteractiveInjector, exports::portcullis::auth::lifecycle::Settings};
use super::bindings::{DEVICE_LOGIN_EXPORT, LOGIN_EXPORT};
use super::capabilities::Capabilities;
use super::plugin::yield_then_interrupt;
use super::state::HostState;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
use wasmtime::Store;
use wasmtime::component::Component;

/// How long one login call may take: discovery and a token exchange, each an
/// HTTP round trip to the identity provider (each capped at 10 s by the host).
const CALL_DEADLINE: Duration = Duration::from_secs(30);

/// Where `begin-login` sends the person.
pub struct LoginStart {
    pub authorize_url: String,
    pub state: String,
}

/// What `begin-device-login` asks to show the person.
pub struct DeviceStart {
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
    pub expires_in: Duration,
    pub interval: Duration,
}

pub struct LoginSession {
    store: Store<HostState>,
    exports: InteractiveInjector,
    /// The `device-login` export, when the component offers one.
    device: Option<DeviceInjector>,
}

/// What `init` receives.
pub struct LoginSettings {
    pub config_json: String,
    pub workload: String,
    pub public_url: String,
    pub memory_bytes: usize,
}

impl LoginSession {
    /// Whether `component` offers an interactive login.
    pub fn offered_by(runtime: &Runtime, component: &Component) -> bool {
        component.component_type().exports(runtime.engine()).any(|(name, _)| name == LOGIN_EXPORT)
    }

    /// Instantiates `component` and calls `init`.
    pub async fn start(runtime: &Runtime, component: &Component, caps: Arc<Capabilities>, settings: LoginSettings) -> anyhow::Result<Self> {
        let pre = runtime.linker().instantiate_pre(component)?;
        let mut store = Store::new(runtime.engine(), HostState::new(caps, settings.memory_bytes));
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_callback(yield_then_interrupt);
        let instance = within_deadline(&mut store, async |store| pre.instantiate_async(store).await).await?;
        let exports = InteractiveInjector::new(&mut store, &instance)?;
        let offers_device = component.component_type().exports(runtime.engine()).any(|(name, _)| name == DEVICE_LOGIN_EXPORT);
        let device = if offers_device { Some(DeviceInjector::new(&mut store, &instance)?) } else { None };
        let init = Settings { config_json: settings.config_json, workload: settings.workload, public_url: settings.public_url };
        let manifest = within_deadline(&mut store, async |store| exports.portcullis_auth_lifecycle().call_init(store, &init).await).await?;
        manifest.map_err(|message| anyhow::anyhow!("the component refused its configuration: {message}"))?;
        Ok(LoginSession { store, exports, device })
    }

    /// `begin-login`: the URL to open and the `state` the callback must carry.
    pub async fn begin(&mut self, redirect_uri: &str) -> anyhow::Result<Result<LoginStart, String>> {
        let login = self.exports.portcullis_auth_login();
        let started = within_deadline(&mut self.store, async |store| login.call_begin_login(store, redirect_uri).await).await?;
        Ok(started.map(|s| LoginStart { authorize_url: s.authorize_url, state: s.state }))
    }

    /// `finish-login` with the callback's query string.
    pub async fn finish(&mut self, callback_query: &str) -> anyhow::Result<Result<(), String>> {
        let login = self.exports.portcullis_auth_login();
        within_deadline(&mut self.store, async |store| login.call_finish_login(store, callback_query).await).await
    }

    /// `begin-device-login`; an error when the component offers no device login.
    pub async fn begin_device(&mut self) -> anyhow::Result<Result<DeviceStart, String>> {
        let device = self.device.as_ref().ok_or_else(|| anyhow::anyhow!("this component offers no login on another device (`--device`)"))?;
        let login = device.portcullis_auth_device_login();
        let started = within_deadline(&mut self.store, async |store| login.call_begin_device_login(store).await).await?;
        Ok(started.map(|s| DeviceStart {
            verification_uri: s.verification_uri,
            verification_uri_complete: s.verification_uri_complete,
            user_code: s.user_code,
            expires_in: Duration::from_secs(s.expires_in.into()),
            interval: Duration::from_secs(s.interval.into()),
        }))
    }

    /// `poll-device-login`: `Ok(Some(wait))` to poll again after `wait`, `Ok(None)` when done.
    pub async fn poll_device(&mut self) -> anyhow::Result<Result<Option<Duration>, String>> {
        let device = self.device.as_ref().ok_or_else(|| anyhow::anyhow!("this component offers no login on another device (`--device`)"))?;
        let login = device.portcullis_auth_device_login();
        let polled = within_deadline(&mut self.store, async |store| login.call_poll_device_login(store).await).await?;
        Ok(polled.map(|poll| match poll {
            DevicePoll::Pending(seconds) => Some(Duration::from_secs(seconds.into())),
            DevicePoll::Done => None,
        }))
    }

    /// `logout`.
    pub async fn logout(&mut self) -> anyhow::Result<Result<(), String>> {
        let login = self.exports.portcullis_auth_login();
        within_deadline(&mut self.store, async |store| login.call_logout(store).await).await
    }
}

/// Runs one call with the deadline set (guest code traps past it, host
/// imports stop before it) and forgets the call's state afterwards.
async fn within_deadline<R>(store: &mut Store<HostState>, call: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<R>) -> anyhow::Result<R> {
    store.data_mut().begin_call(std::time::Instant::now() + CALL_DEADLINE);
    store.set_epoch_deadline(1);
    let span = super::plugin::call_span(&store.data().caps.label, "login", super::plugin::Role::Injector.world(), None);
    let outcome = tokio::time::timeout(CALL_DEADLINE, call(store)).instrument(span).await;
    store.data_mut().end_call();
    match outcome {
        Ok(result) => result.map_err(|e| anyhow::anyhow!("the component failed: {e:#}")),
        Err(_) => anyhow::bail!("the component did not answer within {CALL_DEADLINE:?}"),
    }
}
