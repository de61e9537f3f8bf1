//! SACK-based loss recovery (RFC 6675) with RACK-TLP loss detection (RFC 8985) and
//! Proportional Rate Reduction (RFC 6937), used whenever SACK was negotiated (RFC 2018);
//! NewReno (RFC 6582, in `input.rs`) remains the fallback without it.
//!
//! - Every ACK updates the [`Scoreboard`] (cumulative ACK, then the SACK blocks, D-SACK
//!   detected per RFC 2883 §4), then RACK (RFC 8985 §6.2): the most recently sent delivered
//!   segment sets `RACK.xmit_ts`/`end_seq`/`rtt`, and every unSACKed segment sent before it
//!   is lost once `RACK.rtt + RACK.reo_wnd` has passed since its transmission; the
//!   reordering timer (§6.3) fires for those that must still wait. `reo_wnd` is
//!   `min_rtt / 4` (times a multiplier raised by D-SACKs, §6.2 step 4), bounded by SRTT,
//!   and zero while no reordering has been seen once three segments are SACKed or during
//!   recovery.
//! - The first loss starts recovery (RFC 6675 §5 step 4): the controller reduces
//!   (`on_loss` with the flight size), `RecoveryPoint = SND.MAX`, and PRR (RFC 6937 §3,
//!   PRR-SSRB) meters what may be sent per ACK: lost segments first (RFC 6675 §5
//!   `NextSeg()` rule 1, in sequence order), then new data. Recovery ends when SND.UNA
//!   passes the recovery point; a loss RACK found during it beyond the recovery point and
//!   still not delivered then starts the next episode at once (RFC 5681 §4.3).
//! - The tail loss probe (RFC 8985 §7): with data outstanding and no recovery under way,
//!   `PTO = 2 SRTT` (plus the worst-case delayed ACK, 200 ms, when one segment is in
//!   flight; 1 s without an RTT sample), re-armed at each transmission of new data and each
//!   ACK, never later than the RTO. It sends one new segment if the windows allow, else
//!   the last segment again, so that a lost tail elicits SACKs instead of a timeout.
//! - A retransmission timeout clears every SACK mark (the peer may have reneged, RFC 2018
//!   §8) and marks every segment lost: they are resent in sequence order as the congestion
//!   window allows (no go-back-N of SND.NXT; SACKs arriving meanwhile spare what they cover).
//!
//! Deviations kept for simplicity: the TLP loss-detection congestion response of RFC 8985
//! §7.4 is not implemented (a tail loss repaired by the probe alone leaves cwnd as is);
//! `min_rtt` is the minimum over the connection's life, not a windowed filter.

use core::time::Duration;

use super::rate::TxSnap;
use super::scoreboard::{Delivered, Scoreboard};
use super::timers::Timer;
use super::{Connection, State};
use crate::cc::Controller;
use crate::wire::{Segment, SeqNum};
use crate::Instant;

/// RFC 8985 §7.2 `WCDelAckT`: the worst-case delayed-ACK time.
const WC_DEL_ACK: Duration = Duration::from_millis(200);

/// Slack added to a multi-segment flight's PTO, as Linux (`TCP_TIMEOUT_MIN_US`, 2 ms, in
/// `tcp_schedule_loss_probe`): on sub-millisecond paths 2·SRTT alone is shorter than the
/// scheduling delays of the hosts, and the probe fires while the ACKs are merely late (a
/// TUN bench saw 50-170 spurious probes per GiB, each answered by a DSACK).
const PTO_SLACK: Duration = Duration::from_millis(2);

/// Sender state of SACK recovery, RACK, TLP and PRR. Held in a `Lazy`: allocated when a
/// transfer first changes it, freed when the connection goes idle (`release.rs`).
#[derive(Debug)]
pub(crate) struct SackTx {
    /// Always present (its ring grows on demand); used when SACK is negotiated.
    pub(crate) sb: Option<Scoreboard>,
    // RACK (RFC 8985 §6.1).
    rack_xmit: Option<Instant>,
    rack_end: SeqNum,
    /// `RACK.rtt` in microseconds (kept as the clock's unit: no conversion per ACK).
    rack_rtt_us: u64,
    /// RACK's minimum RTT in microseconds, [`NO_RTT`] before the first sample.
    min_rtt_us: u64,
    reordering_seen: bool,
    /// RFC 8985 §6.2 step 4: `RACK.reo_wnd_mult`, `RACK.reo_wnd_persist` and
    /// `RACK.dsack_round` (the reordering window grows once per round trip with a D-SACK,
    /// and falls back after 16 recoveries without one).
    reo_wnd_mult: u8,
    reo_wnd_persist: u8,
    dsack_round: Option<SeqNum>,
    // PRR (RFC 6937 §3).
    prr_delivered: u32,
    prr_out: u32,
    recover_fs: u32,
    /// Bytes PRR lets us send now.
    pub(crate) sndcnt: u32,
    // TLP (RFC 8985 §7).
    pub(crate) tlp_due: bool,
    tlp_end: Option<SeqNum>,
    /// Our FIN first left in a segment of its own, after all the data (Linux: its own skb).
    pub(crate) fin_alone: bool,
    /// Since a retransmission timeout, until SND.UNA passes the point it was at.
    pub(crate) after_rto: bool,
    /// A SACK recovery episode was entered and its end not yet handled.
    episode_open: bool,
}

impl Default for SackTx {
    fn default() -> Self {
        SackTx {
            sb: Some(Scoreboard::new()),
            rack_xmit: None,
            rack_end: SeqNum::default(),
            rack_rtt_us: 0,
            min_rtt_us: NO_RTT,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            dsack_round: None,
            prr_delivered: 0,
            prr_out: 0,
            recover_fs: 0,
            sndcnt: 0,
            tlp_due: false,
            tlp_end: None,
            fin_alone: false,
            after_rto: false,
            episode_open: false,
        }
    }
}

super::lazy::shared_default!(SackTx);

/// RFC 8985 §6.2 step 4: recoveries without a D-SACK before the reordering window falls
/// back (`RACK.reo_wnd_persist`).
const REO_WND_PERSIST: u8 = 16;

/// Largest `RACK.reo_wnd_mult`: the window is at most SRTT anyway, and 8 × min_RTT / 4 is
/// two minimum RTTs.
const REO_WND_MULT_MAX: u8 = 8;

/// Lower bound of RACK's wait (RTT + reordering window): one clock tick (RFC 6298 §2's G).
const RACK_MIN_WAIT: Duration = Duration::from_millis(1);

/// `SackTx::min_rtt_us` before the first RTT sample (no clock difference reaches it).
const NO_RTT: u64 = u64::MAX;

impl Connection {
    /// SACK is negotiated and the scoreboard exists.
    pub(crate) fn sack_active(&self) -> bool {
        self.sack_ok && self.sack_tx.sb.is_some()
    }

    /// RFC 6675 `pipe` in bytes, as Linux counts it: outstanding, less SACKed, less lost
    /// and not yet resent.
    pub(crate) fn sack_pipe(&self) -> u32 {
        let Some(sb) = &self.sack_tx.sb else { return 0 };
        let out = sb.sacked_bytes + sb.lost_bytes + sb.partial_bytes;
        self.snd_max.since(self.snd_una).saturating_sub(out)
    }

    /// Bytes the congestion controller lets us send now: PRR during recovery, else
    /// `cwnd - pipe`.
    pub(crate) fn sack_budget(&self) -> u32 {
        if self.recovery.active && !self.cc.owns_recovery() {
            return self.sack_tx.sndcnt;
        }
        let flight = if self.snd_nxt < self.snd_max {
            // Rewound after a path MTU drop: resent in sequence order.
            self.snd_nxt.since(self.snd_una)
        } else {
            self.sack_pipe()
        };
        self.cc.window().saturating_sub(flight)
    }

    /// Something for the SACK path to send (a lost segment within the budget, or a probe).
    pub(crate) fn sack_wants_transmit(&self) -> bool {
        self.sack_active()
            && self.sends_data()
            && (self.sack_tx.tlp_due || self.sack_retransmit_range().is_some())
    }

    /// The next lost range to resend, if the budget allows: `(seq, len, fin)`.
    pub(crate) fn sack_retransmit_range(&self) -> Option<(SeqNum, u32, bool)> {
        let sb = self.sack_tx.sb.as_ref()?;
        let (_, seq, end) = sb.next_lost()?;
        let budget = self.sack_budget();
        if budget == 0 {
            return None;
        }
        Some(self.range_segment(seq, end))
    }

    /// The segment resending `[seq, end)` (or its first MSS): data, and FIN if it reaches it.
    fn range_segment(&self, seq: SeqNum, end: SeqNum) -> (SeqNum, u32, bool) {
        let data_end = self.data_start() + self.send_buf.len() as u32;
        let seq = seq.max(self.snd_una);
        let data = end.min(data_end).since(seq.min(data_end));
        let len = data.min(self.data_mss());
        let fin = self.fin_queued && seq + len == data_end && end > data_end;
        (seq, len, fin)
    }

    /// What the SACK path sends next, before new data: a due tail loss probe, or a lost
    /// segment (RFC 6675 §5 `NextSeg()` rule 1). `new_data` is the next new segment, if any.
    pub(crate) fn sack_next_segment(
        &mut self,
        now: Instant,
        new_data: Option<(SeqNum, u32, bool)>,
    ) -> Option<(SeqNum, u32, bool)> {
        if !self.sack_active() || !self.sends_data() {
            return None;
        }
        if let Some(r) = self.sack_retransmit_range() {
            self.sack_tx.tlp_due = false;
            return Some(r);
        }
        if self.sack_tx.tlp_due {
            self.sack_tx.tlp_due = false;
            if self.snd_una == self.snd_max || self.recovery.active {
                return None;
            }
            // RFC 8985 §7.3: new data if the windows allow, else the last segment again.
            self.info.cold.tlp_probes += 1;
            self.sack_tx.tlp_end = Some(self.snd_max);
            self.timers.set(Timer::Retransmit, self.rtt.rto_after(now));
            if let Some((seq, len, fin)) = new_data.or_else(|| self.tlp_new_data()) {
                // One segment, even where the device could take a super-segment.
                let mss = self.data_mss();
                return Some(if len > mss { (seq, mss, false) } else { (seq, len, fin) });
            }
            let last = *self.sack_tx.sb.as_ref()?.last()?;
            let mss = self.data_mss();
            let data_end = self.data_start() + self.send_buf.len() as u32;
            if self.sack_tx.fin_alone && self.snd_max > data_end {
                // The last segment sent was the bare FIN: probe with it alone, as Linux
                // (its last skb is the FIN's).
                return Some(self.range_segment(data_end, self.snd_max));
            }
            let tail_data = last.end.min(data_end);
            let start =
                if tail_data.since(last.start) > mss { tail_data - mss } else { last.start };
            return Some(self.range_segment(start, last.end));
        }
        None
    }

    /// New data a tail loss probe may send though cwnd is full: RFC 8985 §7.3 asks only
    /// that the receive window allow it (Linux `tcp_send_loss_probe` ignores cwnd too).
    fn tlp_new_data(&self) -> Option<(SeqNum, u32, bool)> {
        if self.snd_nxt != self.snd_max {
            return None;
        }
        let data_end = self.data_start() + self.send_buf.len() as u32;
        let wnd_end = self.snd_una + self.snd_wnd;
        if data_end <= self.snd_nxt || wnd_end <= self.snd_nxt {
            return None;
        }
        let len = data_end.since(self.snd_nxt).min(wnd_end.since(self.snd_nxt));
        Some((self.snd_nxt, len.min(self.data_mss()), false))
    }

    /// Bookkeeping for every data segment sent (`send_data`): the scoreboard, PRR's
    /// `prr_out`, the retransmission counters and the loss probe timer. Inlined into its one
    /// caller: the call and its register saves cost ~35 instructions a segment (callgrind).
    /// `mss` is [`Connection::data_mss`], which the caller has at hand.
    #[inline(always)]
    pub(crate) fn on_data_sent(
        &mut self,
        now: Instant,
        (seq, end): (SeqNum, SeqNum),
        retx: bool,
        mss: u32,
    ) {
        if retx {
            if self.sack_tx.after_rto {
                self.info.cold.rto_retransmits += 1;
            } else {
                self.info.cold.fast_retransmits_segs += 1;
            }
        }
        let sampling = self.rate_sampling();
        if !self.sack_active() && !sampling {
            return;
        }
        let len = end.since(seq);
        let snap = if sampling {
            // C.inflight before and after this transmission (a retransmission was not in
            // the pipe; new data already is, SND.MAX having moved).
            let pipe = self.sack_pipe();
            let (before, after) = if retx {
                (pipe, pipe.saturating_add(len))
            } else {
                (pipe.saturating_sub(len), pipe)
            };
            self.rate_on_sent(now, before, after)
        } else {
            TxSnap::ZERO
        };
        let sack = self.sack_active();
        let Some(sb) = self.sack_tx.sb.as_mut() else { return };
        if retx {
            sb.retransmitted(seq, end, now, snap);
            if sack && seq == self.snd_una && !self.sack_tx.after_rto {
                // As Linux (tcp_xmit_retransmit_queue): resending the head restarts the RTO,
                // so that RACK has an RTT to detect a lost retransmission before it fires.
                self.timers.set(Timer::Retransmit, self.rtt.rto_after(now));
            }
        } else {
            // One entry per segment, also for a super-segment the device cuts up (GSO), so
            // SACK blocks and RACK keep their per-segment resolution.
            let mut at = seq;
            while end > at {
                let next = if end.since(at) > mss { at + mss } else { end };
                sb.push(at, next, now, snap);
                at = next;
            }
        }
        if !sack {
            return; // the entries only serve the rate sampler
        }
        if self.recovery.active {
            self.sack_tx.prr_out = self.sack_tx.prr_out.saturating_add(len);
            self.sack_tx.sndcnt = self.sack_tx.sndcnt.saturating_sub(len.max(1));
        }
        if !retx {
            self.arm_tlp(now, true);
        }
    }

    /// RFC 8985 §7.2: arm the probe timeout, restarting a running one if `restart`. Inlined
    /// (it runs for every segment of new data and every ACK; a call costs ~25 instructions).
    #[inline(always)]
    fn arm_tlp(&mut self, now: Instant, restart: bool) {
        let outstanding = self.snd_max.since(self.snd_una);
        if outstanding == 0
            || self.recovery.active
            || self.sack_tx.after_rto
            || self.sack_tx.tlp_end.is_some()
            || !self.state.is_synchronized()
        {
            self.timers.stop(Timer::LossProbe);
            return;
        }
        if !restart && self.timers.get(Timer::LossProbe).is_some() {
            return;
        }
        // In nanoseconds, then whole microseconds as `Instant + Duration` counts them: this
        // runs for every segment of new data.
        let pto_ns = match self.rtt.srtt_nanos() {
            Some(srtt) => {
                let slack =
                    if outstanding <= self.effective_mss() { WC_DEL_ACK } else { PTO_SLACK };
                srtt.saturating_mul(2).saturating_add(slack.as_nanos() as u64)
            }
            None => 1_000_000_000,
        };
        let probe_at = Instant::from_micros(now.as_micros().saturating_add(pto_ns / 1000));
        let rto_at = self.timers.get(Timer::Retransmit).unwrap_or_else(|| self.rtt.rto_after(now));
        self.timers.set(Timer::LossProbe, probe_at.min(rto_at));
    }

    /// The probe timeout fired (RFC 8985 §7.3).
    pub(crate) fn on_loss_probe(&mut self) {
        if self.sack_active() && !self.recovery.active && self.snd_max != self.snd_una {
            self.sack_tx.tlp_due = true;
        }
    }

    /// RFC 8985 §6.3: the reordering timer fired.
    pub(crate) fn on_reorder_timeout(&mut self, now: Instant) {
        if self.sack_active() {
            self.rack_detect_loss(now);
        }
    }

    /// Everything an acceptable ACK tells the SACK machinery (after SND.UNA moved by
    /// `acked` bytes).
    #[inline]
    pub(crate) fn sack_on_ack(&mut self, now: Instant, seg: &Segment<'_>, acked: u32) {
        // A receiver's ACK (nothing newly acknowledged, no SACK blocks) while the state is
        // unallocated and no recovery runs: every test below finds nothing to do, each
        // through the shared default. Decided here, inline, on every segment of a receiver.
        if acked == 0
            && seg.tcp.options.sack_count == 0
            && !self.recovery.active
            && !self.sack_tx.is_allocated()
        {
            return;
        }
        self.sack_on_ack_general(now, seg, acked);
    }

    /// [`Connection::sack_on_ack`] in general.
    fn sack_on_ack_general(&mut self, now: Instant, seg: &Segment<'_>, acked: u32) {
        let (una, max) = (self.snd_una, self.snd_max);
        if self.sack_tx.after_rto && una >= self.recovery.recover {
            self.sack_tx.after_rto = false;
            self.rack_recovery_done();
        }
        if !self.sack_active() {
            if acked > 0 && self.rate_sampling() {
                // Without SACK the entries serve the rate sampler alone (cumulative ACKs).
                let mut d = Delivered::default();
                if let Some(sb) = self.sack_tx.sb.as_mut() {
                    sb.cum_ack(una, &mut d);
                }
                let newest = d.latest.map(|(x, _, r)| (x, d.latest_snap, r));
                self.rate_on_ack(now, acked, newest, 0);
            }
            return;
        }
        if self.sack_tx.tlp_end.is_some_and(|e| una >= e) || self.recovery.active {
            self.sack_tx.tlp_end = None;
        }
        if !self.sack_tx.is_allocated() && seg.tcp.options.sacks().is_empty() {
            return; // nothing sent since the state was last freed, nothing reported
        }
        let mut d = Delivered::default();
        let tx = &mut *self.sack_tx;
        let sb = tx.sb.as_mut().expect("sack_active");
        sb.cum_ack(una, &mut d);
        let blocks = seg.tcp.options.sacks();
        let mut work = 0u32;
        // RFC 8985 §6.2 step 4: a round trip with a D-SACK ends when SND.UNA passes the
        // SND.NXT of its first one.
        if tx.dsack_round.is_some_and(|r| una >= r) {
            tx.dsack_round = None;
        }
        for (i, b) in blocks.iter().enumerate() {
            // RFC 2883 §4: a first block below the cumulative ACK, or inside the second
            // block, reports a duplicate.
            let dsack = i == 0
                && (b.right <= seg.tcp.ack
                    || blocks.get(1).is_some_and(|c| c.left <= b.left && b.right <= c.right));
            if dsack && b.left < b.right {
                self.info.cold.dsacks_in += 1;
                // RFC 8985 §6.2 step 4: a D-SACK shows a spurious retransmission (maybe
                // reordering): widen the reordering window by min_RTT / 4, once per round
                // trip. Only step 3 (a never-resent segment delivered below one SACKed
                // before) sets `reordering_seen`: a window grown on D-SACKs that never
                // decayed kept every loss waiting a whole SRTT more for the rest of the
                // connection (BBR-01).
                if tx.dsack_round.is_none() {
                    tx.dsack_round = Some(self.snd_nxt);
                    tx.reo_wnd_mult = (tx.reo_wnd_mult + 1).min(REO_WND_MULT_MAX);
                    tx.reo_wnd_persist = REO_WND_PERSIST;
                }
                continue;
            }
            // Bogus blocks are ignored: reversed, empty, beyond SND.MAX, or below SND.UNA.
            if b.left >= b.right || b.right > max || b.right <= una {
                self.info.cold.sack_blocks_ignored += 1;
                continue;
            }
            if b.right.since(b.left.max(una)) > max.since(una) {
                self.info.cold.sack_blocks_ignored += 1;
                continue;
            }
            work += sb.sack(b.left.max(una), b.right, &mut d);
        }
        sb.max_work = sb.max_work.max(work);
        // RFC 8985 §6.2 step 2: the most recently sent delivered segment.
        if let Some((xmit, end, retx)) = d.latest {
            // In the clock's microseconds, as `now - xmit` (saturating) would give them.
            let rtt = now.as_micros().saturating_sub(xmit.as_micros());
            // Step 1: a retransmitted segment acknowledged sooner than min_rtt was
            // probably the original's ACK; it gives no RACK update (`NO_RTT` exceeds
            // every sample, so the test fails while there is none).
            let ambiguous =
                retx && self.sack_tx.min_rtt_us != NO_RTT && rtt < self.sack_tx.min_rtt_us;
            if !ambiguous {
                if !retx {
                    self.sack_tx.min_rtt_us = self.sack_tx.min_rtt_us.min(rtt);
                }
                let newer = self
                    .sack_tx
                    .rack_xmit
                    .is_none_or(|x| xmit > x || (xmit == x && end > self.sack_tx.rack_end));
                if newer {
                    self.sack_tx.rack_xmit = Some(xmit);
                    self.sack_tx.rack_end = end;
                    self.sack_tx.rack_rtt_us = rtt;
                }
            }
        }
        if d.reordered {
            self.sack_tx.reordering_seen = true; // RFC 8985 §6.2 step 3
        }
        let delivered = acked.saturating_add(d.sacked);
        if self.recovery.active {
            self.sack_tx.prr_delivered = self.sack_tx.prr_delivered.saturating_add(delivered);
        }
        let sacked = self.sack_tx.sb.as_ref().map_or(0, |s| s.sacked_bytes);
        let mut newly_lost = 0;
        if sacked > 0 || self.recovery.active || d.latest.is_some() {
            newly_lost = self.rack_detect_loss(now);
        }
        if self.sack_tx.episode_open && !self.recovery.active {
            self.sack_tx.episode_open = false;
            self.rack_recovery_done();
            self.loss_outlives_episode(now);
        }
        if self.recovery.active {
            self.prr_update(delivered);
        }
        if self.rate_sampling() {
            // draft-ietf-ccwg-bbr §4.1.2.3: what this ACK newly delivered (the cumulative
            // ACK less what was SACKed before, plus the new SACKs) and its newest packet.
            let newly = if d.bytes > 0 || d.latest.is_some() {
                d.bytes
            } else {
                acked.saturating_sub(d.cum_sacked).saturating_add(d.sacked)
            };
            let newest = d.latest.map(|(x, _, r)| (x, d.latest_snap, r));
            self.rate_on_ack(now, newly, newest, newly_lost);
        }
        // RFC 8985 §7.2: only an ACK that cumulatively acknowledges new data restarts it.
        self.arm_tlp(now, acked > 0);
    }

    /// RFC 8985 §6.2 step 4: a fast or RTO recovery ended; after `REO_WND_PERSIST` of them
    /// without a D-SACK the reordering window falls back to min_RTT / 4.
    fn rack_recovery_done(&mut self) {
        let tx = &mut *self.sack_tx;
        tx.reo_wnd_persist = tx.reo_wnd_persist.saturating_sub(1);
        if tx.reo_wnd_persist == 0 {
            tx.reo_wnd_mult = 1;
        }
    }

    /// RFC 8985 §6.2 step 4: the reordering window.
    fn reo_wnd(&self) -> Duration {
        let sacked = self.sack_tx.sb.as_ref().map_or(0, |s| s.sacked_bytes);
        if !self.sack_tx.reordering_seen
            && (self.recovery.active || sacked >= 3 * self.effective_mss())
        {
            return Duration::ZERO;
        }
        let min_rtt = self.sack_min_rtt().unwrap_or_default();
        let wnd = min_rtt / 4 * u32::from(self.sack_tx.reo_wnd_mult.max(1));
        self.rtt.srtt().map_or(wnd, |s| wnd.min(s))
    }

    /// RFC 8985 §6.2 step 5 and §6.3; enters recovery (RFC 6675 §5 step 4) on a new loss.
    /// Returns the bytes newly marked lost, each entry reported to a rate-sampling
    /// controller (draft-ietf-ccwg-bbr §5.2.4).
    #[inline(always)]
    fn rack_detect_loss(&mut self, now: Instant) -> u32 {
        let Some(rack_xmit) = self.sack_tx.rack_xmit else { return 0 };
        if self.sack_tx.sb.as_ref().is_some_and(|sb| sb.len() == 0) {
            // Nothing outstanding (the common case of an ACK of everything sent): nothing
            // can be lost or wait for the reordering window, whatever the RTT and window
            // (computed below with divisions on every ACK otherwise).
            self.timers.stop(Timer::Reorder);
            return 0;
        }
        self.rack_scan(now, rack_xmit)
    }

    /// [`Connection::rack_detect_loss`] with entries outstanding: the scoreboard scan.
    fn rack_scan(&mut self, now: Instant, rack_xmit: Instant) -> u32 {
        // Never below the clock granularity: a segment (re)sent at this instant cannot be
        // judged lost at this instant (with a zero RTT, as on a loopback, it would be resent
        // again and again without time passing).
        let rack_rtt = Duration::from_micros(self.sack_tx.rack_rtt_us);
        let wait = (rack_rtt + self.reo_wnd()).max(RACK_MIN_WAIT);
        let end = self.sack_tx.rack_end;
        let sampling = self.rate_sampling();
        let (mss, has_sack) = (self.effective_mss(), self.sack_active());
        let mut newly_lost = 0u32;
        let Connection { sack_tx, rate, cc, .. } = self;
        let Some(sb) = sack_tx.sb.as_mut() else { return 0 };
        let (marked, timeout) = sb.rack_detect(now, rack_xmit, end, wait, |e| {
            if sampling {
                let lost = Connection::rate_on_lost(rate, cc, e, now, mss, has_sack);
                newly_lost = newly_lost.saturating_add(lost);
            }
        });
        let lost = sb.lost_bytes;
        if marked > 0 {
            // Only when there is something to count: the cold counters are allocated on
            // their first change, and most ACKs mark nothing.
            self.info.cold.rack_marked_lost += u64::from(marked);
        }
        match timeout {
            Some(t) => self.timers.set(Timer::Reorder, now + t),
            None => self.timers.stop(Timer::Reorder),
        }
        if lost > 0 && !self.recovery.active && !self.sack_tx.after_rto {
            self.enter_sack_recovery(now);
        }
        newly_lost
    }

    /// The recovery episode just ended (SND.UNA passed RecoveryPoint). A segment sent after
    /// RecoveryPoint that RACK found lost during the episode was resent within it, so it no
    /// longer counts in `lost_bytes`; if it is still unacknowledged, it is a loss in the
    /// next window of data and starts a new episode with its own reduction. RFC 5681 §4.3:
    /// losses in two successive windows of data are two congestion indications, cwnd and
    /// ssthresh MUST be lowered twice; RFC 6675 §5: a new recovery may start once the
    /// cumulative ACK passes RecoveryPoint. Linux does the same: on leaving recovery,
    /// `tcp_time_to_recover` sees `lost_out` (marked lost, resent or not, not yet
    /// delivered) and re-enters it at once.
    fn loss_outlives_episode(&mut self, now: Instant) {
        let Some(sb) = self.sack_tx.sb.as_ref() else { return };
        if !self.recovery.active && !self.sack_tx.after_rto && sb.lost_undelivered() {
            self.enter_sack_recovery(now);
        }
    }

    /// RFC 6675 §5 step 4 with RFC 6937 §3 initialisation.
    fn enter_sack_recovery(&mut self, now: Instant) {
        let flight = self.snd_max.since(self.snd_una);
        let mss = self.effective_mss();
        // The reduction is from what cwnd allowed in flight, not from SND.MAX - SND.UNA:
        // while RACK waits out RTT + reo_wnd, every SACK lets a new segment out (RFC 6675
        // §5 step 2, pipe-based limited transmit), so SND.MAX - SND.UNA grows past cwnd by
        // the SACKed bytes. RFC 3042 §2: segments sent on duplicate ACKs beyond cwnd MUST
        // NOT count in the FlightSize that sets ssthresh (the NewReno path's
        // `flight_at_dup`); Linux CUBIC likewise takes β × cwnd. The smaller FlightSize
        // of an application-limited sender still applies (RFC 9438 §4.6).
        if !self.ecn_end_for_recovery() {
            self.cc.on_loss(now, flight.min(self.cc.window()), mss);
        }
        self.recovery.active = true;
        self.sack_tx.episode_open = true;
        self.recovery.recover = self.snd_max;
        self.recovery.inflation = 0;
        self.sack_tx.prr_delivered = 0;
        self.sack_tx.prr_out = 0;
        self.sack_tx.recover_fs = flight.max(1);
        self.sack_tx.tlp_end = None;
        self.timers.stop(Timer::LossProbe);
        self.info.cold.fast_retransmits += 1;
        self.prr_update(0);
        tracing::trace!(una = self.snd_una.0, "SACK recovery");
    }

    /// RFC 6937 §3.1: how much may be sent in response to this ACK (PRR-SSRB).
    fn prr_update(&mut self, delivered: u32) {
        let s = &self.sack_tx;
        let pipe = u64::from(self.sack_pipe());
        let ssthresh = u64::from(self.cc.ssthresh());
        let mss = u64::from(self.effective_mss());
        let (prr_delivered, prr_out) = (u64::from(s.prr_delivered), u64::from(s.prr_out));
        let sndcnt = if pipe > ssthresh {
            // Proportional: CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out.
            (prr_delivered * ssthresh).div_ceil(u64::from(s.recover_fs)).saturating_sub(prr_out)
        } else {
            // Slow-start reduction bound.
            let limit = prr_delivered.saturating_sub(prr_out).max(u64::from(delivered)) + mss;
            (ssthresh - pipe).min(limit)
        };
        // The fast retransmit itself always goes out (RFC 6937 §3.1 notes).
        let sndcnt = if prr_out == 0 { sndcnt.max(mss) } else { sndcnt };
        self.sack_tx.sndcnt = sndcnt.min(u64::from(u32::MAX)) as u32;
    }

    /// RFC 6298 §5 with SACK: clear the scoreboard's SACK marks (reneging, RFC 2018 §8) and
    /// mark everything lost. Returns false when the scoreboard cannot drive the resend (it
    /// does not cover `[SND.UNA, SND.MAX)`): then go-back-N it is.
    pub(crate) fn sack_on_rto(&mut self) -> bool {
        self.timers.stop(Timer::LossProbe);
        self.timers.stop(Timer::Reorder);
        let (una, max) = (self.snd_una, self.snd_max);
        let s = &mut self.sack_tx;
        s.tlp_due = false;
        s.tlp_end = None;
        s.rack_xmit = None;
        s.after_rto = true;
        s.episode_open = false;
        let Some(sb) = s.sb.as_mut() else { return false };
        if !self.sack_ok {
            // Entries kept for the rate sampler alone: go-back-N resends.
            sb.clear();
            return false;
        }
        let covers = sb.len() > 0
            && sb.get(0).start == una
            && sb.last().is_some_and(|e| e.end == max)
            && self.state.is_synchronized()
            && self.snd_nxt == max;
        if !covers {
            sb.clear();
            return false;
        }
        let lost_before = sb.lost_bytes;
        sb.mark_all_lost();
        let newly_lost = sb.lost_bytes.saturating_sub(lost_before);
        if self.cc.wants_rate_samples() {
            self.rate.lost += u64::from(newly_lost);
        }
        true
    }

    /// RACK's minimum RTT (RFC 8985 §6.2 step 1), the `C.min_rtt` of the rate sampler.
    pub(crate) fn sack_min_rtt(&self) -> Option<Duration> {
        let m = self.sack_tx.min_rtt_us;
        (m != NO_RTT).then(|| Duration::from_micros(m))
    }

    /// Payload bytes per new segment: the MSS less the options every segment carries and
    /// the SACK blocks we are reporting (Linux `tcp_current_mss`).
    pub(crate) fn data_mss(&self) -> u32 {
        self.effective_mss().saturating_sub(self.sack_option_len()).max(1)
    }

    /// Scoreboard entries, their most per-ACK work, for `TcpInfo`.
    pub(crate) fn scoreboard_stats(&self) -> (usize, u32) {
        self.sack_tx.sb.as_ref().map_or((0, 0), |s| (s.len(), s.max_work))
    }

    /// States in which data segments go out.
    pub(crate) fn sends_data(&self) -> bool {
        matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        ) || self.fast_open_child_sends()
    }
}
