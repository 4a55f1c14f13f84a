//! Reading a request body whole (an MCP message): bounded in bytes, in time
//! and, before the inbound chain has decided, in the memory a caller without
//! credentials may hold.
//!
//! Why each bound:
//! - **pace**: a body must arrive within `body_timeout`, plus one second for
//!   every `min_bytes_per_sec` bytes received, so an honest client on a slow
//!   link finishes and a trickle does not hold a connection for minutes;
//! - **size**: at most the caller's `limit` bytes are kept;
//! - **held before a decision** ([`Held`]): a workload whose authenticator reads
//!   MCP calls must read the message first, and then everything buffered
//!   counts against the workload's budget (past it, 503 at once) and the
//!   connection's (one message; an HTTP/2 connection's other streams wait
//!   their turn, within their own deadline).

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How fast a body must arrive (policy `limits.body_timeout_ms`, `limits.min_body_rate_kib`).
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    pub timeout: Duration,
    pub min_bytes_per_sec: u64,
}

impl BodyPace {
    /// The time by which the body must have ended, given `received` bytes so far.
    fn deadline(&self, start: Instant, received: usize) -> Instant {
        start + self.timeout + Duration::from_secs_f64(received as f64 / self.min_bytes_per_sec.max(1) as f64)
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// Over the caller's `limit`.
    TooLarge,
    /// It did not arrive at the pace, or waited past it for the connection's budget.
    TimedOut,
    /// The workload's budget for bytes held before a decision is spent.
    Busy,
    /// The client broke the stream.
    Broken,
}

/// The budgets that bytes read before the inbound chain decided count against.
pub struct Budgets<'a> {
    pub workload: &'a Semaphore,
    pub connection: &'a Semaphore,
}

/// Bytes held against [`Budgets`]; given back when dropped (the decision is made).
pub struct Held<'a> {
    budgets: Budgets<'a>,
    bytes: u32,
}

impl<'a> Held<'a> {
    pub fn new(budgets: Budgets<'a>) -> Self {
        Held { budgets, bytes: 0 }
    }

    async fn take(&mut self, bytes: usize, deadline: Instant) -> Result<(), ReadError> {
        // A chunk larger than any budget could never be held: the caller's limit refuses it first.
        let n = u32::try_from(bytes).map_err(|_| ReadError::TooLarge)?;
        // The connection's budget is its own streams' to share: wait for it.
        match tokio::time::timeout_at(deadline, self.budgets.connection.acquire_many(n)).await {
            Ok(Ok(permit)) => permit.forget(),
            Ok(Err(_closed)) => return Err(ReadError::Busy),
            Err(_elapsed) => return Err(ReadError::TimedOut),
        }
        // The workload's is shared with other callers: never wait on them.
        match self.budgets.workload.try_acquire_many(n) {
            Ok(permit) => permit.forget(),
            Err(_) => {
                self.budgets.connection.add_permits(n as usize);
                return Err(ReadError::Busy);
            }
        }
        self.bytes += n;
        Ok(())
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budgets.connection.add_permits(self.bytes as usize);
        self.budgets.workload.add_permits(self.bytes as usize);
    }
}

/// Reads all of `body`: at most `limit` bytes, at `pace`, counting what it keeps
/// against `held` when the inbound chain has not decided yet.
pub async fn read_whole(mut body: Incoming, limit: usize, pace: BodyPace, mut held: Option<&mut Held<'_>>) -> Result<Bytes, ReadError> {
    let start = Instant::now();
    let mut message = BytesMut::new();
    loop {
        let deadline = pace.deadline(start, message.len());
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_elapsed) => return Err(ReadError::TimedOut),
            Ok(None) => return Ok(message.freeze()),
            Ok(Some(frame)) => frame.map_err(|_| ReadError::Broken)?,
        };
        let Ok(data) = frame.into_data() else { continue };
        if message.len() + data.len() > limit {
            return Err(ReadError::TooLarge);
        }
        if let Some(held) = held.as_deref_mut() {
            held.take(data.len(), deadline).await?;
        }
        message.extend_from_slice(&data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_what_arrived() {
        let pace = BodyPace { timeout: Duration::from_secs(10), min_bytes_per_sec: 1024 };
        let start = Instant::now();
        assert_eq!(pace.deadline(start, 0), start + Duration::from_secs(10));
        assert_eq!(pace.deadline(start, 4096), start + Duration::from_secs(14));
    }

    #[tokio::test]
    async fn held_bytes_come_back_when_the_decision_is_made() {
        let (workload, connection) = (Semaphore::new(100), Semaphore::new(60));
        let deadline = Instant::now() + Duration::from_millis(50);
        {
            let mut held = Held::new(Budgets { workload: &workload, connection: &connection });
            held.take(50, deadline).await.unwrap();
            // Past the connection's budget: it waits, and gives up at the deadline.
            assert_eq!(held.take(20, deadline).await, Err(ReadError::TimedOut));
            let other_connection = Semaphore::new(60);
            let mut other = Held::new(Budgets { workload: &workload, connection: &other_connection });
            // Past the workload's budget: refused at once, and the connection's share is given back.
            assert_eq!(other.take(60, deadline).await, Err(ReadError::Busy));
            assert_eq!(other_connection.available_permits(), 60);
            assert_eq!((workload.available_permits(), connection.available_permits()), (50, 10));
        }
        assert_eq!((workload.available_permits(), connection.available_permits()), (100, 60));
    }
}
