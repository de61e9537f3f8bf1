//! [`UdpSocket`]: tokio's UDP socket API over the stack's [`tcpcore::UdpSocket`].
//!
//! Each socket is a cell (the engine's socket, a read waker, a write waker, the list of
//! waiting futures) locked briefly by the application and by the driver, like a TCP
//! connection's; how each method waits is in `udp/wait.rs`. The driver routes received
//! datagrams and ICMP errors into the cell ([`deliver`], [`deliver_error`]) and drains its
//! send queue; a send that queues a datagram hands the cell to the driver.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tcpcore::{UdpDatagram, UdpHandle, UdpIcmpError, UdpSendError};
use tokio::io::{Interest, ReadBuf, Ready};

use super::{to_addrs, ToSocketAddrs};
use crate::cell::{Waiters, READ, WRITE};
use crate::error::{endpoint_error, read_error};
use crate::lock;
use crate::stack::{EpState, Shared, Stack};

mod intercept;
mod wait;

use wait::{Wait, Waiter};

/// One UDP socket and the state its users and the driver share.
#[derive(Debug)]
pub(crate) struct UdpCell {
    pub(crate) handle: UdpHandle,
    pub(crate) inner: Mutex<UdpInner>,
}

/// What the cell's lock protects.
#[derive(Debug)]
pub(crate) struct UdpInner {
    pub(crate) sock: tcpcore::UdpSocket,
    /// Woken when a datagram or an error arrives (the `poll_*` methods' waker).
    read_waker: Option<Waker>,
    /// Woken when the driver drained the send queue (the `poll_*` methods' waker).
    write_waker: Option<Waker>,
    /// The async methods' futures waiting on this socket, every one woken by an event.
    waiters: Waiters,
    /// In the driver's UDP work queue (or on its way): at most once.
    pub(crate) queued: bool,
}

/// The driver's half: a datagram for socket `h`.
pub(crate) fn deliver(
    st: &mut EpState,
    h: UdpHandle,
    d: &UdpDatagram<'_>,
    wakers: &mut Vec<Waker>,
) {
    let Some(cell) = st.udp.get(h.0).and_then(Option::as_ref) else { return };
    let mut inner = lock(&cell.inner);
    if inner.sock.handle_datagram(d) {
        inner.wake(READ, wakers);
    }
}

/// The driver's half: an ICMP error about a datagram socket `h` sent.
pub(crate) fn deliver_error(
    st: &mut EpState,
    h: UdpHandle,
    e: UdpIcmpError,
    wakers: &mut Vec<Waker>,
) {
    let Some(cell) = st.udp.get(h.0).and_then(Option::as_ref) else { return };
    let mut inner = lock(&cell.inner);
    inner.sock.handle_icmp_error(e);
    if inner.sock.is_readable() {
        inner.wake(READ, wakers);
    }
}

impl UdpInner {
    /// Move the wakers waiting for one of `dirs` ([`READ`], [`WRITE`]) into `out`.
    pub(crate) fn wake(&mut self, dirs: u8, out: &mut Vec<Waker>) {
        if dirs & READ != 0 {
            out.extend(self.read_waker.take());
        }
        if dirs & WRITE != 0 {
            out.extend(self.write_waker.take());
        }
        self.waiters.wake(dirs, out);
    }
}

/// A UDP socket on a [`Stack`], with the API of [`tokio::net::UdpSocket`].
///
/// Datagrams are delivered whole or not at all; the receive queue is bounded
/// (`EndpointConfig::udp_rcvbuf`) and drops what does not fit, as the kernel does. A
/// connected socket receives only from its peer, and an ICMP port unreachable for what it
/// sent fails its next receive or send with `ConnectionRefused`. Datagrams larger than the
/// MTU leave as IP fragments. `&self` methods, so one socket can be shared (`Arc`) between
/// tasks; as with tokio, every task awaiting an async method (`recv`, `send_to`,
/// `readable`, …) is woken by the event it waits for, while each `poll_*` method keeps one
/// waker per direction (UDP-04).
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// use tcp_tokio::net::UdpSocket;
/// use tcp_tokio::{MemLink, Stack};
///
/// let (a, b) = MemLink::pair();
/// let server = Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
/// let client = Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
///
/// let echo = server.bind_udp("10.0.0.1:7").await?;
/// tokio::spawn(async move {
///     let mut buf = [0; 1500];
///     let (n, peer) = echo.recv_from(&mut buf).await?;
///     echo.send_to(&buf[..n], peer).await?;
///     std::io::Result::Ok(())
/// });
/// let sock = client.bind_udp("0.0.0.0:0").await?;
/// sock.connect("10.0.0.1:7").await?;
/// sock.send(b"hello").await?;
/// let mut buf = [0; 16];
/// let n = sock.recv(&mut buf).await?;
/// assert_eq!(&buf[..n], b"hello");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    cell: Arc<UdpCell>,
    shared: Arc<Shared>,
}

impl Stack {
    /// Bind a UDP socket to `addr` on this stack (port 0 picks an ephemeral port; the
    /// unspecified address receives on the stack's address of that family).
    ///
    /// # Errors
    /// `AddrNotAvailable` for an address that is not the stack's; `AddrInUse` when a socket
    /// is bound to a conflicting address; `InvalidInput` when `addr` resolves to nothing.
    pub async fn bind_udp(&self, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in to_addrs(&addr)? {
            match UdpSocket::bind_on(&self.shared, a) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
    }
}

impl UdpSocket {
    fn bind_on(shared: &Arc<Shared>, addr: SocketAddr) -> io::Result<UdpSocket> {
        shared.check_local(addr.ip())?;
        let mut st = lock(&shared.ep);
        let sock = st.ep.udp_bind(addr).map_err(endpoint_error)?;
        Ok(Self::register(shared, &mut st, sock))
    }

    /// Give the engine's socket `sock` a cell the driver routes to.
    fn register(shared: &Arc<Shared>, st: &mut EpState, sock: tcpcore::UdpSocket) -> UdpSocket {
        let handle = sock.handle();
        let inner = UdpInner {
            sock,
            read_waker: None,
            write_waker: None,
            waiters: Waiters::default(),
            queued: false,
        };
        let cell = Arc::new(UdpCell { handle, inner: Mutex::new(inner) });
        if st.udp.len() <= handle.0 {
            st.udp.resize(handle.0 + 1, None);
        }
        st.udp[handle.0] = Some(cell.clone());
        UdpSocket { cell, shared: shared.clone() }
    }

    /// Bind a socket to `addr` on the process default stack ([`Stack::set_default`]), as
    /// [`tokio::net::UdpSocket::bind`] does on the kernel.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, _b) = tcp_tokio::MemLink::pair();
    /// # tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?.set_default();
    /// let sock = tcp_tokio::net::UdpSocket::bind("10.0.0.1:5353").await?;
    /// assert_eq!(sock.local_addr()?.port(), 5353);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `NotFound` without a default stack; otherwise as [`Stack::bind_udp`].
    ///
    /// # Cancel safety
    /// Binding completes without waiting, so dropping the future is harmless.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        Stack::default_or_err()?.bind_udp(addr).await
    }

    /// Connect to `addr`: sends without an address go there, only its datagrams are
    /// received, and ICMP errors about what is sent there are reported. A socket bound to
    /// the unspecified address takes the stack's address of the family as its own.
    ///
    /// # Examples
    /// See [`UdpSocket`].
    ///
    /// # Errors
    /// `InvalidInput` for port 0, an unspecified or multicast peer or mixed families;
    /// `NetworkUnreachable` when the stack has no address of the family.
    ///
    /// # Cancel safety
    /// Connecting completes without waiting, so dropping the future is harmless.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let mut last = None;
        for a in to_addrs(&addr)? {
            match self.connect_to(a) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
    }

    fn connect_to(&self, remote: SocketAddr) -> io::Result<()> {
        let local_ip = self.shared.local_ip_for(&remote)?;
        let mut st = lock(&self.shared.ep);
        let mut inner = lock(&self.cell.inner);
        st.ep.udp_connect(&mut inner.sock, local_ip, remote).map_err(endpoint_error)
    }

    /// The local address (the port chosen for port 0; the stack's address once connected
    /// from the unspecified address).
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(lock(&self.cell.inner).sock.local_addr())
    }

    /// The connected peer.
    ///
    /// # Errors
    /// `NotConnected` when the socket is not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        lock(&self.cell.inner)
            .sock
            .peer_addr()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))
    }

    /// Queue one datagram for `target` (`None`: the connected peer), or `wait` for room in
    /// the send queue.
    fn poll_send_inner(
        &self,
        wait: Wait<'_, '_>,
        buf: &[u8],
        target: Option<SocketAddr>,
    ) -> Poll<io::Result<usize>> {
        let mut inner = lock(&self.cell.inner);
        let local = inner.sock.local_addr();
        let result = match target.or(inner.sock.peer_addr()) {
            None => Err(UdpSendError::NotConnected),
            Some(dst) if local.ip().is_unspecified() => match self.shared.local_ip_for(&dst) {
                Ok(src) => inner.sock.send_from(src, dst, buf),
                Err(e) => return Poll::Ready(Err(e)),
            },
            Some(dst) => inner.sock.send_to(dst, buf),
        };
        self.finish_send(inner, wait, result, buf.len())
    }

    /// After queueing (or failing to queue) a datagram of `len` bytes: hand the cell to the
    /// driver, or `wait` for room in the send queue.
    fn finish_send(
        &self,
        mut inner: std::sync::MutexGuard<'_, UdpInner>,
        wait: Wait<'_, '_>,
        result: Result<(), UdpSendError>,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        match result {
            Ok(()) => {
                let schedule = !inner.queued;
                inner.queued = true;
                drop(inner);
                if schedule {
                    let waker = {
                        let mut n = lock(&self.shared.notify);
                        n.udp_dirty.push(self.cell.clone());
                        n.waker.take()
                    };
                    if let Some(w) = waker {
                        w.wake();
                    }
                }
                Poll::Ready(Ok(len))
            }
            Err(UdpSendError::Blocked) => {
                wait.park(&mut inner, WRITE, || UdpSendError::Blocked.into())
            }
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    /// Receive one datagram into `buf` (`peek`: leave it queued), or `wait` for one.
    fn poll_recv_inner(
        &self,
        wait: Wait<'_, '_>,
        buf: &mut [u8],
        peek: bool,
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut inner = lock(&self.cell.inner);
        let got = if peek { inner.sock.peek_from(buf) } else { inner.sock.recv_from(buf) };
        match got {
            Ok(r) => Poll::Ready(Ok((r.len, r.src))),
            Err(tcpcore::ReadError::WouldBlock) => {
                wait.park(&mut inner, READ, || read_error(tcpcore::ReadError::WouldBlock))
            }
            Err(e) => Poll::Ready(Err(read_error(e))),
        }
    }

    /// Send `buf` to the connected peer.
    ///
    /// # Examples
    /// See [`UdpSocket`].
    ///
    /// # Errors
    /// `NotConnected` without a peer; `InvalidInput` for a datagram longer than IP allows;
    /// `ConnectionRefused` (once) after a port unreachable for an earlier datagram.
    ///
    /// # Cancel safety
    /// Cancel safe: the datagram is queued whole when the future completes, or not at all.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let mut w = Waiter::new(&self.cell);
        poll_fn(|cx| self.poll_send_inner(w.with(cx), buf, None)).await
    }

    /// Poll to send `buf` to the connected peer; `Pending` while the send queue is full.
    ///
    /// # Errors
    /// As [`UdpSocket::send`].
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send_inner(Wait::Poll(cx), buf, None)
    }

    /// Send `buf` to the connected peer without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when the send queue is full; otherwise as [`UdpSocket::send`].
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        poll_result(self.poll_send_inner(Wait::Never, buf, None))
    }

    /// Send `buf` to `target`.
    ///
    /// # Examples
    /// See [`UdpSocket`].
    ///
    /// # Errors
    /// `InvalidInput` for port 0, an unspecified, multicast or other-family target, or a
    /// datagram longer than IP allows; `NetworkUnreachable` when the stack has no address of
    /// the family.
    ///
    /// # Cancel safety
    /// Cancel safe: the datagram is queued whole when the future completes, or not at all.
    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let target = to_addrs(&target)?
            .into_iter()
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let mut w = Waiter::new(&self.cell);
        poll_fn(|cx| self.poll_send_inner(w.with(cx), buf, Some(target))).await
    }

    /// Poll to send `buf` to `target`; `Pending` while the send queue is full.
    ///
    /// # Errors
    /// As [`UdpSocket::send_to`].
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.poll_send_inner(Wait::Poll(cx), buf, Some(target))
    }

    /// Send `buf` to `target` without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when the send queue is full; otherwise as [`UdpSocket::send_to`].
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        poll_result(self.poll_send_inner(Wait::Never, buf, Some(target)))
    }

    /// Receive one datagram from the connected peer into `buf`; what does not fit is
    /// discarded.
    ///
    /// # Examples
    /// See [`UdpSocket`].
    ///
    /// # Errors
    /// `ConnectionRefused` (once) after a port unreachable for a datagram this connected
    /// socket sent.
    ///
    /// # Cancel safety
    /// Cancel safe: a datagram is taken from the queue only when the future completes.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut w = Waiter::new(&self.cell);
        poll_fn(|cx| self.poll_recv_inner(w.with(cx), buf, false)).await.map(|(n, _)| n)
    }

    /// Poll to receive one datagram into `buf`'s unfilled part.
    ///
    /// # Errors
    /// As [`UdpSocket::recv`].
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.poll_recv_from(cx, buf).map_ok(|_| ())
    }

    /// Receive one datagram without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when none is queued; otherwise as [`UdpSocket::recv`].
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_result(self.poll_recv_inner(Wait::Never, buf, false)).map(|(n, _)| n)
    }

    /// Receive one datagram into `buf` with its source; what does not fit is discarded.
    ///
    /// # Examples
    /// See [`UdpSocket`].
    ///
    /// # Errors
    /// As [`UdpSocket::recv`].
    ///
    /// # Cancel safety
    /// Cancel safe: a datagram is taken from the queue only when the future completes.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut w = Waiter::new(&self.cell);
        poll_fn(|cx| self.poll_recv_inner(w.with(cx), buf, false)).await
    }

    /// Poll to receive one datagram into `buf`'s unfilled part, with its source.
    ///
    /// # Errors
    /// As [`UdpSocket::recv`].
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        self.poll_read_buf(cx, buf, false)
    }

    /// Receive one datagram with its source without waiting.
    ///
    /// # Errors
    /// `WouldBlock` when none is queued; otherwise as [`UdpSocket::recv`].
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_result(self.poll_recv_inner(Wait::Never, buf, false))
    }

    /// Copy the next datagram into `buf` with its source, leaving it queued.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, _b) = tcp_tokio::MemLink::pair();
    /// # let stack = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// let rx = stack.bind_udp("10.0.0.1:9000").await?;
    /// let tx = stack.bind_udp("10.0.0.1:0").await?;
    /// tx.send_to(b"hi", "10.0.0.1:9000").await?;
    /// let mut buf = [0; 8];
    /// let (n, from) = rx.peek_from(&mut buf).await?;
    /// assert_eq!((&buf[..n], from), (&b"hi"[..], tx.local_addr()?));
    /// assert_eq!(rx.recv(&mut buf).await?, 2, "still queued");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`UdpSocket::recv`].
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is taken from the queue.
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut w = Waiter::new(&self.cell);
        poll_fn(|cx| self.poll_recv_inner(w.with(cx), buf, true)).await
    }

    /// Poll to copy the next datagram into `buf`'s unfilled part, leaving it queued.
    ///
    /// # Errors
    /// As [`UdpSocket::recv`].
    pub fn poll_peek_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        self.poll_read_buf(cx, buf, true)
    }

    /// Copy the next datagram with its source without waiting, leaving it queued.
    ///
    /// # Errors
    /// `WouldBlock` when none is queued; otherwise as [`UdpSocket::recv`].
    pub fn try_peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_result(self.poll_recv_inner(Wait::Never, buf, true))
    }

    fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        peek: bool,
    ) -> Poll<io::Result<SocketAddr>> {
        let dst = buf.initialize_unfilled();
        let (n, from) = match self.poll_recv_inner(Wait::Poll(cx), dst, peek) {
            Poll::Ready(Ok(got)) => got,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(n);
        Poll::Ready(Ok(from))
    }

    /// Wait until a receive would not block (a datagram or an error is queued).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, _b) = tcp_tokio::MemLink::pair();
    /// # let stack = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// let rx = stack.bind_udp("10.0.0.1:9000").await?;
    /// stack.bind_udp("10.0.0.1:0").await?.send_to(b"x", "10.0.0.1:9000").await?;
    /// rx.readable().await?;
    /// let mut buf = [0; 4];
    /// assert_eq!(rx.try_recv(&mut buf)?, 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// None today; the `Result` matches tokio.
    ///
    /// # Cancel safety
    /// Cancel safe: it consumes nothing.
    pub async fn readable(&self) -> io::Result<()> {
        let mut w = Waiter::new(&self.cell);
        poll_fn(|cx| self.poll_ready_inner(w.with(cx), READ)).await.map(|_| ())
    }

    /// Poll until a receive would not block.
    ///
    /// # Errors
    /// As [`UdpSocket::readable`].
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_ready_inner(Wait::Poll(cx), READ).map_ok(|_| ())
    }

    /// Wait until the send queue has room for a datagram.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, _b) = tcp_tokio::MemLink::pair();
    /// # let stack = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// let sock = stack.bind_udp("10.0.0.1:0").await?;
    /// sock.writable().await?;
    /// sock.try_send_to(b"x", "10.0.0.1:9".parse().unwrap())?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// None today; the `Result` matches tokio.
    ///
    /// # Cancel safety
    /// Cancel safe: it consumes nothing.
    pub async fn writable(&self) -> io::Result<()> {
        let mut w = Waiter::new(&self.cell);
        poll_fn(|cx| self.poll_ready_inner(w.with(cx), WRITE)).await.map(|_| ())
    }

    /// Poll until the send queue has room for a datagram.
    ///
    /// # Errors
    /// As [`UdpSocket::writable`].
    pub fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_ready_inner(Wait::Poll(cx), WRITE).map_ok(|_| ())
    }

    /// Wait until the socket is ready for any of `interest`, and say for which.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, _b) = tcp_tokio::MemLink::pair();
    /// # let stack = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// use tokio::io::Interest;
    ///
    /// let rx = stack.bind_udp("10.0.0.1:9001").await?;
    /// let ready = rx.ready(Interest::READABLE | Interest::WRITABLE).await?;
    /// assert!(ready.is_writable() && !ready.is_readable());
    /// stack.bind_udp("10.0.0.1:0").await?.send_to(b"x", "10.0.0.1:9001").await?;
    /// assert!(rx.ready(Interest::READABLE).await?.is_readable());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// None today; the `Result` matches tokio.
    ///
    /// # Cancel safety
    /// Cancel safe: it consumes nothing.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        let mut dirs = 0;
        if interest.is_readable() {
            dirs |= READ;
        }
        if interest.is_writable() {
            dirs |= WRITE;
        }
        let mut w = Waiter::new(&self.cell);
        poll_fn(|cx| self.poll_ready_inner(w.with(cx), dirs)).await
    }

    /// What the socket is ready for among `dirs` ([`READ`]: a datagram or an error is
    /// queued; [`WRITE`]: the send queue has room), or `wait` until it is.
    fn poll_ready_inner(&self, wait: Wait<'_, '_>, dirs: u8) -> Poll<io::Result<Ready>> {
        let mut inner = lock(&self.cell.inner);
        let mut ready = Ready::EMPTY;
        if dirs & READ != 0 && inner.sock.is_readable() {
            ready |= Ready::READABLE;
        }
        if dirs & WRITE != 0 && inner.sock.is_writable(0) {
            ready |= Ready::WRITABLE;
        }
        if !ready.is_empty() {
            return Poll::Ready(Ok(ready));
        }
        wait.park(&mut inner, dirs, || io::ErrorKind::WouldBlock.into())
    }

    /// The engine's counters of this socket (datagrams in and out, receive queue drops).
    pub fn stats(&self) -> tcpcore::UdpSocketStats {
        *lock(&self.cell.inner).sock.stats()
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        let mut st = lock(&self.shared.ep);
        st.ep.udp_close(self.cell.handle);
        if let Some(slot) = st.udp.get_mut(self.cell.handle.0) {
            *slot = None;
        }
    }
}

/// A non-blocking poll's result (`Pending` never happens without a context).
fn poll_result<T>(p: Poll<io::Result<T>>) -> io::Result<T> {
    match p {
        Poll::Ready(r) => r,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}
