//! The socket layer: file descriptors over the stack's listeners and connections, with the
//! errno each call gives on Linux. Calls that would block return `Poll::Pending`; the
//! interface decides whether to fail with `EAGAIN` or wait.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::Poll;

use tcpcore::{ConnectionHandle, ReadError, State, WriteError};

use crate::errno::*;
use crate::sockopt::Opts;
use crate::stack::{Entry, Stack};

/// What a descriptor refers to.
pub(crate) enum Kind {
    /// `socket()` done, neither listening nor connected.
    Idle,
    /// A listener on this address.
    Listening(SocketAddr),
    /// A connection (active, or accepted).
    Conn(ConnectionHandle),
    /// A connection the endpoint has forgotten (closed, reset, timed out) while a descriptor
    /// still refers to it: kept here for its error and end of stream, so that the endpoint
    /// answers later segments for its 4-tuple with RST, as Linux does for an unhashed socket.
    Dead(Box<tcpcore::Connection>),
    /// An epoll instance: its interest list.
    Epoll(Vec<EpollItem>),
}

/// One entry of an epoll interest list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EpollItem {
    /// The watched descriptor.
    pub(crate) fd: i32,
    /// The events asked for, flags (`EPOLLET`, `EPOLLONESHOT`) included.
    pub(crate) events: u32,
    /// The caller's cookie.
    pub(crate) data: u64,
    /// For `EPOLLET`: the socket's wakeup signature when it was last reported (`None`: not
    /// reported since it was added or modified).
    pub(crate) reported: Option<u64>,
}

/// One file descriptor.
pub(crate) struct Sock {
    /// Its object.
    pub(crate) kind: Kind,
    /// `AF_INET6` socket.
    pub(crate) v6: bool,
    /// Address given to `bind`.
    pub(crate) bound: Option<SocketAddr>,
    /// `O_NONBLOCK`.
    pub(crate) nonblock: bool,
    /// Socket options set by the application.
    pub(crate) opts: Opts,
    /// The connection's error was already reported once (Linux reports `sk_err` once, then
    /// `EPIPE` for writes).
    pub(crate) err_reported: bool,
    /// `shutdown(SHUT_RD)` was called: reads return end of stream.
    pub(crate) rd_shut: bool,
    /// `MSG_ZEROCOPY` notifications.
    pub(crate) zerocopy: crate::zerocopy::ZeroCopy,
    /// The backlog given to `listen`.
    pub(crate) backlog: i32,
}

/// The stack and the descriptors over it: everything the mutex guards.
pub(crate) struct Host {
    /// The stack under test.
    pub(crate) stack: Stack,
    /// Open descriptors.
    pub(crate) socks: BTreeMap<i32, Sock>,
    /// Local address of active opens (packetdrill's `--local_ip`).
    pub(crate) local4: IpAddr,
    /// Local IPv6 address of active opens.
    pub(crate) local6: IpAddr,
    /// Socket options refused as unsupported, by (level, name).
    pub(crate) unsupported: BTreeMap<(i32, i32), u64>,
}

impl Host {
    /// A host with no descriptors, its stack configured by `cfg`.
    pub(crate) fn new(cfg: tcpcore::EndpointConfig) -> Self {
        Host {
            stack: Stack::new(cfg),
            socks: BTreeMap::new(),
            local4: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
            local6: IpAddr::V6(Ipv6Addr::new(0xfd3d, 0xfa7b, 0xd17d, 0, 0, 0, 0, 1)),
            unsupported: BTreeMap::new(),
        }
    }

    /// The descriptor `fd`.
    pub(crate) fn sock(&mut self, fd: i32) -> Res<&mut Sock> {
        self.socks.get_mut(&fd).ok_or(EBADF)
    }

    /// The connection behind `fd`.
    pub(crate) fn conn(&mut self, fd: i32) -> Res<&mut tcpcore::Connection> {
        match self.socks.get_mut(&fd).map(|s| &mut s.kind) {
            Some(Kind::Conn(h)) => self.stack.conn(*h).ok_or(ENOTCONN),
            Some(Kind::Dead(c)) => Ok(c),
            Some(_) => Err(ENOTCONN),
            None => Err(EBADF),
        }
    }

    /// Move connections the stack retired into the descriptors that refer to them.
    pub(crate) fn sync(&mut self) {
        for (h, c) in std::mem::take(&mut self.stack.retired) {
            let sock = self.socks.values_mut().find(|s| matches!(s.kind, Kind::Conn(x) if x == h));
            if let Some(s) = sock {
                s.kind = Kind::Dead(Box::new(c));
            }
        }
    }

    /// The lowest free descriptor, as the kernel picks (0-2 are stdio).
    fn alloc_fd(&self) -> i32 {
        (3..).find(|fd| !self.socks.contains_key(fd)).expect("descriptors left")
    }

    /// A new descriptor for `kind`.
    pub(crate) fn install(&mut self, kind: Kind, v6: bool, nonblock: bool) -> i32 {
        let fd = self.alloc_fd();
        let s = Sock {
            kind,
            v6,
            bound: None,
            nonblock,
            opts: Opts::default(),
            err_reported: false,
            rd_shut: false,
            zerocopy: Default::default(),
            backlog: 0,
        };
        self.socks.insert(fd, s);
        fd
    }

    /// `socket(2)`: TCP stream sockets only.
    pub(crate) fn socket(&mut self, domain: i32, ty: i32, protocol: i32) -> Res<i32> {
        if domain != AF_INET && domain != AF_INET6 {
            return Err(EAFNOSUPPORT);
        }
        if ty & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != SOCK_STREAM
            || (protocol != 0 && protocol != IPPROTO_TCP)
        {
            return Err(EPROTONOSUPPORT);
        }
        Ok(self.install(Kind::Idle, domain == AF_INET6, ty & SOCK_NONBLOCK != 0))
    }

    /// `bind(2)`.
    pub(crate) fn bind(&mut self, fd: i32, addr: SocketAddr) -> Res<()> {
        let in_use = self.socks.values().any(|s| s.bound.is_some_and(|b| b.port() == addr.port()))
            && addr.port() != 0;
        let s = self.sock(fd)?;
        if s.bound.is_some() || !matches!(s.kind, Kind::Idle) {
            return Err(EINVAL);
        }
        if in_use && !s.opts.reuseaddr {
            return Err(EADDRINUSE);
        }
        s.bound = Some(addr);
        Ok(())
    }

    /// `listen(2)`. Linux binds an unbound socket to an ephemeral port; we need a port.
    pub(crate) fn listen(&mut self, fd: i32, backlog: i32) -> Res<()> {
        let s = self.socks.get(&fd).ok_or(EBADF)?;
        match s.kind {
            Kind::Idle => {}
            Kind::Listening(_) => return Ok(()),
            _ => return Err(EINVAL),
        }
        let addr = s.bound.ok_or(EINVAL)?;
        let opts = listen_options(&s.opts, backlog);
        self.stack.ep.listen_with(addr, opts).map_err(|_| EADDRINUSE)?;
        let s = self.sock(fd)?;
        s.kind = Kind::Listening(addr);
        s.backlog = backlog;
        Ok(())
    }

    /// After `setsockopt` on a listening socket: its options for the SYNs to come.
    pub(crate) fn update_listener(&mut self, fd: i32) {
        let Some(s) = self.socks.get(&fd) else { return };
        let Kind::Listening(addr) = s.kind else { return };
        let opts = listen_options(&s.opts, s.backlog);
        let _ = self.stack.ep.set_listen_options(addr, opts);
    }

    /// `accept(2)`: the next established connection, or pending.
    pub(crate) fn accept(&mut self, fd: i32) -> Poll<Res<(i32, SocketAddr)>> {
        let s = match self.socks.get(&fd) {
            Some(s) => s,
            None => return Poll::Ready(Err(EBADF)),
        };
        let Kind::Listening(addr) = s.kind else { return Poll::Ready(Err(EINVAL)) };
        let (v6, opts) = (s.v6, s.opts.clone());
        let Some(h) = self.stack.ep.accept(addr) else { return Poll::Pending };
        let Some(peer) = self.stack.conn(h).map(|c| c.remote_addr()) else { return Poll::Pending };
        let nfd = self.install(Kind::Conn(h), v6, false);
        // Accepted sockets inherit the listener's options, as in Linux.
        self.sock(nfd).map(|s| s.opts = opts).ok();
        crate::sockopt::apply(self, nfd);
        Poll::Ready(Ok((nfd, peer)))
    }

    /// `connect(2)` first call: start the handshake. Returns the connection to wait for.
    pub(crate) fn connect(&mut self, fd: i32, remote: SocketAddr) -> Res<()> {
        self.connect_fast_open(fd, remote, false)
    }

    /// `connect(2)`, with Fast Open forced on (`sendto(MSG_FASTOPEN)`) or as the socket's
    /// `TCP_FASTOPEN_CONNECT` says.
    pub(crate) fn connect_fast_open(
        &mut self,
        fd: i32,
        remote: SocketAddr,
        fast_open: bool,
    ) -> Res<()> {
        let (v6, kind) = {
            let s = self.sock(fd)?;
            (s.v6, &s.kind)
        };
        match kind {
            Kind::Idle => {}
            Kind::Conn(_) | Kind::Dead(_) => {
                let deferred = self.conn(fd).is_ok_and(|c| c.fast_open_syn_room().is_some());
                return match self.conn(fd).map(|c| c.state()) {
                    // A deferred Fast Open connect counts as connected (Linux).
                    Ok(State::SynSent) if deferred => Err(EISCONN),
                    Ok(State::SynSent | State::SynReceived) => Err(EALREADY),
                    Ok(State::Closed) | Err(_) => Err(ECONNABORTED),
                    Ok(_) => Err(EISCONN),
                };
            }
            _ => return Err(EINVAL),
        }
        let remote = match (remote, v6) {
            (SocketAddr::V6(a), false) => {
                return Err(if a.ip().is_unspecified() { EINVAL } else { EAFNOSUPPORT })
            }
            (r, _) => r,
        };
        let local = if remote.is_ipv4() { self.local4 } else { self.local6 };
        let now = self.stack.now;
        let mut cfg = self.stack.ep.config().conn;
        cfg.max_segment = self.sock(fd)?.opts.max_segment();
        cfg.fast_open_connect = fast_open || self.sock(fd)?.opts.fastopen_connect;
        cfg.syn_retries = self.sock(fd)?.opts.syncnt.unwrap_or(cfg.syn_retries);
        let (h, conn) =
            self.stack.ep.connect_with(now, local, remote, cfg).map_err(|_| EADDRNOTAVAIL)?;
        self.stack.conns.insert(h, Entry { conn, orphan: false });
        self.sock(fd)?.kind = Kind::Conn(h);
        crate::sockopt::apply(self, fd);
        self.stack.drive();
        Ok(())
    }

    /// Whether an active open is complete: `Ok` once established, the error if it failed.
    pub(crate) fn connect_done(&mut self, fd: i32) -> Poll<Res<()>> {
        let Ok(c) = self.conn(fd) else { return Poll::Ready(Err(ECONNABORTED)) };
        if let Some(e) = c.error() {
            if let Ok(s) = self.sock(fd) {
                s.err_reported = true;
            }
            return Poll::Ready(Err(of_conn_error(e)));
        }
        match c.state() {
            State::SynSent | State::SynReceived => Poll::Pending,
            _ => Poll::Ready(Ok(())),
        }
    }

    /// The connection's error, reported once (Linux `sock_error`).
    pub(crate) fn take_error(&mut self, fd: i32) -> Option<Errno> {
        let c = self.conn(fd).ok()?;
        // The connection's own once-reported error (FA-02): taking it also releases a
        // connection held for the application.
        c.take_error();
        let e = c.error()?;
        let s = self.sock(fd).ok()?;
        if s.err_reported {
            return None;
        }
        s.err_reported = true;
        Some(of_conn_error(e))
    }

    /// `read(2)`/`recv(2)` into `bufs` (scatter), with `MSG_PEEK` support.
    /// After `shutdown(SHUT_RD)` queued data is still read, as Linux does (`tcp_recvmsg`
    /// returns what the queue holds and 0, not a wait, once it is empty).
    pub(crate) fn read(&mut self, fd: i32, bufs: &mut [&mut [u8]], peek: bool) -> Poll<Res<usize>> {
        let rd_shut = self.socks.get(&fd).is_some_and(|s| s.rd_shut);
        let c = match self.conn(fd) {
            Ok(c) => c,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if c.readable_bytes() > 0 {
            let n = if peek { peek_into(c, bufs) } else { read_into(c, bufs) };
            self.stack.drive();
            return Poll::Ready(Ok(n));
        }
        if c.error().is_some() {
            return Poll::Ready(self.take_error(fd).map_or(Ok(0), Err));
        }
        if rd_shut {
            return Poll::Ready(Ok(0));
        }
        probe_read(c)
    }

    /// `write(2)`/`send(2)`: queue as much as fits; pending when nothing fits.
    /// With `more` (`MSG_MORE`) the tail waits for more data (`Connection::write_more`).
    /// A deferred Fast Open SYN takes, from a non-blocking write, only what fits on it.
    pub(crate) fn write(
        &mut self,
        fd: i32,
        data: &[u8],
        more: bool,
        nonblock: bool,
    ) -> Poll<Res<usize>> {
        let c = match self.conn(fd) {
            Ok(c) => c,
            Err(ENOTCONN) => return Poll::Ready(Err(EPIPE)),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if matches!(c.state(), State::SynSent | State::SynReceived)
            && !c.writes_before_established()
        {
            return Poll::Pending;
        }
        // A deferred Fast Open SYN takes what fits on it; the rest waits (Linux returns
        // the SYN's share from a non-blocking `sendto(MSG_FASTOPEN)`).
        let data = match c.fast_open_syn_room() {
            Some(room) if nonblock => &data[..data.len().min(room)],
            _ => data,
        };
        let r = if more { c.write_more(data) } else { c.write(data) };
        match r {
            Ok(n) => {
                self.stack.drive();
                Poll::Ready(Ok(n))
            }
            Err(WriteError::Blocked) => Poll::Pending,
            Err(WriteError::Failed(_)) => Poll::Ready(Err(self.take_error(fd).unwrap_or(EPIPE))),
            Err(WriteError::Closed | WriteError::NotConnected) => Poll::Ready(Err(EPIPE)),
        }
    }

    /// `shutdown(2)`.
    pub(crate) fn shutdown(&mut self, fd: i32, how: i32) -> Res<()> {
        if !(SHUT_RD..=SHUT_RDWR).contains(&how) {
            return Err(EINVAL);
        }
        self.conn(fd)?;
        if how != SHUT_WR {
            self.sock(fd)?.rd_shut = true;
        }
        let c = self.conn(fd)?;
        if matches!(c.state(), State::Closed | State::Listen) {
            return Err(ENOTCONN);
        }
        if how != SHUT_RD {
            c.shutdown_write();
        }
        self.stack.drive();
        Ok(())
    }

    /// `close(2)`: a listener stops (its unaccepted connections are reset, as Linux does);
    /// a connection closes (FIN, or RST with unread data or `SO_LINGER` 0) and is orphaned.
    pub(crate) fn close(&mut self, fd: i32) -> Res<()> {
        let s = self.socks.remove(&fd).ok_or(EBADF)?;
        match s.kind {
            Kind::Listening(addr) => {
                for h in self.stack.ep.unlisten(addr) {
                    if let Some(e) = self.stack.conns.get_mut(&h) {
                        e.conn.abort();
                        e.orphan = true;
                    }
                }
            }
            Kind::Conn(h) => {
                if let Some(e) = self.stack.conns.get_mut(&h) {
                    if s.opts.linger == Some(0) {
                        e.conn.abort();
                    } else {
                        e.conn.close();
                    }
                    e.orphan = true;
                }
            }
            Kind::Idle | Kind::Epoll(_) | Kind::Dead(_) => {}
        }
        for s in self.socks.values_mut() {
            if let Kind::Epoll(list) = &mut s.kind {
                list.retain(|i| i.fd != fd);
            }
        }
        self.stack.drive();
        Ok(())
    }

    /// The `poll(2)` events ready on `fd` (`POLLNVAL` for an unknown descriptor).
    /// What changes when Linux would wake the socket's waiters (data or a FIN arrived, an
    /// ACK freed send-buffer space, the state changed, a connection queued on a listener): an
    /// edge-triggered epoll reports a descriptor again only after this changes.
    pub(crate) fn wakeup_signature(&mut self, fd: i32) -> u64 {
        let listener = match self.socks.get(&fd).map(|s| &s.kind) {
            Some(Kind::Listening(addr)) => Some(*addr),
            _ => None,
        };
        if let Some(addr) = listener {
            return self.stack.ep.accept_queue_len(addr) as u64;
        }
        match self.conn(fd) {
            Ok(c) => {
                let i = c.info();
                (i.bytes_received << 8) ^ (i.bytes_acked << 36) ^ c.state() as u64
            }
            Err(_) => u64::MAX,
        }
    }

    pub(crate) fn poll_events(&mut self, fd: i32) -> i16 {
        let Some(s) = self.socks.get(&fd) else { return POLLNVAL };
        let rd_shut = s.rd_shut;
        match s.kind {
            Kind::Idle => POLLOUT | POLLHUP,
            Kind::Epoll(_) => 0,
            Kind::Listening(addr) => {
                if self.stack.ep.accept_queue_len(addr) > 0 {
                    POLLIN | POLLRDNORM
                } else {
                    0
                }
            }
            Kind::Conn(_) | Kind::Dead(_) => {
                let ev = match self.conn(fd) {
                    Ok(c) => conn_events(c, rd_shut),
                    Err(_) => POLLHUP,
                };
                // A zerocopy notification waits in the error queue.
                if self.zerocopy_ready(fd) {
                    ev | POLLERR
                } else {
                    ev
                }
            }
        }
    }
}

/// Copy without consuming (`MSG_PEEK`).
fn peek_into(c: &mut tcpcore::Connection, bufs: &mut [&mut [u8]]) -> usize {
    let mut copied = 0;
    c.read_with(|parts| {
        let mut src = parts[0].iter().chain(parts[1].iter());
        for slot in bufs.iter_mut().flat_map(|b| b.iter_mut()) {
            let Some(x) = src.next() else { break };
            *slot = *x;
            copied += 1;
        }
        0
    });
    copied
}

/// Read into each buffer in turn until one is not filled.
fn read_into(c: &mut tcpcore::Connection, bufs: &mut [&mut [u8]]) -> usize {
    let mut total = 0;
    for b in bufs.iter_mut() {
        match c.read(b) {
            Ok(n) => {
                total += n;
                if n < b.len() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    total
}

/// A read with nothing buffered: end of stream, an error, or pending.
fn probe_read(c: &mut tcpcore::Connection) -> Poll<Res<usize>> {
    match c.read(&mut [0u8; 1]) {
        Ok(n) => Poll::Ready(Ok(n)),
        Err(ReadError::WouldBlock) => Poll::Pending,
        Err(ReadError::NotConnected) => match c.state() {
            State::SynSent | State::SynReceived => Poll::Pending,
            _ => Poll::Ready(Err(ENOTCONN)),
        },
        Err(ReadError::Failed(e)) => Poll::Ready(Err(of_conn_error(e))),
    }
}

/// Linux `tcp_poll` for a connection.
fn conn_events(c: &tcpcore::Connection, rd_shut: bool) -> i16 {
    let state = c.state();
    let mut ev = 0;
    let peer_fin = matches!(
        state,
        State::CloseWait | State::LastAck | State::Closing | State::TimeWait | State::Closed
    );
    if c.error().is_some() {
        ev |= POLLERR;
    }
    let shut_wr = matches!(
        state,
        State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck | State::TimeWait
    );
    if state == State::Closed || (shut_wr && peer_fin) {
        ev |= POLLHUP;
    }
    if peer_fin || rd_shut {
        ev |= POLLIN | POLLRDNORM | POLLRDHUP;
    }
    // Linux `tcp_poll`: a deferred Fast Open connect is writable, a Fast Open child
    // readable and writable, before the handshake completes.
    if matches!(state, State::SynSent | State::SynReceived) && !c.writes_before_established() {
        return ev;
    }
    if c.readable_bytes() > 0 {
        ev |= POLLIN | POLLRDNORM;
    }
    // Linux `tcp_poll`: a reset shuts sending down, which reports POLLOUT (the write fails).
    let reset = state == State::Closed && c.error().is_some();
    if reset || (!shut_wr && state != State::Closed && c.writable_bytes() > 0) {
        ev |= POLLOUT | POLLWRNORM;
    }
    ev
}

/// tcpcore's listener options for a socket's options and `listen` backlog.
fn listen_options(o: &crate::sockopt::Opts, backlog: i32) -> tcpcore::ListenOptions {
    tcpcore::ListenOptions {
        backlog: backlog.max(0) as u32 + 1,
        defer_accept: o.defer_accept,
        max_segment: o.max_segment(),
        fast_open_queue: o.fastopen as u32,
        fast_open_key: o.fastopen_key,
        ..tcpcore::ListenOptions::default()
    }
}
