//! The receiver's SACK blocks (RFC 2018 §4) and D-SACK (RFC 2883).
//!
//! The blocks come from the receive buffer's out-of-order ranges (bounded by the buffer
//! and `max_ooo_ranges`), ordered by recency: the range holding the most recently received
//! segment first, then those holding the segments received before it (remembered as up to
//! four sequence numbers, no allocation), then the remaining ranges from the highest down.
//! A duplicate segment is reported once, as the first block of the next ACK (RFC 2883 §4),
//! followed by the out-of-order range that holds it, if any.

use super::Connection;
use crate::wire::{SackBlock, SeqNum, TcpOptions};

/// Receiver-side SACK state. Held in a `Lazy`: allocated by the first out-of-order or
/// duplicate segment, freed when the connection goes idle.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SackRx {
    /// A sequence number inside each of the most recently received out-of-order segments,
    /// most recent first.
    recent: [SeqNum; 4],
    n_recent: u8,
    /// A duplicate to report as D-SACK on the next ACK.
    pub(crate) dsack: Option<(SeqNum, SeqNum)>,
}

super::lazy::shared_default!(SackRx);

impl SackRx {
    /// An out-of-order segment starting at `seq` was stored (RFC 2018 §4: its block goes
    /// first).
    pub(crate) fn note(&mut self, seq: SeqNum) {
        let n = usize::from(self.n_recent);
        let keep = self.recent[..n].iter().position(|&s| s == seq).unwrap_or(n.min(3));
        self.recent.copy_within(0..keep, 1);
        self.recent[0] = seq;
        self.n_recent = (self.n_recent.max(keep as u8 + 1)).min(4);
    }
}

impl Connection {
    /// A duplicate `[seq, end)` arrived: report it as D-SACK (RFC 2883 §4), and put the
    /// out-of-order range holding it second.
    pub(crate) fn note_duplicate(&mut self, seq: SeqNum, end: SeqNum) {
        if !self.sack_ok || seq >= end {
            return;
        }
        self.sack_rx.dsack = Some((seq, end));
        if seq >= self.rcv_nxt {
            self.sack_rx.note(seq);
        }
    }

    /// A segment `[seq, end)` beyond RCV.NXT is about to be stored: if the out-of-order
    /// ranges hold all of it already, it is a duplicate (RFC 2883 §4 example 4).
    pub(crate) fn note_ooo_arrival(&mut self, seq: SeqNum, end: SeqNum) {
        if !self.sack_ok || seq <= self.rcv_nxt {
            return;
        }
        let dup = self.recv_buf.ooo_range_holding(seq).is_some_and(|(_, e)| end <= e);
        if dup {
            self.note_duplicate(seq, end);
        } else {
            self.sack_rx.note(seq);
        }
    }

    /// Fill `o` with the SACK blocks to send, at most `max` of them (RFC 2018 §3: 3 beside
    /// timestamps, 4 without).
    pub(crate) fn sack_blocks(&self, o: &mut TcpOptions, max: usize) {
        o.sack_count = 0;
        if !self.sack_ok || max == 0 || self.nothing_to_sack() {
            return;
        }
        let max = max.min(4);
        let mut n = 0;
        // The D-SACK block may equal the range that follows it (RFC 2883 §4: the first
        // block inside the second marks a D-SACK); only SACK blocks are deduplicated.
        let first = usize::from(self.sack_rx.dsack.is_some());
        let mut push = |o: &mut TcpOptions, l: SeqNum, r: SeqNum| {
            let b = SackBlock { left: l, right: r };
            if n < max && !o.sack_blocks[first.min(n)..n].contains(&b) {
                o.sack_blocks[n] = b;
                n += 1;
            }
        };
        if let Some((l, r)) = self.sack_rx.dsack {
            push(o, l, r);
        }
        for &seq in &self.sack_rx.recent[..usize::from(self.sack_rx.n_recent)] {
            if let Some((l, r)) = self.recv_buf.ooo_range_holding(seq) {
                push(o, l, r);
            }
        }
        // The highest ranges fill what is left: `max` new blocks at most, besides the (up to
        // four) recent ones they may repeat.
        for &(l, r) in self.recv_buf.ooo_ranges().iter().rev().take(max + 4) {
            push(o, l, r);
        }
        o.sack_count = n as u8;
    }

    /// No out-of-order data and no D-SACK to report: no SACK block (the case of every
    /// in-order segment, checked for each one sent).
    pub(super) fn nothing_to_sack(&self) -> bool {
        !self.recv_buf.has_ooo() && self.sack_rx.allocated().is_none_or(|r| r.dsack.is_none())
    }

    /// Bytes of SACK option the next segment would carry (for sizing new data so that
    /// payload plus options stay within the MSS, as Linux `tcp_current_mss`).
    pub(crate) fn sack_option_len(&self) -> u32 {
        if !self.sack_ok || self.nothing_to_sack() {
            return 0;
        }
        let blocks = self.recv_buf.ooo_ranges().len() + usize::from(self.sack_rx.dsack.is_some());
        let max = if self.ts_recent.is_some() { 3 } else { 4 };
        4 + 8 * blocks.min(max) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_04_recency_order() {
        let mut r = SackRx::default();
        for s in [10, 20, 30, 20, 40, 50] {
            r.note(SeqNum(s));
        }
        assert_eq!(r.recent, [SeqNum(50), SeqNum(40), SeqNum(20), SeqNum(30)]);
        assert_eq!(r.n_recent, 4);
    }
}
