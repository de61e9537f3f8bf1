//! [`Stack`]: the handle applications hold, its builder and the state it shares with the
//! driver task.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use tcpcore::{ConnConfig, Endpoint, EndpointConfig, EndpointStats, ListenOptions};

use crate::cell::{self, Cell};
use crate::device::Device;
use crate::driver::Driver;
use crate::error::endpoint_error;
use crate::lifecycle::{stack_down, Life};
use crate::lock;
use crate::net::{to_addrs, StreamInner, TcpListener, TcpSocket, TcpStream, ToSocketAddrs};
use crate::observe::Totals;

/// A userspace TCP/IP stack running on the current tokio runtime: a cheap, clonable handle.
///
/// Building a stack spawns its driver task, which alone owns the [`Device`] and moves
/// packets between it and the connections. Open connections with [`Stack::connect`] and
/// listeners with [`Stack::bind`], or make the stack the process default
/// ([`Stack::set_default`]) and use [`TcpStream::connect`] and [`TcpListener::bind`] as with
/// tokio.
///
/// The driver stops once every handle, stream and listener is dropped (the process default
/// counts as a handle) and every connection has finished closing, or when
/// [`Stack::shutdown`] has closed or aborted every connection.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// use tcp_tokio::{MemLink, Stack};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let (a, b) = MemLink::pair();
/// let server = Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
/// let client = Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
///
/// let listener = server.bind("10.0.0.1:80").await?;
/// tokio::spawn(async move {
///     let (mut s, _) = listener.accept().await?;
///     let mut buf = [0; 5];
///     s.read_exact(&mut buf).await?;
///     s.write_all(&buf).await?;
///     std::io::Result::Ok(())
/// });
/// let mut c = client.connect("10.0.0.1:80").await?;
/// c.write_all(b"hello").await?;
/// let mut buf = [0; 5];
/// c.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"hello");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Stack {
    pub(crate) shared: Arc<Shared>,
}

/// State shared by the handles, the streams and the driver.
pub(crate) struct Shared {
    /// The endpoint and the connection table. Taken by the driver per batch of packets and by
    /// connect, accept, bind and listener close; never by reads and writes.
    pub(crate) ep: Mutex<EpState>,
    /// Cells with work for the driver, and the driver's waker.
    pub(crate) notify: Mutex<Notify>,
    /// The instant `tcpcore::Instant::ZERO` stands for.
    pub(crate) epoch: tokio::time::Instant,
    pub(crate) v4: Option<Ipv4Addr>,
    pub(crate) v6: Option<Ipv6Addr>,
    /// Entries in the driver's timer heap after its last pass.
    pub(crate) timer_entries: AtomicUsize,
    /// Shutdown request and driver end ([`Stack::shutdown`]).
    pub(crate) life: Mutex<Life>,
    /// The driver's counters of every packet in and out.
    pub(crate) totals: Totals,
}

/// The endpoint and what is keyed by its handles.
pub(crate) struct EpState {
    pub(crate) ep: Endpoint,
    /// Cells by `ConnectionHandle.0`.
    pub(crate) conns: Vec<Option<Arc<Cell>>>,
    /// Live connections in `conns`.
    pub(crate) live: usize,
    pub(crate) listeners: Vec<ListenerSlot>,
    /// [`Stack::shutdown`] was called: no new listener, connection or accept.
    pub(crate) closing: bool,
    /// Any-IP interception (`intercept.rs`).
    pub(crate) intercept: crate::intercept::State,
    /// UDP socket cells by `UdpHandle.0`.
    pub(crate) udp: Vec<Option<Arc<crate::net::udp::UdpCell>>>,
}

/// A listener's accept waker.
#[derive(Debug)]
pub(crate) struct ListenerSlot {
    pub(crate) addr: SocketAddr,
    pub(crate) waker: Option<Waker>,
}

/// The driver's inbox.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    pub(crate) dirty: Vec<Arc<Cell>>,
    /// UDP sockets with datagrams to send.
    pub(crate) udp_dirty: Vec<Arc<crate::net::udp::UdpCell>>,
    pub(crate) waker: Option<Waker>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack").field("v4", &self.v4).field("v6", &self.v6).finish_non_exhaustive()
    }
}

impl EpState {
    pub(crate) fn insert(&mut self, cell: Arc<Cell>) {
        let i = cell.handle.0;
        if self.conns.len() <= i {
            self.conns.resize(i + 1, None);
        }
        if self.conns[i].replace(cell).is_none() {
            self.live += 1;
        }
    }

    pub(crate) fn remove(&mut self, i: usize) {
        if self.conns.get_mut(i).and_then(Option::take).is_some() {
            self.live -= 1;
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&Arc<Cell>> {
        self.conns.get(i).and_then(Option::as_ref)
    }
}

impl Shared {
    /// Now on the engine's clock.
    pub(crate) fn now(&self) -> tcpcore::Instant {
        let since = tokio::time::Instant::now().saturating_duration_since(self.epoch);
        tcpcore::Instant::from_micros(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
    }

    /// An engine instant on tokio's clock.
    pub(crate) fn deadline(&self, t: tcpcore::Instant) -> tokio::time::Instant {
        self.epoch + std::time::Duration::from_micros(t.as_micros())
    }

    /// Hand a cell marked `queued` to the driver and wake it. Call with no cell locked.
    pub(crate) fn schedule(&self, cell: Arc<Cell>) {
        let waker = {
            let mut n = lock(&self.notify);
            n.dirty.push(cell);
            n.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Wake the driver (to notice that handles went away).
    pub(crate) fn wake_driver(&self) {
        let waker = lock(&self.notify).waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn local_ip_for(&self, remote: &SocketAddr) -> io::Result<IpAddr> {
        let ip = match remote {
            SocketAddr::V4(_) => self.v4.map(IpAddr::V4),
            SocketAddr::V6(_) => self.v6.map(IpAddr::V6),
        };
        ip.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NetworkUnreachable, "no local address of that family")
        })
    }

    /// One of the stack's own addresses (not the unspecified one).
    pub(crate) fn is_local_exact(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.v4 == Some(v4),
            IpAddr::V6(v6) => self.v6 == Some(v6),
        }
    }

    pub(crate) fn is_local(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.v4.is_some_and(|a| a == v4 || v4.is_unspecified()),
            IpAddr::V6(v6) => self.v6.is_some_and(|a| a == v6 || v6.is_unspecified()),
        }
    }

    /// [`Shared::is_local`] as the error a socket call returns (`EADDRNOTAVAIL`).
    pub(crate) fn check_local(&self, ip: IpAddr) -> io::Result<()> {
        if self.is_local(ip) {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::AddrNotAvailable, "not an address of this stack"))
        }
    }

    /// The options new connections get: the stack's [`EndpointConfig::conn`].
    pub(crate) fn conn_config(&self) -> ConnConfig {
        lock(&self.ep).ep.config().conn
    }

    /// Start an active open; the returned stream is not yet connected.
    pub(crate) fn open(
        self: &Arc<Self>,
        local: Option<IpAddr>,
        remote: SocketAddr,
        nodelay: bool,
    ) -> io::Result<StreamInner> {
        let cfg = ConnConfig { nodelay, ..self.conn_config() };
        self.open_with(local.map(|ip| SocketAddr::new(ip, 0)), remote, cfg)
    }

    /// Start an active open from `local` with the options `cfg`. A non-zero port is a bound
    /// socket's reservation ([`Shared::reserve`]), which the connection takes over; port 0
    /// takes an ephemeral one. The returned stream is not yet connected.
    pub(crate) fn open_with(
        self: &Arc<Self>,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        cfg: ConnConfig,
    ) -> io::Result<StreamInner> {
        let ip = match local.map(|l| l.ip()) {
            Some(ip) if !ip.is_unspecified() => {
                self.check_local(ip)?;
                ip
            }
            _ => self.local_ip_for(&remote)?,
        };
        let port = local.map_or(0, |l| l.port());
        let now = self.now();
        let cell = {
            let mut st = lock(&self.ep);
            if st.closing {
                return Err(stack_down());
            }
            if let Some(reserved) = local.filter(|l| l.port() != 0) {
                st.ep.unbind(reserved);
            }
            let from = SocketAddr::new(ip, port);
            let (handle, conn) =
                st.ep.connect_from(now, from, remote, cfg).map_err(endpoint_error)?;
            let cell = Arc::new(Cell::new(handle, conn, true));
            st.insert(cell.clone());
            cell
        };
        self.schedule(cell.clone());
        Ok(StreamInner::new(cell, self.clone()))
    }

    /// Reserve `addr` for a bound socket (`bind(2)`; port 0 picks a free one), so that
    /// conflicts show at `bind`. Returns the address reserved.
    pub(crate) fn reserve(&self, addr: SocketAddr, reuse_addr: bool) -> io::Result<SocketAddr> {
        self.check_local(addr.ip())?;
        let mut st = lock(&self.ep);
        if st.closing {
            return Err(stack_down());
        }
        st.ep.bind(addr, reuse_addr).map_err(endpoint_error)
    }

    /// End a reservation made by [`Shared::reserve`].
    pub(crate) fn unreserve(&self, addr: SocketAddr) {
        lock(&self.ep).ep.unbind(addr);
    }

    /// Start listening.
    pub(crate) fn listen(
        self: &Arc<Self>,
        addr: SocketAddr,
        opts: ListenOptions,
    ) -> io::Result<TcpListener> {
        self.listen_with(addr, opts, None)
    }

    /// Start listening. `socket`: a bound socket listens on the address it reserved
    /// ([`Shared::reserve`]), which becomes the listener, and its options are those of the
    /// connections the listener accepts (else the stack's).
    pub(crate) fn listen_with(
        self: &Arc<Self>,
        addr: SocketAddr,
        opts: ListenOptions,
        socket: Option<ConnConfig>,
    ) -> io::Result<TcpListener> {
        self.check_local(addr.ip())?;
        let mut st = lock(&self.ep);
        if st.closing {
            return Err(stack_down());
        }
        if socket.is_some() {
            st.ep.unbind(addr);
        }
        let addr = if addr.port() == 0 {
            // PT-01: a port of the ephemeral range no listener and no live connection uses.
            st.ep.listen_ephemeral(addr.ip(), opts).map_err(endpoint_error)?
        } else {
            st.ep.listen_with(addr, opts).map_err(endpoint_error)?;
            addr
        };
        if let Some(cfg) = socket {
            let set = st.ep.set_listener_conn_config(addr, cfg);
            debug_assert!(set.is_ok(), "it listens there since just now");
        }
        st.listeners.push(ListenerSlot { addr, waker: None });
        drop(st);
        Ok(TcpListener::new(self.clone(), addr))
    }
}

impl Stack {
    /// A builder: give it at least one address, then [`StackBuilder::build`] it on a device.
    pub fn builder() -> StackBuilder {
        StackBuilder { addrs: Vec::new(), config: EndpointConfig::default(), seed: None }
    }

    /// Listen on `addr` with default options (backlog 1024, capped by
    /// [`EndpointConfig::somaxconn`]). Port 0 picks a free port; an unspecified IP listens on
    /// every address of its family. As [`tokio::net::TcpListener::bind`], every address
    /// `addr` resolves to is tried in turn.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, _b) = tcp_tokio::MemLink::pair();
    /// # let stack = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// let listener = stack.bind("0.0.0.0:8080").await?;
    /// assert_eq!(listener.local_addr()?.port(), 8080);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `AddrInUse` if something already listens there, `AddrNotAvailable` for an IP that is
    /// not the stack's, `InvalidInput` for an address string that is not `ip:port`,
    /// `NetworkDown` after [`Stack::shutdown`].
    ///
    /// # Cancel safety
    /// Binding completes without waiting, so dropping the future is harmless.
    pub async fn bind(&self, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        self.bind_with(addr, ListenOptions::default()).await
    }

    /// Listen on `addr` with explicit listener options: accept-queue `backlog`,
    /// `syn_backlog`, the [`SynCookies`](crate::SynCookies) policy and `abort_on_overflow`.
    /// [`TcpSocket::listen`] offers the same through tokio's socket API.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, _b) = tcp_tokio::MemLink::pair();
    /// # let stack = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// use tcp_tokio::{ListenOptions, SynCookies};
    ///
    /// let opts = ListenOptions { backlog: 16, syn_cookies: SynCookies::Always, ..Default::default() };
    /// let listener = stack.bind_with("10.0.0.1:80", opts).await?;
    /// # drop(listener); Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Stack::bind`].
    ///
    /// # Cancel safety
    /// Binding completes without waiting, so dropping the future is harmless.
    pub async fn bind_with(
        &self,
        addr: impl ToSocketAddrs,
        opts: ListenOptions,
    ) -> io::Result<TcpListener> {
        let mut last = None;
        for a in to_addrs(&addr)? {
            match self.shared.listen(a, opts) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(no_addresses))
    }

    /// Open a connection to `addr` from this stack's address of the same family and an
    /// ephemeral port. Each address `addr` resolves to is tried in turn.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, b) = tcp_tokio::MemLink::pair();
    /// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// # let stack = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// # let _l = server.bind("10.0.0.1:80").await?;
    /// let stream = stack.connect(("10.0.0.1".parse::<std::net::IpAddr>().unwrap(), 80)).await?;
    /// assert_eq!(stream.peer_addr()?.port(), 80);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `ConnectionRefused` when the peer answers with RST or ICMP port unreachable;
    /// `HostUnreachable`, `NetworkUnreachable`, `PermissionDenied` or `Other` at once for the
    /// other hard ICMP errors, as Linux maps them (IC-07); `TimedOut` when SYN
    /// retransmissions run out, or the soft ICMP error (host or network unreachable) that
    /// came meanwhile (IC-08); `NetworkUnreachable` without a local address of the peer's
    /// family, `AddrNotAvailable` when no ephemeral port is free, `NetworkDown` after
    /// [`Stack::shutdown`].
    ///
    /// # Cancel safety
    /// Dropping the future abandons the attempt: the half-open connection is closed.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in to_addrs(&addr)? {
            match TcpStream::connect_via(&self.shared, None, a, false).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(no_addresses))
    }

    /// An unbound IPv4 socket on this stack, to set options before `connect` or `listen`.
    ///
    /// # Errors
    /// `AddrNotAvailable` if the stack has no IPv4 address.
    pub fn socket_v4(&self) -> io::Result<TcpSocket> {
        TcpSocket::new_on(self.clone(), false)
    }

    /// An unbound IPv6 socket on this stack.
    ///
    /// # Errors
    /// `AddrNotAvailable` if the stack has no IPv6 address.
    pub fn socket_v6(&self) -> io::Result<TcpSocket> {
        TcpSocket::new_on(self.clone(), true)
    }

    /// The stack's IPv4 address, if it has one.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.shared.v4
    }

    /// The stack's IPv6 address, if it has one.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        self.shared.v6
    }

    /// The endpoint's counters (segments in and out, drops by reason, resets, listen
    /// overflows, SYN cookies, opens). Its `packets_out` are the endpoint's own replies;
    /// [`Stack::totals`] counts every packet.
    pub fn stats(&self) -> EndpointStats {
        *lock(&self.shared.ep).ep.stats()
    }

    /// Connections the stack still drives (including those closing in the background).
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.ep).live
    }

    /// Entries in the driver's timer heap after its last pass (for tests of its bound).
    #[doc(hidden)]
    pub fn timer_heap_len(&self) -> usize {
        self.shared.timer_entries.load(Ordering::Relaxed)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The driver stops once it holds the last reference and has nothing left to do.
        self.shared.wake_driver();
    }
}

fn no_addresses() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any address")
}

/// Builds a [`Stack`].
#[derive(Clone, Debug)]
#[must_use]
pub struct StackBuilder {
    addrs: Vec<IpAddr>,
    config: EndpointConfig,
    seed: Option<u64>,
}

impl StackBuilder {
    /// An address of the stack: call once for IPv4 and once for IPv6.
    pub fn address(mut self, ip: IpAddr) -> Self {
        self.addrs.push(ip);
        self
    }

    /// The engine's configuration (defaults mirror Linux). Its connection MTU is lowered to
    /// the device's if larger. Its `seed` is not used: see [`StackBuilder::seed`].
    pub fn config(mut self, config: EndpointConfig) -> Self {
        self.config = config;
        self
    }

    /// Derive the stack's secrets (ISN, SYN-cookie, demultiplexing and port-randomisation
    /// keys) from `seed`, for reproducible tests. Without it every stack draws its seed from
    /// the operating system's random source, so no two deployments share secrets (SEC-07;
    /// RFC 6528 §3, RFC 4987 §3.6, RFC 6056 §3.3.3).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Build the stack on `device` and spawn its driver on the current tokio runtime.
    ///
    /// # Errors
    /// `InvalidInput` without an address, with two of one family, or with an unspecified or
    /// multicast one; `Other` outside a tokio runtime or when the OS has no randomness to
    /// give (only without [`StackBuilder::seed`]).
    pub fn build(self, device: impl Device) -> io::Result<Stack> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_owned());
        let (mut v4, mut v6) = (None, None);
        for ip in &self.addrs {
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(invalid("a stack address must be a unicast address"));
            }
            let dup = match *ip {
                IpAddr::V4(a) => v4.replace(a).is_some(),
                IpAddr::V6(a) => v6.replace(a).is_some(),
            };
            if dup {
                return Err(invalid("at most one IPv4 and one IPv6 address"));
            }
        }
        if v4.is_none() && v6.is_none() {
            return Err(invalid("a stack needs an address"));
        }
        let mut config = self.config;
        config.seed = match self.seed {
            Some(seed) => seed,
            None => getrandom::u64().map_err(|e| io::Error::other(e.to_string()))?,
        };
        let mtu = u16::try_from(device.mtu()).unwrap_or(u16::MAX);
        config.conn.mtu = config.conn.mtu.min(mtu);
        config.conn.offload = device.capabilities().offload();
        // tokio's timer wheel fires up to a millisecond late (pacing makes up for it).
        config.conn.timer_granularity = std::time::Duration::from_millis(1);
        let mut ep = Endpoint::new(config);
        // The endpoint answers pings only for addresses it knows are ours.
        for ip in v4.map(IpAddr::V4).into_iter().chain(v6.map(IpAddr::V6)) {
            ep.add_local_addr(ip);
        }
        let shared = Arc::new(Shared {
            ep: Mutex::new(EpState {
                ep,
                conns: Vec::new(),
                live: 0,
                listeners: Vec::new(),
                closing: false,
                intercept: Default::default(),
                udp: Vec::new(),
            }),
            notify: Mutex::new(Notify::default()),
            epoch: tokio::time::Instant::now(),
            v4,
            v6,
            timer_entries: AtomicUsize::new(0),
            life: Mutex::new(Life::default()),
            totals: Totals::default(),
        });
        let driver = Driver::new(shared.clone(), Box::new(device));
        // One span per stack, named by its addresses, so two stacks' traces can be told
        // apart.
        let span = tracing::info_span!("tcp_stack", v4 = ?v4, v6 = ?v6);
        runtime.spawn(tracing::Instrument::instrument(driver, span));
        Ok(Stack { shared })
    }
}

/// Register `waker` as `addr`'s accept waker.
pub(crate) fn register_accept(st: &mut EpState, addr: SocketAddr, waker: &Waker) {
    if let Some(slot) = st.listeners.iter_mut().find(|l| l.addr == addr) {
        cell::register(&mut slot.waker, waker);
    }
}
