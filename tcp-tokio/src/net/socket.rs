//! [`TcpSocket`]: an address reserved at `bind`, and options before `connect` or `listen`.

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use tcpcore::config::CongestionAlgorithm;
use tcpcore::{ConnConfig, ListenOptions, SynCookies};

use super::options::{buffer_value, tos_value, wrong_family, TcpKeepalive};
use super::{TcpListener, TcpStream};
use crate::lock;
use crate::stack::Stack;

/// A socket not yet connected or listening, with the API of [`tokio::net::TcpSocket`]
/// (but for what needs a kernel file descriptor: `from_std_stream`, `bind_device`,
/// `device` and the raw-descriptor traits), plus options tokio leaves to `socket2` or to
/// sysctls: [`TcpSocket::set_tcp_keepalive`], [`TcpSocket::set_tcp_user_timeout`],
/// [`TcpSocket::set_tcp_congestion`], [`TcpSocket::set_syn_backlog`],
/// [`TcpSocket::set_syn_cookies`] and [`TcpSocket::set_abort_on_overflow`].
///
/// [`TcpSocket::bind`] reserves the address at once, as `bind(2)` does: a conflict fails
/// there with `AddrInUse`, [`TcpSocket::local_addr`] then reports the port chosen for port
/// 0, and the reservation lasts until the socket listens, connects (from that port) or is
/// dropped. The options become those of the connection it opens, or of every connection
/// the listener accepts, as Linux copies a listening socket's options into accepted ones.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// # let (a, _b) = tcp_tokio::MemLink::pair();
/// # let stack = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
/// use tcp_tokio::SynCookies;
///
/// let socket = stack.socket_v4()?;
/// socket.bind("10.0.0.1:0".parse().unwrap())?;
/// let port = socket.local_addr()?.port();
/// assert_ne!(port, 0);
/// socket.set_syn_cookies(SynCookies::Always)?;
/// let listener = socket.listen(128)?;
/// assert_eq!(listener.local_addr()?.port(), port);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpSocket {
    stack: Stack,
    v6: bool,
    opts: Mutex<Opts>,
}

#[derive(Debug)]
struct Opts {
    /// The address `bind` reserved, until `listen` or `connect` takes it over or the socket
    /// is dropped.
    bound: Option<SocketAddr>,
    /// The options of the connection(s) the socket leads to.
    conn: ConnConfig,
    linger: Option<Duration>,
    reuseaddr: bool,
    reuseport: bool,
    listen: ListenOptions,
}

impl TcpSocket {
    pub(crate) fn new_on(stack: Stack, v6: bool) -> io::Result<TcpSocket> {
        let has = if v6 { stack.ipv6().is_some() } else { stack.ipv4().is_some() };
        if !has {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "the stack has no address of that family",
            ));
        }
        let opts = Opts {
            bound: None,
            conn: stack.shared.conn_config(),
            linger: None,
            reuseaddr: false,
            reuseport: false,
            listen: ListenOptions::default(),
        };
        Ok(TcpSocket { stack, v6, opts: Mutex::new(opts) })
    }

    /// An IPv4 socket on the process default stack ([`Stack::set_default`]).
    ///
    /// # Errors
    /// `NotFound` without a default stack, `AddrNotAvailable` if it has no IPv4 address.
    pub fn new_v4() -> io::Result<TcpSocket> {
        TcpSocket::new_on(Stack::default_or_err()?, false)
    }

    /// An IPv6 socket on the process default stack.
    ///
    /// # Errors
    /// `NotFound` without a default stack, `AddrNotAvailable` if it has no IPv6 address.
    pub fn new_v6() -> io::Result<TcpSocket> {
        TcpSocket::new_on(Stack::default_or_err()?, true)
    }

    fn set(&self, f: impl FnOnce(&mut Opts)) -> io::Result<()> {
        f(&mut lock(&self.opts));
        Ok(())
    }

    fn get<T>(&self, f: impl FnOnce(&Opts) -> T) -> io::Result<T> {
        Ok(f(&lock(&self.opts)))
    }

    /// `SO_KEEPALIVE`: probe the peer after the keepalive idle time without traffic, and
    /// fail the connection when it stops answering (KA-01). The timing is the stack's
    /// unless set with [`TcpSocket::set_tcp_keepalive`].
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.set(|o| o.conn.keepalive = keepalive)
    }

    /// Whether keepalive is on.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.get(|o| o.conn.keepalive)
    }

    /// Turn keepalive on with the given timing (`socket2`'s `set_tcp_keepalive`).
    ///
    /// # Errors
    /// `InvalidInput` for values Linux rejects (see [`TcpKeepalive`]).
    pub fn set_tcp_keepalive(&self, keepalive: &TcpKeepalive) -> io::Result<()> {
        let mut o = lock(&self.opts);
        o.conn = keepalive.applied(&o.conn)?;
        Ok(())
    }

    /// Idle time before the first keepalive probe (`TCP_KEEPIDLE`).
    ///
    /// # Errors
    /// Never.
    pub fn keepalive_time(&self) -> io::Result<Duration> {
        self.get(|o| o.conn.keepalive_idle)
    }

    /// Time between keepalive probes (`TCP_KEEPINTVL`).
    ///
    /// # Errors
    /// Never.
    pub fn keepalive_interval(&self) -> io::Result<Duration> {
        self.get(|o| o.conn.keepalive_interval)
    }

    /// Unanswered keepalive probes before the connection fails (`TCP_KEEPCNT`).
    ///
    /// # Errors
    /// Never.
    pub fn keepalive_retries(&self) -> io::Result<u32> {
        self.get(|o| o.conn.keepalive_probes.into())
    }

    /// `TCP_USER_TIMEOUT` (RFC 5482): fail the connection with `TimedOut` when sent data
    /// stays unacknowledged this long (KA-02); `None` leaves it to the retransmission limit.
    ///
    /// # Errors
    /// Never.
    pub fn set_tcp_user_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set(|o| o.conn.user_timeout = timeout)
    }

    /// The user timeout, if set.
    ///
    /// # Errors
    /// Never.
    pub fn tcp_user_timeout(&self) -> io::Result<Option<Duration>> {
        self.get(|o| o.conn.user_timeout)
    }

    /// `TCP_CONGESTION`: the congestion controller of the connection(s).
    ///
    /// # Errors
    /// Never.
    pub fn set_tcp_congestion(&self, algorithm: CongestionAlgorithm) -> io::Result<()> {
        self.set(|o| o.conn.congestion = algorithm)
    }

    /// The congestion controller the connection(s) will use.
    ///
    /// # Errors
    /// Never.
    pub fn tcp_congestion(&self) -> io::Result<CongestionAlgorithm> {
        self.get(|o| o.conn.congestion)
    }

    /// Pace the data of the connection(s) (Linux: internal TCP pacing, or the `fq` qdisc):
    /// sent at 2× cwnd/SRTT in slow start, 1.2× after, about a millisecond of data at a time.
    /// Off by default.
    ///
    /// # Errors
    /// Never.
    pub fn set_pacing(&self, on: bool) -> io::Result<()> {
        self.set(|o| o.conn.pacing = on)
    }

    /// Whether the connection(s) will be paced by [`TcpSocket::set_pacing`].
    ///
    /// # Errors
    /// Never.
    pub fn pacing(&self) -> io::Result<bool> {
        self.get(|o| o.conn.pacing)
    }

    /// `SO_MAX_PACING_RATE`: cap the pacing rate at `rate` bytes per second (`None`: no cap);
    /// as in Linux, a cap turns pacing on.
    ///
    /// # Errors
    /// Never.
    pub fn set_max_pacing_rate(&self, rate: Option<u64>) -> io::Result<()> {
        self.set(|o| o.conn.max_pacing_rate = rate)
    }

    /// The `SO_MAX_PACING_RATE` cap, in bytes per second.
    ///
    /// # Errors
    /// Never.
    pub fn max_pacing_rate(&self) -> io::Result<Option<u64>> {
        self.get(|o| o.conn.max_pacing_rate)
    }

    /// `SO_REUSEADDR`: let [`TcpSocket::bind`] take an address live connections use (a
    /// restarted server's port whose old connections linger), as long as no listener or
    /// other bound socket has it. Set it before `bind`.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn set_reuseaddr(&self, reuseaddr: bool) -> io::Result<()> {
        self.set(|o| o.reuseaddr = reuseaddr)
    }

    /// The `SO_REUSEADDR` setting.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        self.get(|o| o.reuseaddr)
    }

    /// `SO_REUSEPORT`, recorded only: the stack has one listener per address, so two
    /// sockets never share a port whatever this says.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn set_reuseport(&self, reuseport: bool) -> io::Result<()> {
        self.set(|o| o.reuseport = reuseport)
    }

    /// The `SO_REUSEPORT` setting.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn reuseport(&self) -> io::Result<bool> {
        self.get(|o| o.reuseport)
    }

    /// `SO_SNDBUF`: the send buffer holds at most `size` bytes, in flight and not yet sent
    /// together, and auto-tuning no longer grows it. Unlike Linux, which doubles the value
    /// for its bookkeeping, the bytes are payload, and the getter returns the value set.
    /// Sizes below 2,048 bytes are raised to it.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        let size = buffer_value(size);
        self.set(|o| (o.conn.send_buffer, o.conn.max_send_buffer) = (size, size))
    }

    /// The send buffer size: set, or the stack's initial one (which auto-tuning grows).
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.get(|o| u32::try_from(o.conn.send_buffer).unwrap_or(u32::MAX))
    }

    /// `SO_RCVBUF`: the receive buffer, and so the window offered to the peer, is `size`
    /// bytes (payload, as [`TcpSocket::set_send_buffer_size`]), and auto-tuning stops. The
    /// window scale offered in the SYN is sized for it (RFC 7323 §2.3), so a small buffer
    /// stays small. Sizes below 2,048 bytes are raised to it.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        let size = buffer_value(size);
        self.set(|o| (o.conn.recv_buffer, o.conn.max_recv_buffer) = (size, size))
    }

    /// The receive buffer size: set, or the stack's initial one (which auto-tuning grows).
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.get(|o| u32::try_from(o.conn.recv_buffer).unwrap_or(u32::MAX))
    }

    /// `SO_LINGER` for the connection this socket opens; see [`TcpStream::set_linger`].
    /// Deprecated, as in tokio 1.54: use [`TcpSocket::set_zero_linger`] for an abortive
    /// close.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    #[deprecated = "`SO_LINGER` causes the socket to block the thread on drop"]
    pub fn set_linger(&self, dur: Option<Duration>) -> io::Result<()> {
        self.set(|o| o.linger = dur)
    }

    /// `SO_LINGER` of zero: dropping the connection this socket opens aborts it with RST
    /// (see [`TcpStream::set_zero_linger`]).
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn set_zero_linger(&self) -> io::Result<()> {
        self.set(|o| o.linger = Some(Duration::ZERO))
    }

    /// The `SO_LINGER` value set.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.get(|o| o.linger)
    }

    /// `TCP_NODELAY` for the connection this socket opens.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.set(|o| o.conn.nodelay = nodelay)
    }

    /// The `TCP_NODELAY` setting.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.get(|o| o.conn.nodelay)
    }

    /// `IPV6_TCLASS` of an IPv6 socket; see [`TcpSocket::set_tclass_v6`].
    ///
    /// # Errors
    /// `Unsupported` on an IPv4 socket.
    pub fn tclass_v6(&self) -> io::Result<u32> {
        self.tos_of(true)
    }

    /// `IPV6_TCLASS`: the traffic class of every packet of the connection(s); the two ECN
    /// bits go out as zero, as Linux keeps them for TCP.
    ///
    /// # Errors
    /// `InvalidInput` above 255; `Unsupported` on an IPv4 socket.
    pub fn set_tclass_v6(&self, tclass: u32) -> io::Result<()> {
        self.set_tos_of(tclass, true)
    }

    /// `IP_TOS` of an IPv4 socket; see [`TcpSocket::set_tos_v4`].
    ///
    /// # Errors
    /// `Unsupported` on an IPv6 socket.
    pub fn tos_v4(&self) -> io::Result<u32> {
        self.tos_of(false)
    }

    /// Tokio's old name of [`TcpSocket::tos_v4`].
    ///
    /// # Errors
    /// As [`TcpSocket::tos_v4`].
    #[deprecated(note = "`tos` related methods have been renamed `tos_v4`")]
    #[doc(hidden)]
    pub fn tos(&self) -> io::Result<u32> {
        self.tos_v4()
    }

    /// `IP_TOS`: the type of service of every packet of the connection(s); the two ECN bits
    /// go out as zero, as Linux keeps them for TCP.
    ///
    /// # Errors
    /// `InvalidInput` above 255; `Unsupported` on an IPv6 socket.
    pub fn set_tos_v4(&self, tos: u32) -> io::Result<()> {
        self.set_tos_of(tos, false)
    }

    /// Tokio's old name of [`TcpSocket::set_tos_v4`].
    ///
    /// # Errors
    /// As [`TcpSocket::set_tos_v4`].
    #[deprecated(note = "`tos` related methods have been renamed `tos_v4`")]
    #[doc(hidden)]
    pub fn set_tos(&self, tos: u32) -> io::Result<()> {
        self.set_tos_v4(tos)
    }

    fn set_tos_of(&self, tos: u32, v6: bool) -> io::Result<()> {
        let tos = tos_value(tos)?;
        if self.v6 != v6 {
            return Err(wrong_family());
        }
        self.set(|o| o.conn.tos = tos)
    }

    fn tos_of(&self, v6: bool) -> io::Result<u32> {
        if self.v6 != v6 {
            return Err(wrong_family());
        }
        self.get(|o| o.conn.tos.into())
    }

    /// Most half-open connections the listener keeps (`tcp_max_syn_backlog`).
    ///
    /// # Errors
    /// Never.
    pub fn set_syn_backlog(&self, n: u32) -> io::Result<()> {
        self.set(|o| o.listen.syn_backlog = n)
    }

    /// When the listener answers SYNs with cookies.
    ///
    /// # Errors
    /// Never.
    pub fn set_syn_cookies(&self, policy: SynCookies) -> io::Result<()> {
        self.set(|o| o.listen.syn_cookies = policy)
    }

    /// Reset, instead of ignore, handshakes completing while the accept queue is full
    /// (`tcp_abort_on_overflow`).
    ///
    /// # Errors
    /// Never.
    pub fn set_abort_on_overflow(&self, on: bool) -> io::Result<()> {
        self.set(|o| o.listen.abort_on_overflow = on)
    }

    /// The address reserved by [`TcpSocket::bind`], with the chosen port after binding
    /// port 0; before `bind`, the unspecified address and port 0 (as `getsockname`).
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let unspecified: IpAddr =
            if self.v6 { Ipv6Addr::UNSPECIFIED.into() } else { Ipv4Addr::UNSPECIFIED.into() };
        self.get(|o| o.bound.unwrap_or(SocketAddr::new(unspecified, 0)))
    }

    /// `SO_ERROR`: a socket that has not connected has no pending error.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }

    /// Reserve a local address, as `bind(2)`: the listening address for
    /// [`TcpSocket::listen`], or the source address and port for [`TcpSocket::connect`].
    /// Port 0 picks a free port of the ephemeral range now ([`TcpSocket::local_addr`]
    /// reports it). An unspecified IP stands for the stack's address of the family.
    ///
    /// # Errors
    /// `AddrInUse` if a listener, another bound socket or (without
    /// [`TcpSocket::set_reuseaddr`]) a live connection has a conflicting address;
    /// `AddrNotAvailable` for an IP that is not the stack's, or when port 0 finds no free
    /// port; `InvalidInput` for an address of the other family or a socket already bound.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        if addr.is_ipv6() != self.v6 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "address family mismatch"));
        }
        let mut o = lock(&self.opts);
        if o.bound.is_some() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "socket already bound"));
        }
        o.bound = Some(self.stack.shared.reserve(addr, o.reuseaddr)?);
        Ok(())
    }

    /// Start listening on the bound address with an accept queue of `backlog` connections
    /// (capped by `somaxconn`). The accepted connections get this socket's options.
    ///
    /// # Errors
    /// `InvalidInput` before `bind`; otherwise as [`Stack::bind`].
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        let mut o = lock(&self.opts);
        let addr = o
            .bound
            .take()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bind before listen"))?;
        let listen = ListenOptions { backlog, ..o.listen };
        self.stack.shared.listen_with(addr, listen, Some(o.conn))
    }

    /// Open a connection to `addr` with this socket's options, from the bound address and
    /// port if [`TcpSocket::bind`] was called (an ephemeral port otherwise).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, b) = tcp_tokio::MemLink::pair();
    /// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// # let _l = server.bind("10.0.0.1:80").await?;
    /// let socket = client.socket_v4()?;
    /// socket.set_nodelay(true)?;
    /// socket.bind("10.0.0.2:40000".parse().unwrap())?;
    /// let stream = socket.connect("10.0.0.1:80".parse().unwrap()).await?;
    /// assert!(stream.nodelay()?);
    /// assert_eq!(stream.local_addr()?.port(), 40000);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `InvalidInput` for an address of the other family; `AddrNotAvailable` when the
    /// bound port already has a connection to `addr`; otherwise as [`Stack::connect`].
    ///
    /// # Cancel safety
    /// Dropping the future abandons the attempt: the half-open connection is closed.
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        if addr.is_ipv6() != self.v6 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "address family mismatch"));
        }
        let (bound, cfg, linger) = {
            let mut o = lock(&self.opts);
            (o.bound.take(), o.conn, o.linger)
        };
        // Dropping `inner` (on error or cancellation) closes the half-open connection.
        let inner = self.stack.shared.open_with(bound, addr, cfg)?;
        inner.lock().linger = linger;
        poll_fn(|cx| inner.poll_connected(cx)).await?;
        Ok(TcpStream::from_inner(inner))
    }
}

impl Drop for TcpSocket {
    /// A socket dropped while bound releases its address.
    fn drop(&mut self) {
        if let Some(addr) = lock(&self.opts).bound.take() {
            self.stack.shared.unreserve(addr);
        }
    }
}
