//! The store, behind a trait: the gateway's `store` import in the component,
//! a map in native tests, so that the token logic is tested without a host.

use portcullis_plugin::store::{self, StoreError};

pub trait Kv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn put(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<(), StoreError>;
    /// Replaces the value under `key` (and its TTL) only when it is exactly
    /// `expected`; whether it was replaced. Of several callers that expect
    /// the same value, exactly one succeeds.
    fn swap(&self, key: &str, expected: &[u8], value: &[u8], ttl_seconds: u32) -> Result<bool, StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// The gateway's store.
pub struct HostStore;

impl Kv for HostStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        store::get(key)
    }
    fn put(&self, key: &str, value: &[u8], ttl_seconds: u32) -> Result<(), StoreError> {
        store::put(key, value, ttl_seconds.max(1))
    }
    fn swap(&self, key: &str, expected: &[u8], value: &[u8], ttl_seconds: u32) -> Result<bool, StoreError> {
        store::swap(key, expected, value, ttl_seconds.max(1))
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        store::delete(key)
    }
}

/// A map (TTLs ignored), for tests.
#[cfg(test)]
#[derive(Default)]
pub struct Memory(pub std::cell::RefCell<std::collections::HashMap<String, Vec<u8>>>);

#[cfg(test)]
impl Kv for Memory {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.borrow().get(key).cloned())
    }
    fn put(&self, key: &str, value: &[u8], _ttl_seconds: u32) -> Result<(), StoreError> {
        self.0.borrow_mut().insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    fn swap(&self, key: &str, expected: &[u8], value: &[u8], _ttl_seconds: u32) -> Result<bool, StoreError> {
        let mut map = self.0.borrow_mut();
        match map.get_mut(key) {
            Some(current) if current.as_slice() == expected => {
                *current = value.to_vec();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.borrow_mut().remove(key);
        Ok(())
    }
}
