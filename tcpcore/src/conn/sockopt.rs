//! Socket options on a live connection: the `setsockopt` calls Linux accepts after `connect`
//! or `accept` (beside `TCP_NODELAY`, `SO_KEEPALIVE`, `TCP_USER_TIMEOUT` and `TCP_LINGER2`,
//! whose setters are in `mod.rs`), each mapped onto a [`ConnConfig`] field. New connections
//! take those from [`crate::EndpointConfig::conn`], [`crate::Endpoint::connect_with`] or a
//! listener's [`crate::Endpoint::set_listener_conn_config`].
//!
//! Like the other application calls these never take `now` and never emit: a change that
//! makes something due (a held segment, a pending ACK) shows in
//! [`Connection::wants_transmit`], and one that changes a timer takes effect at the next
//! [`Connection::poll_transmit`] or input.

use core::time::Duration;

use super::timers::Timer;
use super::{new_controller, Connection};
use crate::cc::Controller;
use crate::config::{CongestionAlgorithm, ConnConfig};
use crate::Instant;

impl Connection {
    /// The connection's options, as created and changed since by the setters below.
    pub fn config(&self) -> &ConnConfig {
        &self.cfg
    }

    /// Idle time before the first keepalive probe (`TCP_KEEPIDLE`). Unless probes are
    /// already out, the idle period restarts from this change (Linux measures it from the
    /// last segment received; here a change counts as activity).
    pub fn set_keepalive_idle(&mut self, idle: Duration) {
        self.unsync_timers();
        self.cfg.keepalive_idle = idle;
        if self.keepalive_sent == 0 {
            self.timers.stop(Timer::Keepalive);
        }
    }

    /// Interval between unanswered keepalive probes (`TCP_KEEPINTVL`), from the next probe.
    pub fn set_keepalive_interval(&mut self, interval: Duration) {
        self.unsync_timers();
        self.cfg.keepalive_interval = interval;
    }

    /// Unanswered keepalive probes before the connection fails (`TCP_KEEPCNT`).
    pub fn set_keepalive_probes(&mut self, probes: u8) {
        self.unsync_timers();
        self.cfg.keepalive_probes = probes;
    }

    /// `SO_SNDBUF`: the send buffer holds at most `bytes` (in flight and unsent together),
    /// and auto-tuning stops growing it (Linux `SOCK_SNDBUF_LOCK`). Unlike Linux, which
    /// doubles the value for its bookkeeping, the bytes are payload. Shrinking below what is
    /// queued drops nothing: writes block until acknowledgments bring the queue under it.
    pub fn set_send_buffer(&mut self, bytes: usize) {
        self.unsync_timers();
        let bytes = bytes.max(1);
        self.cfg.send_buffer = bytes;
        self.cfg.max_send_buffer = bytes;
        self.send_buf.set_capacity(bytes);
    }

    /// `SO_RCVBUF`: the receive buffer, and so the window we offer, is `bytes` (payload, as
    /// [`Connection::set_send_buffer`]), and auto-tuning stops (Linux `SOCK_RCVBUF_LOCK`).
    /// The window scale is chosen at the SYN from the buffer size then (RFC 7323 §2.3), so
    /// set it before connecting for a small scale. A live connection's buffer grows to a
    /// larger size but never shrinks: the right edge of the window it offered must not move
    /// left (RFC 9293 §3.8.6.2.1, FL-01).
    pub fn set_recv_buffer(&mut self, bytes: usize) {
        self.unsync_timers();
        let bytes = bytes.max(1);
        self.cfg.recv_buffer = bytes;
        self.cfg.max_recv_buffer = bytes;
        let limit = 65_535usize << self.rcv_wscale;
        self.recv_buf.grow(bytes.min(limit));
    }

    /// `TCP_CONGESTION`. Before the handshake completes this only chooses the controller;
    /// afterwards the new controller starts from the current congestion window and slow-start
    /// threshold, as Linux `tcp_reinit_congestion_control` keeps them.
    pub fn set_congestion(&mut self, algorithm: CongestionAlgorithm) {
        self.unsync_timers();
        if self.cfg.congestion == algorithm {
            return;
        }
        self.cfg.congestion = algorithm;
        if !self.state.is_synchronized() {
            return; // the handshake creates the controller with the negotiated MSS
        }
        let (cwnd, ssthresh) = (self.cc.window(), self.cc.ssthresh());
        let mss = self.effective_mss();
        self.cc = new_controller(&self.cfg, mss, u64::from(self.iss.0));
        // The restart hook sets both values; neither controller reads its `now`.
        self.cc.on_idle_restart(Instant::ZERO, cwnd, ssthresh, mss);
    }

    /// The BBR controller's state, when the connection uses BBR (the model Linux reports
    /// in `INET_DIAG_BBRINFO`).
    pub fn bbr(&self) -> Option<&crate::cc::Bbr> {
        match &self.cc {
            crate::cc::AnyController::Bbr(b) => Some(b),
            _ => None,
        }
    }

    /// Pace this connection's data (Linux: internal TCP pacing, or the `fq` qdisc); takes
    /// effect at the next segment (`pacing.rs`).
    pub fn set_pacing(&mut self, on: bool) {
        self.unsync_timers();
        if self.cfg.pacing != on {
            self.cfg.pacing = on; // copies the shared settings once
        }
    }

    /// `SO_MAX_PACING_RATE`: cap the pacing rate at `rate` bytes per second (`None`: no cap).
    /// As in Linux, a cap turns pacing on.
    pub fn set_max_pacing_rate(&mut self, rate: Option<u64>) {
        self.unsync_timers();
        if self.cfg.max_pacing_rate != rate {
            self.cfg.max_pacing_rate = rate;
        }
    }

    /// `IP_TTL` / `IPV6_UNICAST_HOPS`: the time to live (hop limit) of the packets sent from
    /// now on.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.unsync_timers();
        self.cfg.ttl = ttl;
    }

    /// `IP_TOS` / `IPV6_TCLASS`: the type of service (traffic class) of the packets sent
    /// from now on; the ECN bits are not the socket's and go out as zero (RFC 3168 §5).
    pub fn set_tos(&mut self, tos: u8) {
        self.unsync_timers();
        self.cfg.tos = tos;
    }

    /// `TCP_QUICKACK`. On: acknowledge the next segments at once (Linux quick-ack mode, for
    /// [`ConnConfig::quick_acks`] segments), and an acknowledgment being delayed goes out
    /// now. Off: delay acknowledgments from now on (RFC 9293 §3.8.6.3), as Linux's
    /// interactive ("pingpong") mode. As on Linux, the setting is not permanent: the
    /// connection re-enters quick-ack mode when it would anyway (a duplicate, a long
    /// silence).
    pub fn set_quickack(&mut self, on: bool) {
        self.unsync_timers();
        if on {
            self.ack.quick = self.cfg.quick_acks.max(1);
            if self.ack.unacked_bytes > 0 {
                self.ack.now = true;
            }
        } else {
            self.ack.quick = 0;
        }
    }

    /// Whether the next segment is acknowledged at once (`TCP_QUICKACK` as `getsockopt`
    /// reports it).
    pub fn quickack(&self) -> bool {
        self.ack.quick > 0
    }
}
