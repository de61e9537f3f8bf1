//! The life of a [`Stack`]: the process default stack, and stopping a stack with
//! [`Stack::shutdown`].

use std::future::poll_fn;
use std::io;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::cell::Cell;
use crate::lock;
use crate::stack::{Shared, Stack};

/// The process default stack (see [`Stack::set_default`]).
static DEFAULT: RwLock<Option<Stack>> = RwLock::new(None);

/// A stack's shutdown request and the end of its driver, shared by [`Stack::shutdown`] and
/// the driver.
#[derive(Debug, Default)]
pub(crate) struct Life {
    /// When connections still open are aborted (engine clock); set by [`Stack::shutdown`].
    pub(crate) deadline: Option<tcpcore::Instant>,
    /// Connections the driver aborted at the deadline.
    pub(crate) aborted: usize,
    /// The driver task has ended (or was dropped with its runtime).
    pub(crate) ended: bool,
    /// Tasks awaiting the end of the driver.
    pub(crate) waiters: Vec<Waker>,
}

impl Life {
    /// The driver ended: wake every [`Stack::shutdown`] waiting for it.
    pub(crate) fn end(shared: &Shared) {
        let waiters = {
            let mut life = lock(&shared.life);
            life.ended = true;
            std::mem::take(&mut life.waiters)
        };
        for w in waiters {
            w.wake();
        }
    }
}

/// The error of an operation on a stack that was shut down: `NetworkDown` (Linux's
/// `ENETDOWN`, as for an interface that went down).
pub(crate) fn stack_down() -> io::Error {
    io::Error::new(io::ErrorKind::NetworkDown, "the tcp-tokio stack was shut down")
}

/// Restores the previous default stack when dropped; see [`Stack::scoped_default`].
#[derive(Debug)]
#[must_use = "the default is restored when the guard is dropped"]
pub struct DefaultGuard {
    previous: Option<Stack>,
}

impl Drop for DefaultGuard {
    fn drop(&mut self) {
        *DEFAULT.write().unwrap_or_else(PoisonError::into_inner) = self.previous.take();
    }
}

impl Stack {
    /// Make this stack the process default, used by [`TcpListener::bind`],
    /// [`TcpStream::connect`] and [`TcpSocket::new_v4`]. Replaces any previous default.
    ///
    /// The default is a handle like any other: while it is set, the stack's driver keeps
    /// running. [`Stack::clear_default`] releases it, [`Stack::scoped_default`] sets it for a
    /// scope only, and [`Stack::shutdown`] clears it when it names the stack shut down.
    ///
    /// [`TcpListener::bind`]: crate::net::TcpListener::bind
    /// [`TcpStream::connect`]: crate::net::TcpStream::connect
    /// [`TcpSocket::new_v4`]: crate::net::TcpSocket::new_v4
    pub fn set_default(&self) {
        replace_default(Some(self.clone()));
    }

    /// Make this stack the process default until the returned guard is dropped, which
    /// restores the previous default (or none). The default is process-wide, not per task or
    /// thread; nested guards must be dropped in reverse order.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, _b) = tcp_tokio::MemLink::pair();
    /// let stack = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// {
    ///     let _guard = stack.scoped_default();
    ///     let listener = tcp_tokio::net::TcpListener::bind("10.0.0.1:80").await?;
    ///     # drop(listener);
    /// }
    /// assert!(tcp_tokio::Stack::default_stack().is_none());
    /// # Ok(()) }
    /// ```
    pub fn scoped_default(&self) -> DefaultGuard {
        DefaultGuard { previous: replace_default(Some(self.clone())) }
    }

    /// Unset the process default stack and return it, so that it no longer keeps its
    /// driver running.
    pub fn clear_default() -> Option<Stack> {
        replace_default(None)
    }

    /// The process default stack, if one was set.
    pub fn default_stack() -> Option<Stack> {
        DEFAULT.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The default stack, or `NotFound` explaining how to set one.
    pub(crate) fn default_or_err() -> io::Result<Stack> {
        Stack::default_stack().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no default tcp-tokio stack: call Stack::set_default first",
            )
        })
    }

    /// Stop the stack: refuse new connections, close every connection gracefully, abort
    /// those still open after `deadline`, and wait for the driver task to end. Returns how
    /// many connections were aborted at the deadline.
    ///
    /// At once, every listener is closed (connections waiting in its accept queue are reset,
    /// and SYNs to its port are answered with RST, as for a closed port) and every
    /// connection sends FIN after the data already queued (`shutdown(Write)`; the application
    /// may still read what arrives). When the last connection has finished closing, or at
    /// the deadline, when the driver resets the rest (RFC 9293 §3.10.5), the driver sends
    /// what it holds and ends; TIME-WAIT entries end with it. If this stack is the process
    /// default, it stops being the default.
    ///
    /// Afterwards the handles stay valid but the stack does nothing more: [`Stack::bind`],
    /// [`Stack::connect`], [`TcpListener::accept`](crate::net::TcpListener::accept) and the
    /// `TcpSocket` calls that open fail with [`io::ErrorKind::NetworkDown`]; a stream's writes
    /// fail with `BrokenPipe`, its reads return what arrived and then end-of-file, or fail
    /// with `ConnectionAborted` if it was aborted.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// # let (a, b) = tcp_tokio::MemLink::pair();
    /// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// let listener = server.bind("10.0.0.1:80").await?;
    /// let _c = client.connect("10.0.0.1:80").await?;
    /// let (_s, _) = listener.accept().await?;
    /// // The client never closes: its connection is reset after 5 seconds.
    /// let aborted = server.shutdown(Duration::from_secs(5)).await;
    /// assert_eq!(aborted, 1);
    /// assert_eq!(server.bind("10.0.0.1:81").await.unwrap_err().kind(), std::io::ErrorKind::NetworkDown);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// None: a stack always stops. Calling it again (or concurrently) waits for the same end,
    /// with the earlier of the deadlines.
    ///
    /// # Cancel safety
    /// The shutdown starts when the future is first polled and then goes on without it:
    /// dropping the future only stops waiting for the driver's end.
    pub async fn shutdown(&self, deadline: Duration) -> usize {
        let shared = &self.shared;
        let at = shared.now() + deadline;
        let (abort, close, accept_wakers) = {
            let mut st = lock(&shared.ep);
            st.closing = true;
            let mut abort = Vec::new();
            let mut wakers = Vec::new();
            for l in std::mem::take(&mut st.listeners) {
                let queued = st.ep.unlisten(l.addr);
                abort.extend(queued.iter().filter_map(|h| st.get(h.0).cloned()));
                wakers.extend(l.waker);
            }
            let close: Vec<Arc<Cell>> = st.conns.iter().flatten().cloned().collect();
            (abort, close, wakers)
        };
        // As closing a listener: the connections nobody accepted are reset.
        for cell in abort {
            with_conn(shared, cell, tcpcore::Connection::abort);
        }
        // RFC 9293 §3.10.4: CLOSE sends FIN after the queued data.
        for cell in close {
            with_conn(shared, cell, tcpcore::Connection::shutdown_write);
        }
        for w in accept_wakers {
            w.wake();
        }
        {
            let mut life = lock(&shared.life);
            life.deadline = Some(life.deadline.map_or(at, |d| d.min(at)));
        }
        shared.wake_driver();
        {
            let mut default = DEFAULT.write().unwrap_or_else(PoisonError::into_inner);
            if default.as_ref().is_some_and(|d| Arc::ptr_eq(&d.shared, shared)) {
                *default = None;
            }
        }
        poll_fn(|cx| {
            let mut life = lock(&shared.life);
            if life.ended {
                return Poll::Ready(life.aborted);
            }
            if !life.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                life.waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Whether [`Stack::shutdown`] was called on this stack.
    pub fn is_shut_down(&self) -> bool {
        lock(&self.shared.ep).closing
    }
}

/// Set the process default, returning the previous one.
fn replace_default(stack: Option<Stack>) -> Option<Stack> {
    std::mem::replace(&mut *DEFAULT.write().unwrap_or_else(PoisonError::into_inner), stack)
}

/// Apply `f` to the cell's connection and hand the cell to the driver.
fn with_conn(shared: &Shared, cell: Arc<Cell>, f: impl FnOnce(&mut tcpcore::Connection)) {
    let mut inner = lock(&cell.inner);
    if inner.removed {
        return;
    }
    f(&mut inner.conn);
    let schedule = inner.needs_driver(true);
    drop(inner);
    if schedule {
        shared.schedule(cell);
    }
}
