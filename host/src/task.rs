//! A spawned task that ends with its handle: work handed to another runtime
//! (the gateway's, from the slow lane) is cancelled when its caller is (a
//! call that hit its deadline, a dropped request).

/// A spawned task that is aborted when its handle is dropped.
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
