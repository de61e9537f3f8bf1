//! Socket options of connected streams and listeners: tokio 1.54's (`ttl`, `quickack`,
//! `linger`, …) and the per-connection ones tokio leaves to `socket2` (keepalive timing, user
//! timeout, buffer sizes, congestion control, TOS). Each maps one to one onto a field of the
//! engine's [`ConnConfig`], changed on the live connection as Linux allows; [`TcpKeepalive`]
//! is `socket2`'s type of the same name.

use std::io;
use std::time::Duration;

use tcpcore::config::CongestionAlgorithm;
use tcpcore::{ConnConfig, Connection};

use super::{TcpListener, TcpStream};
use crate::lock;

/// Keepalive timing, as `socket2::TcpKeepalive`: the idle time before the first probe
/// (`TCP_KEEPIDLE`), the interval between probes (`TCP_KEEPINTVL`) and the unanswered probes
/// after which the connection fails with `TimedOut` (`TCP_KEEPCNT`). Unset fields keep the
/// socket's current values (the stack's [`ConnConfig`] defaults: 7200 s, 75 s, 9).
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// # let (a, _b) = tcp_tokio::MemLink::pair();
/// # let stack = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
/// use std::time::Duration;
/// use tcp_tokio::net::TcpKeepalive;
///
/// let socket = stack.socket_v4()?;
/// let ka = TcpKeepalive::new().with_time(Duration::from_secs(30)).with_retries(3);
/// socket.set_tcp_keepalive(&ka)?;
/// assert!(socket.keepalive()?);
/// assert_eq!(socket.keepalive_time()?, Duration::from_secs(30));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpKeepalive {
    time: Option<Duration>,
    interval: Option<Duration>,
    retries: Option<u32>,
}

/// Longest keepalive idle time or interval Linux accepts (`MAX_TCP_KEEPIDLE`, seconds).
const MAX_KEEPALIVE_SECS: u64 = 32_767;
/// Most keepalive probes Linux accepts (`MAX_TCP_KEEPCNT`).
const MAX_KEEPALIVE_PROBES: u32 = 127;
/// Smallest buffer size a socket takes; smaller requests are raised to it, as Linux raises
/// them to `SOCK_MIN_SNDBUF` / `SOCK_MIN_RCVBUF` so that a buffer holds a whole segment.
pub(crate) const MIN_BUFFER: u32 = 2048;

impl TcpKeepalive {
    /// Nothing set: applying it only turns keepalive on.
    pub const fn new() -> TcpKeepalive {
        TcpKeepalive { time: None, interval: None, retries: None }
    }

    /// Idle time before the first probe (`TCP_KEEPIDLE`).
    #[must_use]
    pub const fn with_time(self, time: Duration) -> TcpKeepalive {
        TcpKeepalive { time: Some(time), ..self }
    }

    /// Time between unanswered probes (`TCP_KEEPINTVL`).
    #[must_use]
    pub const fn with_interval(self, interval: Duration) -> TcpKeepalive {
        TcpKeepalive { interval: Some(interval), ..self }
    }

    /// Unanswered probes before the connection fails (`TCP_KEEPCNT`).
    #[must_use]
    pub const fn with_retries(self, retries: u32) -> TcpKeepalive {
        TcpKeepalive { retries: Some(retries), ..self }
    }

    /// `cfg` with keepalive on and these values, after the checks Linux makes: times of at
    /// least a millisecond and at most 32,767 s, 1 to 127 probes (`InvalidInput` otherwise).
    pub(crate) fn applied(&self, cfg: &ConnConfig) -> io::Result<ConnConfig> {
        let time_ok = |d: &Duration| d.as_millis() > 0 && d.as_secs() <= MAX_KEEPALIVE_SECS;
        let times = [self.time, self.interval];
        if times.iter().flatten().any(|d| !time_ok(d)) {
            return Err(invalid("keepalive times must be between 1 ms and 32767 s"));
        }
        let probes = match self.retries {
            Some(n @ 1..=MAX_KEEPALIVE_PROBES) => n as u8,
            Some(_) => return Err(invalid("keepalive retries must be between 1 and 127")),
            None => cfg.keepalive_probes,
        };
        Ok(ConnConfig {
            keepalive: true,
            keepalive_idle: self.time.unwrap_or(cfg.keepalive_idle),
            keepalive_interval: self.interval.unwrap_or(cfg.keepalive_interval),
            keepalive_probes: probes,
            ..*cfg
        })
    }
}

/// An `InvalidInput` error, as Linux's `EINVAL` for an option value out of range.
pub(crate) fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A TTL or hop limit: 1 to 255 (`IP_TTL` rejects others with `EINVAL`).
pub(crate) fn ttl_value(ttl: u32) -> io::Result<u8> {
    u8::try_from(ttl).ok().filter(|&t| t > 0).ok_or_else(|| invalid("TTL must be 1 to 255"))
}

/// A TOS or traffic-class byte: at most 255.
pub(crate) fn tos_value(tos: u32) -> io::Result<u8> {
    u8::try_from(tos).map_err(|_| invalid("TOS / traffic class must be at most 255"))
}

/// A buffer size in bytes, raised to [`MIN_BUFFER`].
pub(crate) fn buffer_value(size: u32) -> usize {
    size.max(MIN_BUFFER) as usize
}

/// The error for an option of the other IP family (Linux `ENOPROTOOPT`).
pub(crate) fn wrong_family() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "option of the other IP family")
}

impl TcpStream {
    /// Change the live connection and tell the driver: a change may make a segment due (a
    /// pending ACK, a held segment) or move a timer.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut inner = self.inner.lock();
        let r = f(&mut inner.conn);
        let schedule = inner.needs_driver(true);
        drop(inner);
        if schedule {
            self.inner.shared.schedule(self.inner.cell.clone());
        }
        r
    }

    /// Read the connection's current options.
    fn conn_config(&self) -> ConnConfig {
        *self.inner.lock().conn.config()
    }

    /// `IP_TTL` (IPv6: the hop limit): the time to live of every packet sent from now on.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, b) = tcp_tokio::MemLink::pair();
    /// # let server = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// # let client = tcp_tokio::Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
    /// # let _l = server.bind("10.0.0.1:80").await?;
    /// let stream = client.connect("10.0.0.1:80").await?;
    /// stream.set_ttl(100)?;
    /// assert_eq!(stream.ttl()?, 100);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `InvalidInput` for 0 or more than 255.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = ttl_value(ttl)?;
        self.with_conn(|c| c.set_ttl(ttl));
        Ok(())
    }

    /// The time to live (hop limit) of the packets sent (64 unless set).
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn ttl(&self) -> io::Result<u32> {
        Ok(self.conn_config().ttl.into())
    }

    /// `TCP_QUICKACK`: `true` acknowledges the next segments at once (and sends an
    /// acknowledgment being delayed now), `false` delays acknowledgments. As on Linux the
    /// setting is not permanent: the connection returns to quick acknowledgments when it
    /// would anyway (a duplicate segment, a long silence).
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn set_quickack(&self, quickack: bool) -> io::Result<()> {
        self.with_conn(|c| c.set_quickack(quickack));
        Ok(())
    }

    /// Whether the next segment is acknowledged at once (`TCP_QUICKACK`).
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn quickack(&self) -> io::Result<bool> {
        Ok(self.inner.lock().conn.quickack())
    }

    /// `SO_LINGER`. `Some(Duration::ZERO)` makes dropping the stream abort the connection
    /// with RST (prefer [`TcpStream::set_zero_linger`]); other values are recorded and, as
    /// dropping never blocks here, behave like `None`: a graceful close in the background.
    /// Deprecated, as in tokio 1.54, because on a kernel socket a non-zero linger blocks the
    /// thread that drops it.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    #[deprecated = "`SO_LINGER` causes the socket to block the thread on drop"]
    pub fn set_linger(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.lock().linger = dur;
        Ok(())
    }

    /// `SO_LINGER` of zero: dropping the stream aborts the connection with RST, discarding
    /// unsent data, and leaves no TIME-WAIT behind (CL-10).
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn set_zero_linger(&self) -> io::Result<()> {
        self.inner.lock().linger = Some(Duration::ZERO);
        Ok(())
    }

    /// The `SO_LINGER` value set by [`TcpStream::set_zero_linger`] or
    /// [`TcpStream::set_linger`].
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.lock().linger)
    }

    /// `SO_KEEPALIVE` on the live connection (not in tokio's `TcpStream`; as
    /// [`TcpSocket::set_keepalive`](super::TcpSocket::set_keepalive)).
    ///
    /// # Errors
    /// Never.
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.with_conn(|c| c.set_keepalive(keepalive));
        Ok(())
    }

    /// Whether keepalive probes are on.
    ///
    /// # Errors
    /// Never.
    pub fn keepalive(&self) -> io::Result<bool> {
        Ok(self.conn_config().keepalive)
    }

    /// Turn keepalive on with the given timing (`socket2`'s `set_tcp_keepalive`). A new
    /// idle time counts from now unless probes are already out.
    ///
    /// # Errors
    /// `InvalidInput` for values Linux rejects (see [`TcpKeepalive`]).
    pub fn set_tcp_keepalive(&self, keepalive: &TcpKeepalive) -> io::Result<()> {
        let cfg = keepalive.applied(&self.conn_config())?;
        self.with_conn(|c| {
            c.set_keepalive(true);
            c.set_keepalive_idle(cfg.keepalive_idle);
            c.set_keepalive_interval(cfg.keepalive_interval);
            c.set_keepalive_probes(cfg.keepalive_probes);
        });
        Ok(())
    }

    /// Idle time before the first keepalive probe (`TCP_KEEPIDLE`).
    ///
    /// # Errors
    /// Never.
    pub fn keepalive_time(&self) -> io::Result<Duration> {
        Ok(self.conn_config().keepalive_idle)
    }

    /// Time between keepalive probes (`TCP_KEEPINTVL`).
    ///
    /// # Errors
    /// Never.
    pub fn keepalive_interval(&self) -> io::Result<Duration> {
        Ok(self.conn_config().keepalive_interval)
    }

    /// Unanswered keepalive probes before the connection fails (`TCP_KEEPCNT`).
    ///
    /// # Errors
    /// Never.
    pub fn keepalive_retries(&self) -> io::Result<u32> {
        Ok(self.conn_config().keepalive_probes.into())
    }

    /// `TCP_USER_TIMEOUT` (RFC 5482): fail the connection with `TimedOut` when sent data
    /// stays unacknowledged this long; `None` turns it off.
    ///
    /// # Errors
    /// Never.
    pub fn set_tcp_user_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.with_conn(|c| c.set_user_timeout(timeout));
        Ok(())
    }

    /// The user timeout, if set.
    ///
    /// # Errors
    /// Never.
    pub fn tcp_user_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.conn_config().user_timeout)
    }

    /// `SO_SNDBUF` on the live connection: see
    /// [`TcpSocket::set_send_buffer_size`](super::TcpSocket::set_send_buffer_size).
    ///
    /// # Errors
    /// Never.
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        self.with_conn(|c| c.set_send_buffer(buffer_value(size)));
        Ok(())
    }

    /// The send buffer's size now (auto-tuning grows it unless it was set).
    ///
    /// # Errors
    /// Never.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        let size = self.inner.lock().conn.seq_vars().send_capacity;
        Ok(u32::try_from(size).unwrap_or(u32::MAX))
    }

    /// `SO_RCVBUF` on the live connection: auto-tuning stops, and the buffer grows to `size`
    /// but never shrinks (the window's right edge never moves left, FL-01). Set it on the
    /// [`TcpSocket`](super::TcpSocket) before connecting to bound the window from the start.
    ///
    /// # Errors
    /// Never.
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        self.with_conn(|c| c.set_recv_buffer(buffer_value(size)));
        Ok(())
    }

    /// The receive buffer's size now.
    ///
    /// # Errors
    /// Never.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        let size = self.inner.lock().conn.seq_vars().recv_capacity;
        Ok(u32::try_from(size).unwrap_or(u32::MAX))
    }

    /// `TCP_CONGESTION`: switch the congestion controller; the new one starts from the
    /// current congestion window and slow-start threshold, as on Linux.
    ///
    /// # Errors
    /// Never.
    pub fn set_tcp_congestion(&self, algorithm: CongestionAlgorithm) -> io::Result<()> {
        self.with_conn(|c| c.set_congestion(algorithm));
        Ok(())
    }

    /// The congestion controller in use.
    ///
    /// # Errors
    /// Never.
    pub fn tcp_congestion(&self) -> io::Result<CongestionAlgorithm> {
        Ok(self.conn_config().congestion)
    }

    /// Pace this connection's data from now on (Linux: internal TCP pacing, or the `fq`
    /// qdisc): at 2× cwnd/SRTT in slow start, 1.2× after, about a millisecond of data at a
    /// time.
    ///
    /// # Errors
    /// Never.
    pub fn set_pacing(&self, on: bool) -> io::Result<()> {
        self.with_conn(|c| c.set_pacing(on));
        Ok(())
    }

    /// Whether [`TcpStream::set_pacing`] is on.
    ///
    /// # Errors
    /// Never.
    pub fn pacing(&self) -> io::Result<bool> {
        Ok(self.conn_config().pacing)
    }

    /// `SO_MAX_PACING_RATE`: cap the pacing rate at `rate` bytes per second (`None`: no cap);
    /// as in Linux, a cap turns pacing on.
    ///
    /// # Errors
    /// Never.
    pub fn set_max_pacing_rate(&self, rate: Option<u64>) -> io::Result<()> {
        self.with_conn(|c| c.set_max_pacing_rate(rate));
        Ok(())
    }

    /// The `SO_MAX_PACING_RATE` cap, in bytes per second.
    ///
    /// # Errors
    /// Never.
    pub fn max_pacing_rate(&self) -> io::Result<Option<u64>> {
        Ok(self.conn_config().max_pacing_rate)
    }

    /// `IP_TOS` of an IPv4 connection: the type of service of the packets sent from now on
    /// (the ECN bits go out as zero, as Linux keeps them for TCP).
    ///
    /// # Errors
    /// `InvalidInput` above 255; `Unsupported` on an IPv6 connection.
    pub fn set_tos_v4(&self, tos: u32) -> io::Result<()> {
        self.set_tos_of(tos, false)
    }

    /// The `IP_TOS` set on an IPv4 connection.
    ///
    /// # Errors
    /// `Unsupported` on an IPv6 connection.
    pub fn tos_v4(&self) -> io::Result<u32> {
        self.tos_of(false)
    }

    /// `IPV6_TCLASS` of an IPv6 connection: the traffic class of the packets sent from now
    /// on.
    ///
    /// # Errors
    /// `InvalidInput` above 255; `Unsupported` on an IPv4 connection.
    pub fn set_tclass_v6(&self, tclass: u32) -> io::Result<()> {
        self.set_tos_of(tclass, true)
    }

    /// The `IPV6_TCLASS` set on an IPv6 connection.
    ///
    /// # Errors
    /// `Unsupported` on an IPv4 connection.
    pub fn tclass_v6(&self) -> io::Result<u32> {
        self.tos_of(true)
    }

    fn set_tos_of(&self, tos: u32, v6: bool) -> io::Result<()> {
        let tos = tos_value(tos)?;
        self.with_conn(|c| {
            if c.local_addr().is_ipv6() != v6 {
                return Err(wrong_family());
            }
            c.set_tos(tos);
            Ok(())
        })
    }

    fn tos_of(&self, v6: bool) -> io::Result<u32> {
        let inner = self.inner.lock();
        if inner.conn.local_addr().is_ipv6() != v6 {
            return Err(wrong_family());
        }
        Ok(inner.conn.config().tos.into())
    }
}

impl TcpListener {
    /// `IP_TTL` (IPv6: the hop limit) of the listening socket: the time to live of its
    /// SYN-ACKs and of every connection it accepts from now on (Linux copies a listening
    /// socket's options into the sockets it accepts).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// # let (a, _b) = tcp_tokio::MemLink::pair();
    /// # let stack = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
    /// let listener = stack.bind("10.0.0.1:80").await?;
    /// listener.set_ttl(100)?;
    /// assert_eq!(listener.ttl()?, 100);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `InvalidInput` for 0 or more than 255.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = ttl_value(ttl)?;
        let mut st = lock(&self.shared.ep);
        let cfg = st.ep.listener_conn_config(self.addr);
        if let Some(cfg) = cfg {
            let set = st.ep.set_listener_conn_config(self.addr, ConnConfig { ttl, ..cfg });
            debug_assert!(set.is_ok(), "the listener's own address");
        }
        Ok(())
    }

    /// The time to live of the listener's packets (64 unless set).
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn ttl(&self) -> io::Result<u32> {
        let st = lock(&self.shared.ep);
        let cfg = st.ep.listener_conn_config(self.addr).unwrap_or(st.ep.config().conn);
        Ok(cfg.ttl.into())
    }
}
