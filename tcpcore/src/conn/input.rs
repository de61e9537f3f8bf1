//! Segment arrival (RFC 9293 §3.10.7), one function per step, with the RFC 5961 hardening.

use core::time::Duration;

use super::recv_buf::Stored;
use super::timers::Timer;
use super::{ev, ConnParams, Connection, PendingRst, State, SynInfo};
use crate::cc::{AckInfo, Controller};
use crate::config::SharedConnConfig;
use crate::wire::{Segment, SeqNum};
use crate::{ConnectionError, Instant};

impl Connection {
    /// Passive open: a listener received `syn` (RFC 9293 §3.10.7.2, LISTEN state). The new
    /// connection is in SYN-RECEIVED; its SYN-ACK goes out on the first `poll_transmit`.
    /// Data carried on the SYN is not accepted (no TCP Fast Open); the peer resends it.
    pub fn accept(
        cfg: impl Into<SharedConnConfig>,
        params: ConnParams,
        syn: &Segment<'_>,
        now: Instant,
    ) -> Self {
        Connection::accept_syn(cfg, params, SynInfo::from_segment(syn), now)
    }

    /// Process one segment routed to this connection (RFC 9293 §3.10.7.3 and §3.10.7.4).
    /// Hostile input is dropped (and counted); nothing here can fail or panic.
    pub fn handle_segment(&mut self, now: Instant, seg: &Segment<'_>) {
        if Self::debug_on() {
            self.handle_segment_in_span(now, seg);
        } else {
            self.on_segment(now, seg);
        }
    }

    #[cold]
    fn handle_segment_in_span(&mut self, now: Instant, seg: &Segment<'_>) {
        let _span = self.span().entered();
        self.on_segment(now, seg);
    }

    fn on_segment(&mut self, now: Instant, seg: &Segment<'_>) {
        self.info.segs_in += 1;
        tracing::trace!(
            state = ?self.state,
            seq = seg.tcp.seq.0, ack = seg.tcp.ack.0, flags = seg.tcp.flags.0, len = seg.payload.len(),
            "segment in"
        );
        match self.state {
            State::Closed => self.on_closed(seg),
            State::Listen => {}
            State::SynSent => self.on_syn_sent(now, seg),
            // Header prediction first (`fastpath.rs`); the general path otherwise.
            _ => {
                if !self.fast_path(now, seg) {
                    self.on_synchronized(now, seg);
                }
            }
        }
        self.update_timers(now);
    }

    /// CLOSED, while the owner still holds a failed connection for the application (FA-02:
    /// reset before `accept`, or before the application's next call): the segment is
    /// answered as one for no connection (RFC 9293 §3.10.7.1), as Linux answers for its
    /// socket, unhashed by the reset. Never a RST for a RST; one reset pending at a time.
    fn on_closed(&mut self, seg: &Segment<'_>) {
        let t = &seg.tcp;
        if t.flags.rst() || self.pending_rst.is_some() || self.is_drained() {
            return;
        }
        self.pending_rst = Some(if t.flags.ack() {
            PendingRst { seq: t.ack, ack: None }
        } else {
            PendingRst { seq: SeqNum(0), ack: Some(t.seq + t.seq_len(seg.payload.len())) }
        });
    }

    /// Record what a SYN (or SYN-ACK) tells us: the peer's ISN and negotiated options.
    pub(crate) fn take_syn(&mut self, syn: &SynInfo, now: Instant) {
        self.irs = syn.seq;
        // An active opener's SYN already offered a window (relative to the then unknown
        // RCV.NXT, 0 here); the peer holds us to it, so its edge is kept (RFC 9293 §3.8.6).
        let offered = self.rcv_adv.since(self.rcv_nxt);
        self.rcv_nxt = syn.seq + 1;
        self.rcv_adv = self.rcv_nxt + offered;
        self.last_ack_sent = self.rcv_nxt;
        self.peer_syn = super::open::PeerSyn::from(syn);
        self.negotiate(syn);
        self.ecn_on_syn(syn);
        self.ts_recent_at = now;
        // RFC 7323 §2.2: the window of a SYN is never scaled.
        self.snd_wnd = u32::from(syn.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = syn.seq;
        if self.cfg.keepalive {
            self.timers.set(Timer::Keepalive, now + self.cfg.keepalive_idle);
        }
    }

    /// Options of the SYN exchange (RFC 9293 §3.7.1 MSS; RFC 7323 §2.2, §3.2; RFC 2018 §2).
    fn negotiate(&mut self, o: &SynInfo) {
        self.snd_mss = super::open::syn_snd_mss(&self.cfg, &self.remote, o);
        // We offer scaling on every active SYN when configured, and answer it when offered.
        match o.wscale {
            Some(ws) if self.cfg.window_scaling => {
                self.snd_wscale = ws.min(14);
                self.rcv_wscale = super::open::our_wscale(&self.cfg);
            }
            _ => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        self.ts_recent = o.tsval.filter(|_| self.cfg.timestamps);
        self.sack_ok = self.cfg.sack && o.sack_permitted;
        self.recv_buf.set_min_slack(1 << self.rcv_wscale);
        debug_assert_eq!(
            self.effective_mss(),
            super::open::negotiated_mss(&self.cfg, &self.remote, o)
        );
    }

    /// RFC 9293 §3.10.7.3: SYN-SENT.
    fn on_syn_sent(&mut self, now: Instant, seg: &Segment<'_>) {
        let t = &seg.tcp;
        // First: check the ACK.
        if t.flags.ack() && (t.ack <= self.iss || t.ack > self.snd_max) {
            if !t.flags.rst() {
                // HS-05: an old duplicate SYN-ACK is answered <SEQ=SEG.ACK><CTL=RST>.
                self.pending_rst = Some(PendingRst { seq: t.ack, ack: None });
            }
            self.info.cold.drops += 1;
            return;
        }
        // Second: the RST bit. Acceptable only with an acceptable ACK.
        if t.flags.rst() {
            if t.flags.ack() {
                self.enter_closed(Some(ConnectionError::Refused));
            }
            return;
        }
        // Fourth: the SYN bit.
        if !t.flags.syn() {
            return;
        }
        self.take_syn(&SynInfo::from_segment(seg), now);
        // The controller was built for the default MSS before the SYN-ACK (or crossing
        // SYN) told us the segment size; nothing has been sent under it but the SYN.
        self.cc = super::new_controller(&self.cfg, self.effective_mss(), u64::from(self.iss.0));
        if t.flags.ack() {
            self.ecn_on_syn_ack(seg);
            self.ack_syn(now, t.ack);
            self.fast_open_on_syn_ack(t.ack);
            self.snd_wl2 = t.ack;
            self.establish();
            self.ack.now = true;
            self.take_syn_ack_data(seg.payload);
        } else {
            // HS-09 simultaneous open: resend our SYN as a SYN-ACK.
            self.set_state(State::SynReceived);
            self.snd_nxt = self.iss;
        }
    }

    /// Our SYN was acknowledged at `ack`: SND.UNA moves past it, with an RTT sample if the
    /// SYN was not retransmitted (Karn).
    fn ack_syn(&mut self, now: Instant, ack: crate::wire::SeqNum) {
        self.snd_una = ack;
        if self.snd_nxt < self.snd_una {
            self.snd_nxt = self.snd_una;
        }
        if let Some((end, sent)) = self.rtt_probe.take() {
            if ack >= end {
                self.rtt.sample(now - sent);
            }
        }
        if self.retries > 0 {
            self.rtt.fallback_after_syn_timeout();
        }
        self.retries = 0;
        self.timers.stop(Timer::Retransmit);
        // Linux starts `lrcvtime` at the handshake: silence is measured from there.
        self.ack.last_data.get_or_insert(now);
    }

    /// SYN-SENT/SYN-RECEIVED → ESTABLISHED (or FIN-WAIT-1 if the app already shut down).
    fn establish(&mut self) {
        self.set_state(if self.fin_queued { State::FinWait1 } else { State::Established });
        self.events |= ev::CONNECTED | ev::WRITABLE;
    }

    /// RFC 9293 §3.10.7.4: every state from SYN-RECEIVED on.
    fn on_synchronized(&mut self, now: Instant, seg: &Segment<'_>) {
        let t = &seg.tcp;
        if t.flags.rst() {
            return self.on_rst(now, seg);
        }
        if self.paws_rejects(now, seg) {
            return self.on_paws_reject(now, seg);
        }
        if t.flags.syn() {
            return self.on_syn(now, seg);
        }
        if !self.acceptable(seg) {
            if self.ack_allowance(seg) && !self.on_ack(now, seg) {
                return;
            }
            return self.on_unacceptable(now, seg);
        }
        self.on_acceptable(now);
        if !t.flags.ack() {
            // Fifth step: "if the ACK bit is off, drop the segment and return".
            self.info.cold.drops += 1;
            return;
        }
        if !self.on_ack(now, seg) {
            return;
        }
        // RFC 7323 §4.3 (TS-01): only now is the segment acceptable, its ACK included: one
        // dropped for acknowledging unsent data (or too old) never updates TS.Recent.
        self.update_ts_recent(now, seg);
        // Sixth step, URG: urgent data is delivered inline (RFC 6093); the pointer is ignored.
        self.on_text(now, seg);
        self.on_fin(now, seg);
    }

    /// First step: the acceptability test (RFC 9293 §3.10.7.4, table 6).
    fn acceptable(&self, seg: &Segment<'_>) -> bool {
        let seq = seg.tcp.seq;
        let len = seg.tcp.seq_len(seg.payload.len());
        let wnd = self.rcv_wnd();
        match (len, wnd) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => seq.in_range(self.rcv_nxt, self.rcv_nxt + wnd),
            // RCV.WND zero: data is unacceptable, but the ACK is still processed (below).
            (_, 0) => seq == self.rcv_nxt,
            (_, _) => {
                seq.in_range(self.rcv_nxt, self.rcv_nxt + wnd)
                    || (seq + (len - 1)).in_range(self.rcv_nxt, self.rcv_nxt + wnd)
            }
        }
    }

    /// RFC 9293 §3.10.7.4: "If the RCV.WND is zero, no segments will be acceptable, but
    /// special allowance should be made to accept valid ACKs, URGs, and RSTs." RSTs are
    /// judged before this test and urgent data is inline (RFC 6093); this is the ACK part,
    /// for a segment refused only for its text: it reaches RCV.NXT or beyond, within what
    /// our buffer could ever have offered. Its data is dropped and answered with an ACK, but
    /// its ACK field counts (after RFC 5961's acceptability check, in `on_ack`): a peer that
    /// sent into a window that then closed would otherwise see its ACKs of our data ignored,
    /// and our retransmissions each wait an RTO (the echo collapse of issue 11).
    fn ack_allowance(&self, seg: &Segment<'_>) -> bool {
        let t = &seg.tcp;
        let end = t.seq + t.seq_len(seg.payload.len());
        let reach = (self.recv_buf.limit() as u32).saturating_add(1 << self.rcv_wscale);
        t.flags.ack()
            && self.state.is_synchronized()
            && end >= self.rcv_nxt
            && t.seq < self.rcv_nxt + reach
    }

    /// The receive window we last offered.
    pub(crate) fn rcv_wnd(&self) -> u32 {
        self.rcv_adv.since(self.rcv_nxt)
    }

    /// End of the sequence space we can store: the free buffer, or the window we announced
    /// where scale round-off put its edge beyond the buffer (`RecvBuf::limit`).
    pub(super) fn rcv_room_end(&self) -> SeqNum {
        let stored = self.recv_buf.limit().saturating_sub(self.recv_buf.unread()) as u32;
        self.rcv_nxt + (self.recv_buf.free() as u32).max(self.rcv_wnd().min(stored))
    }

    /// An unacceptable segment is answered with an ACK and dropped (RFC 9293 §3.10.7.4).
    pub(crate) fn on_unacceptable(&mut self, now: Instant, seg: &Segment<'_>) {
        self.info.cold.drops += 1;
        let end = seg.tcp.seq + seg.payload.len() as u32;
        if !seg.payload.is_empty() && end <= self.rcv_nxt && self.rcv_nxt.since(end) < 1 << 30 {
            self.note_duplicate(seg.tcp.seq, end); // RFC 2883 §4: D-SACK
                                                   // A retransmission of data we hold: the sender is recovering, so ACK what
                                                   // follows at once too (Linux tcp_data_queue enters quick-ack mode here).
            self.enter_quick_ack();
        }
        if self.state == State::TimeWait && seg.tcp.flags.fin() {
            // CL-08: a retransmitted FIN restarts the 2 MSL timer.
            self.timers.set(Timer::TimeWait, now + self.cfg.msl * 2);
        }
        // Two peers that each find the other's ACKs out of window (after a desynchronizing
        // injection) would ACK each other forever; like Linux (tcp_oow_rate_limited), answer
        // segments that occupy no sequence space at most once per interval.
        if seg.tcp.seq_len(seg.payload.len()) == 0 {
            if self.rare.last_invalid_ack.is_some_and(|t| now - t < self.cfg.invalid_ack_interval) {
                return;
            }
            self.rare.last_invalid_ack = Some(now);
        }
        self.ack.now = true;
    }

    /// Bookkeeping for every segment that passed the sequence test: keepalive.
    pub(super) fn on_acceptable(&mut self, now: Instant) {
        self.keepalive_sent = 0;
        if self.cfg.keepalive {
            self.timers.set(Timer::Keepalive, now + self.cfg.keepalive_idle);
        }
    }

    /// Second step: RST (RFC 5961 §3.2, SEC-01).
    fn on_rst(&mut self, now: Instant, seg: &Segment<'_>) {
        let seq = seg.tcp.seq;
        if seq == self.rcv_nxt {
            let error = match self.state {
                // RFC 9293 §3.10.7.4: a passive SYN-RECEIVED returns to LISTEN (HS-05); not
                // a Fast Open child, which the application may already hold (Linux resets
                // it like any socket).
                State::SynReceived if self.passive && !self.is_fast_open_child() => None,
                // FA-02: a Fast Open child is reset like an established socket (Linux
                // `tcp_reset` in SYN_RECV: ECONNRESET); only an active open is refused.
                State::SynReceived if self.passive => Some(ConnectionError::Reset),
                State::SynReceived => Some(ConnectionError::Refused),
                // CL-12: with our data still unacknowledged the peer did not take it all: a
                // reset, not a clean close (Linux `tcp_reset`: ECONNRESET).
                State::Closing | State::LastAck if self.send_buf.len() > 0 => {
                    Some(ConnectionError::Reset)
                }
                State::Closing | State::LastAck | State::TimeWait => None,
                _ => Some(ConnectionError::Reset),
            };
            self.info.cold.resets_in += 1;
            // RFC 9293 §3.10.7.4 flushes every queue; Linux (`tcp_reset`) flushes only the
            // send queue: the data received before the reset stays readable (FA-02).
            self.enter_closed(error);
        } else if seq.in_range(self.rcv_nxt, self.rcv_nxt + self.rcv_wnd().max(1)) {
            self.challenge_ack(now);
        } else {
            self.info.cold.drops += 1;
        }
    }

    /// Fourth step: SYN in a synchronized state (RFC 5961 §4, SEC-02).
    fn on_syn(&mut self, now: Instant, seg: &Segment<'_>) {
        let t = &seg.tcp;
        if self.state == State::SynReceived && t.seq == self.irs && !t.flags.ack() {
            // HS-07: the peer retransmitted its SYN, so our SYN-ACK was lost: send it again
            // with the same ISN.
            self.snd_nxt = self.iss;
            return;
        }
        if self.state == State::SynReceived
            && !self.passive
            && t.seq == self.irs
            && t.ack == self.snd_max
        {
            // HS-09 simultaneous open (RFC 9293 figure 8, line 7): the peer's SYN-ACK
            // acknowledges our SYN and completes the handshake (Linux does the same in
            // tcp_validate_incoming). RFC 7323 §2.2: its window is not scaled.
            self.ack_syn(now, t.ack);
            self.snd_wnd = u32::from(t.window);
            self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
            self.snd_wl1 = t.seq;
            self.snd_wl2 = t.ack;
            self.establish();
            return;
        }
        self.challenge_ack(now);
    }

    /// Send a challenge ACK unless this connection's per-second budget is spent (RFC 5961 §7).
    pub(crate) fn challenge_ack(&mut self, now: Instant) {
        if now - self.rare.challenge.window_start >= Duration::from_secs(1) {
            self.rare.challenge.window_start = now;
            self.rare.challenge.sent = 0;
        }
        if self.rare.challenge.sent < self.cfg.challenge_ack_limit {
            self.rare.challenge.sent += 1;
            self.info.cold.challenge_acks += 1;
            self.ack.now = true;
        } else {
            self.info.cold.challenge_acks_suppressed += 1;
        }
    }

    /// Fifth step: the ACK field. Returns false when processing stops here.
    fn on_ack(&mut self, now: Instant, seg: &Segment<'_>) -> bool {
        let t = &seg.tcp;
        if self.state == State::SynReceived {
            if !(self.snd_una < t.ack && t.ack <= self.snd_max) {
                // RFC 9293 §3.10.7.4: <SEQ=SEG.ACK><CTL=RST>.
                self.pending_rst = Some(PendingRst { seq: t.ack, ack: None });
                return false;
            }
            // HS-04 / HS-08: an acceptable ACK (possibly carrying data) completes the
            // handshake. The window of this segment is the first scaled one. What it
            // acknowledges beyond our SYN (data a Fast Open child sent, RFC 7413 §4.2.2) is
            // taken as a new ACK below.
            self.ack_syn(now, self.iss + 1);
            self.snd_wnd = u32::from(t.window) << self.snd_wscale;
            self.snd_wl1 = t.seq;
            self.snd_wl2 = t.ack;
            self.establish();
        }
        // RFC 5961 §5.2 (SEC-03): acceptable only in [SND.UNA - MAX.SND.WND, SND.NXT].
        if t.ack > self.snd_max {
            self.info.cold.drops += 1;
            self.challenge_ack(now);
            return false;
        }
        if t.ack < self.snd_una - self.max_snd_wnd.max(1) {
            self.info.cold.drops += 1;
            self.challenge_ack(now);
            return false;
        }
        // The peer answered: zero-window probes so far were not in vain (Linux tcp_ack
        // clears `icsk_probes_out`).
        self.persist_probes = 0;
        let wnd = u32::from(t.window) << self.snd_wscale;
        let new_ack = t.ack > self.snd_una;
        let acked = if new_ack { t.ack.since(self.snd_una) } else { 0 };
        self.ecn_on_ack(now, seg);
        // draft-ietf-ccwg-bbr §4.1.2.4: before the ACK changes what is in flight.
        self.rate_check_app_limited();
        if new_ack {
            self.on_new_ack(now, t.ack, t.options.timestamps.map(|ts| ts.tsecr));
        } else if t.ack == self.snd_una && self.is_dup_ack(seg, wnd) {
            self.on_dup_ack(now);
        }
        self.sack_on_ack(now, seg, acked);
        self.update_send_window(seg, wnd, new_ack);
        self.on_fin_acked(now);
        self.state != State::Closed
    }

    /// RFC 5681 §2: the definition of a duplicate acknowledgment.
    fn is_dup_ack(&self, seg: &Segment<'_>, wnd: u32) -> bool {
        self.snd_max > self.snd_una
            && seg.payload.is_empty()
            && !seg.tcp.flags.fin()
            && wnd == self.snd_wnd
    }

    /// RFC 9293 §3.10.7.4: update SND.WND when the segment is newer (SND.WL1/SND.WL2), and
    /// whenever it acknowledged new data (`new_ack`): SND.WND is an offset from SND.UNA, so
    /// keeping the old window while SND.UNA advances would move the right edge beyond what
    /// the peer offered (a reordered or retransmitted segment, older SEG.SEQ, newer SEG.ACK).
    /// Linux `tcp_may_update_window` does the same.
    pub(super) fn update_send_window(&mut self, seg: &Segment<'_>, wnd: u32, new_ack: bool) {
        let t = &seg.tcp;
        let newer = self.snd_wl1 < t.seq || (self.snd_wl1 == t.seq && self.snd_wl2 <= t.ack);
        // "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated": an older
        // ACK (a reordered segment sent before a retransmission of lower SEQ) carries a
        // window relative to its own SEG.ACK, not to SND.UNA.
        if (new_ack || newer) && t.ack >= self.snd_una {
            if wnd > self.snd_wnd {
                self.persist_backoff = 0;
            }
            self.snd_wnd = wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            self.snd_wl1 = t.seq;
            self.snd_wl2 = t.ack;
        }
    }

    /// New data acknowledged: free the send buffer, sample RTT, grow cwnd or advance
    /// recovery (RFC 5681, RFC 6582, RFC 6298 §5.3).
    pub(super) fn on_new_ack(&mut self, now: Instant, ack: SeqNum, tsecr: Option<u32>) {
        let flight = self.snd_max.since(self.snd_una);
        let acked = ack.since(self.snd_una);
        let delivered_before = self.delivered_before(ack, acked);
        self.recovery.last_advance = acked;
        let data_start = self.data_start();
        let data_end = data_start + self.send_buf.len() as u32;
        let data_acked = ack.min(data_end).since(data_start);
        // RFC 9293 §3.10.7.4: the ACK covers our FIN (the only sequence number past the data).
        self.our_fin_acked |= self.fin_queued && ack > data_end;
        self.send_buf.consume(data_acked as usize);
        self.snd_una = ack;
        if self.snd_nxt < self.snd_una {
            self.snd_nxt = self.snd_una;
        }
        self.info.bytes_acked += u64::from(data_acked);
        self.retries = 0;
        let rtt_sample = self.rtt_on_new_ack(now, ack, tsecr, flight);
        let mss = self.effective_mss();
        if self.recovery.active {
            if ack >= self.recovery.recover {
                // RFC 6582 §3.2 step 3: full acknowledgment ends recovery.
                self.recovery.active = false;
                self.recovery.inflation = 0;
                let flight = self.snd_max.since(self.snd_una);
                self.cc.on_recovery_end(now, flight, mss);
            } else if !self.sack_active() {
                // RFC 6582 §3.2 step 5: partial ACK: retransmit the next hole, deflate.
                self.recovery.retransmit_head = true;
                self.recovery.inflation =
                    self.recovery.inflation.saturating_sub(acked).saturating_add(mss);
            }
        } else {
            let acked = acked.saturating_sub(delivered_before);
            if self.ecn.reducing() {
                // RFC 3168 §6.1.2 with PRR, as Linux's CWR state: no growth, a reduction.
                self.ecn_prr(acked);
            } else if self.is_cwnd_limited() {
                // RFC 7661 / Linux `tcp_cong_avoid` runs only when `tcp_is_cwnd_limited`
                // (RX-11). The controller's inputs are made only then: the pacing rate
                // divides, on every ACK of a sender that does not fill its window otherwise.
                let srtt = self.rtt.srtt();
                let (snd_una, snd_max) = (self.snd_una, self.snd_max);
                let (paced, pacing_rate) = self.pacing_for_cc();
                let info = AckInfo {
                    now,
                    acked,
                    mss,
                    rtt_sample,
                    srtt,
                    snd_una,
                    snd_max,
                    paced,
                    pacing_rate,
                };
                self.cc.on_ack(&info);
            }
            self.recovery.inflation = 0; // limited transmit ends with new data acknowledged
        }
        self.recovery.dupacks = 0;
        if self.snd_una == self.snd_max {
            self.timers.stop(Timer::Retransmit);
            self.stalled_since = None;
        } else {
            self.timers.set(Timer::Retransmit, self.rtt.rto_after(now));
            self.stalled_since = Some(now);
        }
        if data_acked > 0 && !self.fin_queued {
            self.expand_send_buffer();
            self.events |= ev::WRITABLE;
        }
    }

    /// Of the `acked` bytes up to `ack`, those already counted as delivered (RX-02, RX-04):
    /// SACKed earlier or, without SACK, one segment per duplicate ACK (RFC 3042 limited
    /// transmit; Linux `tcp_remove_reno_sacks` counts at least one segment newly delivered).
    /// Linux grows cwnd by the segments each ACK newly delivers (`tcp_cong_control`'s
    /// `acked_sacked`), and an ACK that only SACKs does not grow it, so these bytes are never
    /// credited: crediting them at the cumulative ACK sends a burst Linux does not send.
    fn delivered_before(&self, ack: SeqNum, acked: u32) -> u32 {
        if self.sack_active() {
            return self.sack_tx.sb.as_ref().map_or(0, |sb| sb.sacked_below(ack));
        }
        let mss = self.effective_mss();
        let dup = self.recovery.dupacks.saturating_mul(mss);
        dup.min(acked.saturating_sub(mss))
    }

    /// The RTT sample of an ACK of new data, fed to the estimator. Without timestamps: one
    /// per ACK from the scoreboard's send times, never from retransmitted data (RFC 6298 §3,
    /// Karn; [`Connection::rtt_without_timestamps`]). With
    /// timestamps, as Linux: every ACK that advances SND.UNA with a valid TSecr gives one
    /// (RFC 7323 §4.1): the echo dates the segment that advanced the peer's RCV.NXT,
    /// retransmission or not, so samples continue through losses and end the RTO backoff
    /// (RFC 6298 §5.7). The timed segment's microsecond sample is preferred when this ACK
    /// covers it (TSval ticks are milliseconds). With ~FlightSize / 2 MSS samples per RTT,
    /// the gains follow RFC 7323 Appendix G (not Linux's per-RTT RTTVAR maximum). An echo
    /// of 0, from the future or older than any RTO is not ours: no sample.
    fn rtt_on_new_ack(
        &mut self,
        now: Instant,
        ack: SeqNum,
        tsecr: Option<u32>,
        flight: u32,
    ) -> Option<Duration> {
        let timed = match self.rtt_probe {
            Some((end, sent)) if ack >= end => {
                self.rtt_probe = None;
                Some(now - sent)
            }
            _ => None,
        };
        if self.ts_recent.is_none() {
            return self.rtt_without_timestamps(now, ack, timed, flight);
        }
        // The echo only when the timed segment gives no sample (its millisecond arithmetic
        // on every ACK otherwise).
        let rtt = match timed {
            Some(rtt) => rtt,
            None => {
                let e = tsecr.filter(|&e| e != 0)?;
                let ticks = super::open::ts_clock(now, self.ts_offset).wrapping_sub(e);
                Some(Duration::from_millis(u64::from(ticks))).filter(|&r| r <= self.cfg.max_rto)?
            }
        };
        // RFC 7323 Appendix G: ExpectedSamples = ceiling(FlightSize / (SMSS * 2)).
        let expected = self.expected_samples(flight).max(1);
        self.rtt.sample_weighted(rtt, expected);
        Some(rtt)
    }

    /// RFC 7323 Appendix G: ExpectedSamples = ceiling(FlightSize / (SMSS * 2)), without
    /// the division (tens of cycles on every ACK) while the flight is at most two segments.
    #[inline]
    fn expected_samples(&self, flight: u32) -> u32 {
        let two = 2 * self.effective_mss();
        if flight <= two {
            u32::from(flight > 0)
        } else {
            flight.div_ceil(two)
        }
    }

    /// [`Connection::rtt_on_new_ack`] without timestamps. With the scoreboard (SACK, or the
    /// rate sampler), as Linux (`tcp_clean_rtx_queue`): every ACK that newly acknowledges
    /// data gives a sample from the send times the scoreboard keeps, none if it covers a
    /// retransmitted segment (Karn, RFC 6298 §3; RFC 6298 §3 allows more than one sample
    /// per RTT, with the gains of RFC 7323 Appendix G). The estimator gets the time since
    /// the oldest segment acknowledged (Linux `seq_rtt_us`), the congestion controller the
    /// time since the newest (`ca_rtt_us`: the delay of this ACK's own data, which
    /// HyStart's delay detector needs several of per round). Without a scoreboard, or for
    /// an ACK of a SYN or FIN alone: the one timed segment per RTT (RX-01).
    fn rtt_without_timestamps(
        &mut self,
        now: Instant,
        ack: SeqNum,
        timed: Option<Duration>,
        flight: u32,
    ) -> Option<Duration> {
        match self.sack_tx.sb.as_ref().and_then(|sb| sb.acked_send_times(ack)) {
            Some(Some((oldest, newest))) => {
                let rtt = now - oldest;
                // RFC 7323 Appendix G: ExpectedSamples = ceiling(FlightSize / (SMSS * 2)).
                let expected = self.expected_samples(flight);
                self.rtt.sample_weighted(rtt, expected);
                Some(if newest == oldest { rtt } else { now - newest })
            }
            Some(None) => None,
            None => {
                if let Some(rtt) = timed {
                    self.rtt.sample(rtt);
                }
                timed
            }
        }
    }

    /// RFC 5681 §3.2 / RFC 6582 §3.2: fast retransmit on the third duplicate ACK.
    fn on_dup_ack(&mut self, now: Instant) {
        if self.sack_active() {
            return; // RACK and the scoreboard detect losses (recovery.rs)
        }
        self.recovery.dupacks += 1;
        let mss = self.effective_mss();
        if self.recovery.active {
            self.recovery.inflation = self.recovery.inflation.saturating_add(mss);
        } else if self.recovery.dupacks <= 2 {
            // RFC 3042 limited transmit: each of the first two duplicate ACKs lets one new
            // segment out beyond cwnd, so small windows still collect three duplicates.
            if self.recovery.dupacks == 1 {
                self.recovery.flight_at_dup = self.snd_max.since(self.snd_una);
            }
            self.recovery.inflation = self.recovery.dupacks * mss;
        } else if self.recovery.dupacks == 3 && self.may_fast_retransmit() {
            // RFC 5681 §3.2 step 2: FlightSize without the limited-transmit segments.
            let flight = self.recovery.flight_at_dup;
            if !self.ecn_end_for_recovery() {
                self.cc.on_loss(now, flight, mss);
            }
            self.recovery.active = true;
            self.recovery.recover = self.snd_max;
            self.recovery.inflation = 3 * mss;
            self.recovery.retransmit_head = true;
            self.rtt_probe = None;
            self.info.cold.fast_retransmits += 1;
            tracing::trace!(una = self.snd_una.0, "fast retransmit");
        }
    }

    /// RFC 6582 §3.2 step 2 with the ACK heuristic of §4.2: duplicate ACKs that do not cover
    /// `recover` (after a timeout) still signal a new loss when cwnd exceeds one segment and
    /// the last cumulative ACK advanced by at most 4 segments; without it, every loss among
    /// retransmissions would cost another, backed-off timeout.
    fn may_fast_retransmit(&self) -> bool {
        let mss = self.effective_mss();
        self.snd_una > self.recovery.recover
            || (self.cc.window() > mss && self.recovery.last_advance <= 4 * mss)
    }

    /// State changes when our FIN is acknowledged (RFC 9293 §3.10.7.4 fifth step).
    fn on_fin_acked(&mut self, now: Instant) {
        if !self.fin_acked() {
            return;
        }
        match self.state {
            State::FinWait1 => self.set_state(State::FinWait2),
            State::Closing => self.enter_time_wait(now),
            State::LastAck => self.enter_closed(None),
            _ => {}
        }
    }

    /// Seventh step: segment text (RFC 9293 §3.10.7.4), with out-of-order reassembly.
    fn on_text(&mut self, now: Instant, seg: &Segment<'_>) {
        if seg.payload.is_empty() || !self.state.can_receive() {
            return;
        }
        self.note_data_arrival(now, seg);
        let mut seq = seg.tcp.seq;
        let mut data = seg.payload;
        let end = seq + data.len() as u32;
        if end <= self.rcv_nxt {
            // Entirely old: a duplicate. ACK at once so the sender learns (RFC 5681 §4.2),
            // and the segments after it too (a retransmission: the sender is recovering;
            // Linux enters quick-ack mode here).
            self.note_duplicate(seq, end);
            self.ack.now = true;
            self.enter_quick_ack();
            return;
        }
        if self.orphaned && self.fin_queued {
            // RFC 1122 §4.2.2.13: new data for a socket the application closed is answered
            // with RST. As Linux (TCPAbortOnData), the connection is gone and the segment is
            // answered as one for no connection: <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.1).
            self.pending_rst = Some(PendingRst { seq: seg.tcp.ack, ack: None });
            self.enter_closed(Some(ConnectionError::Aborted));
            return;
        }
        self.note_ooo_arrival(seq, end);
        if self.peer_fin.is_some_and(|fin| end > fin) {
            // RX-09: data past a remembered out-of-order FIN makes that FIN stale (Linux drops
            // an out-of-order segment that later data covers, its FIN flag with it); the real
            // FIN, if this segment carries it, is remembered in `on_fin`.
            tracing::debug!(fin = ?self.peer_fin, end = end.0, "stale out-of-order FIN dropped");
            self.peer_fin = None;
        }
        if seq < self.rcv_nxt {
            // RFC 2883 §4: the part below RCV.NXT is a duplicate.
            self.note_duplicate(seq, self.rcv_nxt);
            data = &data[self.rcv_nxt.since(seq) as usize..];
            seq = self.rcv_nxt;
        }
        let room = self.rcv_room_end().since(seq) as usize;
        if data.len() > room {
            // No buffer for the rest (only a peer sending beyond our window gets here).
            self.info.cold.drops += 1;
            self.ack.now = true;
            data = &data[..room];
        }
        self.store_text(now, seg, seq, data);
    }

    /// Every segment with data, before it is judged (RFC 3168 §6.1.3 and the quick-ack rule).
    #[inline]
    pub(super) fn note_data_arrival(&mut self, now: Instant, seg: &Segment<'_>) {
        self.ecn_on_data(seg);
        // Linux tcp_event_data_recv: data after a silence longer than the RTO means the
        // sender is restarting its window (after a timeout, or idle), so the next segments
        // are ACKed at once rather than each held by the delayed-ACK timer.
        // In the clock's microseconds, as the RTO is kept (no `Duration` on every segment).
        let rto = self.rtt.rto_micros();
        if self.ack.last_data.is_some_and(|t| now.as_micros().saturating_sub(t.as_micros()) > rto) {
            self.enter_quick_ack();
        }
        self.ack.last_data = Some(now);
    }

    /// Store `data` (the part of `seg`'s payload at `seq`, trimmed to RCV.NXT and to the
    /// room we have) and schedule its ACK.
    #[inline]
    pub(super) fn store_text(&mut self, now: Instant, seg: &Segment<'_>, seq: SeqNum, data: &[u8]) {
        self.rcv_mss = self.rcv_mss.max(seg.payload.len() as u32).min(u32::from(self.our_mss()));
        let had_holes = self.recv_buf.has_ooo();
        match self.recv_buf.store(self.rcv_nxt, seq, data) {
            Stored::Advanced(n) => {
                self.rcv_nxt += n;
                self.info.bytes_received += u64::from(n);
                if n > 0 {
                    self.events |= ev::READABLE;
                    self.autotune_on_data(now, seg);
                }
                self.ack.unacked_bytes += n;
                // A FIN right behind the data ends quick-ack mode (see `try_consume_fin`).
                let fin_next = seg.tcp.flags.fin() && self.closes_on_fin();
                self.schedule_ack(now, had_holes, fin_next);
            }
            Stored::OutOfOrder => self.ack.now = true,
            Stored::Dropped => {
                self.info.cold.ooo_dropped += 1;
                self.ack.now = true;
            }
        }
        self.try_consume_fin(now);
    }

    /// Delayed ACK (RFC 9293 §3.8.6.3, RFC 5681 §4.2): at least every second full-sized
    /// segment, at once while in quick-ack mode or when a hole was filled, else within the
    /// delayed-ACK timeout.
    fn schedule_ack(&mut self, now: Instant, filled_hole: bool, fin_next: bool) {
        let quick = self.ack.quick > 0 && !fin_next;
        if filled_hole || quick || self.ack.unacked_bytes >= 2 * self.rcv_mss {
            self.ack.quick = self.ack.quick.saturating_sub(1);
            self.ack.now = true;
        } else {
            self.timers.set_if_idle(Timer::DelayedAck, now + self.cfg.delayed_ack);
        }
    }

    /// Linux quick-ack mode: ACK the next segments at once (as many as the configured
    /// quick ACKs).
    fn enter_quick_ack(&mut self) {
        self.ack.quick = self.ack.quick.max(self.cfg.quick_acks);
    }

    /// Eighth step: FIN (RFC 9293 §3.10.7.4). A FIN beyond a hole is remembered and takes
    /// effect once the bytes before it arrive.
    fn on_fin(&mut self, now: Instant, seg: &Segment<'_>) {
        if !seg.tcp.flags.fin() {
            return;
        }
        let fin_seq = seg.tcp.seq + seg.payload.len() as u32;
        if fin_seq > self.rcv_room_end() {
            return; // beyond our window: trimmed away
        }
        if !self.fin_received && fin_seq >= self.rcv_nxt {
            // The latest FIN stands: one beyond a remembered FIN means data runs past that
            // one (stale); one before it ends the stream where it is reached first.
            self.peer_fin = Some(fin_seq);
        }
        self.try_consume_fin(now);
    }

    #[inline]
    fn try_consume_fin(&mut self, now: Instant) {
        if self.peer_fin.is_some() {
            self.consume_fin(now);
        }
    }

    /// [`Connection::try_consume_fin`] with a FIN remembered.
    fn consume_fin(&mut self, now: Instant) {
        let Some(fin_seq) = self.peer_fin else { return };
        if self.fin_received || fin_seq != self.rcv_nxt {
            return;
        }
        self.fin_received = true;
        self.rcv_nxt += 1;
        self.events |= ev::PEER_FIN | ev::READABLE;
        if self.closes_on_fin() && self.delays_fin_ack() {
            // Linux (`tcp_fin`: CLOSE-WAIT enters pingpong mode): the ACK of a FIN that
            // reaches us first is delayed (RFC 9293 §3.8.6.3 allows it), so an application
            // that closes at end of stream sends one FIN-ACK instead of an ACK and a FIN.
            self.timers.set_if_idle(Timer::DelayedAck, now + self.cfg.delayed_ack);
        } else {
            self.ack.now = true;
        }
        match self.state {
            State::SynReceived | State::Established => self.set_state(State::CloseWait),
            State::FinWait1 if self.fin_acked() => self.enter_time_wait(now),
            State::FinWait1 => self.set_state(State::Closing),
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    /// Whether the ACK of a FIN that moves us to CLOSE-WAIT waits for the delayed-ACK timer,
    /// as Linux's `__tcp_ack_snd_check` / `tcp_send_delayed_ack` decide in pingpong mode: not
    /// when no data ever arrived (Linux's ACK timeout `ato` is still 0, so the ACK leaves at
    /// once) nor when more than a full segment, the FIN included, is unacknowledged
    /// (`unacked_bytes + 1 > rcv_mss`). Data a Fast Open SYN carried does not count: Linux
    /// queues it without the ACK-timeout estimator seeing it.
    fn delays_fin_ack(&self) -> bool {
        self.info.bytes_received > self.fast_open_syn_bytes()
            && self.ack.unacked_bytes < self.rcv_mss
    }

    /// The peer's FIN would move us to CLOSE-WAIT (the peer closes first).
    fn closes_on_fin(&self) -> bool {
        matches!(self.state, State::SynReceived | State::Established)
    }

    /// TIME-WAIT for 2 MSL (RFC 9293 §3.10.7.4; Linux `TCP_TIMEWAIT_LEN`).
    pub(crate) fn enter_time_wait(&mut self, now: Instant) {
        self.set_state(State::TimeWait);
        let keep_ack = self.ack.now;
        self.timers.stop_all();
        self.ack.now = keep_ack;
        self.timers.set(Timer::TimeWait, now + self.cfg.msl * 2);
    }
}
