//! Buffer auto-tuning.
//!
//! Send side, as Linux `tcp_new_space` / `tcp_sndbuf_expand`: when acknowledged data frees
//! space after the application found the buffer full, and the congestion window is not full,
//! the buffer (not the network) limited the sender; it grows to twice the congestion window
//! (room for a window in flight and the next one queued; cwnd may also be inflated in fast
//! recovery, RFC 5681 §3.2), up to `ConnConfig::max_send_buffer`. It never shrinks. The
//! growth is for data in flight: the application may queue at most the initial size of
//! bytes not yet sent (`Connection::send_room`).
//!
//! Receive side, as Linux `tcp_moderate_rcvbuf` ("dynamic right-sizing",
//! `tcp_rcv_space_adjust`): once per receiver-measured RTT, count the bytes the application
//! consumed; when that grew, size the buffer for about twice the per-RTT amount (plus room for
//! a sender still in slow start), up to `ConnConfig::max_recv_buffer`.
//!
//! The receiver's RTT comes from timestamps (the echo of our own TSval on arriving data,
//! Linux `tcp_rcv_rtt_measure_ts`), or without them from the time a window's worth of data
//! takes to arrive (`tcp_rcv_rtt_measure`). The ring grows by doubling, so a connection
//! reallocates it O(log(max / initial)) times, never per segment.

use core::time::Duration;

use super::{open, Connection};
use crate::cc::Controller;
use crate::wire::{Segment, SeqNum};
use crate::Instant;

/// Initial `space`: the initial window of a sender, in our segments (Linux `TCP_INIT_CWND`).
const INIT_SEGMENTS: u64 = 10;

/// Auto-tuning state (Linux `rcv_rtt_est` and `rcvq_space`). Held in a `Lazy`: allocated
/// by the first data, freed when the connection goes idle (the measurement then starts
/// afresh; the capacity it reached stays).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RcvSpace {
    /// The receiver's RTT estimate.
    rtt: Option<Duration>,
    /// Without timestamps: the measurement ends when RCV.NXT reaches this sequence number
    /// (a window after it started, at the instant kept beside it).
    rtt_mark: Option<(SeqNum, Instant)>,
    /// When the current per-RTT count started; `None` before the first segment of data.
    start: Option<Instant>,
    /// Bytes the application had consumed when it started.
    consumed_at_start: u64,
    /// Bytes consumed in the last RTT that grew the buffer (Linux `rcvq_space.space`).
    space: u64,
}

super::lazy::shared_default!(RcvSpace);

impl Connection {
    /// In-order data arrived: sample the receiver's RTT, then possibly grow the buffer.
    pub(crate) fn autotune_on_data(&mut self, now: Instant, seg: &Segment<'_>) {
        if self.recv_capacity() as u64 >= self.recv_growth_limit() {
            // Fixed-size buffers (or already at the limit, which never moves): there is
            // nothing to tune, so nothing to measure, and no state to allocate.
            return;
        }
        self.rcv_rtt_measure(now, seg);
        self.rcv_space_adjust(now);
    }

    /// The receive buffer's current capacity.
    pub(crate) fn recv_capacity(&self) -> usize {
        self.recv_buf.capacity()
    }

    /// Linux `tcp_rcv_rtt_measure_ts` (EWMA with gain 1/8 of full-sized segments' echoes),
    /// or `tcp_rcv_rtt_measure` without timestamps (the least time a window took to arrive).
    fn rcv_rtt_measure(&mut self, now: Instant, seg: &Segment<'_>) {
        if self.ts_recent.is_some() {
            let Some(ts) = seg.tcp.options.timestamps else { return };
            if ts.tsecr == 0 || (seg.payload.len() as u32) < self.rcv_mss {
                return;
            }
            let ms = open::ts_clock(now, self.ts_offset).wrapping_sub(ts.tsecr);
            let sample = Duration::from_millis(u64::from(ms.max(1)));
            if sample > self.cfg.max_rto {
                return; // an echo from the future, or not ours
            }
            let rtt = self.rcv_space.rtt.map_or(sample, |r| (r * 7 + sample) / 8);
            self.rcv_space.rtt = Some(rtt);
            return;
        }
        match self.rcv_space.rtt_mark {
            Some((seq, _)) if self.rcv_nxt < seq => return,
            Some((_, since)) => {
                let sample = now - since;
                self.rcv_space.rtt = Some(self.rcv_space.rtt.map_or(sample, |r| r.min(sample)));
            }
            None => {}
        }
        self.rcv_space.rtt_mark = Some((self.rcv_nxt + self.rcv_wnd().max(1), now));
    }

    /// Linux `tcp_rcv_space_adjust`, called on data arrival rather than on `read` (which
    /// has no clock here); the application's reads in between are what it counts.
    fn rcv_space_adjust(&mut self, now: Instant) {
        let consumed = self.recv_buf.consumed();
        let mss = u64::from(self.our_mss());
        let Some(start) = self.rcv_space.start else {
            self.rcv_space.start = Some(now);
            self.rcv_space.consumed_at_start = consumed;
            self.rcv_space.space = (self.recv_capacity() as u64).min(INIT_SEGMENTS * mss);
            return;
        };
        let Some(rtt) = self.rcv_space.rtt else { return };
        if now - start < rtt {
            return;
        }
        let copied = consumed - self.rcv_space.consumed_at_start;
        let space = self.rcv_space.space.max(1);
        // Under memory pressure the buffer holds its size (`budget.rs`).
        if copied > space && !self.mem.under_pressure() {
            // Twice a round trip's bytes, so the sender is not window-limited while one RTT
            // of data is being read, plus a cushion of 16 segments; and as the sender's rate
            // still rises (slow start), twice the relative growth on top.
            let mut win = 2 * copied + 16 * mss;
            win += 2 * (win * (copied - space) / space);
            self.grow_recv_buffer(win);
            self.rcv_space.space = copied;
        }
        self.rcv_space.start = Some(now);
        self.rcv_space.consumed_at_start = consumed;
    }

    /// Linux `tcp_new_space`: data was acknowledged; grow the send buffer when it, rather
    /// than the congestion window, held the sender back (`tcp_should_expand_sndbuf`).
    pub(crate) fn expand_send_buffer(&mut self) {
        let cap = self.send_buf.capacity();
        // Linux `tcp_should_expand_sndbuf`: never under memory pressure (`budget.rs`).
        if !self.send_buf.was_full() || cap >= self.cfg.max_send_buffer || self.mem.under_pressure()
        {
            return;
        }
        let cwnd = self.cc.window();
        if self.snd_max.since(self.snd_una) >= cwnd {
            return; // the congestion window is full: a bigger buffer would not send more
        }
        let segs = (cwnd / self.effective_mss().max(1)).max(self.cfg.initial_cwnd);
        let target = 2 * segs as usize * self.effective_mss() as usize;
        let new = target.min(self.cfg.max_send_buffer);
        if new > cap {
            tracing::trace!(from = cap, to = new, "send buffer grows");
            self.send_buf.grow(new);
        }
    }

    /// The largest the receive buffer may grow: `max_recv_buffer`, and no more than our
    /// window scale can advertise (RFC 7323 §2.3).
    fn recv_growth_limit(&self) -> u64 {
        (self.cfg.max_recv_buffer as u64).min(65_535u64 << self.rcv_wscale)
    }

    /// Grow the receive buffer to at least `target` bytes by doubling, never beyond
    /// `max_recv_buffer` nor beyond what our window scale can advertise (RFC 7323 §2.3).
    fn grow_recv_buffer(&mut self, target: u64) {
        let limit = self.recv_growth_limit();
        let cap = self.recv_capacity() as u64;
        let target = target.min(limit);
        if target <= cap {
            return;
        }
        let mut new = cap.max(1);
        while new < target {
            new *= 2;
        }
        let new = new.min(limit) as usize;
        tracing::trace!(from = cap, to = new, "receive buffer grows");
        self.recv_buf.grow(new);
    }
}
