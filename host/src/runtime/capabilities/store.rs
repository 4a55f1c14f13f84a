//! The `store` import: a key-value store namespaced per workload and
//! component (`grants.store`), memory or Redis behind it.

use super::HostState;
use crate::runtime::bindings::host::portcullis::auth::store::{Host, StoreError};

impl Host for HostState {
    async fn get(&mut self, _key: String) -> Result<Option<Vec<u8>>, StoreError> {
        Err(StoreError::NotGranted)
    }

    async fn put(&mut self, _key: String, _value: Vec<u8>, _ttl_seconds: u32) -> Result<(), StoreError> {
        Err(StoreError::NotGranted)
    }

    async fn put_new(&mut self, _key: String, _value: Vec<u8>, _ttl_seconds: u32) -> Result<bool, StoreError> {
        Err(StoreError::NotGranted)
    }

    async fn swap(&mut self, _key: String, _expected: Vec<u8>, _value: Vec<u8>, _ttl_seconds: u32) -> Result<bool, StoreError> {
        Err(StoreError::NotGranted)
    }

    async fn take(&mut self, _key: String) -> Result<Option<Vec<u8>>, StoreError> {
        Err(StoreError::NotGranted)
    }

    async fn delete(&mut self, _key: String) -> Result<(), StoreError> {
        Err(StoreError::NotGranted)
    }

    async fn count(&mut self, _key: String, _window_seconds: u32) -> Result<u64, StoreError> {
        Err(StoreError::NotGranted)
    }
}
