//! [`TcpSocket`]: options before `connect` or `listen`.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tcpcore::{ListenOptions, SynCookies};

use super::{TcpListener, TcpStream};
use crate::lock;
use crate::stack::Stack;

/// A socket not yet connected or listening, with the API of [`tokio::net::TcpSocket`], plus
/// the listener options tokio leaves to sysctls: [`TcpSocket::set_syn_backlog`],
/// [`TcpSocket::set_syn_cookies`] and [`TcpSocket::set_abort_on_overflow`].
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// # let (a, _b) = tcp_tokio::MemLink::pair();
/// # let stack = tcp_tokio::Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
/// use tcp_tokio::SynCookies;
///
/// let socket = stack.socket_v4()?;
/// socket.bind("10.0.0.1:80".parse().unwrap())?;
/// socket.set_syn_cookies(SynCookies::Always)?;
/// let listener = socket.listen(128)?;
/// # drop(listener); Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpSocket {
    stack: Stack,
    v6: bool,
    opts: Mutex<Opts>,
}

#[derive(Debug, Default)]
struct Opts {
    local: Option<SocketAddr>,
    nodelay: bool,
    linger: Option<Duration>,
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
        Ok(TcpSocket { stack, v6, opts: Mutex::new(Opts::default()) })
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

    /// Bind to a local address: the listening address for [`TcpSocket::listen`], or the
    /// source IP for [`TcpSocket::connect`] (whose port is always ephemeral).
    ///
    /// # Errors
    /// `InvalidInput` for an address of the other family.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        if addr.is_ipv6() != self.v6 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "address family mismatch"));
        }
        lock(&self.opts).local = Some(addr);
        Ok(())
    }

    /// The address given to [`TcpSocket::bind`].
    ///
    /// # Errors
    /// `InvalidInput` before `bind`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        lock(&self.opts)
            .local
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "socket not bound"))
    }

    /// `TCP_NODELAY` for the connection this socket opens.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        lock(&self.opts).nodelay = nodelay;
        Ok(())
    }

    /// The `TCP_NODELAY` setting.
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(lock(&self.opts).nodelay)
    }

    /// `SO_LINGER` for the connection this socket opens; see [`TcpStream::set_linger`].
    ///
    /// # Errors
    /// Never; the `Result` matches tokio.
    pub fn set_linger(&self, dur: Option<Duration>) -> io::Result<()> {
        lock(&self.opts).linger = dur;
        Ok(())
    }

    /// Most half-open connections the listener keeps (`tcp_max_syn_backlog`).
    ///
    /// # Errors
    /// Never.
    pub fn set_syn_backlog(&self, n: u32) -> io::Result<()> {
        lock(&self.opts).listen.syn_backlog = n;
        Ok(())
    }

    /// When the listener answers SYNs with cookies.
    ///
    /// # Errors
    /// Never.
    pub fn set_syn_cookies(&self, policy: SynCookies) -> io::Result<()> {
        lock(&self.opts).listen.syn_cookies = policy;
        Ok(())
    }

    /// Reset, instead of ignore, handshakes completing while the accept queue is full
    /// (`tcp_abort_on_overflow`).
    ///
    /// # Errors
    /// Never.
    pub fn set_abort_on_overflow(&self, on: bool) -> io::Result<()> {
        lock(&self.opts).listen.abort_on_overflow = on;
        Ok(())
    }

    /// Start listening with an accept queue of `backlog` connections (capped by
    /// `somaxconn`).
    ///
    /// # Errors
    /// `InvalidInput` before `bind`; otherwise as [`Stack::bind`].
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        let opts = lock(&self.opts);
        let addr = opts
            .local
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bind before listen"))?;
        let listen = ListenOptions { backlog, ..opts.listen };
        self.stack.shared.listen(addr, listen)
    }

    /// Open a connection to `addr`.
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
    /// let stream = socket.connect("10.0.0.1:80".parse().unwrap()).await?;
    /// assert!(stream.nodelay()?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `Unsupported` when bound to a non-zero port (source ports are always ephemeral);
    /// otherwise as [`Stack::connect`].
    ///
    /// # Cancel safety
    /// Dropping the future abandons the attempt: the half-open connection is closed.
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        let (local, nodelay, linger) = {
            let o = lock(&self.opts);
            (o.local, o.nodelay, o.linger)
        };
        if local.is_some_and(|l| l.port() != 0) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "tcp-tokio chooses the source port of outgoing connections",
            ));
        }
        let stream =
            TcpStream::connect_via(&self.stack.shared, local.map(|l| l.ip()), addr, nodelay)
                .await?;
        stream.set_linger(linger)?;
        Ok(stream)
    }
}
