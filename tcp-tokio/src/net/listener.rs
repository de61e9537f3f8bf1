//! [`TcpListener`].

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::stream::StreamInner;
use super::{TcpStream, ToSocketAddrs};
use crate::lifecycle::stack_down;
use crate::lock;
use crate::stack::{register_accept, Shared, Stack};

/// A listening socket on a [`Stack`], with the API of [`tokio::net::TcpListener`].
///
/// Handshakes complete in the background into the accept queue (`backlog` long); while it is
/// full, new SYNs are dropped and completing ACKs ignored, so clients retransmit and get in
/// once [`TcpListener::accept`] makes room (Linux behaviour). Dropping the listener resets
/// the connections still waiting in its queue.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// # let (a, b) = tcp_tokio::MemLink::pair();
/// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
/// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
/// use tcp_tokio::net::TcpListener;
///
/// server.set_default();
/// let listener = TcpListener::bind("10.0.0.1:80").await?;
/// # let _c = client.connect("10.0.0.1:80").await?;
/// let (stream, peer) = listener.accept().await?;
/// assert_eq!(stream.peer_addr()?, peer);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpListener {
    pub(super) shared: Arc<Shared>,
    pub(super) addr: SocketAddr,
}

impl TcpListener {
    pub(crate) fn new(shared: Arc<Shared>, addr: SocketAddr) -> Self {
        TcpListener { shared, addr }
    }

    /// Listen on `addr` on the process default stack ([`Stack::set_default`]), as
    /// [`tokio::net::TcpListener::bind`] does on the kernel.
    ///
    /// # Examples
    /// See [`TcpListener`].
    ///
    /// # Errors
    /// `NotFound` without a default stack; otherwise as [`Stack::bind`].
    ///
    /// # Cancel safety
    /// Binding completes without waiting, so dropping the future is harmless.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Stack::default_or_err()?.bind(addr).await
    }

    /// Wait for the next connection from the accept queue.
    ///
    /// # Examples
    /// See [`TcpListener`].
    ///
    /// # Errors
    /// `NetworkDown` once the stack is shut down ([`Stack::shutdown`]).
    ///
    /// # Cancel safety
    /// Cancel safe: a connection is taken from the queue only when the future completes, so
    /// one dropped in a `select!` stays queued for the next call.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Poll for the next connection from the accept queue. Only the last task to poll is
    /// woken.
    ///
    /// # Errors
    /// As [`TcpListener::accept`].
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let mut st = lock(&self.shared.ep);
        if st.closing {
            return Poll::Ready(Err(stack_down()));
        }
        while let Some(h) = st.ep.accept(self.addr) {
            let Some(cell) = st.get(h.0).cloned() else { continue };
            drop(st);
            let peer = lock(&cell.inner).conn.remote_addr();
            let stream = TcpStream::from_inner(StreamInner::new(cell, self.shared.clone()));
            return Poll::Ready(Ok((stream, peer)));
        }
        register_accept(&mut st, self.addr, cx.waker());
        Poll::Pending
    }

    /// The address the listener is bound to (with the chosen port after binding port 0).
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    /// Connections waiting in the accept queue.
    pub fn queued(&self) -> usize {
        lock(&self.shared.ep).ep.accept_queue_len(self.addr)
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let cells: Vec<_> = {
            let mut st = lock(&self.shared.ep);
            st.listeners.retain(|l| l.addr != self.addr);
            let queued = st.ep.unlisten(self.addr);
            queued.iter().filter_map(|h| st.get(h.0).cloned()).collect()
        };
        // As Linux: closing a listener resets the connections nobody accepted.
        for cell in cells {
            let mut inner = lock(&cell.inner);
            inner.conn.abort();
            let schedule = inner.needs_driver(true);
            drop(inner);
            if schedule {
                self.shared.schedule(cell);
            }
        }
        self.shared.wake_driver();
    }
}
