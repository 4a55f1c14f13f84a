//! SKELETON (H4b's worktree only): replaced at merge by H4a's lib.rs. The
//! function below only uses what H4a's routes call, so that the compiler
//! reports as dead what nothing else uses.
mod seal;
mod upstream;

#[doc(hidden)]
pub fn skeleton_uses_the_api(config: Vec<u8>, query: &str, key_text: &str) -> Result<String, String> {
    let list: Vec<upstream::UpstreamConfig> = serde_json::from_slice(&config).map_err(|e| e.to_string())?;
    let upstreams = upstream::Upstreams::from_config(list)?;
    let key = seal::parse_key(key_text)?;
    let url = upstreams.begin(upstreams.identity_provider(), "pending-1", "https://gw/oauth/callback")?;
    match upstreams.finish(query, "https://gw/oauth/callback", "sid", &key) {
        Ok(done) => Ok(format!("{url} {} {} {} {}", done.pending_id, done.subject, done.provider, done.claims)),
        Err(upstream::CallbackError::ForeignState) => Err("foreign".into()),
        Err(upstream::CallbackError::Upstream(why)) => Err(why),
    }
}
