//! Interception on a [`Stack`] (AI-01, AI-02): terminate TCP to every address and port,
//! as a VPN client or a tun2socks proxy does behind a TUN device.
//!
//! - [`Stack::intercept`] hands out each new connection request *before* its SYN-ACK, as an
//!   [`InterceptRequest`] carrying the 4-tuple and the SYN's options; the application
//!   completes it ([`InterceptRequest::accept`]), refuses it with a RST or an ICMP
//!   unreachable ([`InterceptRequest::refuse`]), or drops it (dropping the request).
//! - [`Stack::intercept_all`] accepts every such connection at once, for
//!   [`InterceptListener::accept`].
//!
//! Either way a stream's [`local_addr`](TcpStream::local_addr) is the address the client
//! dialled; listeners bound on the stack keep taking their own addresses and ports. The
//! driver stays the only caller of the endpoint's inputs: it hands completed connections
//! over here ([`pump`]), and the handles only call the endpoint's application-side
//! methods under its lock.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tcpcore::{
    Decision, EndpointConfig, FourTuple, InterceptMode, InterceptOptions, RequestId, SynInfo,
    Unreachable,
};

use crate::cell::{self, Cell};
use crate::lock;
use crate::net::{StreamInner, TcpStream};
use crate::stack::{EpState, Shared, Stack};

/// How [`InterceptRequest::refuse`] answers the SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A RST: the client's `connect` fails with `ConnectionRefused`.
    Reset,
    /// ICMP host unreachable (ICMPv6 address unreachable): a soft error, so the client
    /// retries its SYN (each retry is a new request) and finally fails with `HostUnreachable`.
    HostUnreachable,
    /// ICMP port unreachable: the client's `connect` fails with `ConnectionRefused`.
    PortUnreachable,
    /// ICMP communication administratively prohibited: the client fails at once with
    /// `HostUnreachable` (IPv4) or `PermissionDenied` (IPv6), as Linux maps it.
    AdminProhibited,
}

/// The interception state the driver and the handles share, under the endpoint lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The endpoint's mode, mirrored.
    mode: InterceptMode,
    /// Completed connections nobody waits for (in [`InterceptMode::Accept`], or completed
    /// with a SYN cookie while the pending table was full), at most `backlog`.
    ready: VecDeque<Arc<Cell>>,
    backlog: usize,
    /// Requests accepted and waiting for their handshake, by 4-tuple.
    waiting: HashMap<FourTuple, Waiter>,
    /// The task in `next` or `accept`.
    waker: Option<Waker>,
    /// The endpoint's request count when the task was last woken for requests.
    seen_requests: u64,
}

/// An accepted request waiting for its handshake to complete.
#[derive(Debug, Default)]
struct Waiter {
    cell: Option<Arc<Cell>>,
    waker: Option<Waker>,
}

/// Whether the driver must hand every packet to the endpoint, whatever its destination: TCP
/// or UDP interception is on.
pub(crate) fn takes_all(st: &EpState) -> bool {
    st.intercept.mode != InterceptMode::Off || st.ep.udp_intercepting()
}

/// Driver side, after a batch of packets: wake the task waiting for new requests, and give
/// each intercepted connection that completed to the request waiting for it, or queue it
/// (resetting it when the queue is full, as an overflowing accept queue would).
pub(crate) fn pump(st: &mut EpState, work: &mut VecDeque<Arc<Cell>>, wakers: &mut Vec<Waker>) {
    if st.intercept.mode == InterceptMode::Off {
        return;
    }
    let made = st.ep.stats().intercept.requests;
    if made != st.intercept.seen_requests {
        st.intercept.seen_requests = made;
        wakers.extend(st.intercept.waker.take());
    }
    while let Some(h) = st.ep.accept_intercepted() {
        let Some(cell) = st.get(h.0).cloned() else { continue };
        let tuple = {
            let inner = lock(&cell.inner);
            FourTuple { local: inner.conn.local_addr(), remote: inner.conn.remote_addr() }
        };
        let it = &mut st.intercept;
        if let Some(w) = it.waiting.get_mut(&tuple) {
            w.cell = Some(cell);
            wakers.extend(w.waker.take());
        } else if it.ready.len() < it.backlog {
            it.ready.push_back(cell);
            wakers.extend(it.waker.take());
        } else {
            let mut inner = lock(&cell.inner);
            inner.conn.abort();
            if inner.needs_driver(true) {
                drop(inner);
                work.push_back(cell);
            }
        }
    }
}

/// Reset `cell`'s connection from an application task.
fn abort(shared: &Shared, cell: Arc<Cell>) {
    let mut inner = lock(&cell.inner);
    inner.conn.abort();
    let schedule = inner.needs_driver(true);
    drop(inner);
    if schedule {
        shared.schedule(cell);
    }
}

/// How long a completed request may take to finish its handshake: the SYN-ACK and all its
/// retransmissions (`tcp_synack_retries`, backing off from the initial RTO), plus one RTO.
fn handshake_lifetime(cfg: &EndpointConfig) -> Duration {
    let c = &cfg.conn;
    (0..=u32::from(c.synack_retries).min(16))
        .map(|i| c.initial_rto.saturating_mul(1 << i).min(c.max_rto))
        .fold(c.initial_rto, Duration::saturating_add)
}

impl Shared {
    /// Turn interception on with `opts`.
    fn start_intercept(&self, opts: InterceptOptions) -> io::Result<()> {
        let mut st = lock(&self.ep);
        if st.intercept.mode != InterceptMode::Off {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, "the stack already intercepts"));
        }
        st.ep.set_interception(opts);
        let somaxconn = st.ep.config().somaxconn;
        st.intercept.mode = opts.mode;
        st.intercept.backlog = opts.listen.backlog.min(somaxconn).max(1) as usize;
        Ok(())
    }

    /// Turn interception off: every connection not handed out yet is reset.
    fn stop_intercept(&self) {
        let cells: Vec<_> = {
            let mut st = lock(&self.ep);
            let orphans = st.ep.set_interception(InterceptOptions::default());
            let mut cells: Vec<_> = orphans.iter().filter_map(|h| st.get(h.0).cloned()).collect();
            let it = &mut st.intercept;
            it.mode = InterceptMode::Off;
            cells.extend(it.ready.drain(..));
            cells.extend(it.waiting.drain().filter_map(|(_, w)| w.cell));
            cells
        };
        for cell in cells {
            abort(self, cell);
        }
        self.wake_driver();
    }
}

impl Stack {
    /// Intercept TCP connections to every address and port no listener of this stack
    /// takes, and decide on each before its handshake (AI-02), with default options (at
    /// most 1024 requests waiting, each for up to 63 s). The driver then takes packets for
    /// any destination.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// use tcp_tokio::{MemLink, Refusal, Stack};
    ///
    /// let (a, b) = MemLink::pair();
    /// let proxy = Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// let client = Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// let interceptor = proxy.intercept()?;
    /// tokio::spawn(async move {
    ///     loop {
    ///         let request = interceptor.next().await;
    ///         if request.local_addr().port() == 443 {
    ///             let _stream = request.accept().await;
    ///         } else {
    ///             request.refuse(Refusal::Reset);
    ///         }
    ///     }
    /// });
    /// let stream = client.connect("192.0.2.7:443").await?;
    /// assert_eq!(stream.peer_addr()?, "192.0.2.7:443".parse().unwrap());
    /// let refused = client.connect("192.0.2.7:80").await.unwrap_err();
    /// assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `AddrInUse` if the stack already intercepts.
    pub fn intercept(&self) -> io::Result<Interceptor> {
        self.intercept_with(InterceptOptions::default())
    }

    /// [`Stack::intercept`] with explicit options: the bound on waiting requests, the
    /// decision timeout, and the implicit listener's backlog, SYN backlog and cookie policy
    /// (cookies also answer SYNs while the pending table is full; such connections complete
    /// without a decision and come out of [`Interceptor::next`] already established).
    /// `opts.mode` is ignored.
    ///
    /// # Errors
    /// As [`Stack::intercept`].
    pub fn intercept_with(&self, opts: InterceptOptions) -> io::Result<Interceptor> {
        let opts = InterceptOptions { mode: InterceptMode::Decide, ..opts };
        self.shared.start_intercept(opts)?;
        Ok(Interceptor { shared: self.shared.clone() })
    }

    /// Accept TCP connections to every address and port no listener of this stack takes
    /// (AI-01), as a listener on all of them would, with default listener options.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, b) = tcp_tokio::MemLink::pair();
    /// # let proxy = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// let listener = proxy.intercept_all()?;
    /// let _c = client.connect("198.51.100.3:22").await?;
    /// let (stream, _peer) = listener.accept().await?;
    /// assert_eq!(stream.local_addr()?, "198.51.100.3:22".parse().unwrap());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Stack::intercept`].
    pub fn intercept_all(&self) -> io::Result<InterceptListener> {
        self.intercept_all_with(InterceptOptions::default())
    }

    /// [`Stack::intercept_all`] with explicit listener options (`opts.listen`); the other
    /// fields are ignored.
    ///
    /// # Errors
    /// As [`Stack::intercept`].
    pub fn intercept_all_with(&self, opts: InterceptOptions) -> io::Result<InterceptListener> {
        let opts = InterceptOptions { mode: InterceptMode::Accept, ..opts };
        self.shared.start_intercept(opts)?;
        Ok(InterceptListener { shared: self.shared.clone() })
    }
}

/// The handle of [`Stack::intercept`]: yields each new connection request. Dropping it
/// turns interception off (connections not handed out yet are reset).
#[derive(Debug)]
pub struct Interceptor {
    shared: Arc<Shared>,
}

impl Interceptor {
    /// Wait for the next connection request.
    ///
    /// # Examples
    /// See [`Stack::intercept`].
    ///
    /// # Cancel safety
    /// Cancel safe: a request is taken only when the future completes.
    pub async fn next(&self) -> InterceptRequest {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Poll for the next connection request. Only the last task to poll is woken.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<InterceptRequest> {
        let mut st = lock(&self.shared.ep);
        let shared = self.shared.clone();
        if let Some(cell) = st.intercept.ready.pop_front() {
            let (local, peer) = {
                let inner = lock(&cell.inner);
                (inner.conn.local_addr(), inner.conn.remote_addr())
            };
            let kind = Some(Kind::Established(cell));
            return Poll::Ready(InterceptRequest { shared, local, peer, syn: None, kind });
        }
        if let Some(req) = st.ep.poll_request() {
            let (local, peer) = (req.local(), req.remote());
            let kind = Some(Kind::Pending(req.id));
            return Poll::Ready(InterceptRequest { shared, local, peer, syn: Some(req.syn), kind });
        }
        cell::register(&mut st.intercept.waker, cx.waker());
        Poll::Pending
    }

    /// Requests waiting for a decision, handed out or not.
    pub fn pending(&self) -> usize {
        lock(&self.shared.ep).ep.pending_requests()
    }
}

impl Drop for Interceptor {
    fn drop(&mut self) {
        self.shared.stop_intercept();
    }
}

/// Where an [`InterceptRequest`] stands.
#[derive(Debug)]
enum Kind {
    /// Waiting for the decision; nothing sent yet.
    Pending(RequestId),
    /// Completed with a SYN cookie while the pending table was full.
    Established(Arc<Cell>),
}

/// A connection request from [`Interceptor::next`]. Dropping it drops the SYN silently
/// (the client's next retransmission is a new request).
#[derive(Debug)]
#[must_use = "dropping a request drops its SYN"]
pub struct InterceptRequest {
    shared: Arc<Shared>,
    local: SocketAddr,
    peer: SocketAddr,
    syn: Option<SynInfo>,
    /// `None` once decided.
    kind: Option<Kind>,
}

impl InterceptRequest {
    /// The address and port the client dialled: the stream's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The client's address and port.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// What the SYN offered (MSS, window scale, SACK permitted, timestamps). `None` when the
    /// connection already completed with a SYN cookie, which keeps no SYN.
    pub fn syn(&self) -> Option<&SynInfo> {
        self.syn.as_ref()
    }

    /// Complete the handshake: the SYN-ACK goes out now, and the stream is returned once
    /// the client's ACK arrives.
    ///
    /// # Errors
    /// `TimedOut` when the request expired before this call (the decision timeout) or the
    /// client never completed the handshake (SYN-ACK retries ran out).
    ///
    /// # Cancel safety
    /// Dropping the future abandons the connection: it is reset if it completes.
    pub async fn accept(mut self) -> io::Result<TcpStream> {
        let shared = self.shared.clone();
        let id = match self.kind.take() {
            Some(Kind::Established(cell)) => {
                return Ok(TcpStream::from_inner(StreamInner::new(cell, shared)))
            }
            Some(Kind::Pending(id)) => id,
            None => return Err(io::Error::from(io::ErrorKind::NotConnected)),
        };
        let tuple = id.tuple();
        let lifetime = {
            let mut st = lock(&shared.ep);
            let now = shared.now();
            st.ep.decide(now, id, Decision::Complete).map_err(|e| {
                io::Error::new(io::ErrorKind::TimedOut, format!("connection request: {e}"))
            })?;
            st.intercept.waiting.insert(tuple, Waiter::default());
            handshake_lifetime(st.ep.config())
        };
        shared.wake_driver();
        let guard = WaitGuard { shared: shared.clone(), tuple };
        match tokio::time::timeout(lifetime, poll_fn(|cx| guard.poll(cx))).await {
            Ok(cell) => Ok(TcpStream::from_inner(StreamInner::new(cell, shared))),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "handshake not completed")),
        }
    }

    /// Refuse the connection. A request that already completed (with a SYN cookie) is
    /// reset whatever `how` says.
    pub fn refuse(mut self, how: Refusal) {
        let decision = match how {
            Refusal::Reset => Decision::Reset,
            Refusal::HostUnreachable => Decision::Unreachable(Unreachable::Host),
            Refusal::PortUnreachable => Decision::Unreachable(Unreachable::Port),
            Refusal::AdminProhibited => Decision::Unreachable(Unreachable::AdminProhibited),
        };
        self.decide(decision);
    }

    fn decide(&mut self, decision: Decision) {
        match self.kind.take() {
            Some(Kind::Pending(id)) => {
                {
                    let mut st = lock(&self.shared.ep);
                    let now = self.shared.now();
                    // An expired request needs no answer.
                    let _ = st.ep.decide(now, id, decision);
                }
                self.shared.wake_driver();
            }
            Some(Kind::Established(cell)) => abort(&self.shared, cell),
            None => {}
        }
    }
}

impl Drop for InterceptRequest {
    fn drop(&mut self) {
        self.decide(Decision::Drop);
    }
}

/// An accepted request's claim on its connection: removed (and the connection reset, if it
/// arrived unclaimed) when the accept future ends or is dropped.
struct WaitGuard {
    shared: Arc<Shared>,
    tuple: FourTuple,
}

impl WaitGuard {
    fn poll(&self, cx: &mut Context<'_>) -> Poll<Arc<Cell>> {
        let mut st = lock(&self.shared.ep);
        let Some(w) = st.intercept.waiting.get_mut(&self.tuple) else {
            // Interception was turned off: the handshake will never be handed over.
            return Poll::Pending;
        };
        if let Some(cell) = w.cell.take() {
            st.intercept.waiting.remove(&self.tuple);
            return Poll::Ready(cell);
        }
        cell::register(&mut w.waker, cx.waker());
        Poll::Pending
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        let w = lock(&self.shared.ep).intercept.waiting.remove(&self.tuple);
        if let Some(cell) = w.and_then(|w| w.cell) {
            abort(&self.shared, cell);
        }
    }
}

/// The handle of [`Stack::intercept_all`]: accepts connections to any address, like a
/// [`TcpListener`](crate::net::TcpListener) on all of them. Dropping it turns interception
/// off and resets the connections not accepted yet.
#[derive(Debug)]
pub struct InterceptListener {
    shared: Arc<Shared>,
}

impl InterceptListener {
    /// Wait for the next intercepted connection; its `local_addr` is the address the client
    /// dialled. Returns the stream and the client's address.
    ///
    /// # Examples
    /// See [`Stack::intercept_all`].
    ///
    /// # Errors
    /// None today; the `Result` matches [`TcpListener::accept`](crate::net::TcpListener::accept).
    ///
    /// # Cancel safety
    /// Cancel safe: a connection is taken only when the future completes.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Poll for the next intercepted connection. Only the last task to poll is woken.
    ///
    /// # Errors
    /// As [`InterceptListener::accept`].
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let mut st = lock(&self.shared.ep);
        if let Some(cell) = st.intercept.ready.pop_front() {
            drop(st);
            let peer = lock(&cell.inner).conn.remote_addr();
            let stream = TcpStream::from_inner(StreamInner::new(cell, self.shared.clone()));
            return Poll::Ready(Ok((stream, peer)));
        }
        cell::register(&mut st.intercept.waker, cx.waker());
        Poll::Pending
    }
}

impl Drop for InterceptListener {
    fn drop(&mut self) {
        self.shared.stop_intercept();
    }
}
