//! Timer expiry and (re)arming: retransmission (RFC 6298 §5), delayed ACK, persist
//! (RFC 9293 §3.8.6.1), keepalive (§3.8.4), TIME-WAIT, orphaned FIN-WAIT-2, user timeout
//! (RFC 5482).

use super::timers::Timer;
use super::{Connection, Recovery, State};
use crate::cc::Controller;
use crate::{ConnectionError, Instant};

/// Retries for an orphaned connection (Linux `tcp_orphan_retries` = 0, which means 8).
const ORPHAN_RETRIES: u8 = 8;

impl Connection {
    /// The earliest deadline at which [`Connection::handle_timeout`] must run. O(1): the
    /// timer table keeps its earliest deadline as timers change.
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Run every timer due at `now`. Spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if Self::debug_on() {
            let _span = self.span().entered();
            self.run_timers(now);
        } else {
            self.run_timers(now);
        }
    }

    fn run_timers(&mut self, now: Instant) {
        self.probe_before_rto(now);
        while let Some(timer) = self.timers.take_expired(now) {
            tracing::trace!(?timer, "timer");
            match timer {
                Timer::Retransmit => self.on_rto(now),
                Timer::DelayedAck => self.ack.now = true,
                Timer::Persist => self.on_persist(now),
                Timer::Keepalive => self.on_keepalive(now),
                Timer::TimeWait | Timer::FinWait2 => self.enter_closed(None),
                Timer::UserTimeout => self.enter_closed(Some(ConnectionError::TimedOut)),
                Timer::Reorder => self.on_reorder_timeout(now),
                Timer::LossProbe => self.on_loss_probe(),
                Timer::Release => self.on_release_timer(now),
                // The departure time came: `poll_transmit` releases the next quantum.
                Timer::Pace => {}
            }
        }
        self.update_timers(now);
    }

    /// RFC 8985 §7.2 caps the probe timeout at the RTO; as in Linux, where both share one
    /// timer, a probe due no later than the RTO fires in its place, and the RTO restarts
    /// from the probe (§7.3) instead of firing at the same instant and backing off.
    fn probe_before_rto(&mut self, now: Instant) {
        let (Some(probe), Some(rto)) =
            (self.timers.get(Timer::LossProbe), self.timers.get(Timer::Retransmit))
        else {
            return;
        };
        if probe <= now && probe <= rto {
            self.timers.set(Timer::Retransmit, self.rtt.rto_after(now));
        }
    }

    /// RFC 6298 §5.4–5.7: retransmit the earliest unacknowledged segment, back off, and
    /// give up after the configured retries (HS-06, HS-07, CL-05, KA-02).
    fn on_rto(&mut self, now: Instant) {
        let limit = match self.state {
            State::SynSent => self.cfg.syn_retries,
            State::SynReceived => self.cfg.synack_retries,
            _ => self.cfg.data_retries,
        };
        if self.snd_max == self.snd_una {
            return; // nothing outstanding: spurious
        }
        if self.retries >= limit {
            let error = (self.state != State::SynReceived || !self.passive)
                .then_some(ConnectionError::TimedOut);
            self.enter_closed(error);
            return;
        }
        self.retries += 1;
        self.info.cold.timeouts += 1;
        self.rtt.back_off();
        self.rtt_probe = None;
        if !self.state.is_synchronized() {
            self.snd_nxt = self.iss; // resend SYN / SYN-ACK, same ISN
            return;
        }
        // RFC 5681 §3.1 / RFC 6582 §3.2 step 4: collapse cwnd, leave recovery, and resend
        // from SND.UNA (go-back-N, as Linux does without SACK).
        let flight = self.snd_max.since(self.snd_una);
        let mss = self.effective_mss();
        self.cc.on_rto(now, flight, mss);
        self.ecn_end_for_recovery();
        self.recovery = Recovery { recover: self.snd_max, ..Recovery::default() };
        // RFC 6298 §5.4: the earliest unacknowledged segment goes now, whatever the peer's
        // window (it may have shrunk to zero, or a reordered stale ACK closed it) and sender
        // SWS avoidance (RFC 9293 §3.8.6.2.1, which would hold a small window-limited resend
        // for the persist timer, not running while data is in flight) say: else nothing is
        // ever sent and the connection times out with the peer alive. It doubles as a
        // zero-window probe; Linux `tcp_retransmit_timer` also resends the head regardless.
        let head = flight.min(self.data_mss());
        // With SACK the scoreboard resends what is lost, in order (recovery.rs).
        if !self.sack_on_rto() {
            self.snd_nxt = self.snd_una;
            self.recovery.retransmit_head = true;
        } else if self.snd_wnd < head {
            self.recovery.retransmit_head = true;
        }
    }

    /// The persist timer fired: probe the zero window, or push a segment SWS held back.
    ///
    /// Like Linux `tcp_probe_timer`, probing gives up (RX-06, KA-02): after `data_retries`
    /// probes the peer never answered (any ACK resets the count, so a peer that answers
    /// keeps the connection open, RFC 1122 §4.2.2.17), after fewer for an orphan, and once
    /// the user timeout (RFC 5482) has passed since the first probe of a stall no ACK ended.
    fn on_persist(&mut self, now: Instant) {
        self.persist_backoff = self.persist_backoff.saturating_add(1);
        if self.has_sendable_data() {
            return; // a segment SWS held back goes now; the RTO watches it
        }
        let since = *self.persist_since.get_or_insert(now);
        let user_timeout = self.cfg.user_timeout.is_some_and(|uto| now - since >= uto);
        if user_timeout || self.persist_probes >= self.probe_limit() {
            self.enter_closed(Some(ConnectionError::TimedOut));
            return;
        }
        self.persist_probes += 1;
        self.probe_due = true;
    }

    /// Unanswered zero-window probes before giving up: `data_retries` (tcp_retries2), and
    /// for an orphan at most [`ORPHAN_RETRIES`].
    fn probe_limit(&self) -> u8 {
        if self.orphaned {
            self.cfg.data_retries.min(ORPHAN_RETRIES)
        } else {
            self.cfg.data_retries
        }
    }

    /// KA-01: probe after the idle time, then every interval; fail after N unanswered.
    fn on_keepalive(&mut self, now: Instant) {
        if !self.cfg.keepalive || !self.state.is_synchronized() {
            return;
        }
        if self.snd_max != self.snd_una || self.has_sendable_data() {
            // Data in flight: the retransmission timer watches the peer.
            self.timers.set(Timer::Keepalive, now + self.cfg.keepalive_idle);
            return;
        }
        if self.keepalive_sent >= self.cfg.keepalive_probes {
            self.enter_closed(Some(ConnectionError::TimedOut));
            return;
        }
        self.keepalive_sent += 1;
        self.probe_due = true;
        self.timers.set(Timer::Keepalive, now + self.cfg.keepalive_interval);
    }

    /// Arm or stop the timers whose need follows from the state (run after every input and
    /// output, so app calls that cannot take `now` still get their timers).
    pub(crate) fn update_timers(&mut self, now: Instant) {
        self.arm_timers(now);
        self.timers_synced = true;
    }

    /// The application (or the owner) changed something `update_timers` reads: the next poll
    /// runs it even if it sends nothing.
    #[inline]
    pub(crate) fn unsync_timers(&mut self) {
        self.timers_synced = false;
    }

    pub(crate) fn arm_timers(&mut self, now: Instant) {
        self.sync_budget();
        if self.state == State::Closed {
            self.timers.stop_all();
            return;
        }
        if self.state == State::TimeWait {
            self.timers.set_if_idle(Timer::TimeWait, now + self.cfg.msl * 2);
            return;
        }
        // Each deadline is computed only when its timer is idle: this runs after every
        // input and output, and a running timer keeps its deadline.
        let outstanding = self.snd_max != self.snd_una;
        if outstanding {
            if !self.timers.is_armed(Timer::Retransmit) {
                self.timers.set(Timer::Retransmit, self.rtt.rto_after(now));
            }
        } else {
            self.timers.stop(Timer::Retransmit);
            self.timers.stop(Timer::Reorder);
            self.timers.stop(Timer::LossProbe);
        }
        // Persist: nothing in flight, something to send, and the window forbids it.
        let blocked = !outstanding && self.state.is_synchronized() && self.send_pending();
        if blocked && !self.has_sendable_data() {
            if !self.timers.is_armed(Timer::Persist) {
                let interval = self.rtt.rto().saturating_mul(1 << self.persist_backoff.min(12));
                self.timers.set(Timer::Persist, now + interval.min(self.cfg.max_rto));
            }
        } else {
            self.timers.stop(Timer::Persist);
            if !blocked {
                self.persist_backoff = 0;
                self.persist_probes = 0;
                self.persist_since = None;
            }
        }
        if self.cfg.keepalive
            && self.state.is_synchronized()
            && !self.timers.is_armed(Timer::Keepalive)
        {
            self.timers.set(Timer::Keepalive, now + self.cfg.keepalive_idle);
        }
        if self.state == State::FinWait2 && self.orphaned {
            self.timers.set_if_idle(Timer::FinWait2, now + self.cfg.fin_wait2_timeout);
        }
        self.arm_release(now);
        match (self.cfg.user_timeout, self.stalled_since) {
            (Some(uto), Some(since)) if outstanding => {
                self.timers.set(Timer::UserTimeout, since + uto)
            }
            _ => self.timers.stop(Timer::UserTimeout),
        }
    }

    /// Unsent data or an unsent FIN remains.
    pub(crate) fn send_pending(&self) -> bool {
        let data_end = self.data_start() + self.send_buf.len() as u32;
        self.snd_nxt < data_end || (self.fin_queued && self.snd_nxt <= data_end)
    }
}
