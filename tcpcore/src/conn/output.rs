//! Segment output: what to send next and how it looks on the wire (RFC 9293 §3.8.6,
//! RFC 896 Nagle, RFC 5681 windows, RFC 7323 options).

use super::timers::Timer;
use super::{open, Connection, State};
use crate::cc::Controller;
use crate::wire::{
    self, ipv4, ipv6, PlainHeader, SeqNum, TcpChecksum, TcpFlags, TcpOptions, TcpRepr, Timestamps,
};
use crate::{Instant, Transmit};

/// What one data segment carries.
#[derive(Clone, Copy, Debug)]
struct DataSeg {
    seq: SeqNum,
    len: u32,
    fin: bool,
}

impl Connection {
    /// Write the next segment due into `buf` as a whole IP packet; `None` when nothing is
    /// due. `buf` must hold at least the interface MTU. Call until it returns `None`, then
    /// consult [`Connection::poll_timeout`].
    ///
    /// With [`Offload::gso_max_size`](crate::Offload::gso_max_size) set, new data goes out
    /// in super-segments of up to that size (or `buf.len()`, if smaller) for the device to
    /// cut up; [`Transmit::gso_size`] is then the size of each segment's payload.
    #[inline]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.timers_synced && self.idle_output() {
            // Nothing changed since the timers were last armed, and `next_segment` would find
            // nothing to send and change nothing (nor trace anything, so no span either):
            // most polls of an idle or waiting connection. Inlined into the caller, apart
            // from the large function that sends.
            #[cfg(debug_assertions)]
            self.assert_timers_synced(now);
            return None;
        }
        self.poll_transmit_busy(now, buf)
    }

    /// [`Connection::poll_transmit`] when something may be due or the timers may need
    /// arming.
    fn poll_transmit_busy(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if Self::debug_on() {
            return self.poll_transmit_in_span(now, buf);
        }
        let t = self.next_segment(now, buf);
        self.update_timers(now);
        t
    }

    #[cold]
    fn poll_transmit_in_span(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let _span = self.span().entered();
        let t = self.next_segment(now, buf);
        self.update_timers(now);
        t
    }

    /// `next_segment` would return `None` through `nothing_but_ack` without a change.
    fn idle_output(&self) -> bool {
        self.pending_rst.is_none()
            && self.state.is_synchronized()
            && self.nothing_but_ack()
            && !self.ack.now
            && !self.window_update_due()
    }

    /// With `timers_synced`, arming the timers again changes nothing (a missed
    /// `unsync_timers` shows here in debug builds).
    #[cfg(debug_assertions)]
    fn assert_timers_synced(&mut self, now: Instant) {
        // No allocation here: the zero-allocation tests run in debug builds too.
        let snapshot = |c: &Connection| {
            (c.timers, c.persist_backoff, c.persist_probes, c.persist_since, c.buffer_bytes())
        };
        let before = snapshot(self);
        self.arm_timers(now);
        assert_eq!(before, snapshot(self), "timers changed while synced");
    }

    fn next_segment(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(rst) = self.pending_rst.take() {
            let (flags, ack) = match rst.ack {
                Some(a) => (TcpFlags::RST | TcpFlags::ACK, a),
                None => (TcpFlags::RST, SeqNum(0)),
            };
            self.info.cold.resets_out += 1;
            return self.emit(now, buf, rst.seq, ack, flags, [&[], &[]]);
        }
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent if self.snd_nxt == self.iss && self.syn_deferred() => return None,
            State::SynSent | State::SynReceived if self.snd_nxt == self.iss => {
                return self.send_syn(now, buf);
            }
            _ => {}
        }
        if self.nothing_but_ack() {
            // Each step below would find nothing and change nothing (see `nothing_but_ack`):
            // only the ACK at the end can be due. Most polls end here (drivers poll every
            // connection after every input).
            return if self.ack.now || self.window_update_due() {
                self.emit(now, buf, self.snd_max, self.rcv_nxt, TcpFlags::ACK, [&[], &[]])
            } else {
                None
            };
        }
        self.restart_after_idle(now);
        // Data waits for its departure time when paced (`pacing.rs`); ACKs and probes don't.
        if !self.pacing_wait(now) {
            if let Some(t) = self.next_data_transmit(now, buf) {
                return Some(t);
            }
        }
        if self.probe_due {
            // Zero-window and keepalive probes: <SEQ=SND.UNA-1>, no data, elicits an ACK
            // (RFC 9293 §3.8.4; Linux tcp_xmit_probe_skb).
            self.probe_due = false;
            self.info.cold.probes_out += 1;
            return self.emit(now, buf, self.snd_una - 1, self.rcv_nxt, TcpFlags::ACK, [&[], &[]]);
        }
        if self.ack.now || self.window_update_due() {
            // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (RFC 9293 §3.10.7.4), but with SND.MAX:
            // after a retransmission timeout SND.NXT is rewound, and the peer's RCV.NXT may
            // be past it, making an ACK at SND.NXT unacceptable there (BSD does the same).
            return self.emit(now, buf, self.snd_max, self.rcv_nxt, TcpFlags::ACK, [&[], &[]]);
        }
        None
    }

    /// The next data segment: a retransmission, a tail loss probe or new data.
    fn next_data_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        // SACK recovery (RFC 6675 §5, RFC 8985): lost segments and tail loss probes.
        // (When it returns None it has changed nothing `next_data_segment` depends on.)
        // The segment size, computed once (the steps below change nothing it depends on).
        let mss = self.data_mss();
        let new_data =
            self.next_data_segment(self.paced_gso(self.gso_payload(buf.len(), mss)), mss);
        if let Some((seq, len, fin)) =
            self.sack_next_segment(now, new_data.map(|s| (s.seq, s.len, s.fin)))
        {
            return self.send_data(now, buf, DataSeg { seq, len, fin }, mss);
        }
        if self.recovery.retransmit_head && self.state.is_synchronized() {
            self.recovery.retransmit_head = false;
            if let Some(seg) = self.head_segment() {
                return self.send_data(now, buf, seg, mss);
            }
        }
        let seg = new_data?;
        self.send_data(now, buf, seg, mss)
    }

    /// No data or FIN waits to be sent, no retransmission (head, SACK-lost, tail loss probe)
    /// and no probe is due. Then `restart_after_idle` returns at once (nothing to send),
    /// `next_data_segment` finds nothing (SND.NXT is at or past the data, the FIN is sent or
    /// not queued), and `sack_next_segment` neither (no lost bytes, no probe due).
    fn nothing_but_ack(&self) -> bool {
        !self.send_pending()
            && !self.recovery.retransmit_head
            && !self.probe_due
            && !self.sack_tx.tlp_due
            && self.sack_tx.sb.as_ref().is_none_or(|sb| sb.lost_bytes == 0)
    }

    /// SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), first send or retransmission.
    fn send_syn(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let (flags, ack) = if self.state == State::SynSent {
            (TcpFlags::SYN, SeqNum(0))
        } else {
            (TcpFlags::SYN | TcpFlags::ACK, self.rcv_nxt)
        };
        let flags = flags | self.ecn_syn_flags(self.snd_max == self.iss);
        // RFC 7413 §4.2.1: a Fast Open client's first SYN carries data and the cookie.
        let (data, fast_open) = self.fast_open_syn();
        let (_, flags) = self.ecn_mark(flags, false, 0);
        let mut repr = self.header(now, self.iss, ack, flags);
        repr.options.fast_open = fast_open;
        let payload = self.send_buf.slices(0, data as usize);
        let t = self.emit_repr(buf, &repr, payload, None, crate::wire::ecn::NOT_ECT)?;
        self.after_emit(&repr);
        if self.snd_max == self.iss {
            self.rtt_probe = Some((self.iss + 1, now));
            self.fast_open_syn_sent(data);
        } else {
            self.info.cold.retransmits += 1;
        }
        self.snd_nxt = self.iss + 1 + data;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        self.timers.set_if_idle(Timer::Retransmit, now + self.rtt.rto());
        Some(t)
    }

    /// The segment at SND.UNA, for fast retransmit and NewReno partial ACKs.
    fn head_segment(&self) -> Option<DataSeg> {
        let outstanding = self.snd_max.since(self.snd_una);
        if outstanding == 0 {
            return None;
        }
        let data_end = self.data_start() + self.send_buf.len() as u32;
        let data = data_end.since(self.snd_una).min(outstanding);
        let len = data.min(self.data_mss());
        let fin = self.fin_queued && len == data && self.snd_max > data_end;
        Some(DataSeg { seq: self.snd_una, len, fin })
    }

    /// Most payload one super-segment may carry in a packet of at most `room` bytes: a
    /// multiple of the segment size `mss` ([`Connection::data_mss`]), 0 when the device does
    /// no GSO (or it would not pay).
    fn gso_payload(&self, room: usize, mss: u32) -> u32 {
        let max = self.cfg.offload.gso_max_size.min(room).min(65_535);
        let ip = if self.remote.is_ipv4() { ipv4::HEADER_LEN } else { ipv6::HEADER_LEN };
        // The TCP header at its largest (60 bytes), so that any options fit.
        let room = max.saturating_sub(ip + 60) as u32;
        if room < 2 * mss {
            return 0;
        }
        room - room % mss
    }

    /// The next segment of new (or, after an RTO, rewound) data, honouring the peer's window,
    /// the congestion window, Nagle (RFC 896) and sender SWS avoidance (RFC 9293 §3.8.6.2.1).
    /// With `gso_max` > 0, new data may form a super-segment of up to that many bytes, a
    /// multiple of the segment size `mss` ([`Connection::data_mss`]; the device cuts it up;
    /// Linux TSO does the same).
    fn next_data_segment(&self, gso_max: u32, mss: u32) -> Option<DataSeg> {
        if !self.sends_data() {
            return None;
        }
        let data_end = self.data_start() + self.send_buf.len() as u32;
        let avail = data_end.since(self.snd_nxt);
        let fin_unsent = self.fin_queued && self.snd_nxt <= data_end;
        if avail == 0 && !fin_unsent {
            return None;
        }
        let usable = self.usable_window();
        // Only new data forms super-segments; retransmissions go one segment at a time.
        let max = if self.snd_nxt == self.snd_max { gso_max.max(mss) } else { mss };
        let mut len = avail.min(max).min(usable);
        if len > mss {
            // Whole segments only: a short tail goes alone next, judged by Nagle and SWS.
            len -= len % mss;
        }
        if len < avail && len < mss {
            // Window-limited to a small segment: only if it is at least half the largest
            // window the peer ever offered (SWS avoidance); else the persist timer decides.
            if len == 0 || len < self.max_snd_wnd / 2 {
                if !self.persist_force() {
                    return None;
                }
                len = len.max(1).min(avail);
            }
        }
        let last = len == avail;
        // Nagle (RFC 896) in Linux's Minshall form: hold a final small segment only while an
        // earlier small segment is unacknowledged; a queued FIN pushes everything (Linux sends
        // the FIN's segment with Nagle off). Retransmissions are never held.
        // A corked tail (TCP_CORK, MSG_MORE) waits the same way, in flight or not.
        let nagle_holds = !self.cfg.nodelay && self.snd_sml > self.snd_una;
        if last
            && len < mss
            && len > 0
            && !fin_unsent
            && self.snd_nxt >= self.snd_max
            && (nagle_holds || self.corked())
        {
            return None;
        }
        // Linux `tcp_cwnd_test`: a bare FIN is not held by the congestion window, only by
        // the peer's (RFC 5681 limits data; a FIN adds no load worth holding back).
        let bare_fin_fits = len == 0 && (self.snd_una + self.snd_wnd) > self.snd_nxt;
        let fin = fin_unsent && last && (usable > len || bare_fin_fits);
        if len == 0 && !fin {
            return None;
        }
        Some(DataSeg { seq: self.snd_nxt, len, fin })
    }

    /// Bytes the windows let us send beyond SND.NXT: min(SND.WND, cwnd) less what is in
    /// flight (RFC 5681 §3.1, with NewReno inflation during recovery).
    pub(crate) fn usable_window(&self) -> u32 {
        if self.sack_active() && self.state.is_synchronized() {
            // RFC 6675 / RFC 6937: pipe and PRR instead of SND.NXT - SND.UNA and inflation.
            return self.sack_budget().min((self.snd_una + self.snd_wnd).since(self.snd_nxt));
        }
        let cwnd = self.cc.window().saturating_add(self.recovery.inflation);
        let wnd = self.snd_wnd.min(cwnd);
        (self.snd_una + wnd).since(self.snd_nxt)
    }

    /// The persist timer fired with a window too small for SWS rules: send what fits.
    fn persist_force(&self) -> bool {
        self.persist_backoff > 0 && self.snd_wnd > 0 && self.snd_max == self.snd_una
    }

    /// Send `seg` (new data, a retransmission or a bare FIN); `mss` is
    /// [`Connection::data_mss`] as the segment was chosen with it.
    fn send_data(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        seg: DataSeg,
        mss: u32,
    ) -> Option<Transmit> {
        let offset = seg.seq.since(self.data_start()) as usize;
        let mut flags = TcpFlags::ACK;
        // RFC 9293 §3.9.1: PSH is the sender's call beyond the segment that empties the
        // buffer (RFC 1122 §4.2.2.2). Like Linux, a super-segment of new data carries it too
        // (Linux pushes each TSO burst of fresh data; a single-segment send such as limited
        // transmit, or a retransmission, does not), so a GRO receiver delivers per burst.
        // The tail of a write with MSG_MORE is not pushed (Linux `tcp_push`).
        let ends_buffer = seg.seq + seg.len == self.data_start() + self.send_buf.len() as u32;
        let fresh_burst = seg.len > mss && seg.seq >= self.snd_max;
        if seg.len > 0 && ((ends_buffer && !self.cork.more) || fresh_burst) {
            flags = flags | TcpFlags::PSH;
        }
        if ends_buffer {
            self.tail_sent();
        }
        if seg.fin {
            flags = flags | TcpFlags::FIN;
            if seg.len == 0 && seg.seq >= self.snd_max {
                self.sack_tx.fin_alone = true;
            }
        }
        let gso = (seg.len > mss).then_some(mss as u16);
        let t = self.emit_data(now, buf, (seg.seq, flags), offset, seg.len as usize, gso)?;
        if gso.is_some() {
            self.info.segs_out += u64::from(seg.len.div_ceil(mss) - 1);
        }
        let end = seg.seq + seg.len + u32::from(seg.fin);
        let new_data = seg.seq >= self.snd_max;
        if seg.seq < self.snd_max {
            self.info.cold.retransmits += 1;
            self.info.cold.bytes_retransmitted += u64::from(seg.len);
            if self.rtt_probe.is_some_and(|(e, _)| e > seg.seq) {
                self.rtt_probe = None; // Karn's rule (RFC 6298 §3)
            }
        } else if self.rtt_probe.is_none() {
            self.rtt_probe = Some((end, now));
        }
        if seg.seq == self.snd_nxt {
            self.snd_nxt = end;
        }
        // Minshall's Nagle remembers small segments of new data only (Linux
        // `tcp_minshall_update`): a short retransmission, such as a Fast Open SYN's data
        // resent after the handshake, holds nothing back.
        // Once after the segment went out (a D-SACK it carried shortens the SACK option
        // reserved from the MSS), for the three uses below.
        let mss = self.data_mss();
        if new_data && seg.len < mss {
            self.snd_sml = self.snd_sml.max(seg.seq + seg.len);
        }
        self.snd_max = self.snd_max.max(end);
        // After SND.MAX moved: the loss probe timer is armed only with data outstanding.
        self.on_data_sent(now, (seg.seq, end), !new_data, mss);
        if new_data {
            self.note_cwnd_usage(now, mss);
        }
        self.pace_sent(now, seg.len);
        self.info.bytes_sent += u64::from(seg.len);
        self.stalled_since.get_or_insert(now);
        if !self.timers.is_armed(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, self.rtt.rto_after(now));
        }
        Some(t)
    }

    /// Whether reading freed enough space to announce a larger window (receiver SWS
    /// avoidance, RFC 9293 §3.8.6.2.2): the window at least doubles and grows by a segment.
    pub(crate) fn window_update_due(&self) -> bool {
        // Nothing received since the SYN: the peer has not used the window it has (the
        // SYN-ACK's, at most 65,535 unscaled), and our first ACK of its data announces the
        // full one; an update now would be a segment per connection for nothing (Linux
        // announces openings only after the application has read).
        if !self.state.can_receive() || self.fin_received || self.rcv_nxt == self.irs + 1 {
            return false;
        }
        let cur = self.rcv_wnd();
        // The offerable window never exceeds the free buffer: when that is less than twice
        // the window already offered (almost every poll), stop before asking the endpoint's
        // memory budget (an atomic load).
        if (self.recv_buf.free() as u32) < 2 * cur {
            return false;
        }
        let new = self.offerable_window();
        new >= 2 * cur && new - cur >= self.sws_threshold()
    }

    /// The largest window we could offer now: buffer space, limited by what the 16-bit
    /// field can carry at our scale (RFC 7323 §2.3), and to four segments while the
    /// endpoint is under memory pressure (Linux `__tcp_select_window` clamps
    /// `rcv_ssthresh` to `4 * advmss`; `budget.rs`). The edge already offered stays.
    fn offerable_window(&self) -> u32 {
        let wnd = (self.recv_buf.free() as u32).min(65_535 << self.rcv_wscale);
        if self.mem.under_pressure() {
            return wnd.min(4 * self.rcv_mss);
        }
        wnd
    }

    /// min(RCV.BUFF / 2, MSS) of RFC 9293 §3.8.6.2.2.
    fn sws_threshold(&self) -> u32 {
        ((self.recv_buf.capacity() / 2) as u32).min(self.rcv_mss).max(1)
    }

    /// The window field to put in a segment, moving RCV.ADV (never to the left).
    ///
    /// RFC 9293 §3.8.6 (SHLD-14): the right edge never moves left, even when the buffer
    /// fills: what is left of the last offer stays offered (Linux `tcp_select_window` keeps
    /// `cur_win`). RFC 7323 §2.4: with scaling, the window is rounded *up* to the scale unit,
    /// never down (rounding down retracts the edge), and RCV.ADV records the edge as announced,
    /// so the acceptability test takes what the peer was offered. The ring holds that
    /// round-off beyond its capacity (`RecvBuf::limit`).
    fn advertise(&mut self, syn: bool) -> u16 {
        let edge_max = self.rcv_nxt + self.offerable_window();
        // RFC 7323 §2.2: the window of a SYN is never scaled.
        let shift = if syn { 0 } else { self.rcv_wscale };
        let mut edge = self.rcv_adv.max(self.rcv_nxt);
        if edge_max.since(edge) >= self.sws_threshold() {
            // A new offer from free space is whole scale units, within the buffer (Linux
            // `__tcp_select_window` rounds it down), but never left of the last edge.
            let fresh = edge_max.since(self.rcv_nxt) >> shift << shift;
            edge = edge.max(self.rcv_nxt + fresh);
        }
        let wnd = edge.since(self.rcv_nxt);
        // `wnd` never exceeds the field at this scale (see `offerable_window`; RCV.ADV was
        // announced through the same field), so the cap never pulls the edge left.
        // `wnd.div_ceil(1 << shift)` as a shift (the divisor is not a constant, and a
        // division costs tens of cycles on every segment).
        let mut field = ((u64::from(wnd) + (1u64 << shift) - 1) >> shift).min(65_535) as u32;
        // A kept edge is rounded up again each time RCV.NXT moves by less than a unit, so
        // while the buffer stays full it would creep right by up to a unit per ACK. Past
        // what the ring can store, announce the whole units below instead: the field then
        // shows less than a unit under the kept edge, the shrink RFC 7323 §2.4 allows for
        // scaled windows, and RCV.ADV still takes every byte up to the edge once offered.
        let storable = self.recv_buf.limit().saturating_sub(self.recv_buf.unread()) as u32;
        if field << shift > storable {
            field = wnd >> shift;
        }
        self.rcv_adv = self.rcv_adv.max(self.rcv_nxt + (field << shift));
        field as u16
    }

    fn options(&self, now: Instant, syn: bool) -> TcpOptions {
        let tsval = open::ts_clock(now, self.ts_offset);
        if syn {
            let peer = (self.state != State::SynSent).then(|| self.peer_syn.to_syn_info());
            return open::syn_options(&self.cfg, self.remote.is_ipv4(), peer.as_ref(), tsval);
        }
        let mut o = TcpOptions::default();
        if let Some(recent) = self.ts_recent {
            o.timestamps = Some(Timestamps { tsval, tsecr: recent });
        }
        // RFC 2018 §4: SACK blocks whenever we hold out-of-order data (3 beside timestamps).
        let max_blocks = if o.timestamps.is_some() { 3 } else { 4 };
        self.sack_blocks(&mut o, max_blocks);
        o
    }

    /// A RST carries the timestamp option when timestamps were negotiated (RFC 7323 §3.2:
    /// once negotiated, every segment but a RST "MUST" carry it and a RST "SHOULD"; Linux
    /// sends it), so a PAWS-checking peer does not drop it; no SACK blocks.
    fn rst_options(&self, now: Instant) -> TcpOptions {
        let tsval = open::ts_clock(now, self.ts_offset);
        let timestamps = self.ts_recent.map(|tsecr| Timestamps { tsval, tsecr });
        TcpOptions { timestamps, ..TcpOptions::default() }
    }

    fn emit_data(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        (seq, flags): (SeqNum, TcpFlags),
        offset: usize,
        len: usize,
        gso_size: Option<u16>,
    ) -> Option<Transmit> {
        // RFC 3168 §6.1.5: ECT only on new data, never on retransmissions.
        let (ect, flags) = self.ecn_mark(flags, len > 0 && seq >= self.snd_max, len as u32);
        if let Some(h) = self.plain_header(now, seq, self.rcv_nxt, flags) {
            let payload = self.send_buf.slices(offset, len);
            let t = self.emit_plain(buf, &h, payload, gso_size, ect)?;
            self.segment_out((h.seq, h.ack, h.flags, h.window), false);
            return Some(t);
        }
        let repr = self.header(now, seq, self.rcv_nxt, flags);
        let payload = self.send_buf.slices(offset, len);
        let t = self.emit_repr(buf, &repr, payload, gso_size, ect)?;
        self.after_emit(&repr);
        Some(t)
    }

    /// The header of a segment that carries no option but timestamps (no SYN, RST or SACK
    /// blocks: most segments of an established connection), for [`wire::emit_plain`];
    /// `None` sends the segment through [`Connection::header`]. Moves RCV.ADV as `header`.
    #[inline]
    fn plain_header(
        &mut self,
        now: Instant,
        seq: SeqNum,
        ack: SeqNum,
        flags: TcpFlags,
    ) -> Option<PlainHeader> {
        // RFC 2018 §4: SACK blocks go out whenever we hold out-of-order data (`options`).
        if flags.syn() || flags.rst() || (self.sack_ok && !self.nothing_to_sack()) {
            return None;
        }
        let timestamps = self
            .ts_recent
            .map(|tsecr| Timestamps { tsval: open::ts_clock(now, self.ts_offset), tsecr });
        Some(PlainHeader {
            seq,
            ack: if flags.ack() { ack } else { SeqNum(0) },
            flags,
            window: self.advertise(false),
            timestamps,
        })
    }

    /// Whether the device completes the checksum (offload), and the checksum to write.
    #[inline(always)]
    fn tx_checksum(&self) -> (bool, TcpChecksum) {
        let partial = self.cfg.offload.tx_checksum;
        (partial, if partial { TcpChecksum::Partial } else { TcpChecksum::Full })
    }

    /// [`Connection::emit_repr`] for a [`PlainHeader`].
    #[inline(always)]
    fn emit_plain(
        &self,
        buf: &mut [u8],
        h: &PlainHeader,
        payload: [&[u8]; 2],
        gso_size: Option<u16>,
        ect: u8,
    ) -> Option<Transmit> {
        let (partial, csum) = self.tx_checksum();
        let addrs = (&self.local, &self.remote);
        let len = wire::emit_plain(buf, addrs, h, payload, csum, self.cfg.ip_fields(ect)).ok()?;
        Some(Transmit { len, gso_size, csum_partial: partial })
    }

    /// Write `repr` and `payload` as an IP packet, with a partial checksum when the device
    /// completes it (checksum offload).
    fn emit_repr(
        &self,
        buf: &mut [u8],
        repr: &TcpRepr,
        payload: [&[u8]; 2],
        gso_size: Option<u16>,
        ect: u8,
    ) -> Option<Transmit> {
        let (partial, csum) = self.tx_checksum();
        let (src, dst) = (self.local.ip(), self.remote.ip());
        let len =
            wire::emit_ip(buf, src, dst, repr, payload, csum, self.cfg.ip_fields(ect)).ok()?;
        Some(Transmit { len, gso_size, csum_partial: partial })
    }

    fn emit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        seq: SeqNum,
        ack: SeqNum,
        flags: TcpFlags,
        payload: [&[u8]; 2],
    ) -> Option<Transmit> {
        // RFC 3168 §6.1.4: pure ACKs, probes, SYNs and RSTs are not ECN-capable.
        let (_, flags) = self.ecn_mark(flags, false, 0);
        if let Some(h) = self.plain_header(now, seq, ack, flags) {
            let t = self.emit_plain(buf, &h, payload, None, crate::wire::ecn::NOT_ECT)?;
            self.segment_out((h.seq, h.ack, h.flags, h.window), false);
            return Some(t);
        }
        let repr = self.header(now, seq, ack, flags);
        let t = self.emit_repr(buf, &repr, payload, None, crate::wire::ecn::NOT_ECT)?;
        self.after_emit(&repr);
        Some(t)
    }

    fn header(&mut self, now: Instant, seq: SeqNum, ack: SeqNum, flags: TcpFlags) -> TcpRepr {
        let syn = flags.syn();
        let rst = flags.rst();
        TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ack: if flags.ack() { ack } else { SeqNum(0) },
            flags,
            window: if rst { 0 } else { self.advertise(syn) },
            urgent: 0,
            options: if rst { self.rst_options(now) } else { self.options(now, syn) },
        }
    }

    /// Every segment carrying ACK satisfies any pending or delayed ACK.
    fn after_emit(&mut self, repr: &TcpRepr) {
        let sacked = repr.options.sack_count > 0;
        self.segment_out((repr.seq, repr.ack, repr.flags, repr.window), sacked);
    }

    /// A segment with these (seq, ack, flags, window) went out, with SACK blocks if `sacked`.
    /// Inlined: `#[inline]` alone left a call per segment.
    #[inline(always)]
    fn segment_out(
        &mut self,
        (seq, ack, flags, win): (SeqNum, SeqNum, TcpFlags, u16),
        sacked: bool,
    ) {
        self.info.segs_out += 1;
        if flags.ack() {
            self.ack.now = false;
            self.ack.unacked_bytes = 0;
            self.last_ack_sent = ack;
            self.timers.stop(Timer::DelayedAck);
            if sacked {
                self.sack_rx.dsack = None; // a D-SACK is reported once (RFC 2883 §4)
            }
        }
        tracing::trace!(seq = seq.0, ack = ack.0, flags = flags.0, win, "segment out");
    }

    /// Data or FIN waiting to be sent.
    pub(crate) fn has_sendable_data(&self) -> bool {
        (self.state.is_synchronized() || self.fast_open_child_sends())
            && self.next_data_segment(0, self.data_mss()).is_some()
    }
}
