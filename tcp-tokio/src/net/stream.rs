//! [`TcpStream`] and the per-connection I/O every stream type shares ([`StreamInner`]).

use std::future::poll_fn;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, MutexGuard};
use std::task::{Context, Poll};

use bytes::BufMut;
use tcpcore::{ReadError, State, TcpInfo, WriteError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::tcp::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use super::{to_addrs, ToSocketAddrs};
use crate::cell::{register, Cell, Inner};
use crate::error::{connection_error, read_error, write_error};
use crate::lock;
use crate::stack::{Shared, Stack};

/// A TCP connection on a [`Stack`], with the API of [`tokio::net::TcpStream`].
///
/// Reads and writes lock only this connection's state, briefly; the stack's driver task does
/// the sending and receiving. Semantics follow the kernel:
/// - `flush` completes as soon as the bytes are queued in the send buffer;
/// - `shutdown` queues a FIN after every byte already written and returns;
/// - dropping the stream closes it gracefully: queued data is still delivered, then FIN
///   (the stack keeps the connection until it has finished). If received data was never
///   read, dropping sends RST instead, as Linux does; so does `set_zero_linger()`;
/// - after the peer's RST, reads (`read`, `try_read`, `peek`, the halves) return the data
///   received before it, then `ConnectionReset` once, then `Ok(0)`; writes fail with
///   `BrokenPipe`. A connection reset before `accept` is still returned by it (FA-02).
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// # let (a, b) = tcp_tokio::MemLink::pair();
/// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
/// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
/// # let listener = server.bind("10.0.0.1:7").await?;
/// use tokio::io::AsyncWriteExt;
///
/// let mut stream = client.connect("10.0.0.1:7").await?;
/// stream.write_all(b"hello world!").await?;
/// stream.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpStream {
    pub(crate) inner: StreamInner,
}

/// A reference to a connection held by a stream or its halves. Dropping the last one closes
/// the connection.
#[derive(Debug)]
pub(crate) struct StreamInner {
    pub(crate) cell: Arc<Cell>,
    pub(crate) shared: Arc<Shared>,
}

impl StreamInner {
    pub(crate) fn new(cell: Arc<Cell>, shared: Arc<Shared>) -> Self {
        StreamInner { cell, shared }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.cell.inner)
    }

    /// Release the lock, then tell the driver if the call made a transmit due (or `force`).
    fn finish(&self, mut inner: MutexGuard<'_, Inner>, force: bool) {
        let schedule = inner.needs_driver(force);
        drop(inner);
        if schedule {
            self.shared.schedule(self.cell.clone());
        }
    }

    /// Wait for the handshake of an active open.
    pub(crate) fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.lock();
        if let Some(e) = inner.conn.error() {
            return Poll::Ready(Err(connection_error(e)));
        }
        match inner.conn.state() {
            State::Closed | State::Listen => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "connection closed during the handshake",
            ))),
            State::SynSent | State::SynReceived => {
                register(&mut inner.write_waker, cx.waker());
                Poll::Pending
            }
            _ => Poll::Ready(Ok(())),
        }
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut inner = self.lock();
        match read_locked(&mut inner, |slices| copy_out(slices, put_read_buf(buf))) {
            Ok(n) => {
                if n > 0 {
                    // Reading may open the window enough for an update.
                    self.finish(inner, false);
                }
                Poll::Ready(Ok(()))
            }
            // A Fast Open connect returned before the handshake (RFC 7413 §4.2.1): wait.
            Err(ReadError::WouldBlock | ReadError::NotConnected) => {
                register(&mut inner.read_waker, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(read_error(e))),
        }
    }

    pub(crate) fn poll_peek(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(0));
        }
        let mut inner = self.lock();
        let mut copied = 0;
        // Consumes nothing: the copy reports 0 taken.
        let r = read_locked(&mut inner, |slices| {
            copied = copy_out(slices, put_read_buf(buf));
            0
        });
        match r {
            Ok(_) => Poll::Ready(Ok(copied)),
            Err(ReadError::WouldBlock) => {
                register(&mut inner.read_waker, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(read_error(e))),
        }
    }

    /// Lend the buffered bytes to `f` in place (see [`TcpStream::poll_read_with`]).
    pub(crate) fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&[u8], &[u8]) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let mut inner = self.lock();
        let mut result = None;
        if inner.conn.readable_bytes() > 0 {
            let n = inner.conn.read_with(|[a, b]| {
                let r = f(a, b);
                let n = *r.as_ref().unwrap_or(&0);
                result = Some(r);
                n
            });
            if n > 0 {
                // Reading may open the window enough for an update.
                self.finish(inner, false);
                return Poll::Ready(Ok(n));
            }
        }
        if let Some(r) = result {
            return Poll::Ready(r.map(|_| 0));
        }
        // Nothing buffered, or a failed connection: a 1-byte read consumes nothing and says
        // which.
        match inner.conn.read(&mut [0u8; 1]) {
            Ok(_) => Poll::Ready(Ok(0)),
            Err(ReadError::WouldBlock) => {
                register(&mut inner.read_waker, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(read_error(e))),
        }
    }

    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut inner = self.lock();
        let r = inner.conn.read(buf);
        self.finish(inner, false);
        r.map_err(read_error)
    }

    /// A non-blocking read that copies with `put` (given a buffered slice, it takes what fits
    /// and returns how much).
    pub(crate) fn try_read_with(&self, put: impl FnMut(&[u8]) -> usize) -> io::Result<usize> {
        let mut inner = self.lock();
        let r = read_locked(&mut inner, |slices| copy_out(slices, put));
        self.finish(inner, false);
        r.map_err(read_error)
    }

    pub(crate) fn poll_write(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        let mut inner = self.lock();
        match write_all_slices(&mut inner, bufs) {
            Ok(n) => {
                self.finish(inner, false);
                Poll::Ready(Ok(n))
            }
            Err(WriteError::Blocked) => {
                register(&mut inner.write_waker, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(write_error(e))),
        }
    }

    pub(crate) fn try_write(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        let mut inner = self.lock();
        let r = write_all_slices(&mut inner, bufs);
        self.finish(inner, false);
        r.map_err(write_error)
    }

    /// Queue FIN after the written bytes (idempotent). Never an error, as tokio's: the
    /// kernel's only error here for a connected socket, `ENOTCONN` once the connection has
    /// failed or closed, is one tokio reports as success (CL-12).
    pub(crate) fn shutdown(&self) -> io::Result<()> {
        let mut inner = self.lock();
        inner.conn.shutdown_write();
        self.finish(inner, true);
        Ok(())
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.lock().conn.local_addr()
    }

    pub(crate) fn peer_addr(&self) -> SocketAddr {
        self.lock().conn.remote_addr()
    }
}

/// Take buffered bytes with `copy` (given the unread bytes as two slices, it returns how many
/// it took). With nothing buffered, why: end of stream (`Ok(0)`), `WouldBlock`, or the
/// connection's failure. `Ok(0)` also when bytes are buffered but `copy` took none (no room).
fn read_locked(
    inner: &mut Inner,
    copy: impl FnOnce([&[u8]; 2]) -> usize,
) -> Result<usize, ReadError> {
    let n = inner.conn.read_with(copy);
    if n > 0 || inner.conn.readable_bytes() > 0 {
        return Ok(n);
    }
    // Nothing buffered: a 1-byte read cannot consume anything and reports why.
    inner.conn.read(&mut [0u8; 1])
}

/// Feed `slices` to `put` in order until it takes less than it is given; returns the total.
fn copy_out(slices: [&[u8]; 2], mut put: impl FnMut(&[u8]) -> usize) -> usize {
    let mut total = 0;
    for s in slices {
        let n = put(s);
        total += n;
        if n < s.len() {
            break;
        }
    }
    total
}

/// A `put` for [`copy_out`] filling a `ReadBuf`.
fn put_read_buf<'b, 'c>(buf: &'b mut ReadBuf<'c>) -> impl FnMut(&[u8]) -> usize + use<'b, 'c> {
    move |s| {
        let n = s.len().min(buf.remaining());
        buf.put_slice(&s[..n]);
        n
    }
}

/// A `put` for [`copy_out`] filling `bufs` one after the other.
fn put_slices<'b, 'c>(bufs: &'b mut [IoSliceMut<'c>]) -> impl FnMut(&[u8]) -> usize + use<'b, 'c> {
    let (mut i, mut at) = (0, 0);
    move |mut s| {
        let mut n = 0;
        while !s.is_empty() && i < bufs.len() {
            let dst = &mut bufs[i][at..];
            let k = dst.len().min(s.len());
            dst[..k].copy_from_slice(&s[..k]);
            (n, at, s) = (n + k, at + k, &s[k..]);
            if at == bufs[i].len() {
                (i, at) = (i + 1, 0);
            }
        }
        n
    }
}

/// A `put` for [`copy_out`] filling the room `buf` has now (its first contiguous chunk, as
/// a socket read into it would), without growing it further.
fn put_buf_mut<'b, B: BufMut>(buf: &'b mut B) -> impl FnMut(&[u8]) -> usize + 'b {
    let mut room = buf.chunk_mut().len();
    move |s| {
        let n = s.len().min(room);
        buf.put_slice(&s[..n]);
        room -= n;
        n
    }
}

/// Queue as much of `bufs` as fits; `Blocked` only when nothing did.
fn write_all_slices(inner: &mut Inner, bufs: &[IoSlice<'_>]) -> Result<usize, WriteError> {
    let mut total = 0;
    for b in bufs.iter().filter(|b| !b.is_empty()) {
        match inner.conn.write(b) {
            Ok(n) => {
                total += n;
                if n < b.len() {
                    break;
                }
            }
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        let mut inner = self.lock();
        if inner.zero_linger() {
            inner.conn.abort();
        } else {
            // FIN after the queued data, or RST if received data was never read.
            inner.conn.close();
        }
        inner.read_waker = None;
        inner.write_waker = None;
        self.finish(inner, true);
    }
}

impl TcpStream {
    pub(crate) fn from_inner(inner: StreamInner) -> Self {
        TcpStream { inner }
    }

    /// Active open on `shared`, waiting for the handshake.
    pub(crate) async fn connect_via(
        shared: &Arc<Shared>,
        local: Option<IpAddr>,
        remote: SocketAddr,
        nodelay: bool,
    ) -> io::Result<TcpStream> {
        // Dropping `inner` (on error or cancellation) closes the half-open connection.
        let inner = shared.open(local, remote, nodelay)?;
        poll_fn(|cx| inner.poll_connected(cx)).await?;
        Ok(TcpStream::from_inner(inner))
    }

    /// Open a connection to `addr` on the process default stack ([`Stack::set_default`]),
    /// as [`tokio::net::TcpStream::connect`] does on the kernel.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, b) = tcp_tokio::MemLink::pair();
    /// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// # let _l = server.bind("10.0.0.1:80").await?;
    /// use tcp_tokio::net::TcpStream;
    ///
    /// client.set_default();
    /// let stream = TcpStream::connect("10.0.0.1:80").await?;
    /// # drop(stream); Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `NotFound` without a default stack; otherwise as [`Stack::connect`].
    ///
    /// # Cancel safety
    /// Dropping the future abandons the attempt: the half-open connection is closed.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let stack = Stack::default_or_err()?;
        let mut last = None;
        for a in to_addrs(&addr)? {
            match TcpStream::connect_via(&stack.shared, None, a, false).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
    }

    /// Our address and port.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local_addr())
    }

    /// The peer's address and port.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.peer_addr())
    }

    /// Turn Nagle's algorithm off (`true`) or on (`TCP_NODELAY`).
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let mut inner = self.inner.lock();
        inner.conn.set_nodelay(nodelay);
        // Turning Nagle off may release a held segment.
        self.inner.finish(inner, false);
        Ok(())
    }

    /// Whether Nagle's algorithm is off.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.inner.lock().conn.nodelay())
    }

    /// A snapshot of the connection's state and counters (`TCP_INFO`).
    pub fn info(&self) -> TcpInfo {
        self.inner.lock().conn.info()
    }

    /// Read into `buf` without consuming: the next read returns the same bytes.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, b) = tcp_tokio::MemLink::pair();
    /// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// # let l = server.bind("10.0.0.1:80").await?;
    /// # let mut c = client.connect("10.0.0.1:80").await?;
    /// # tokio::io::AsyncWriteExt::write_all(&mut c, b"hi").await?;
    /// # let (stream, _) = l.accept().await?;
    /// let mut buf = [0; 2];
    /// let n = stream.peek(&mut buf).await?;
    /// assert_eq!(&buf[..n], &b"hi"[..n]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As a read: after a reset the data received before it first, then `ConnectionReset`
    /// once (peeking reports it too, as `MSG_PEEK` does), then `Ok(0)`; `TimedOut` after a
    /// timeout, and so on. `Ok(0)` is end of stream.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is consumed.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.inner.poll_peek(cx, &mut ReadBuf::new(buf))).await
    }

    /// [`TcpStream::peek`] as a poll function.
    ///
    /// # Errors
    /// As [`TcpStream::peek`].
    pub fn poll_peek(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_peek(cx, buf)
    }

    /// Read without copying: `f` gets the bytes buffered now, in place, as two slices (the
    /// receive buffer is a ring; the second is often empty), and returns how many of them it
    /// consumed (at most their total length); they leave the buffer and the window opens as
    /// for any read. What a forwarder uses to pass the data straight into another socket,
    /// sparing one copy. `f` runs with the connection locked, so the stack's driver waits
    /// for it if a packet of this connection comes meanwhile: keep it to one non-blocking
    /// system call or a copy, and do not touch another stream or socket of the same stack
    /// in it (two tasks doing so crosswise would deadlock). `f` is called only when bytes are buffered, and its result is
    /// returned; with none, the result is `Ok(0)` at end of stream, `Pending` (registering
    /// `cx`) while more may come, or the connection's error.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, b) = tcp_tokio::MemLink::pair();
    /// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// # let listener = server.bind("10.0.0.1:7").await?;
    /// use std::future::poll_fn;
    /// use tokio::io::AsyncWriteExt;
    ///
    /// let mut c = client.connect("10.0.0.1:7").await?;
    /// let (s, _) = listener.accept().await?;
    /// c.write_all(b"hello").await?;
    /// let mut out = Vec::new();
    /// let n = poll_fn(|cx| {
    ///     s.poll_read_with(cx, |a, b| {
    ///         out.extend_from_slice(a);
    ///         out.extend_from_slice(b);
    ///         Ok(a.len() + b.len())
    ///     })
    /// })
    /// .await?;
    /// assert_eq!((n, &out[..]), (5, &b"hello"[..]));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `f`'s error, with nothing consumed; as [`TcpStream::try_read`] otherwise.
    pub fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&[u8], &[u8]) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_read_with(cx, f)
    }

    /// Read what is buffered without waiting. `Ok(0)` is end of stream.
    ///
    /// # Errors
    /// `WouldBlock` when nothing is buffered. After a reset (or a timeout) the data received
    /// before it is still read; then the failure (`ConnectionReset`) is returned once, unless
    /// a write or [`TcpStream::take_error`] reported it already; then `Ok(0)`, as Linux's
    /// `tcp_recvmsg` (FA-02).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.try_read(buf)
    }

    /// Read what is buffered into several buffers, filling each before the next, without
    /// waiting. `Ok(0)` is end of stream (or buffers with no room).
    ///
    /// # Errors
    /// As [`TcpStream::try_read`].
    pub fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.inner.try_read_with(put_slices(bufs))
    }

    /// Read what is buffered into the room `buf` has now, advancing it, without waiting.
    /// As a socket read, it fills the buffer's current chunk (for a full `Vec`, the 64 bytes
    /// `BufMut::chunk_mut` reserves) and does not grow it further. `Ok(0)` is end of stream.
    ///
    /// # Errors
    /// As [`TcpStream::try_read`].
    pub fn try_read_buf<B: BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        self.inner.try_read_with(put_buf_mut(buf))
    }

    /// The connection's failure (`SO_ERROR`), reported once: the first call after a reset,
    /// a timeout or a hard ICMP error returns it, later calls `None`, as reading `SO_ERROR`
    /// clears it. As on Linux the failure is reported once in all, to whichever comes
    /// first of this, a read or a write (FA-02): once taken here, reads return the data
    /// received before it, then `Ok(0)`; writes fail with `BrokenPipe`.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.inner.lock().conn.take_error().map(connection_error))
    }

    /// Queue bytes without waiting; returns how many fit.
    ///
    /// # Errors
    /// `WouldBlock` when the send buffer is full; `BrokenPipe` after a reset or shutdown.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.try_write(&[IoSlice::new(buf)])
    }

    /// Queue bytes from several buffers without waiting; returns how many fit.
    ///
    /// # Errors
    /// As [`TcpStream::try_write`].
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.try_write(bufs)
    }

    /// Borrowed read and write halves, usable from one task concurrently (e.g. with
    /// `tokio::join!`); free, as reads and writes take `&self` inside.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf::new(self), WriteHalf::new(self))
    }

    /// Owned halves that can move to different tasks. Dropping the write half shuts down
    /// writing (FIN); [`OwnedReadHalf::reunite`] puts them back together.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let stream = Arc::new(self);
        (OwnedReadHalf::new(stream.clone()), OwnedWriteHalf::new(stream))
    }
}

impl AsRef<TcpStream> for TcpStream {
    fn as_ref(&self) -> &TcpStream {
        self
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.inner.poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_write(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_write(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // As the kernel: written bytes are queued; there is nothing more to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.shutdown())
    }
}

/// futures-io traits (feature `futures-io`), for code written against `futures`.
#[cfg(feature = "futures-io")]
mod futures_impls {
    use super::*;

    macro_rules! futures_io {
        ($($t:ty, $inner:ident;)*) => {$(
            impl futures_io::AsyncRead for $t {
                fn poll_read(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                    buf: &mut [u8],
                ) -> Poll<io::Result<usize>> {
                    let mut rb = ReadBuf::new(buf);
                    match self.$inner().poll_read(cx, &mut rb) {
                        Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        Poll::Pending => Poll::Pending,
                    }
                }
            }
        )*};
    }
    macro_rules! futures_io_write {
        ($($t:ty, $inner:ident;)*) => {$(
            impl futures_io::AsyncWrite for $t {
                fn poll_write(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                    buf: &[u8],
                ) -> Poll<io::Result<usize>> {
                    self.$inner().poll_write(cx, &[IoSlice::new(buf)])
                }
                fn poll_write_vectored(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                    bufs: &[IoSlice<'_>],
                ) -> Poll<io::Result<usize>> {
                    self.$inner().poll_write(cx, bufs)
                }
                fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                    Poll::Ready(Ok(()))
                }
                fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                    Poll::Ready(self.$inner().shutdown())
                }
            }
        )*};
    }
    futures_io! {
        TcpStream, stream_inner;
        ReadHalf<'_>, stream_inner;
        OwnedReadHalf, stream_inner;
    }
    futures_io_write! {
        TcpStream, stream_inner;
        WriteHalf<'_>, stream_inner;
        OwnedWriteHalf, stream_inner;
    }

    impl TcpStream {
        fn stream_inner(&self) -> &StreamInner {
            &self.inner
        }
    }
}
