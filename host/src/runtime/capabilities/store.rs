//! The `store` import: a key-value store namespaced per workload and
//! component (`grants.store`), memory or Redis behind it ([`crate::store`]).
//!
//! A call waits for the store at most until the component's call deadline
//! (less a margin, so the component can still answer), and at most
//! [`crate::store::OPERATION_TIMEOUT`]; past it the answer is `unavailable`.

use super::HostState;
use crate::runtime::bindings::host::portcullis::auth::store::{Host, StoreError};
use crate::runtime::deadline::within;
use crate::store::{self, Namespace};

impl Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        self.on_store("get", async move |ns| ns.get(&key).await).await
    }

    async fn put(&mut self, key: String, value: Vec<u8>, ttl_seconds: u32) -> Result<(), StoreError> {
        self.on_store("put", async move |ns| ns.put(&key, &value, ttl_seconds).await).await
    }

    async fn put_new(&mut self, key: String, value: Vec<u8>, ttl_seconds: u32) -> Result<bool, StoreError> {
        self.on_store("put-new", async move |ns| ns.put_new(&key, &value, ttl_seconds).await).await
    }

    async fn swap(&mut self, key: String, expected: Vec<u8>, value: Vec<u8>, ttl_seconds: u32) -> Result<bool, StoreError> {
        self.on_store("swap", async move |ns| ns.swap(&key, &expected, &value, ttl_seconds).await).await
    }

    async fn take(&mut self, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        self.on_store("take", async move |ns| ns.take(&key).await).await
    }

    async fn delete(&mut self, key: String) -> Result<(), StoreError> {
        self.on_store("delete", async move |ns| ns.delete(&key).await).await
    }

    async fn count(&mut self, key: String, window_seconds: u32) -> Result<u64, StoreError> {
        self.on_store("count", async move |ns| ns.count(&key, window_seconds).await).await
    }
}

impl HostState {
    /// Runs `operation` on this component's namespace, within the call's
    /// deadline; refuses it when the store is not granted. Refusals and
    /// failures are logged (in the call's span: workload and component).
    async fn on_store<T>(&mut self, what: &'static str, operation: impl AsyncFnOnce(Namespace) -> Result<T, store::StoreError>) -> Result<T, StoreError> {
        let Some(namespace) = self.caps.store.clone() else {
            tracing::warn!(operation = what, "refused a store operation: the policy does not grant this component the store (grants.store)");
            return Err(StoreError::NotGranted);
        };
        let result = match within(self.deadline) {
            Some(limit) if limit.is_zero() => Err(late()),
            Some(limit) => tokio::time::timeout(limit, operation(namespace)).await.unwrap_or_else(|_| Err(late())),
            None => operation(namespace).await,
        };
        // The wait for the store is not the guest's computing (see `slow_lane`).
        self.resume();
        result.map_err(|error| match error {
            store::StoreError::TooLarge => StoreError::TooLarge,
            store::StoreError::Unavailable(why) => {
                tracing::warn!(operation = what, why = %why, "a store operation failed");
                if let Some(namespace) = &self.caps.store {
                    namespace.count_unavailable();
                }
                StoreError::Unavailable(why)
            }
        })
    }
}

fn late() -> store::StoreError {
    store::StoreError::Unavailable("the store did not answer before the call's deadline".into())
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
