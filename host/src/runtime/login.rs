//! One instance of an interactive injector, for `portcullis login` and
//! `logout`: `init` with the policy entry's configuration and grants, then the
//! `login` interface's calls, in order, on that same instance (it keeps the
//! PKCE verifier and `state` between `begin-login` and `finish-login`).

use super::Runtime;
use super::bindings::LOGIN_EXPORT;
use super::bindings::interactive::{InteractiveInjector, InteractiveInjectorPre, exports::portcullis::auth::lifecycle::Settings};
use super::capabilities::Capabilities;
use super::plugin::yield_then_interrupt;
use super::state::HostState;
use std::sync::Arc;
use std::time::{Duration, Instant};
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

pub struct LoginSession {
    store: Store<HostState>,
    exports: InteractiveInjector,
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
        let pre = InteractiveInjectorPre::new(pre)?;
        let mut store = Store::new(runtime.engine(), HostState::new(caps, settings.memory_bytes));
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_callback(yield_then_interrupt);
        let session = within_deadline(&mut store, async |store| pre.instantiate_async(store).await).await?;
        let init = Settings { config_json: settings.config_json, workload: settings.workload, public_url: settings.public_url };
        let manifest = within_deadline(&mut store, async |store| session.portcullis_auth_lifecycle().call_init(store, &init).await).await?;
        manifest.map_err(|message| anyhow::anyhow!("the component refused its configuration: {message}"))?;
        Ok(LoginSession { store, exports: session })
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

    /// `logout`.
    pub async fn logout(&mut self) -> anyhow::Result<Result<(), String>> {
        let login = self.exports.portcullis_auth_login();
        within_deadline(&mut self.store, async |store| login.call_logout(store).await).await
    }
}

/// Runs one call with the deadline set (guest code traps past it, host
/// imports stop before it) and forgets the call's state afterwards.
async fn within_deadline<R>(store: &mut Store<HostState>, call: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<R>) -> anyhow::Result<R> {
    store.data_mut().deadline = Some(Instant::now() + CALL_DEADLINE);
    store.set_epoch_deadline(1);
    let outcome = tokio::time::timeout(CALL_DEADLINE, call(store)).await;
    store.data_mut().end_call();
    match outcome {
        Ok(result) => result.map_err(|e| anyhow::anyhow!("the component failed: {e:#}")),
        Err(_) => anyhow::bail!("the component did not answer within {CALL_DEADLINE:?}"),
    }
}
