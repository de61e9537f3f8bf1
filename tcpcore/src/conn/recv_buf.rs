//! The receive buffer: a fixed ring holding in-order unread bytes, followed by out-of-order
//! bytes at their final positions. The out-of-order assembler is bounded in bytes by the
//! ring and in ranges (holes) by the buffer too: one range per [`OOO_RANGE_CHARGE`] bytes of
//! it, as Linux charges every queued out-of-order segment (its `truesize`) against the
//! receive buffer, and by `max_ooo_ranges` when configured lower. The next in-order segment
//! is always accepted because it never needs a new range (RFC 9293 §3.10.7.4 seventh step;
//! RX-09, SEC-05).

use crate::wire::SeqNum;

/// Receive-buffer bytes each out-of-order range is charged: a 4 MiB buffer holds up to 4096
/// ranges. A sender's holes are each followed by at least one full segment, so a buffer of
/// full-sized segments never runs out of ranges before it runs out of bytes (1 % loss on a
/// 1 Gbit/s × 100 ms path makes ~86 holes per round trip); a peer sending tiny segments
/// with holes between them is held to what Linux would keep of them (each such segment
/// costs an skb of about this size there).
pub(crate) const OOO_RANGE_CHARGE: usize = 1024;

/// Ranges any buffer may hold, however small (below 32 KiB the charge would allow fewer).
pub(crate) const OOO_MIN_RANGES: usize = 32;

/// Ranges the list first allocates room for; it grows by doubling from there.
const OOO_INITIAL_RANGES: usize = 16;

/// Ring buffer plus out-of-order ranges.
#[derive(Debug)]
pub(crate) struct RecvBuf {
    /// Storage, grown on demand up to `cap` (see `ring`).
    buf: Box<[u8]>,
    /// Logical capacity: what windows and limits use.
    cap: usize,
    /// Bytes the ring may hold beyond `cap` at least (see [`RecvBuf::limit`]).
    min_slack: usize,
    /// Index of the first unread byte.
    head: usize,
    /// In-order bytes not yet read by the application.
    unread: usize,
    /// Out-of-order ranges `[start, end)` beyond RCV.NXT, sorted and disjoint, not adjacent.
    /// Allocated by the first out-of-order segment (so that a connection without reordering
    /// or loss never pays for it) and grown as holes need.
    ooo: Vec<(SeqNum, SeqNum)>,
    /// The configured cap on ranges (`max_ooo_ranges`), below the buffer's own.
    max_ranges: usize,
    /// Bytes the application has consumed over the connection's life (Linux `copied_seq`).
    consumed: u64,
}

/// What storing a segment did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    /// In order: RCV.NXT advances by this many bytes (including reassembled ones).
    Advanced(u32),
    /// Held out of order.
    OutOfOrder,
    /// Dropped: it would need more out-of-order ranges than allowed.
    Dropped,
}

impl RecvBuf {
    pub(crate) fn new(capacity: usize, max_ranges: usize) -> Self {
        RecvBuf {
            buf: Box::default(),
            cap: capacity.max(1),
            min_slack: 0,
            head: 0,
            unread: 0,
            ooo: Vec::new(),
            max_ranges,
            consumed: 0,
        }
    }

    /// Raise the capacity to `capacity` bytes (receive-buffer auto-tuning; never shrinks).
    /// Storage follows when data needs it.
    pub(crate) fn grow(&mut self, capacity: usize) {
        self.cap = self.cap.max(capacity);
    }

    /// Bytes the application has read (or consumed) since the connection began.
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    pub(crate) fn unread(&self) -> usize {
        self.unread
    }

    /// Space from RCV.NXT to the end of the buffer: the largest window we can offer.
    pub(crate) fn free(&self) -> usize {
        self.cap.saturating_sub(self.unread)
    }

    /// Let the ring hold at least `slack` bytes beyond its capacity (one window-scale unit).
    pub(crate) fn set_min_slack(&mut self, slack: usize) {
        self.min_slack = slack;
    }

    /// The most bytes the ring holds: its capacity plus an eighth (at least the minimum
    /// slack). Rounding a scaled window up (RFC 7323 §2.4) can announce a right edge a little
    /// beyond the buffer, and since the edge never moves left (RFC 9293 §3.8.6), bytes the
    /// peer sends up to it are taken rather than dropped, as Linux's soft receive-memory
    /// accounting takes them beyond `sk_rcvbuf`. Windows are never offered from this slack.
    pub(crate) fn limit(&self) -> usize {
        self.cap + (self.cap / 8).max(self.min_slack)
    }

    pub(crate) fn has_ooo(&self) -> bool {
        !self.ooo.is_empty()
    }

    /// Out-of-order ranges, lowest first.
    pub(crate) fn ooo_ranges(&self) -> &[(SeqNum, SeqNum)] {
        &self.ooo
    }

    /// The out-of-order range holding `seq`, if any (binary search).
    pub(crate) fn ooo_range_holding(&self, seq: SeqNum) -> Option<(SeqNum, SeqNum)> {
        let i = self.ooo.partition_point(|&(_, e)| e <= seq);
        self.ooo.get(i).copied().filter(|&(s, _)| s <= seq)
    }

    /// Most out-of-order ranges held at once: one per [`OOO_RANGE_CHARGE`] bytes the buffer
    /// may hold (at least [`OOO_MIN_RANGES`]), and no more than configured.
    fn range_cap(&self) -> usize {
        (self.limit() / OOO_RANGE_CHARGE).max(OOO_MIN_RANGES).min(self.max_ranges)
    }

    /// Bytes of storage allocated (the ring and the out-of-order range list).
    pub(crate) fn allocated(&self) -> usize {
        self.buf.len() + self.ooo.capacity() * core::mem::size_of::<(SeqNum, SeqNum)>()
    }

    /// Free the ring and the range list if they hold nothing (both are allocated again on
    /// demand); returns the bytes freed.
    pub(crate) fn release_if_empty(&mut self) -> usize {
        if self.unread > 0 || !self.ooo.is_empty() {
            return 0;
        }
        let freed = self.allocated();
        self.head = 0;
        self.buf = Box::default();
        self.ooo = Vec::new();
        freed
    }

    /// Store `data` starting at `seq`, which the caller has trimmed into
    /// `[rcv_nxt, rcv_nxt + limit() - unread())`.
    pub(crate) fn store(&mut self, rcv_nxt: SeqNum, seq: SeqNum, data: &[u8]) -> Stored {
        if data.is_empty() {
            return Stored::Advanced(0);
        }
        let end = seq + data.len() as u32;
        if seq != rcv_nxt && !self.insert_range(seq, end) {
            return Stored::Dropped;
        }
        self.write_at(self.unread + seq.since(rcv_nxt) as usize, data);
        if seq != rcv_nxt {
            return Stored::OutOfOrder;
        }
        // In order: absorb every range that now touches RCV.NXT.
        let mut nxt = end;
        let absorbed = self.ooo.iter().take_while(|&&(s, _)| s <= nxt).count();
        if absorbed > 0 {
            nxt = nxt.max(self.ooo[absorbed - 1].1);
            self.ooo.drain(..absorbed);
        }
        let advanced = nxt.since(rcv_nxt);
        self.unread += advanced as usize;
        Stored::Advanced(advanced)
    }

    /// Merge `[start, end)` into the range list; false if that would exceed the cap.
    /// Binary searches: with a few hundred holes (a lossy long fat path) a linear scan per
    /// segment was most of the receiver's work.
    fn insert_range(&mut self, start: SeqNum, end: SeqNum) -> bool {
        let first = self.ooo.partition_point(|&(_, e)| e < start);
        let last = self.ooo[first..].partition_point(|&(s, _)| s <= end);
        if last == 0 {
            if self.ooo.len() >= self.range_cap() {
                return false;
            }
            if self.ooo.capacity() == 0 {
                self.ooo.reserve_exact(OOO_INITIAL_RANGES.min(self.range_cap()));
            }
            self.ooo.insert(first, (start, end));
            return true;
        }
        let merged_start = start.min(self.ooo[first].0);
        let merged_end = end.max(self.ooo[first + last - 1].1);
        self.ooo[first] = (merged_start, merged_end);
        self.ooo.drain(first + 1..first + last);
        true
    }

    fn write_at(&mut self, offset: usize, data: &[u8]) {
        let limit = self.limit();
        let n = data.len().min(limit.saturating_sub(offset));
        if n == 0 {
            return;
        }
        super::ring::reserve(&mut self.buf, &mut self.head, offset + n, limit);
        let cap = self.buf.len();
        let start = super::ring::wrap(self.head + offset, cap);
        let first = n.min(cap - start);
        self.buf[start..start + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
    }

    /// Copy unread bytes into `dst`; returns how many.
    #[inline]
    pub(crate) fn read(&mut self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.unread);
        if n == 0 {
            return 0; // inline: applications read until nothing is left
        }
        self.copy_out(dst, n)
    }

    /// Move the first `n` unread bytes (`0 < n <= unread`) into `dst`.
    fn copy_out(&mut self, dst: &mut [u8], n: usize) -> usize {
        let cap = self.buf.len();
        let first = n.min(cap - self.head);
        dst[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        dst[first..n].copy_from_slice(&self.buf[..n - first]);
        self.head = super::ring::wrap(self.head + n, cap);
        self.unread -= n;
        self.consumed += n as u64;
        n
    }

    /// The unread bytes as up to two slices, without consuming them.
    pub(crate) fn peek(&self) -> [&[u8]; 2] {
        if self.unread == 0 {
            return [&[], &[]];
        }
        let cap = self.buf.len();
        let first = self.unread.min(cap - self.head);
        [&self.buf[self.head..self.head + first], &self.buf[..self.unread - first]]
    }

    /// Drop `n` unread bytes (after `peek`).
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.unread);
        if n == 0 {
            return;
        }
        self.head = super::ring::wrap(self.head + n, self.buf.len());
        self.unread -= n;
        self.consumed += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_09_reassembles_and_bounds_holes() {
        let mut b = RecvBuf::new(64, 2);
        let n = SeqNum(100);
        assert_eq!(b.store(n, SeqNum(110), b"KLMNO"), Stored::OutOfOrder);
        assert_eq!(b.store(n, SeqNum(120), b"UV"), Stored::OutOfOrder);
        assert_eq!(b.store(n, SeqNum(130), b"ef"), Stored::Dropped, "third hole exceeds cap");
        assert_eq!(b.store(n, SeqNum(112), b"MNOPQ"), Stored::OutOfOrder, "overlap merges");
        assert_eq!(b.ooo_ranges(), &[(SeqNum(110), SeqNum(117)), (SeqNum(120), SeqNum(122))]);
        // The in-order segment is always accepted and pulls in the first range.
        assert_eq!(b.store(n, n, b"ABCDEFGHIJ"), Stored::Advanced(17));
        let mut out = [0u8; 64];
        let got = b.read(&mut out);
        assert_eq!(&out[..got], b"ABCDEFGHIJKLMNOPQ");
        assert_eq!(b.ooo_ranges(), &[(SeqNum(120), SeqNum(122))]);
    }

    #[test]
    fn rx_05_growing_keeps_unread_and_out_of_order_bytes_in_place() {
        let mut b = RecvBuf::new(8, 4);
        let n = SeqNum(0);
        assert_eq!(b.store(n, n, b"abcdef"), Stored::Advanced(6));
        let mut out = [0u8; 4];
        assert_eq!(b.read(&mut out), 4); // head at 4, "ef" unread
        let n = SeqNum(6);
        assert_eq!(b.store(n, n, b"gh"), Stored::Advanced(2)); // wraps to the front
        assert_eq!(b.store(SeqNum(8), SeqNum(9), b"j"), Stored::OutOfOrder); // wrapped too
        b.grow(32);
        assert_eq!(b.capacity(), 32);
        assert_eq!(b.free(), 28);
        assert_eq!(b.store(SeqNum(8), SeqNum(8), b"i"), Stored::Advanced(2));
        let mut out = [0u8; 32];
        let got = b.read(&mut out);
        assert_eq!(&out[..got], b"efghij");
        assert_eq!(b.consumed(), 10);
    }
}
