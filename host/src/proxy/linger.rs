//! A lingering close. When the gateway ends a connection whose client is
//! still sending (a refused request's body), closing the socket with those
//! bytes unread makes the kernel answer with a reset, and a reset can destroy
//! the answer (the 401) before the client reads it. So shutting down sends
//! our end (FIN, after TLS's close_notify) and then reads and discards what
//! the client still sends, until it closes too, for at most [`LINGER_TIME`]:
//! a client that keeps sending gets its reset then. Nginx does the same
//! (`lingering_close`). Tested end to end: `slow_body.rs::a_caller_refused_mid_body_reads_its_refusal`. Time is the bound that matters (the connection keeps
//! its slot while it lingers); discarded bytes cost only the reads.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The longest a closing connection waits for its client to stop sending.
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// A stream whose shutdown lingers (see the module docs).
pub struct Lingering<S> {
    inner: S,
    /// Set once our end is shut down: until when to discard.
    draining: Option<Pin<Box<Sleep>>>,
}

impl<S> Lingering<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, draining: None }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.draining.is_none() {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.draining = Some(Box::pin(tokio::time::sleep(LINGER_TIME)));
        }
        let Some(deadline) = this.draining.as_mut() else { unreachable!("set above") };
        let mut scratch = [0u8; 8192];
        loop {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf)) {
                // The client closed its end (or the connection broke): done.
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Ok(()) => {}
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}
