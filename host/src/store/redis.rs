//! The Redis (or Valkey) backend: one multiplexed connection, kept and
//! re-established by the `redis` crate's connection manager.
//!
//! Each operation is one command, or one Lua script, so it is atomic on the
//! server however many gateways share it: `take` is `GETDEL` (Redis 6.2+),
//! `put-new` is `SET NX EX`, `swap` compares and sets in a script, `count` is
//! `INCR` with `EXPIRE NX` in a script. Every operation ends within
//! [`OPERATION_TIMEOUT`]: an unreachable server makes it `unavailable`, it never
//! holds a request.

use super::{OPERATION_TIMEOUT, StoreError};
use crate::task::AbortOnDrop;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Cmd, IntoConnectionInfo, Script};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Compare, then set with an expiry: `swap` (KEYS[1]; ARGV: expected, value, ttl).
const SWAP: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
";

/// Count, and start the window on the first count: `count` (KEYS[1]; ARGV: window).
/// `EXPIRE NX` (Redis 7) also bounds a counter that somehow lost its expiry.
const COUNT: &str = r"
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
return n
";

/// The username and password Redis is given (`AUTH`), read from the secret store.
#[derive(Default, Clone)]
pub struct RedisCredentials {
    pub username: Option<String>,
    pub password: Option<String>,
}

impl RedisCredentials {
    /// A digest that tells whether the credentials changed, without keeping them.
    pub(super) fn digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        for part in [&self.username, &self.password] {
            let part = part.as_deref().unwrap_or_default();
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        hash.finalize().into()
    }
}

pub struct RedisStore {
    manager: ConnectionManager,
    /// `host:port`, for error messages (the URL is not repeated: only the
    /// loader has checked that it holds no credentials).
    target: String,
    swap: Arc<Script>,
    count: Arc<Script>,
    /// The runtime the store was opened on, where the connection is driven (see [`RedisStore::run`]).
    home: Option<tokio::runtime::Handle>,
}

impl RedisStore {
    /// A store for `url` (`redis://` or `rediss://`, checked by the loader),
    /// connecting on first use. Needs a tokio runtime.
    pub fn connect(url: &url::Url, credentials: RedisCredentials) -> Result<RedisStore, String> {
        // `rediss://`: rustls with ring, the process's provider, and the system's roots.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let target = format!("{}:{}", url.host_str().unwrap_or_default(), url.port().unwrap_or(6379));
        let info = url.as_str().into_connection_info().map_err(|e| format!("bad Redis URL: {e}"))?;
        let mut redis = info.redis_settings().clone();
        if let Some(username) = &credentials.username {
            redis = redis.set_username(username);
        }
        if let Some(password) = &credentials.password {
            redis = redis.set_password(password);
        }
        let client = ::redis::Client::open(info.set_redis_settings(redis)).map_err(|e| format!("cannot set up the Redis client for {target}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OPERATION_TIMEOUT))
            .set_response_timeout(Some(OPERATION_TIMEOUT))
            // Each operation is bounded anyway; retrying inside one only delays its answer.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let manager = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| format!("cannot set up the Redis connection to {target}: {e}"))?;
        let store = RedisStore {
            manager,
            target,
            swap: Arc::new(Script::new(SWAP)),
            count: Arc::new(Script::new(COUNT)),
            home: tokio::runtime::Handle::try_current().ok(),
        };
        store.say_how_it_went();
        Ok(store)
    }

    /// Connects now, in the background, and logs whether the server answers:
    /// the first request should not be the one to find out.
    fn say_how_it_went(&self) {
        let mut manager = self.manager.clone();
        let target = self.target.clone();
        let Some(home) = &self.home else { return };
        home.spawn(async move {
            match tokio::time::timeout(OPERATION_TIMEOUT, ::redis::cmd("PING").query_async::<String>(&mut manager)).await {
                Ok(Ok(_)) => tracing::info!(redis = %target, "the store is connected to Redis"),
                Ok(Err(e)) => tracing::warn!(redis = %target, error = %e, "the store cannot reach Redis yet: operations are unavailable until it can"),
                Err(_) => tracing::warn!(redis = %target, "Redis did not answer within {OPERATION_TIMEOUT:?}: operations are unavailable until it does"),
            }
        });
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.query(::redis::cmd("GET").arg(key)).await
    }

    pub async fn put(&self, key: &str, value: &[u8], ttl: u32) -> Result<(), StoreError> {
        self.query::<()>(::redis::cmd("SET").arg(key).arg(value).arg("EX").arg(ttl)).await
    }

    pub async fn put_new(&self, key: &str, value: &[u8], ttl: u32) -> Result<bool, StoreError> {
        // `OK` when set, nil when the key exists.
        let set: Option<String> = self.query(::redis::cmd("SET").arg(key).arg(value).arg("NX").arg("EX").arg(ttl)).await?;
        Ok(set.is_some())
    }

    pub async fn swap(&self, key: &str, expected: &[u8], value: &[u8], ttl: u32) -> Result<bool, StoreError> {
        let swapped: i64 = self.script(&self.swap, key, vec![expected.to_vec(), value.to_vec(), ttl.to_string().into_bytes()]).await?;
        Ok(swapped == 1)
    }

    pub async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.query(::redis::cmd("GETDEL").arg(key)).await
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.query::<()>(::redis::cmd("DEL").arg(key)).await
    }

    /// The keys that start with `prefix` (`SCAN` with the prefix's glob
    /// characters escaped; operators' listings, never a component's).
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}*", glob_escape(prefix));
        self.run(move |mut manager| async move {
            let mut cursor: u64 = 0;
            let mut keys = Vec::new();
            loop {
                let (next, batch): (u64, Vec<String>) =
                    ::redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query_async(&mut manager).await?;
                keys.extend(batch);
                if next == 0 {
                    return Ok(keys);
                }
                cursor = next;
            }
        })
        .await
    }

    pub async fn count(&self, key: &str, window: u32) -> Result<u64, StoreError> {
        self.script(&self.count, key, vec![window.to_string().into_bytes()]).await
    }

    /// Runs `script` on `key` with `args` (`EVALSHA`, and `EVAL` once per connection that lacks it).
    async fn script<T: ::redis::FromRedisValue + Send + 'static>(&self, script: &Arc<Script>, key: &str, args: Vec<Vec<u8>>) -> Result<T, StoreError> {
        let (script, key) = (script.clone(), key.to_owned());
        self.run(move |mut manager| async move {
            let mut invocation = script.key(key);
            for arg in &args {
                invocation.arg(arg.as_slice());
            }
            invocation.invoke_async(&mut manager).await
        })
        .await
    }

    async fn query<T: ::redis::FromRedisValue + Send + 'static>(&self, cmd: &mut Cmd) -> Result<T, StoreError> {
        let cmd = std::mem::take(cmd);
        self.run(|mut manager| async move { cmd.query_async(&mut manager).await }).await
    }

    /// Runs one operation within [`OPERATION_TIMEOUT`], on the runtime the
    /// store was opened on when the caller is on another (the slow lane's
    /// low-priority threads): a reconnection started there would be driven
    /// there, and so would every healthy call after it.
    async fn run<T, F, Fut>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = ::redis::RedisResult<T>> + Send + 'static,
    {
        let work = tokio::time::timeout(OPERATION_TIMEOUT, operation(self.manager.clone()));
        let here = tokio::runtime::Handle::try_current().map(|h| h.id()).ok();
        let outcome = match self.home.as_ref().filter(|home| Some(home.id()) != here) {
            Some(home) => {
                let mut task = AbortOnDrop(home.spawn(work));
                match (&mut task.0).await {
                    Ok(outcome) => outcome,
                    Err(_) => return Err(StoreError::Unavailable("the Redis operation was cancelled".into())),
                }
            }
            None => work.await,
        };
        match outcome {
            Ok(Ok(value)) => Ok(value),
            // The error says what failed (refused, timed out, NOAUTH, WRONGPASS): never a value or a password.
            Ok(Err(e)) => Err(StoreError::Unavailable(format!("Redis at {}: {e}", self.target))),
            Err(_) => Err(StoreError::Unavailable(format!("Redis at {} did not answer within {OPERATION_TIMEOUT:?}", self.target))),
        }
    }
}

/// `text` with Redis glob characters escaped, to match itself in `SCAN MATCH`.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
