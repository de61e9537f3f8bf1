//! One TCP connection: a transmission control block (RFC 9293 §3.3.1) driven sans-IO.
//!
//! A [`Connection`] is created by the endpoint (active open: `SynSent`; passive open:
//! `SynReceived`) and then driven by its owner:
//! - inputs: [`Connection::handle_segment`] for every segment the endpoint routes to it and
//!   [`Connection::handle_timeout`] when [`Connection::poll_timeout`]'s deadline passes
//!   (spurious calls are harmless);
//! - outputs: [`Connection::poll_transmit`] until it returns `None`, then
//!   [`Connection::poll_timeout`]; [`Connection::poll_event`] for application events;
//! - the application: [`Connection::write`], [`Connection::read`],
//!   [`Connection::shutdown_write`], [`Connection::close`], [`Connection::abort`]. These never
//!   take `now` and never emit; afterwards [`Connection::wants_transmit`] says whether
//!   `poll_transmit` has something to send.

mod autotune;
mod budget;
mod cork;
mod cwv;
mod ecn;
mod fastopen;
mod fastpath;
mod icmp_error;
mod info;
mod input;
mod lazy;
mod open;
mod output;
mod pacing;
#[cfg(test)]
pub(crate) mod pacing_tests;
mod paws;
mod pmtu;
mod rate;
mod recovery;
mod recv_buf;
mod release;
mod ring;
mod rtt;
mod sack;
mod scoreboard;
mod send_buf;
mod sockopt;
mod state;
mod timeout;
mod timers;

use std::net::SocketAddr;

use crate::cc::{AnyController, Bbr, Cubic, NewReno};
use crate::config::{CongestionAlgorithm, ConnConfig, SharedConnConfig};
use crate::wire::SeqNum;
use crate::{ConnectionError, Event, Instant, ReadError, WriteError};

pub(crate) use budget::MemBudget;
pub use info::{CaState, SeqVars, TcpInfo, SCOREBOARD_CAPACITY};
pub use open::SynInfo;
pub(crate) use open::{syn_ack_repr, ts_clock};
pub use pmtu::{MIN_PMTU_V4, MIN_PMTU_V6};
pub use state::State;

use recv_buf::RecvBuf;
use rtt::RttEstimator;
use send_buf::SendBuf;
use timers::TimerTable;

/// What the endpoint decides for a new connection.
#[derive(Clone, Copy, Debug)]
pub struct ConnParams {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// Initial send sequence number (RFC 6528, chosen by the endpoint).
    pub iss: SeqNum,
    /// Random offset of our timestamp clock (RFC 7323 §5.4).
    pub ts_offset: u32,
}

/// NewReno loss recovery state (RFC 5681 §3.2, RFC 6582).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Recovery {
    /// Consecutive duplicate ACKs.
    pub(crate) dupacks: u32,
    /// In fast recovery until SND.UNA passes `recover`.
    pub(crate) active: bool,
    /// RFC 6582 `recover`: the highest sequence number sent when loss was detected.
    pub(crate) recover: SeqNum,
    /// Window inflation in bytes: by limited transmit (RFC 3042) before recovery, by
    /// duplicate ACKs during it.
    pub(crate) inflation: u32,
    /// Retransmit the segment at SND.UNA on the next transmit.
    pub(crate) retransmit_head: bool,
    /// Bytes in flight at the first duplicate ACK, before limited transmit (RFC 3042).
    pub(crate) flight_at_dup: u32,
    /// Bytes the last cumulative ACK advanced SND.UNA by (RFC 6582 §4.2 ACK heuristic).
    pub(crate) last_advance: u32,
}

/// When to acknowledge (RFC 9293 §3.8.6.3, RFC 5681 §4.2).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AckState {
    /// An ACK must go out on the next transmit.
    pub(crate) now: bool,
    /// Bytes received since our last ACK.
    pub(crate) unacked_bytes: u32,
    /// Remaining quick ACKs (Linux quick-ack mode: at connection start, after a duplicate
    /// and after a silence longer than the RTO).
    pub(crate) quick: u8,
    /// When data last arrived, or the handshake completed (Linux `icsk_ack.lrcvtime`).
    pub(crate) last_data: Option<Instant>,
}

/// A per-connection token bucket for challenge ACKs (RFC 5961 §7).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ChallengeLimit {
    pub(crate) window_start: Instant,
    pub(crate) sent: u32,
}

/// State only hostile or broken peers, ICMP errors, Fast Open and ECN congestion echoes
/// touch; held in a `Lazy`, allocated the first time one of them writes it and kept for the
/// connection's life.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rare {
    pub(crate) challenge: ChallengeLimit,
    /// When we last answered an unacceptable segment without data (ACK-loop limit).
    pub(crate) last_invalid_ack: Option<Instant>,
    /// The last soft ICMP error, reported if the connection times out (IC-08).
    pub(crate) soft_error: Option<icmp_error::SoftError>,
    /// TCP Fast Open (RFC 7413): the client's SYN data and cookie, the server's child.
    pub(crate) fast_open: fastopen::FastOpenConn,
    /// The ECN congestion-window reduction in progress or last made (RFC 3168 §6.1.2):
    /// written only when a peer echoes congestion, so kept here rather than in every
    /// connection.
    pub(crate) ecn_cwr: ecn::EcnCwr,
}

lazy::shared_default!(Rare);

/// Pending application events, as bits.
pub(crate) mod ev {
    pub(crate) const CONNECTED: u8 = 1;
    pub(crate) const READABLE: u8 = 2;
    pub(crate) const WRITABLE: u8 = 4;
    pub(crate) const PEER_FIN: u8 = 8;
    pub(crate) const CLOSED: u8 = 16;
}

/// A reset to send once: `<SEQ=seq><CTL=RST>`, plus ACK when `ack` is set.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingRst {
    pub(crate) seq: SeqNum,
    pub(crate) ack: Option<SeqNum>,
}

/// One TCP connection. See the module documentation for the call order.
#[derive(Debug)]
pub struct Connection {
    pub(crate) cfg: SharedConnConfig,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) state: State,
    /// Opened by a listener (a reset in SYN-RECEIVED then returns quietly to LISTEN).
    pub(crate) passive: bool,
    // Send sequence variables (RFC 9293 §3.3.1).
    pub(crate) iss: SeqNum,
    pub(crate) snd_una: SeqNum,
    /// Next sequence number to send; rewound to SND.UNA by a retransmission timeout.
    pub(crate) snd_nxt: SeqNum,
    /// Highest sequence number sent plus one.
    pub(crate) snd_max: SeqNum,
    /// End of the last small (sub-MSS) segment sent: Nagle waits for its ACK (Minshall).
    pub(crate) snd_sml: SeqNum,
    /// Peer's window in bytes (already scaled).
    pub(crate) snd_wnd: u32,
    pub(crate) snd_wl1: SeqNum,
    pub(crate) snd_wl2: SeqNum,
    /// Largest window the peer ever offered (RFC 5961 §5.2, RFC 9293 §3.8.6.2.1).
    pub(crate) max_snd_wnd: u32,
    // Receive sequence variables.
    pub(crate) irs: SeqNum,
    pub(crate) rcv_nxt: SeqNum,
    /// Right edge of the window we last advertised; it never moves left.
    pub(crate) rcv_adv: SeqNum,
    /// RCV.NXT carried by our last ACK (RFC 7323 Last.ACK.sent).
    pub(crate) last_ack_sent: SeqNum,
    /// The peer's MSS: the most payload we put in one segment, before options.
    pub(crate) snd_mss: u32,
    /// Largest segment seen from the peer (delayed-ACK accounting).
    pub(crate) rcv_mss: u32,
    pub(crate) snd_wscale: u8,
    pub(crate) rcv_wscale: u8,
    /// Timestamps negotiated: TS.Recent (RFC 7323 §4.3).
    pub(crate) ts_recent: Option<u32>,
    /// When TS.Recent was last recorded (RFC 7323 §5.5 idle rule).
    pub(crate) ts_recent_at: Instant,
    pub(crate) ts_offset: u32,
    pub(crate) sack_ok: bool,
    /// What our SYN-ACK answers of the peer's SYN (its other fields are taken into the
    /// connection by `take_syn`): only these, not the whole 24-byte [`SynInfo`] (MEM-01).
    pub(crate) peer_syn: open::PeerSyn,
    pub(crate) send_buf: SendBuf,
    pub(crate) recv_buf: RecvBuf,
    /// Receive-buffer auto-tuning.
    pub(crate) rcv_space: lazy::Lazy<autotune::RcvSpace>,
    /// Our FIN is queued behind the send buffer (shutdown_write or close).
    pub(crate) fin_queued: bool,
    /// Our FIN is acknowledged: SND.UNA is one past the end of the send buffer.
    pub(crate) our_fin_acked: bool,
    /// The application closed: it will never read again (orphaned socket).
    pub(crate) orphaned: bool,
    /// Sequence number of the peer's FIN, once seen (possibly out of order).
    pub(crate) peer_fin: Option<SeqNum>,
    /// The peer's FIN is in order and consumed: reads end at the buffered data.
    pub(crate) fin_received: bool,
    pub(crate) timers: TimerTable,
    /// `update_timers` ran after the last change of what it reads: a poll that finds nothing
    /// to send need not run it again. Every input and output runs it; every other call that
    /// can change the connection clears this (`unsync_timers`).
    pub(crate) timers_synced: bool,
    pub(crate) rtt: RttEstimator,
    /// The segment being timed for an RTT sample: its end sequence number and send time.
    pub(crate) rtt_probe: Option<(SeqNum, Instant)>,
    pub(crate) cc: AnyController,
    /// Delivery rate sampling, for a controller that uses it (BBR).
    pub(crate) rate: lazy::Lazy<rate::RateState>,
    /// Congestion window validation: idle restart and cwnd-limited tracking.
    pub(crate) cwv: cwv::CwndUsage,
    /// Pacing (`pacing.rs`): earliest departure time of the next data, in nanoseconds since
    /// the epoch (Linux `tcp_wstamp_ns`); 0 while pacing is off.
    pub(crate) pace_next_ns: u64,
    /// Pacing: bytes the current release may still send before `pace_next_ns` must come
    /// (a `u16`: it packs beside the other small fields).
    pub(crate) pace_left: u16,
    pub(crate) cork: cork::Cork,
    pub(crate) recovery: Recovery,
    /// SACK recovery, RACK-TLP and PRR (RFC 6675, RFC 8985, RFC 6937).
    pub(crate) sack_tx: lazy::Lazy<recovery::SackTx>,
    /// The SACK blocks we report (RFC 2018 §4, RFC 2883).
    pub(crate) sack_rx: lazy::Lazy<sack::SackRx>,
    pub(crate) ack: AckState,
    /// ECN (RFC 3168): negotiated, echoing CE, reducing.
    pub(crate) ecn: ecn::Ecn,
    /// Challenge-ACK limit, ACK-loop limit, soft ICMP error.
    pub(crate) rare: lazy::Lazy<Rare>,
    /// Consecutive retransmission timeouts without progress.
    pub(crate) retries: u8,
    pub(crate) keepalive_sent: u8,
    pub(crate) persist_backoff: u32,
    /// Zero-window probes sent since the peer last acknowledged anything (Linux
    /// `icsk_probes_out`).
    pub(crate) persist_probes: u8,
    /// When the first zero-window probe of the current stall went out (Linux
    /// `icsk_probes_tstamp`), for the user timeout.
    pub(crate) persist_since: Option<Instant>,
    /// A zero-window or keepalive probe (`<SEQ=SND.UNA-1>`) is due.
    pub(crate) probe_due: bool,
    pub(crate) pending_rst: Option<PendingRst>,
    pub(crate) events: u8,
    pub(crate) error: Option<ConnectionError>,
    /// `error` is not yet reported to the application (Linux `sk_err`, which a read or write
    /// reports once and clears): reads return the data received before the failure, then
    /// the error once, then end of stream (FA-02).
    pub(crate) error_unreported: bool,
    /// A passive connection no application call has touched yet: still in its listener's
    /// accept queue, or accepted and never used. Once failed, it stays undrained while it has
    /// something to report, so `accept` still returns it, as Linux does (FA-02).
    pub(crate) unclaimed: bool,
    /// When the oldest unacknowledged data was sent with no progress since (RFC 5482).
    pub(crate) stalled_since: Option<Instant>,
    pub(crate) info: info::Counters,
    /// This connection's share of its endpoint's memory budget.
    pub(crate) mem: budget::Charge,
}

impl Connection {
    /// A connection whose congestion controller starts with `cc_mss`-byte segments (the
    /// passive side knows the negotiated size already; the active side learns it from the
    /// SYN-ACK and builds its controller again then).
    fn new(cfg: SharedConnConfig, p: ConnParams, state: State, passive: bool, cc_mss: u32) -> Self {
        let default_mss = default_mss(&p.remote);
        let cc = new_controller(&cfg, cc_mss, u64::from(p.iss.0));
        let rcv_wscale = if passive { 0 } else { open::our_wscale(&cfg) };
        Connection {
            local: p.local,
            remote: p.remote,
            state,
            passive,
            iss: p.iss,
            snd_una: p.iss,
            snd_nxt: p.iss,
            snd_max: p.iss,
            snd_sml: p.iss,
            snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: p.iss,
            max_snd_wnd: 0,
            irs: SeqNum(0),
            rcv_nxt: SeqNum(0),
            rcv_adv: SeqNum(0),
            last_ack_sent: SeqNum(0),
            snd_mss: default_mss,
            rcv_mss: default_mss,
            snd_wscale: 0,
            rcv_wscale,
            ts_recent: None,
            ts_recent_at: Instant::ZERO,
            ts_offset: p.ts_offset,
            sack_ok: false,
            peer_syn: open::PeerSyn::default(),
            send_buf: SendBuf::new(cfg.send_buffer),
            recv_buf: RecvBuf::new(cfg.recv_buffer, cfg.max_ooo_ranges),
            rcv_space: lazy::Lazy::default(),
            fin_queued: false,
            our_fin_acked: false,
            orphaned: false,
            peer_fin: None,
            fin_received: false,
            timers: TimerTable::default(),
            timers_synced: false,
            rtt: RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto),
            rtt_probe: None,
            cc,
            rate: lazy::Lazy::default(),
            cwv: cwv::CwndUsage::default(),
            pace_next_ns: 0,
            pace_left: 0,
            cork: cork::Cork::default(),
            recovery: Recovery::default(),
            sack_tx: lazy::Lazy::default(),
            sack_rx: lazy::Lazy::default(),
            ack: AckState { quick: cfg.quick_acks, ..AckState::default() },
            ecn: ecn::Ecn::default(),
            rare: lazy::Lazy::default(),
            retries: 0,
            keepalive_sent: 0,
            persist_backoff: 0,
            persist_probes: 0,
            persist_since: None,
            probe_due: false,
            pending_rst: None,
            events: 0,
            error: None,
            error_unreported: false,
            unclaimed: passive,
            stalled_since: None,
            info: info::Counters::default(),
            mem: budget::Charge::default(),
            cfg,
        }
    }

    /// Active open (RFC 9293 §3.10.1): a connection in SYN-SENT whose SYN goes out on the
    /// first [`Connection::poll_transmit`].
    pub fn connect(cfg: impl Into<SharedConnConfig>, params: ConnParams) -> Self {
        if Self::debug_on() {
            span(params.local, params.remote).in_scope(|| tracing::debug!("active open"));
        }
        // Built in the return slot: the connection is some 800 bytes to copy.
        let mss = default_mss(&params.remote);
        Connection::new(cfg.into(), params, State::SynSent, false, mss)
    }

    /// `tcp{local, remote}`: entered by every input and output call, so each event the
    /// connection logs carries its addresses. Made on demand rather than kept: a disabled
    /// span costs a level check, and a kept one 40 bytes in every connection.
    pub(crate) fn span(&self) -> tracing::Span {
        span(self.local, self.remote)
    }

    /// Whether a subscriber may want debug events at all: if not, the entry points skip
    /// [`Connection::span`]. A disabled span is cheap but not free (making, entering,
    /// leaving and dropping it costs tens of instructions), and every poll of every
    /// connection would make one.
    #[inline(always)]
    pub(crate) fn debug_on() -> bool {
        use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
        LevelFilter::DEBUG <= STATIC_MAX_LEVEL && LevelFilter::DEBUG <= LevelFilter::current()
    }

    // ---- getters -------------------------------------------------------------------------

    /// The connection state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Our address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Why the connection failed, if it did.
    pub fn error(&self) -> Option<ConnectionError> {
        self.error
    }

    /// The connection is closed, or in TIME-WAIT, and has nothing left to send: its owner may
    /// drop it after [`crate::Endpoint::connection_closed`], which keeps a TIME-WAIT
    /// connection as a compact entry.
    ///
    /// A failed passive connection that no application call has touched yet and that still
    /// has data or its error to report is not drained: it stays in the accept queue, and
    /// `accept` returns it, as Linux does (FA-02). Any call on it (a read, `close`) releases
    /// it. Meanwhile its owner gives its 4-tuple back with [`crate::Endpoint::release_tuple`],
    /// so that a new SYN on it reaches the listener.
    pub fn is_drained(&self) -> bool {
        match self.state {
            State::Closed => self.pending_rst.is_none() && !self.held_for_accept(),
            State::TimeWait => !self.ack.now,
            _ => false,
        }
    }

    /// FA-02: failed, untouched by the application, with something left to tell it.
    fn held_for_accept(&self) -> bool {
        self.unclaimed && (self.error_unreported || self.recv_buf.unread() > 0)
    }

    /// The compact TIME-WAIT entry this connection leaves behind, if it is in TIME-WAIT.
    pub fn time_wait_entry(&self) -> Option<crate::endpoint::TimeWaitEntry> {
        if self.state != State::TimeWait {
            return None;
        }
        Some(crate::endpoint::TimeWaitEntry {
            tuple: crate::FourTuple { local: self.local, remote: self.remote },
            snd_nxt: self.snd_max,
            rcv_nxt: self.rcv_nxt,
            ts_recent: self.ts_recent,
            ts_offset: self.ts_offset,
            expires: self.timers.get(timers::Timer::TimeWait)?,
        })
    }

    /// Bytes the application can read now. Data received before a reset stays readable
    /// (FA-02, as Linux `tcp_reset` keeps the receive queue).
    pub fn readable_bytes(&self) -> usize {
        self.recv_buf.unread()
    }

    /// Whether the connection's failure ([`Connection::error`]) is still to be reported by a
    /// read, a write or [`Connection::take_error`] (Linux: `sk_err` is set, `EPOLLERR`).
    pub fn has_pending_error(&self) -> bool {
        self.error_unreported
    }

    /// Take the failure not yet reported (Linux `SO_ERROR`, which clears `sk_err`): `Some`
    /// once after a reset, timeout or hard ICMP error, then `None`; a later read then
    /// returns end of stream once the buffered data is read (FA-02).
    pub fn take_error(&mut self) -> Option<ConnectionError> {
        // Nothing the timers depend on changes here (no `unsync_timers`): a read that finds
        // nothing comes through here on every poll of a waiting connection.
        self.unclaimed = false;
        if !core::mem::take(&mut self.error_unreported) {
            return None;
        }
        self.error
    }

    /// Bytes the application can write now without blocking.
    pub fn writable_bytes(&self) -> usize {
        if self.state.can_send() || matches!(self.state, State::SynSent | State::SynReceived) {
            self.send_room()
        } else {
            0
        }
    }

    /// Bytes queued in the send buffer (unsent or unacknowledged).
    pub fn send_queued(&self) -> usize {
        self.send_buf.len()
    }

    // ---- application side ----------------------------------------------------------------

    /// Queue bytes to send; returns how many were taken (RFC 9293 §3.10.2).
    ///
    /// # Errors
    /// [`WriteError::Blocked`] when the send buffer is full, [`WriteError::Closed`] after
    /// [`Connection::shutdown_write`], [`WriteError::Failed`] after a failure (a reset maps to
    /// `EPIPE`, FA-02), [`WriteError::NotConnected`] when the connection is closed. The
    /// first write after a failure also reports it (as Linux `sk_stream_error`): a later
    /// read no longer does, and ends the stream after the buffered data.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        self.unsync_timers();
        self.unclaimed = false;
        if let Some(e) = self.error {
            self.error_unreported = false;
            return Err(WriteError::Failed(e));
        }
        if self.fin_queued {
            return Err(WriteError::Closed);
        }
        match self.state {
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => {}
            State::Closed | State::Listen => return Err(WriteError::NotConnected),
            _ => return Err(WriteError::Closed),
        }
        if data.is_empty() {
            return Ok(0);
        }
        self.release_syn();
        self.cork.more = false;
        match self.send_buf.push(&data[..data.len().min(self.send_room())]) {
            0 => Err(WriteError::Blocked),
            n => Ok(n),
        }
    }

    /// Room for the application: the buffer's free space, while the bytes not yet sent stay
    /// within the initial buffer size. Auto-tuning grows the buffer for data in flight
    /// (`autotune.rs`); letting unsent data pile up past the initial size would not send
    /// anything sooner, only let it go cold in the cache before it is sent (a 4 MiB backlog
    /// halved the in-memory throughput bench).
    fn send_room(&self) -> usize {
        let sent = self.snd_max.since(self.data_start()) as usize;
        let unsent = self.send_buf.len().saturating_sub(sent);
        self.send_buf.free().min(self.cfg.send_buffer.saturating_sub(unsent))
    }

    /// Copy received bytes into `buf`. `Ok(0)` means end of stream (the peer's FIN), as with
    /// `std::io::Read`.
    ///
    /// After a reset or timeout (FA-02, as Linux `tcp_recvmsg`): the data received before it
    /// is still read first; then the failure is reported once ([`ReadError::Failed`]), unless
    /// a write or [`Connection::take_error`] reported it already or the peer's FIN came
    /// first; after that reads return `Ok(0)`.
    ///
    /// # Errors
    /// [`ReadError::WouldBlock`] when nothing is buffered yet, [`ReadError::NotConnected`]
    /// before the handshake, [`ReadError::Failed`] once after a failure, when the data
    /// received before it has been read.
    #[inline]
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        self.unclaimed = false;
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.recv_buf.read(buf);
        if n > 0 {
            // Reading frees buffer space (the release timer may be due); a read of nothing
            // changes nothing the timers depend on.
            self.unsync_timers();
            return Ok(n);
        }
        // Inlined into the caller: the usual end of an application's read loop. What
        // `read_nothing` answers when no FIN came and no failure is pending.
        if self.state == State::Established && !self.fin_received && !self.error_unreported {
            return Err(ReadError::WouldBlock);
        }
        self.read_nothing()
    }

    /// [`Connection::read`] with nothing to copy: end of stream, the failure, or why not.
    fn read_nothing(&mut self) -> Result<usize, ReadError> {
        // Linux tcp_recvmsg: the peer's FIN (SOCK_DONE) ends the stream before `sk_err`.
        if self.fin_received {
            return Ok(0);
        }
        if let Some(e) = self.take_error() {
            return Err(ReadError::Failed(e));
        }
        match self.state {
            State::SynSent | State::SynReceived => Err(ReadError::NotConnected),
            State::Closed => Ok(0),
            _ => Err(ReadError::WouldBlock),
        }
    }

    /// Zero-copy read: `f` sees the unread bytes (as up to two slices) and returns how many
    /// it consumed.
    /// After a failure the data received before it is still offered, as with
    /// [`Connection::read`] (FA-02); the failure itself is reported by `read`.
    pub fn read_with(&mut self, f: impl FnOnce([&[u8]; 2]) -> usize) -> usize {
        self.unsync_timers();
        self.unclaimed = false;
        let n = f(self.recv_buf.peek()).min(self.recv_buf.unread());
        self.recv_buf.consume(n);
        n
    }

    /// Send FIN after all queued data (RFC 9293 §3.10.4, half-close). Reading continues.
    /// Idempotent.
    pub fn shutdown_write(&mut self) {
        self.unsync_timers();
        self.unclaimed = false;
        if self.fin_queued || self.error.is_some() {
            return;
        }
        match self.state {
            // RFC 9293 §3.10.4 deletes the TCB on CLOSE in SYN-SENT, which would silently
            // drop data the application already queued: keep it and queue the FIN behind it,
            // as for SYN-RECEIVED.
            State::SynSent if self.send_buf.len() > 0 => self.fin_queued = true,
            // No SYN answered yet and nothing queued: nothing to say goodbye to.
            State::SynSent | State::Listen | State::Closed => self.enter_closed(None),
            // Queued until ESTABLISHED.
            State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.set_state(State::FinWait1);
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.set_state(State::LastAck);
            }
            _ => {}
        }
    }

    /// Close: the application will neither read nor write again. Queued data is still
    /// delivered, then FIN. If received data was never read, the connection is reset instead
    /// (CL-10, as Linux does); not after a reset, which left nothing to reset (FA-02).
    pub fn close(&mut self) {
        self.unsync_timers();
        self.orphaned = true;
        self.unclaimed = false;
        if self.recv_buf.unread() > 0 {
            self.abort();
            return;
        }
        self.shutdown_write();
    }

    /// Abortive close: send RST and forget the connection (RFC 9293 §3.10.5, CL-10). Unread
    /// data is discarded, as Linux `tcp_close` purges the receive queue.
    pub fn abort(&mut self) {
        self.unsync_timers();
        self.unclaimed = false;
        self.recv_buf.consume(self.recv_buf.unread());
        self.recv_buf.release_if_empty();
        if self.state.is_synchronized() || self.state == State::SynReceived {
            self.pending_rst = Some(PendingRst { seq: self.snd_nxt, ack: Some(self.rcv_nxt) });
        }
        if self.state != State::Closed {
            self.enter_closed(Some(ConnectionError::Aborted));
        }
    }

    /// Turn Nagle's algorithm off (`true`) or on (RFC 896).
    pub fn set_nodelay(&mut self, nodelay: bool) {
        self.unsync_timers();
        if self.cfg.nodelay != nodelay {
            self.cfg.nodelay = nodelay; // copies the shared settings once
        }
        if nodelay {
            self.push_corked();
        }
    }

    /// Whether Nagle's algorithm is off.
    pub fn nodelay(&self) -> bool {
        self.cfg.nodelay
    }

    /// Enable or disable keepalive probes (RFC 9293 §3.8.4).
    pub fn set_keepalive(&mut self, on: bool) {
        self.unsync_timers();
        if self.cfg.keepalive != on {
            self.cfg.keepalive = on; // copies the shared settings once
        }
        if !on {
            self.timers.stop(timers::Timer::Keepalive);
        }
    }

    /// SYN retransmissions before an active open gives up (Linux `TCP_SYNCNT`; the
    /// endpoint's `syn_retries` by default).
    pub fn set_syn_retries(&mut self, retries: u8) {
        self.unsync_timers();
        if self.cfg.syn_retries != retries {
            self.cfg.syn_retries = retries; // copies the shared settings once
        }
    }

    /// Set the user timeout (RFC 5482); `None` disables it.
    pub fn set_user_timeout(&mut self, timeout: Option<core::time::Duration>) {
        self.unsync_timers();
        self.cfg.user_timeout = timeout;
    }

    /// Set how long an orphaned connection waits in FIN-WAIT-2 for the peer's FIN (Linux
    /// `TCP_LINGER2`, default `tcp_fin_timeout`); takes effect when FIN-WAIT-2 is entered.
    pub fn set_fin_wait2_timeout(&mut self, timeout: core::time::Duration) {
        self.cfg.fin_wait2_timeout = timeout;
    }

    /// Whether [`Connection::poll_transmit`] would emit a segment now (ignoring timers).
    pub fn wants_transmit(&self) -> bool {
        self.pending_rst.is_some()
            || self.ack.now
            || self.probe_due
            || self.recovery.retransmit_head
            || self.sack_wants_transmit()
            || self.has_sendable_data()
            || (self.state == State::SynSent && self.snd_nxt == self.iss && !self.syn_deferred())
            || self.window_update_due()
            || self.release_unarmed()
            || (self.orphaned
                && self.state == State::FinWait2
                && !self.timers.is_armed(timers::Timer::FinWait2))
    }

    /// The next application event, if any.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events == 0 {
            return None; // the usual answer, inlined into the caller: drivers ask after every step
        }
        self.next_event()
    }

    /// [`Connection::poll_event`] with some event pending.
    fn next_event(&mut self) -> Option<Event> {
        for (bit, event) in [
            (ev::CONNECTED, Event::Connected),
            (ev::READABLE, Event::Readable),
            (ev::WRITABLE, Event::Writable),
            (ev::PEER_FIN, Event::PeerFinished),
        ] {
            if self.events & bit != 0 {
                self.events &= !bit;
                return Some(event);
            }
        }
        if self.events & ev::CLOSED != 0 {
            self.events &= !ev::CLOSED;
            return Some(Event::Closed(self.error));
        }
        None
    }

    // ---- shared internals ------------------------------------------------------------------

    pub(crate) fn set_state(&mut self, to: State) {
        if self.state != to {
            tracing::trace!(from = ?self.state, ?to, "state");
            self.state = to;
        }
    }

    /// Enter CLOSED, stop every timer and report why (RFC 9293 §3.10.7).
    pub(crate) fn enter_closed(&mut self, error: Option<ConnectionError>) {
        if self.state == State::Closed {
            return;
        }
        self.set_state(State::Closed);
        self.timers.stop_all();
        // IC-08: a timeout reports the soft ICMP error that explains it (Linux sk_err_soft).
        let error = match error {
            Some(ConnectionError::TimedOut) => self.timeout_cause().or(error),
            e => e,
        };
        if self.error.is_none() && error.is_some() {
            self.error = error;
            self.error_unreported = true;
        }
        self.events |= ev::CLOSED | ev::READABLE | ev::WRITABLE;
        tracing::debug!(error = ?self.error, "closed");
    }

    /// Sequence number of the first byte in the send buffer.
    pub(crate) fn data_start(&self) -> SeqNum {
        // Before our SYN is acknowledged, SND.UNA is the SYN itself; once our FIN is, SND.UNA
        // is one past the (empty) buffer. Not `max(SND.UNA, ISS + 1)`: in wrapping order
        // (RFC 9293 §3.4) SND.UNA is "before" ISS + 1 again once 2 GiB have been sent.
        let syn_unacked = self.snd_una == self.iss && !self.state.is_synchronized();
        let una = if syn_unacked { self.iss + 1 } else { self.snd_una };
        una - u32::from(self.our_fin_acked)
    }

    /// Our FIN has been sent and acknowledged.
    pub(crate) fn fin_acked(&self) -> bool {
        self.our_fin_acked
    }

    /// Payload bytes per full segment, after the options every segment carries.
    pub(crate) fn effective_mss(&self) -> u32 {
        let opts = if self.ts_recent.is_some() { 12 } else { 0 };
        self.snd_mss.saturating_sub(opts).max(1)
    }

    /// The MSS we advertise (RFC 9293 §3.7.1).
    pub(crate) fn our_mss(&self) -> u16 {
        open::our_mss(&self.cfg, self.remote.is_ipv4())
    }
}

/// The span of the connection between `local` and `remote` ([`Connection::span`]).
fn span(local: SocketAddr, remote: SocketAddr) -> tracing::Span {
    tracing::debug_span!("tcp", local = %local, remote = %remote)
}

/// The configured congestion controller for a connection sending `mss`-byte segments;
/// `seed` (the connection's ISS, random per RFC 6528) feeds BBR's randomized probe timing.
pub(crate) fn new_controller(cfg: &ConnConfig, mss: u32, seed: u64) -> AnyController {
    match cfg.congestion {
        CongestionAlgorithm::NewReno => AnyController::NewReno(NewReno::new(cfg.initial_cwnd, mss)),
        CongestionAlgorithm::Cubic => {
            AnyController::Cubic(Cubic::with_exit(cfg.initial_cwnd, mss, cfg.slow_start_exit))
        }
        CongestionAlgorithm::Bbr => {
            AnyController::Bbr(Box::new(Bbr::new(cfg.initial_cwnd, mss, seed)))
        }
    }
}

/// MSS assumed when the peer sends none (RFC 9293 §3.7.1; RFC 8200 §5 minimum MTU).
pub(crate) fn default_mss(remote: &SocketAddr) -> u32 {
    if remote.is_ipv4() {
        536
    } else {
        1220
    }
}

#[cfg(test)]
mod tests {
    use super::{ConnParams, Connection, State};
    use crate::config::ConnConfig;
    use crate::wire::SeqNum;

    /// The send buffer starts at SND.UNA however far it is from the ISS: after 2 GiB sent it
    /// is "before" ISS + 1 in wrapping order, which once stalled every transfer at 2 GiB.
    #[test]
    fn data_start_follows_snd_una_past_two_gib() {
        let params = ConnParams {
            local: "10.0.0.1:1000".parse().unwrap(),
            remote: "10.0.0.2:2000".parse().unwrap(),
            iss: SeqNum(1000),
            ts_offset: 0,
        };
        let mut c = Connection::connect(ConnConfig::default(), params);
        assert_eq!(c.data_start(), SeqNum(1001), "the SYN is not data");
        c.state = State::Established;
        for sent in [1u32, 1 << 20, (1 << 31) - 1, 1 << 31, (1 << 31) + 1, u32::MAX] {
            c.snd_una = SeqNum(1000) + sent;
            assert_eq!(c.data_start(), c.snd_una, "{sent} bytes after the ISS");
        }
    }
}
