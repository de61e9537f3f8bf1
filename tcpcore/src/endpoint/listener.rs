//! Listeners: the two queues of a passive open (LQ-01) and their options, as Linux has them.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::ConnectionHandle;
use crate::{ConnConfig, Instant};

/// When a listener answers SYNs with cookies instead of SYN-queue entries (RFC 4987 §3.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SynCookies {
    /// Never: when the SYN queue is full, new SYNs are dropped.
    Never,
    /// Only while the SYN queue is full (Linux `tcp_syncookies = 1`).
    #[default]
    WhenFull,
    /// For every SYN; no half-open state at all (Linux `tcp_syncookies = 2`).
    Always,
}

/// Options of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenOptions {
    /// Accept-queue length: established connections not yet accepted (`listen(2)` backlog,
    /// capped at [`crate::EndpointConfig::somaxconn`]).
    pub backlog: u32,
    /// Most half-open connections (`tcp_max_syn_backlog`, 1024).
    pub syn_backlog: u32,
    /// SYN-cookie policy.
    pub syn_cookies: SynCookies,
    /// Answer the completing ACK with RST when the accept queue is full, instead of dropping
    /// it so the client retransmits (`tcp_abort_on_overflow`, off).
    pub abort_on_overflow: bool,
    /// Linux `TCP_DEFER_ACCEPT`, as the SYN-ACK timeouts it lasts (Linux converts the
    /// seconds given to `setsockopt` with `secs_to_retrans`): until then, a bare ACK
    /// completing the handshake is dropped and the entry waits for data (or a FIN); SYN-ACKs
    /// are not retransmitted meanwhile but for the last timeout, which gives the peer a last
    /// chance; after it a bare ACK is accepted. 0 (the default): off.
    pub defer_accept: u8,
    /// `TCP_MAXSEG` set on the listening socket: [`crate::ConnConfig::max_segment`] for the
    /// connections it accepts (their SYN-ACK's MSS option included).
    pub max_segment: Option<u16>,
    /// Linux `TCP_FASTOPEN` (RFC 7413 §4.2.2): most Fast Open children whose handshake has
    /// not completed; SYNs with data and a valid cookie make a connection at once, acknowledge
    /// the data in the SYN-ACK and are accepted before the handshake ends. 0 (the default):
    /// no Fast Open at this listener.
    pub fast_open_queue: u32,
    /// Linux `TCP_FASTOPEN_KEY`: this listener's own cookie key; `None`: the endpoint's.
    pub fast_open_key: Option<[u8; 16]>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            backlog: 1024,
            syn_backlog: 1024,
            syn_cookies: SynCookies::WhenFull,
            abort_on_overflow: false,
            defer_accept: 0,
            max_segment: None,
            fast_open_queue: 0,
            fast_open_key: None,
        }
    }
}

/// A listening address with its queues.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) addr: SocketAddr,
    pub(crate) opts: ListenOptions,
    /// The options of the connections it accepts, as set on the listening socket
    /// ([`crate::Endpoint::set_listener_conn_config`]); `None`: the endpoint's.
    pub(crate) conn: Option<ConnConfig>,
    /// Half-open entries this listener owns in the SYN queue.
    pub(crate) half_open: u32,
    /// Fast Open children not yet past their handshake (at most `opts.fast_open_queue`).
    pub(crate) fast_open_pending: u32,
    /// Established, not yet accepted.
    pub(crate) accept_queue: VecDeque<ConnectionHandle>,
    /// Effective accept-queue capacity: min(backlog, somaxconn).
    pub(crate) backlog: usize,
    /// Last time the SYN queue overflowed into cookies (cookies are only checked for a while
    /// after, as Linux `tcp_synq_no_recent_overflow`).
    pub(crate) last_overflow: Option<Instant>,
    /// The implicit listener of interception (`intercept.rs`): it has no address of its own,
    /// matches nothing by address, and is found only through the interception policy.
    pub(crate) intercept: bool,
}

impl Listener {
    pub(crate) fn new(addr: SocketAddr, opts: ListenOptions, somaxconn: u32) -> Self {
        let backlog = Self::capacity(opts, somaxconn);
        Listener {
            addr,
            opts,
            conn: None,
            half_open: 0,
            fast_open_pending: 0,
            accept_queue: VecDeque::with_capacity(backlog.min(4096)),
            backlog,
            last_overflow: None,
            intercept: false,
        }
    }

    /// Effective accept-queue capacity: min(backlog, somaxconn), at least 1.
    fn capacity(opts: ListenOptions, somaxconn: u32) -> usize {
        opts.backlog.min(somaxconn).max(1) as usize
    }

    /// New options, applying to SYNs from now on.
    pub(crate) fn set_options(&mut self, opts: ListenOptions, somaxconn: u32) {
        self.backlog = Self::capacity(opts, somaxconn);
        self.opts = opts;
    }

    /// Whether this is the (non-interception) listener bound to exactly `addr`.
    pub(crate) fn is(&self, addr: SocketAddr) -> bool {
        !self.intercept && self.addr == addr
    }

    /// Whether this listener takes segments for `local`.
    pub(crate) fn matches(&self, local: SocketAddr) -> bool {
        !self.intercept
            && self.addr.port() == local.port()
            && (self.addr.ip() == local.ip()
                || (self.addr.ip().is_unspecified() && self.addr.is_ipv4() == local.is_ipv4()))
    }

    pub(crate) fn accept_queue_full(&self) -> bool {
        self.accept_queue.len() >= self.backlog
    }

    pub(crate) fn syn_queue_full(&self) -> bool {
        self.half_open >= self.opts.syn_backlog
    }
}
