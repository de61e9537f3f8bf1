//! Readiness: what a stream is ready for (as Linux's `tcp_poll` would report it through
//! epoll and mio), the waiter-list futures behind `ready()`, `readable()`, `writable()` and
//! `async_io()`, and the single-waker `poll_*_ready` methods.

use std::future::poll_fn;
use std::io;
use std::task::{ready, Context, Poll};

use tcpcore::State;
use tokio::io::{Interest, Ready};

use super::stream::StreamInner;
use super::TcpStream;
use crate::cell::{register, Inner, READ, WRITE};

/// What the connection is ready for now. Linux's `tcp_poll`, read through mio: a failed
/// connection is everything (`EPOLLERR | EPOLLHUP | EPOLLIN | EPOLLRDHUP | EPOLLOUT`); end of
/// stream is readable and read-closed (`EPOLLIN | EPOLLRDHUP`); a stream that can no longer
/// send is writable, so the write reports `EPIPE` (`EPOLLOUT` after `SEND_SHUTDOWN`), and
/// write-closed once both directions are (`EPOLLHUP`).
pub(crate) fn readiness(inner: &mut Inner) -> Ready {
    let c = &mut inner.conn;
    if c.error().is_some() {
        return Ready::READABLE
            | Ready::WRITABLE
            | Ready::READ_CLOSED
            | Ready::WRITE_CLOSED
            | Ready::ERROR;
    }
    let mut ready = Ready::EMPTY;
    if c.readable_bytes() > 0 {
        ready |= Ready::READABLE;
    } else if matches!(c.read(&mut [0u8; 1]), Ok(0)) {
        // Nothing buffered, so the 1-byte read consumed nothing: it reports end of stream.
        ready |= Ready::READABLE | Ready::READ_CLOSED;
    }
    let state = c.state();
    let open = state.can_send() || matches!(state, State::SynSent | State::SynReceived);
    if !open || c.writable_bytes() > 0 {
        ready |= Ready::WRITABLE;
    }
    if !open && ready.is_read_closed() {
        ready |= Ready::WRITE_CLOSED;
    }
    ready
}

/// The readiness bits that satisfy `interest` (as tokio masks an event). There is no urgent
/// data, so `PRIORITY` is satisfied only by the read side closing.
pub(crate) fn satisfying(interest: Interest) -> Ready {
    let mut mask = Ready::EMPTY;
    if interest.is_readable() {
        mask |= Ready::READABLE | Ready::READ_CLOSED;
    }
    if interest.is_writable() {
        mask |= Ready::WRITABLE | Ready::WRITE_CLOSED;
    }
    if is_priority(interest) {
        mask |= Ready::READ_CLOSED;
    }
    if interest.is_error() {
        mask |= Ready::ERROR;
    }
    mask
}

/// `Interest::PRIORITY` exists on Linux and Android only.
fn is_priority(interest: Interest) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return interest.is_priority();
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    return false;
}

/// The waiter-list directions whose events can change readiness for `interest`.
fn directions(interest: Interest) -> u8 {
    let mut dirs = 0;
    if interest.is_readable() || is_priority(interest) {
        dirs |= READ;
    }
    if interest.is_writable() {
        dirs |= WRITE;
    }
    if interest.is_error() {
        dirs |= READ | WRITE;
    }
    dirs
}

/// One waiting future's place in the connection's waiter list, given back when dropped, so
/// a cancelled wait leaves nothing behind.
pub(crate) struct Waiter<'a> {
    stream: &'a StreamInner,
    slot: Option<usize>,
}

impl<'a> Waiter<'a> {
    pub(crate) fn new(stream: &'a StreamInner) -> Self {
        Waiter { stream, slot: None }
    }

    /// Ready with what the stream is ready for among `interest`; otherwise `Pending` with
    /// this task in the list, woken by the next event in those directions. With `stay`, the
    /// task stays in the list even when ready, to be woken by the next event (a caller that
    /// may find the readiness stale, as `async_io` does).
    pub(crate) fn poll(&mut self, cx: &Context<'_>, interest: Interest, stay: bool) -> Poll<Ready> {
        let mut inner = self.stream.lock();
        let ready = readiness(&mut inner) & satisfying(interest);
        if ready.is_empty() || stay {
            inner.waiters.register(&mut self.slot, directions(interest), cx.waker());
        }
        if ready.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(ready)
        }
    }

    /// Ready once an event in the directions of `interest` has woken this waiter since it
    /// last waited; otherwise `Pending`, still waiting. A poll of the task for another
    /// reason (a timer beside it in a `select!`) does not count.
    fn poll_event(&mut self, cx: &Context<'_>, interest: Interest) -> Poll<()> {
        let mut inner = self.stream.lock();
        match self.slot {
            Some(i) if inner.waiters.is_woken(i) => Poll::Ready(()),
            _ => {
                inner.waiters.register(&mut self.slot, directions(interest), cx.waker());
                Poll::Pending
            }
        }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            self.stream.lock().waiters.release(i);
        }
    }
}

impl StreamInner {
    /// What the stream is ready for among `interest`, now.
    pub(crate) fn ready_now(&self, interest: Interest) -> Ready {
        readiness(&mut self.lock()) & satisfying(interest)
    }

    /// Wait, in the waiter list, until the stream is ready for `interest`.
    pub(crate) async fn ready(&self, interest: Interest) -> Ready {
        let mut waiter = Waiter::new(self);
        poll_fn(|cx| waiter.poll(cx, interest, false)).await
    }

    /// The single-waker poll: only the last task to poll is woken (tokio's `poll_*`).
    pub(crate) fn poll_ready(&self, cx: &Context<'_>, interest: Interest) -> Poll<()> {
        let mut inner = self.lock();
        if !(readiness(&mut inner) & satisfying(interest)).is_empty() {
            return Poll::Ready(());
        }
        if interest.is_readable() {
            register(&mut inner.read_waker, cx.waker());
        } else {
            register(&mut inner.write_waker, cx.waker());
        }
        Poll::Pending
    }
}

impl TcpStream {
    /// Wait until the stream is ready for any of `interest` and say what it is ready for.
    ///
    /// Readiness is the connection's state, as the kernel reports it: readable when data is
    /// buffered, at end of stream (also `is_read_closed`) and after a failure; writable when
    /// the send buffer has room and once writing can only fail (after `shutdown` or a
    /// failure); `is_write_closed` when both directions are closed; `is_error` after a reset,
    /// timeout or hard ICMP error. There is no urgent data: `Interest::PRIORITY` waits for the
    /// read side to close. Every task awaiting readiness on the same stream is woken.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, b) = tcp_tokio::MemLink::pair();
    /// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// # let _l = server.bind("10.0.0.1:80").await?;
    /// use tokio::io::Interest;
    ///
    /// let stream = client.connect("10.0.0.1:80").await?;
    /// let ready = stream.ready(Interest::READABLE | Interest::WRITABLE).await?;
    /// // Nothing to read yet, but the send buffer is empty.
    /// assert!(ready.is_writable() && !ready.is_readable());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// None: a failed connection is ready (with `is_error`), and the read or write that
    /// follows reports the failure. The `Result` matches tokio.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future consumes nothing and leaves the waiter list.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        Ok(self.inner.ready(interest).await)
    }

    /// Wait until a read would not block (data, end of stream or an error):
    /// `ready(Interest::READABLE)`.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, b) = tcp_tokio::MemLink::pair();
    /// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// # let l = server.bind("10.0.0.1:80").await?;
    /// # let c = client.connect("10.0.0.1:80").await?;
    /// # c.try_write(b"x")?;
    /// # let (stream, _) = l.accept().await?;
    /// let mut buf = [0; 64];
    /// loop {
    ///     stream.readable().await?;
    ///     match stream.try_read(&mut buf) {
    ///         Ok(n) => { assert!(n > 0); break }
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Never reports the connection's error itself: the next read does.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn readable(&self) -> io::Result<()> {
        self.inner.ready(Interest::READABLE).await;
        Ok(())
    }

    /// Wait until a write would not block (send-buffer space, or an error to report):
    /// `ready(Interest::WRITABLE)`.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, b) = tcp_tokio::MemLink::pair();
    /// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// # let _l = server.bind("10.0.0.1:80").await?;
    /// let stream = client.connect("10.0.0.1:80").await?;
    /// stream.writable().await?;
    /// assert_eq!(stream.try_write(b"hello")?, 5);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Never reports the connection's error itself: the next write does.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn writable(&self) -> io::Result<()> {
        self.inner.ready(Interest::WRITABLE).await;
        Ok(())
    }

    /// [`TcpStream::readable`] as a poll function. As in tokio, only the waker of the last
    /// call is woken; tasks that share the stream use `readable()` instead.
    ///
    /// # Errors
    /// As [`TcpStream::readable`].
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_ready(cx, Interest::READABLE).map(Ok)
    }

    /// [`TcpStream::writable`] as a poll function. As in tokio, only the waker of the last
    /// call is woken; tasks that share the stream use `writable()` instead.
    ///
    /// # Errors
    /// As [`TcpStream::writable`].
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_ready(cx, Interest::WRITABLE).map(Ok)
    }

    /// Run `f` if the stream is ready for `interest`; otherwise return `WouldBlock` without
    /// calling it. For I/O through the stream's own `try_*` methods, e.g. a read that
    /// decides how much to take from what it sees. Readiness is the connection's state, not
    /// a flag cached from the last event, so a `WouldBlock` from `f` changes nothing.
    ///
    /// # Errors
    /// `WouldBlock` when the stream is not ready; otherwise what `f` returns.
    pub fn try_io<R>(
        &self,
        interest: Interest,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        if self.inner.ready_now(interest).is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        f()
    }

    /// Wait until the stream is ready for `interest`, then run `f`; while `f` returns
    /// `WouldBlock`, wait for the connection's next event in those directions and run it
    /// again (never in a busy loop, even if `f` keeps failing on a ready stream).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, b) = tcp_tokio::MemLink::pair();
    /// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// # let l = server.bind("10.0.0.1:80").await?;
    /// # let c = client.connect("10.0.0.1:80").await?;
    /// # c.try_write(b"hello")?;
    /// # let (stream, _) = l.accept().await?;
    /// use tokio::io::Interest;
    ///
    /// let mut buf = [0; 16];
    /// let n = stream.async_io(Interest::READABLE, || stream.try_read(&mut buf)).await?;
    /// assert!(n > 0 && buf[..n] == b"hello"[..n]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// What `f` returns other than `WouldBlock`.
    ///
    /// # Cancel safety
    /// Cancel safe as long as `f` is: dropping the future between two calls of `f` leaves
    /// the stream as the last call left it.
    pub async fn async_io<R>(
        &self,
        interest: Interest,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let mut waiter = Waiter::new(&self.inner);
        let mut would_block = false;
        poll_fn(|cx| loop {
            // After a `WouldBlock`, only an event makes `f` worth calling again (tokio
            // clears its readiness flag), even if the stream looks ready.
            if would_block {
                ready!(waiter.poll_event(cx, interest));
            }
            // Registered before `f` runs, so an event during or after it counts.
            ready!(waiter.poll(cx, interest, true));
            match f() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => would_block = true,
                r => return Poll::Ready(r),
            }
        })
        .await
    }
}
