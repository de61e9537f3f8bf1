//! Passive opens: a listener's SYN queue, accept queue and SYN cookies (RFC 9293 §3.10.7.2,
//! RFC 4987, Linux `tcp_conn_request` semantics).

use super::fastopen::FastOpenSyn;
use super::syn_cookie::{encode_ts, VerifiedCookie};
use super::syn_queue::HalfOpen;
use super::{ConnectionHandle, DatagramEvent, Endpoint, FourTuple, SynCookies};
use crate::conn::{syn_ack_repr, ts_clock, ConnParams, Connection, SynInfo};
use crate::wire::{Segment, SeqNum, TcpRepr};
use crate::{ConnConfig, Instant};

impl Endpoint {
    /// RFC 9293 §3.10.7.2, LISTEN (and the SYN-RECEIVED entries the listener holds).
    pub(super) fn on_listener<'a>(
        &mut self,
        now: Instant,
        li: u32,
        tuple: FourTuple,
        seg: &Segment<'a>,
        packet: &[u8],
    ) -> Option<DatagramEvent<'a>> {
        let f = seg.tcp.flags;
        if f.rst() {
            self.on_half_open_rst(tuple, seg);
            return None;
        }
        if f.syn() && !f.ack() {
            return self.on_syn(now, li, tuple, seg, packet);
        }
        if f.ack() && !f.syn() {
            return self.on_handshake_ack(now, li, tuple, seg);
        }
        self.stats.listener_drops += 1;
        None
    }

    /// HS-05: the peer resets a half-open entry (its SYN was an old duplicate): back to LISTEN.
    fn on_half_open_rst(&mut self, tuple: FourTuple, seg: &Segment<'_>) {
        match self.syn_queue.get(tuple) {
            Some(e) if seg.tcp.seq == e.syn.seq + 1 => {
                let e = self.syn_queue.remove(tuple).expect("just found");
                self.release_half_open(&e);
                self.stats.syn_queue_reset += 1;
            }
            _ => self.stats.listener_drops += 1,
        }
    }

    fn release_half_open(&mut self, e: &HalfOpen) {
        if let Some(Some(l)) = self.listeners.get_mut(e.listener as usize) {
            l.half_open = l.half_open.saturating_sub(1);
        }
    }

    /// A SYN at a listener: a SYN-queue entry, a cookie, or a drop (LQ-01, LQ-02, LQ-03); at
    /// an intercepting endpoint that decides first, a request for the application (AI-02).
    fn on_syn<'a>(
        &mut self,
        now: Instant,
        li: u32,
        tuple: FourTuple,
        seg: &Segment<'_>,
        packet: &[u8],
    ) -> Option<DatagramEvent<'a>> {
        self.stats.syns_received += 1;
        let syn = SynInfo::from_segment(seg);
        if let Some(e) = self.syn_queue.get(tuple).copied() {
            if e.syn.seq == syn.seq {
                // HS-07: the peer retransmitted its SYN: our SYN-ACK was lost. Send it again,
                // at most once per `invalid_ack_interval` (LQ-07; Linux `tcp_check_req`
                // answers through `tcp_oow_rate_limited`), so a burst of duplicates cannot
                // make one entry a reflector.
                let interval = self.cfg.conn.invalid_ack_interval;
                if e.last_dup_answer.is_some_and(|t| now - t < interval) {
                    self.stats.dup_syns_rate_limited += 1;
                    return None;
                }
                self.send_syn_ack(now, &e, false);
                self.syn_queue.mark_resent(tuple, now);
            } else {
                self.stats.listener_drops += 1;
            }
            return None;
        }
        if self.intercept_decides(li) {
            self.hold_syn(now, li, tuple, syn, packet);
            return None;
        }
        self.answer_syn_with(now, li, tuple, syn, Some(seg))
    }

    /// Answer a new SYN at listener `li`: a SYN-queue entry and a SYN-ACK, a cookie, or a
    /// drop when the queues are full.
    pub(super) fn answer_syn(&mut self, now: Instant, li: u32, tuple: FourTuple, syn: SynInfo) {
        self.answer_syn_with(now, li, tuple, syn, None);
    }

    /// [`Endpoint::answer_syn`], with the SYN segment itself when Fast Open may use it
    /// (RFC 7413 §4.2.2): only a SYN the SYN queue takes can be one, never one answered
    /// with a SYN cookie under a flood (as Linux, TFO-02).
    fn answer_syn_with<'a>(
        &mut self,
        now: Instant,
        li: u32,
        tuple: FourTuple,
        syn: SynInfo,
        seg: Option<&Segment<'_>>,
    ) -> Option<DatagramEvent<'a>> {
        let Some(Some(l)) = self.listeners.get_mut(li as usize) else { return None };
        if l.accept_queue_full() {
            // Linux drops SYNs while the accept queue is full (ListenOverflows).
            self.stats.listen_overflows += 1;
            return None;
        }
        let cookie = match l.opts.syn_cookies {
            SynCookies::Always => true,
            SynCookies::WhenFull if l.syn_queue_full() => {
                l.last_overflow = Some(now);
                true
            }
            _ => false,
        };
        if cookie {
            self.send_cookie(now, li, tuple, syn);
            return None;
        }
        if l.syn_queue_full() {
            self.stats.syn_queue_drops += 1;
            return None;
        }
        let mut fast_open = 0;
        if let Some(seg) = seg {
            match self.fast_open_syn(now, li, tuple, syn, seg) {
                FastOpenSyn::Child(ev) => return Some(ev),
                FastOpenSyn::SendCookie { exp } => fast_open = if exp { 2 } else { 1 },
                FastOpenSyn::No => {}
            }
        }
        let Some(Some(l)) = self.listeners.get_mut(li as usize) else { return None };
        l.half_open += 1;
        let p = self.params(now, tuple);
        let entry = HalfOpen {
            tuple,
            listener: li,
            iss: p.iss,
            ts_offset: p.ts_offset,
            syn,
            first_sent: now,
            deadline: now + self.cfg.conn.initial_rto,
            retries: 0,
            resent: false,
            last_dup_answer: None,
            acked: false,
            fast_open,
        };
        self.send_syn_ack(now, &entry, false);
        self.syn_queue.insert(entry);
        self.refresh_deadline();
        None
    }

    fn send_syn_ack(&mut self, now: Instant, e: &HalfOpen, retransmit: bool) {
        let p = ConnParams {
            local: e.tuple.local,
            remote: e.tuple.remote,
            iss: e.iss,
            ts_offset: e.ts_offset,
        };
        let cfg = self.passive_cfg(e.listener);
        let mut repr = syn_ack_repr(&cfg, &p, &e.syn, ts_clock(now, e.ts_offset));
        if e.fast_open != 0 {
            // RFC 7413 §4.1.2: the cookie the client asked for (or a fresh one for a bad one).
            let exp = e.fast_open == 2;
            repr.options.fast_open = Some(self.fast_open_cookie_option(e.listener, e.tuple, exp));
        }
        self.stats.syn_acks_sent += 1;
        self.stats.syn_ack_retransmits += u64::from(retransmit);
        self.queue_ip(e.tuple.local.ip(), e.tuple.remote.ip(), repr, cfg.ip_fields(0));
    }

    /// RFC 4987 §3.6: answer with a cookie ISN and keep nothing. Without timestamps, window
    /// scaling and SACK cannot be remembered, so the SYN-ACK does not offer them (as Linux).
    pub(super) fn send_cookie(
        &mut self,
        now: Instant,
        li: u32,
        tuple: FourTuple,
        mut syn: SynInfo,
    ) {
        let iss = self.cookies.encode(tuple, syn.seq, syn.mss, now);
        let ts_offset = self.params(now, tuple).ts_offset;
        let mut tsval = ts_clock(now, ts_offset);
        let cfg = self.passive_cfg(li);
        // ECN survives in the timestamp bits too (Linux `cookie_init_timestamp`'s TS_OPT_ECN).
        syn.ecn &= cfg.ecn != crate::EcnMode::Off;
        if syn.tsval.is_some() && self.cfg.conn.timestamps {
            tsval = encode_ts(
                tsval,
                syn.wscale.filter(|_| self.cfg.conn.window_scaling),
                syn.sack_permitted,
                syn.ecn,
            );
        } else {
            syn.wscale = None;
            syn.sack_permitted = false;
            syn.ecn = false;
        }
        let p = ConnParams { local: tuple.local, remote: tuple.remote, iss, ts_offset };
        let repr: TcpRepr = syn_ack_repr(&cfg, &p, &syn, tsval);
        self.stats.cookies_sent += 1;
        self.stats.syn_acks_sent += 1;
        self.queue_ip(tuple.local.ip(), tuple.remote.ip(), repr, cfg.ip_fields(0));
    }

    /// The ACK completing a handshake: from a SYN-queue entry, or carrying a cookie.
    fn on_handshake_ack<'a>(
        &mut self,
        now: Instant,
        li: u32,
        tuple: FourTuple,
        seg: &Segment<'a>,
    ) -> Option<DatagramEvent<'a>> {
        // Taken out at once (the common case completes it: one probe of the table, not
        // two); `complete_half_open` puts it back when it stays.
        if let Some(e) = self.syn_queue.remove(tuple) {
            return self.complete_half_open(now, li, e, seg);
        }
        let Some(Some(l)) = self.listeners.get(li as usize) else { return None };
        let check_cookie = match l.opts.syn_cookies {
            SynCookies::Always => true,
            SynCookies::WhenFull => {
                l.last_overflow.is_some_and(|t| now - t < core::time::Duration::from_secs(120))
            }
            SynCookies::Never => false,
        };
        if !check_cookie {
            // RFC 9293 §3.10.7.2: any ACK at LISTEN is answered <SEQ=SEG.ACK><CTL=RST>.
            self.reset_for(now, seg);
            return None;
        }
        let tsecr = seg.tcp.options.timestamps.map(|t| t.tsecr);
        match self.cookies.verify(tuple, seg.tcp.seq, seg.tcp.ack, tsecr, now) {
            Some(v) => self.complete_cookie(now, li, tuple, v, seg),
            None => {
                self.stats.cookies_rejected += 1;
                tracing::trace!(remote = %tuple.remote, "bad or stale SYN cookie");
                None
            }
        }
    }

    /// Whether the accept queue of `li` has room; if not, count and apply LQ-02 (drop, or
    /// RST with `abort_on_overflow`). Returns false when the segment must go no further.
    fn admit(&mut self, now: Instant, li: u32, seg: &Segment<'_>) -> bool {
        let Some(Some(l)) = self.listeners.get(li as usize) else { return false };
        if !l.accept_queue_full() {
            return true;
        }
        self.stats.listen_overflows += 1;
        if l.opts.abort_on_overflow {
            self.reset_for(now, seg);
        }
        false
    }

    fn complete_half_open<'a>(
        &mut self,
        now: Instant,
        li: u32,
        e: HalfOpen,
        seg: &Segment<'a>,
    ) -> Option<DatagramEvent<'a>> {
        if seg.tcp.ack != e.iss + 1 {
            // RFC 9293 §3.10.7.4 SYN-RECEIVED: unacceptable ACK → <SEQ=SEG.ACK><CTL=RST>.
            self.syn_queue.put_back(e);
            self.reset_for(now, seg);
            return None;
        }
        if seg.tcp.seq != e.syn.seq + 1 {
            self.syn_queue.put_back(e);
            self.stats.listener_drops += 1;
            return None;
        }
        let bare = seg.payload.is_empty() && !seg.tcp.flags.fin();
        if bare && e.retries < self.defer_accept(li) {
            // Linux `tcp_check_req`: while TCP_DEFER_ACCEPT lasts, a bare ACK is dropped.
            self.syn_queue.put_back(HalfOpen { acked: true, ..e });
            self.stats.defer_accept_drops += 1;
            return None;
        }
        if !self.admit(now, li, seg) {
            if self.listeners[li as usize].as_ref().is_some_and(|l| l.opts.abort_on_overflow) {
                self.release_half_open(&e);
            } else {
                self.syn_queue.put_back(e);
            }
            return None;
        }
        self.release_half_open(&e);
        let p = ConnParams {
            local: e.tuple.local,
            remote: e.tuple.remote,
            iss: e.iss,
            ts_offset: e.ts_offset,
        };
        // Boxed at once: the caller gets it boxed, and each move of a value this large is a
        // kilobyte copied.
        let mut conn = Connection::accept_syn_boxed(self.passive_cfg(li), p, e.syn, e.first_sent);
        conn.attach_budget(self.budget.clone());
        conn.syn_ack_sent(e.first_sent, e.retries > 0 || e.resent);
        // RFC 6298 §5.7: if the SYN-ACK timed out, data starts with the 3 s fallback RTO,
        // which the connection applies when the completing ACK acknowledges its SYN.
        conn.retries = e.retries;
        Some(self.established(now, li, e.tuple, conn, seg))
    }

    fn complete_cookie<'a>(
        &mut self,
        now: Instant,
        li: u32,
        tuple: FourTuple,
        v: VerifiedCookie,
        seg: &Segment<'a>,
    ) -> Option<DatagramEvent<'a>> {
        if !self.admit(now, li, seg) {
            return None;
        }
        self.stats.cookies_accepted += 1;
        let syn = SynInfo {
            seq: seg.tcp.seq - 1,
            window: seg.tcp.window,
            mss: Some(v.mss),
            wscale: v.wscale,
            sack_permitted: v.sack_permitted,
            tsval: seg.tcp.options.timestamps.map(|t| t.tsval),
            ecn: v.ecn,
        };
        let ts_offset = self.params(now, tuple).ts_offset;
        let iss: SeqNum = seg.tcp.ack - 1;
        let p = ConnParams { local: tuple.local, remote: tuple.remote, iss, ts_offset };
        let mut conn = Connection::accept_syn_boxed(self.passive_cfg(li), p, syn, now);
        conn.attach_budget(self.budget.clone());
        conn.syn_ack_sent(now, true);
        Some(self.established(now, li, tuple, conn, seg))
    }

    /// Hand the completing segment to the new connection, register and queue it.
    fn established<'a>(
        &mut self,
        now: Instant,
        li: u32,
        tuple: FourTuple,
        mut conn: Box<Connection>,
        seg: &Segment<'a>,
    ) -> DatagramEvent<'a> {
        conn.handle_segment(now, seg);
        let handle: ConnectionHandle = self.insert(tuple, Some(li));
        if let Some(Some(l)) = self.listeners.get_mut(li as usize) {
            l.accept_queue.push_back(handle);
        }
        self.stats.passive_opens += 1;
        DatagramEvent::NewConnection(handle, conn)
    }

    /// A half-open entry's deadline: retransmit the SYN-ACK with backoff, or drop the entry
    /// after `synack_retries` (HS-07, LQ-06).
    /// With `TCP_DEFER_ACCEPT` (Linux `syn_ack_recalc`), an entry whose handshake a bare ACK
    /// completed lives until the deferral is over too, and its SYN-ACK is sent again only at
    /// the last deferred timeout.
    pub(super) fn on_syn_ack_timeout(&mut self, now: Instant, mut e: HalfOpen) {
        let defer = self.defer_accept(e.listener);
        let expire = e.retries >= self.cfg.conn.synack_retries && (!e.acked || e.retries >= defer);
        if expire || self.listeners.get(e.listener as usize).is_none_or(Option::is_none) {
            self.release_half_open(&e);
            self.stats.syn_queue_expired += 1;
            return;
        }
        let resend = !e.acked || e.retries + 1 >= defer;
        e.retries += 1;
        let backoff = self.cfg.conn.initial_rto.saturating_mul(1 << e.retries.min(16));
        e.deadline = now + backoff.min(self.cfg.conn.max_rto);
        if resend {
            self.send_syn_ack(now, &e, true);
        }
        self.syn_queue.insert(e);
        self.refresh_deadline();
    }

    /// The connection options of passive opens at listener `li`: the endpoint's, with the
    /// listener's own (`ListenOptions::max_segment`).
    pub(super) fn passive_cfg(&self, li: u32) -> crate::config::SharedConnConfig {
        let listener = self.listeners.get(li as usize).and_then(Option::as_ref);
        if listener.is_none_or(|l| l.conn.is_none() && l.opts.max_segment.is_none()) {
            // The endpoint's defaults unchanged: share them without comparing all fields.
            return self.conn_cfg.clone();
        }
        let mut cfg = self.cfg.conn;
        if let Some(l) = listener {
            // The listening socket's options, if set; the device's offloads are the endpoint's.
            cfg = l.conn.map_or(cfg, |c| ConnConfig { offload: cfg.offload, ..c });
            cfg.max_segment = l.opts.max_segment.or(cfg.max_segment);
        }
        self.conn_cfg.share_or_new(&cfg)
    }

    /// The listener's `defer_accept` (0 when it is gone).
    fn defer_accept(&self, li: u32) -> u8 {
        self.listeners.get(li as usize).and_then(Option::as_ref).map_or(0, |l| l.opts.defer_accept)
    }
}
