//! The sender's SACK scoreboard (RFC 2018 §5, RFC 6675 §3) and the per-segment
//! transmission record RACK needs (RFC 8985 §5.2).
//!
//! # Design
//!
//! One ring of [`Entry`]s, created when SACK is negotiated, covers the sequence
//! space `[SND.UNA, SND.MAX)` in sequence order: every transmission of new data appends an
//! entry (one per segment), the cumulative ACK pops entries from the front. Each entry keeps
//! its last transmission time (`RACK.xmit_ts` of RFC 8985 §6.1) and three flags: SACKed,
//! lost (marked by RACK or the RTO, awaiting retransmission) and retransmitted.
//!
//! The ring holds at most [`CAPACITY`] entries. When it is full (a flight of more than
//! `CAPACITY` segments, or a peer fragmenting the scoreboard on purpose: the
//! CVE-2019-11477/8 class), the entries are coarsened: first runs of SACKed entries merge
//! whatever their length (delivered data needs no resolution); if that frees less than a
//! quarter of the ring, runs of adjacent unSACKed entries with the same flags (not lost)
//! merge too while a merged entry stays within twice the average unSACKed entry's length,
//! which keeps the entries about equally coarse (so SACK blocks still cover whole entries).
//! When that frees nothing, two adjacent entries merge conservatively (a merged entry is
//! SACKed only if both halves were).
//!
//! `CAPACITY` (2048) holds one entry per segment for flights up to ~3 MB at MSS 1448: coarse
//! entries are what make SACK lose precision (a tail-drop queue overflowing in slow start
//! loses about every other segment), so a 100 Mbit/s, 100 ms path overshooting to ~1900
//! segments in flight is repaired by SACK and RACK with 2048 entries and needed an RTO with
//! 256. Beyond it (1 Gbit/s × 100 ms is ~8600 segments) each entry keeps the span no SACK
//! block has covered yet (its gap): blocks covering its head or tail narrow it, a lost
//! entry resends only its gap, and it counts as SACKed once the gap closes; the bytes SACKed
//! outside gaps are not in the pipe (`partial_bytes`). Each entry also
//! holds the delivery rate sampler's snapshot (`rate.rs`). The ring starts in 4 slots inside
//! the scoreboard (no allocation of its own), then moves to 8 slots on the heap and doubles
//! as the flight grows, so a short exchange does not pay for a large ring
//! (112 KiB at most, 56-byte entries); memory is bounded, and the work per ACK is bounded by `4 × CAPACITY`
//! for the SACK blocks (binary search, then a walk over the entries one block covers) plus
//! `CAPACITY` for RACK's loss scan (which stops at the first entry sent after the RACK
//! segment, never resent: in a steady flow, before the last round trip's flight).
//!
//! The scoreboard is only a hint: send-buffer space is freed by the cumulative ACK alone, so
//! a peer that reneges (RFC 2018 §8) costs at most a retransmission timeout, which clears
//! every SACK mark ([`Scoreboard::mark_all_lost`]). Blocks beyond SND.MAX, reversed, or
//! below SND.UNA are ignored; overlapping blocks are harmless (marking is idempotent); an
//! entry counts as SACKed only when a block covers it entirely.

use super::rate::TxSnap;
use crate::wire::SeqNum;
use crate::Instant;

/// Most entries the ring holds (one per segment in flight, coarser beyond).
pub(crate) const CAPACITY: usize = 2048;

/// Slots of the ring's first allocation (a power of two, as [`CAPACITY`]).
const MIN_SLOTS: usize = 8;

/// Slots held inside the scoreboard itself (a power of two below [`MIN_SLOTS`]), used until
/// the flight outgrows them: a short exchange (a request, a response, a FIN) records its
/// segments in the allocation that holds the connection's SACK state, with no allocation
/// of its own.
const INLINE_SLOTS: usize = 4;

/// A coarsening pass costs `CAPACITY` steps; one that frees fewer than this many slots
/// (entries whose flags alternate, as a peer fragmenting the scoreboard makes them) is not
/// repeated for [`COARSEN_BACKOFF`] segments. Either way the work stays at most
/// `CAPACITY / COARSEN_MIN_FREED` (64) steps per segment sent, amortized.
const COARSEN_MIN_FREED: usize = CAPACITY / 64;

/// Segments pushed before another pass after one that freed too little.
const COARSEN_BACKOFF: usize = CAPACITY / 8;

/// Pairs [`Scoreboard::make_room`] searches for equal flags before merging the last two.
const MERGE_SEARCH: usize = 64;

const SACKED: u8 = 1;
const LOST: u8 = 2;
const RETRANS: u8 = 4;

/// One transmitted segment (or, when the ring was full, several adjacent ones).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) start: SeqNum,
    pub(crate) end: SeqNum,
    /// Time of the last (re)transmission of the entry's last byte.
    pub(crate) xmit: Instant,
    /// While lost: the next byte to retransmit (an entry larger than the current MSS is
    /// retransmitted in pieces).
    pub(crate) retx_nxt: SeqNum,
    /// `[gap_start, gap_end)` is the part of the entry no SACK block has covered: blocks
    /// that cover only its head or its tail narrow it, so a coarse entry (several segments)
    /// resends only its gap, and counts as SACKed once the gap closes.
    gap_start: SeqNum,
    gap_end: SeqNum,
    flags: u8,
    /// Merged from several segments' entries (`coarsen`, `make_room`): only such an entry
    /// tracks its gap. A one-segment entry is resent whole, as Linux resends an skb a block
    /// covers only in part (it splits skbs at whole segments).
    coarse: bool,
    /// The delivery rate sampler's snapshot at the last (re)transmission (`rate.rs`); a
    /// merged entry keeps its later part's.
    pub(crate) snap: TxSnap,
}

impl Entry {
    const EMPTY: Entry = Entry {
        start: SeqNum(0),
        end: SeqNum(0),
        xmit: Instant::ZERO,
        retx_nxt: SeqNum(0),
        gap_start: SeqNum(0),
        gap_end: SeqNum(0),
        flags: 0,
        coarse: false,
        snap: TxSnap::ZERO,
    };

    pub(crate) fn sacked(&self) -> bool {
        self.flags & SACKED != 0
    }
    pub(crate) fn lost(&self) -> bool {
        self.flags & LOST != 0
    }
    pub(crate) fn retransmitted(&self) -> bool {
        self.flags & RETRANS != 0
    }
    fn len(&self) -> u32 {
        self.end.since(self.start)
    }
}

/// What the cumulative ACK and the SACK blocks of one ACK delivered.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Delivered {
    /// Bytes newly SACKed by this ACK.
    pub(crate) sacked: u32,
    /// The most recently sent delivered entry (`xmit`, `end`, was it retransmitted).
    pub(crate) latest: Option<(Instant, SeqNum, bool)>,
    /// A delivered, never retransmitted entry lay below an earlier SACKed one: reordering
    /// (RFC 8985 §6.2 step 3).
    pub(crate) reordered: bool,
    /// The rate sampler's snapshot of the `latest` entry.
    pub(crate) latest_snap: TxSnap,
    /// Bytes the cumulative ACK covered that were SACKed before (delivered already).
    pub(crate) cum_sacked: u32,
    /// Bytes newly delivered, counted as each block covers them, also within an entry no
    /// block covers whole (the rate sampler's `C.delivered` grows as the data arrives,
    /// not in a burst when a coarse entry's gap closes).
    pub(crate) bytes: u32,
}

/// The ring of entries plus byte counters kept in step with the flags.
#[derive(Debug)]
pub(crate) struct Scoreboard {
    /// The ring while it fits [`INLINE_SLOTS`] entries (`heap` is empty).
    inline: [Entry; INLINE_SLOTS],
    /// The ring once it outgrew `inline` (from [`MIN_SLOTS`] entries, doubling).
    heap: Box<[Entry]>,
    head: usize,
    len: usize,
    /// Bytes in SACKed entries.
    pub(crate) sacked_bytes: u32,
    /// Bytes in lost entries not yet (fully) retransmitted.
    pub(crate) lost_bytes: u32,
    /// Bytes SACKed within entries not SACKed whole (outside their gaps), neither lost:
    /// delivered, so not in the pipe (RFC 6675 §4).
    pub(crate) partial_bytes: u32,
    /// Highest SACKed sequence number since the last RTO (for reordering detection).
    pub(crate) high_sacked: Option<SeqNum>,
    /// Most loop iterations one ACK ever cost (the CPU bound the tests check).
    pub(crate) max_work: u32,
    /// Segments to push before the next coarsening pass (see [`COARSEN_BACKOFF`]).
    coarsen_wait: usize,
}

impl Scoreboard {
    pub(crate) fn new() -> Self {
        Scoreboard {
            // Grows on demand (`push`): most connections send a few segments per flight,
            // and zeroing the full ring for each would cost more than the exchange itself.
            inline: [Entry::EMPTY; INLINE_SLOTS],
            heap: Box::default(),
            head: 0,
            len: 0,
            sacked_bytes: 0,
            lost_bytes: 0,
            partial_bytes: 0,
            high_sacked: None,
            max_work: 0,
            coarsen_wait: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of storage allocated.
    pub(crate) fn allocated(&self) -> usize {
        self.heap.len() * core::mem::size_of::<Entry>()
    }

    /// Free the ring if it holds no entry (it grows again on demand); returns the bytes
    /// freed.
    pub(crate) fn release_if_empty(&mut self) -> usize {
        if self.len > 0 {
            return 0;
        }
        let freed = self.allocated();
        self.head = 0;
        self.heap = Box::default();
        freed
    }

    /// The ring's slots: `inline` until it outgrows them, then `heap`. Either way a power
    /// of two.
    #[inline]
    fn ring(&self) -> &[Entry] {
        if self.heap.is_empty() {
            &self.inline
        } else {
            &self.heap
        }
    }

    #[inline]
    fn ring_mut(&mut self) -> &mut [Entry] {
        if self.heap.is_empty() {
            &mut self.inline
        } else {
            &mut self.heap
        }
    }

    /// Slot of entry `i` (the ring's length is a power of two).
    fn idx(&self, i: usize) -> usize {
        (self.head + i) & (self.ring().len() - 1)
    }

    pub(crate) fn get(&self, i: usize) -> &Entry {
        &self.ring()[self.idx(i)]
    }

    fn get_mut(&mut self, i: usize) -> &mut Entry {
        let j = self.idx(i);
        &mut self.ring_mut()[j]
    }

    fn set_flags(&mut self, i: usize, flags: u8) {
        self.update(i, |e| e.flags = flags);
    }

    /// Change entry `i` with `f`, keeping the byte counters in step.
    fn update(&mut self, i: usize, f: impl FnOnce(&mut Entry)) {
        let (s0, l0, p0) = counts(self.get(i));
        f(self.get_mut(i));
        let (s1, l1, p1) = counts(self.get(i));
        self.sacked_bytes = self.sacked_bytes - s0 + s1;
        self.lost_bytes = self.lost_bytes - l0 + l1;
        self.partial_bytes = self.partial_bytes - p0 + p1;
    }

    /// Forget everything (the peer may have reneged, or SACK is off).
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
        self.sacked_bytes = 0;
        self.lost_bytes = 0;
        self.partial_bytes = 0;
        self.high_sacked = None;
    }

    /// New data `[start, end)` went out at `now`, with the rate sampler's `snap`. Inlined into
    /// its one caller (once per segment); the rare work (growing, coarsening) stays out of line.
    #[inline(always)]
    pub(crate) fn push(&mut self, start: SeqNum, end: SeqNum, now: Instant, snap: TxSnap) {
        if self.len > 0 && self.get(self.len - 1).end != start {
            // Coverage broke (cannot happen when every new segment is recorded): start over,
            // the scoreboard is only a hint.
            self.clear();
        }
        if self.len == self.ring().len() {
            if self.len < CAPACITY {
                self.grow();
            } else {
                if self.coarsen_wait == 0 {
                    self.coarsen();
                    if CAPACITY - self.len < COARSEN_MIN_FREED {
                        self.coarsen_wait = COARSEN_BACKOFF;
                    }
                } else {
                    self.coarsen_wait -= 1;
                }
                if self.len == CAPACITY {
                    self.make_room();
                }
            }
        }
        let i = self.len;
        self.len += 1;
        *self.get_mut(i) = Entry {
            start,
            end,
            xmit: now,
            retx_nxt: start,
            gap_start: start,
            gap_end: end,
            flags: 0,
            coarse: false,
            snap,
        };
    }

    /// Double the ring (from the inline slots to 8 on the heap, up to [`CAPACITY`]), its
    /// entries in order from slot 0.
    fn grow(&mut self) {
        let size = (self.ring().len() * 2).clamp(MIN_SLOTS, CAPACITY);
        let mut ring = vec![Entry::EMPTY; size].into_boxed_slice();
        for (i, slot) in ring.iter_mut().enumerate().take(self.len) {
            *slot = *self.get(i);
        }
        self.heap = ring;
        self.head = 0;
    }

    /// Free slots of a full ring. First runs of SACKed entries merge whatever their length:
    /// a SACKed entry is delivered, so no later block needs to split it and nothing is
    /// resent from it (RFC 6675 §3 keeps no more per delivered byte than "SACKed"). On a
    /// lossy long fat path most of the ring is SACKed data held behind holes, and this alone
    /// frees it. Only when that frees less than a quarter of the ring do runs of unSACKed
    /// entries with the same flags (never lost ones, which are being retransmitted) merge,
    /// while a merged entry stays within twice the average unSACKed entry's length, which
    /// keeps them about equally coarse. Merging only the oldest pair each time grew one front
    /// entry to the whole excess of the flight, which no SACK block ever covers; merging
    /// unSACKed entries before SACKed ones made entries of several holes each, whose
    /// retransmissions resent data already SACKed between the holes. A pass per
    /// ~`CAPACITY / 4` segments sent at most: O(1) per segment amortized.
    fn coarsen(&mut self) {
        let before = self.len;
        self.merge_runs(None);
        if before - self.len < CAPACITY / 4 {
            let (mut bytes, mut n) = (0u64, 0u64);
            for i in 0..self.len {
                let e = self.get(i);
                if !e.sacked() {
                    bytes += u64::from(e.len());
                    n += 1;
                }
            }
            self.merge_runs(Some((2 * bytes / n.max(1)).max(1)));
        }
        // Merging forgets SACKed tails: count the partial bytes again (one pass, as this).
        self.partial_bytes = (0..self.len).map(|i| counts(self.get(i)).2).sum();
    }

    /// One pass of [`Scoreboard::coarsen`]: merge runs of SACKed entries, and with
    /// `unsacked_limit` also runs of unSACKed entries with equal flags up to that many bytes.
    fn merge_runs(&mut self, unsacked_limit: Option<u64>) {
        let (mut out, mut i) = (0, 0);
        while i < self.len {
            let mut e = *self.get(i);
            i += 1;
            while i < self.len {
                let n = *self.get(i);
                let merge = if e.sacked() {
                    n.sacked()
                } else {
                    unsacked_limit.is_some_and(|limit| {
                        n.flags == e.flags && !e.lost() && u64::from(n.end.since(e.start)) <= limit
                    })
                };
                if !merge {
                    break;
                }
                // SACKed with SACKed (a retransmitted flag does not count for delivered
                // data) or equal flags: the SACKed and lost byte counts do not change.
                e.flags |= n.flags & RETRANS;
                e.end = n.end;
                e.coarse = true;
                e.gap_end = n.gap_end; // e's SACKed tail, if any, is forgotten: conservative
                if n.xmit >= e.xmit {
                    e.snap = n.snap;
                }
                e.xmit = e.xmit.max(n.xmit);
                i += 1;
            }
            *self.get_mut(out) = e;
            out += 1;
        }
        self.len = out;
    }

    /// Free one slot by merging two adjacent entries (see the module documentation).
    fn make_room(&mut self) {
        let mut at = self.len - 2;
        for i in 0..(self.len - 1).min(MERGE_SEARCH) {
            let (a, b) = (self.get(i), self.get(i + 1));
            if a.flags == b.flags && !a.lost() {
                at = i;
                break;
            }
        }
        let (a, b) = (*self.get(at), *self.get(at + 1));
        // Conservative union: SACKed only if both were; lost if either was (from the first
        // byte still to resend); retransmitted if either was; the later send time.
        let sacked = a.flags & b.flags & SACKED;
        let lost = (a.flags | b.flags) & LOST;
        let flags = sacked | lost | ((a.flags | b.flags) & RETRANS);
        let whole = |e: &mut Entry| {
            e.flags = 0;
            (e.gap_start, e.gap_end) = (e.start, e.end);
        };
        self.update(at, whole);
        self.update(at + 1, whole);
        let retx_nxt = if a.lost() { a.retx_nxt } else { a.start };
        let snap = if b.xmit >= a.xmit { b.snap } else { a.snap };
        let (start, end, xmit) = (a.start, b.end, a.xmit.max(b.xmit));
        let (gap_start, gap_end) = (a.gap_start, b.gap_end);
        let (gap_start_m, gap_end_m) = (start, end);
        let merged = Entry {
            start,
            end,
            xmit,
            retx_nxt,
            gap_start: gap_start_m,
            gap_end: gap_end_m,
            flags: 0,
            coarse: true,
            snap,
        };
        // Close the gap from the nearer end of the ring: O(min(at, len - at)), and `at` is
        // within the first `MERGE_SEARCH` pairs or the last pair.
        if at < self.len / 2 {
            for i in (0..at).rev() {
                let prev = *self.get(i);
                *self.get_mut(i + 1) = prev;
            }
            self.head = (self.head + 1) & (self.ring().len() - 1);
        } else {
            for i in at + 1..self.len - 1 {
                let next = *self.get(i + 1);
                *self.get_mut(i) = next;
            }
        }
        self.len -= 1;
        *self.get_mut(at) = merged;
        self.update(at, |e| {
            e.flags = flags;
            (e.gap_start, e.gap_end) = (gap_start, gap_end);
        });
    }

    /// Bytes below `una` already SACKed: delivered before the cumulative ACK reached them.
    pub(crate) fn sacked_below(&self, una: SeqNum) -> u32 {
        if self.sacked_bytes == 0 {
            return 0; // nothing SACKed: no walk over every entry the ACK covers
        }
        (0..self.len)
            .map(|i| self.get(i))
            .take_while(|e| e.start < una)
            .filter(|e| e.sacked())
            .map(|e| e.end.min(una).since(e.start))
            .sum()
    }

    /// The send times of the oldest and of the newest entry a cumulative ACK to `una`
    /// covers (before [`Scoreboard::cum_ack`] drops them), for a per-ACK RTT sample without
    /// timestamps (RFC 6298 §3 allows more than one per round trip). Entries SACKed before
    /// are skipped (delivered earlier). `None` when the ACK covers no entry (only a SYN or
    /// a FIN); `Some(None)` when it covers a retransmitted entry (Karn's rule, RFC 6298 §3:
    /// as Linux, no sample at all from such an ACK) or only SACKed ones.
    pub(crate) fn acked_send_times(&self, una: SeqNum) -> Option<Option<(Instant, Instant)>> {
        let mut times: Option<(Instant, Instant)> = None;
        let mut i = 0;
        while i < self.len {
            let e = self.get(i);
            if e.start >= una {
                break;
            }
            if e.flags & (RETRANS | SACKED) != 0 {
                if e.retransmitted() {
                    return Some(None);
                }
            } else {
                times = Some((times.map_or(e.xmit, |(o, _)| o), e.xmit));
            }
            i += 1;
        }
        (i > 0).then_some(times)
    }

    /// The cumulative ACK reached `una`: drop what it covers. Returns the delivery record
    /// of the entries it newly delivered (not those already SACKed).
    pub(crate) fn cum_ack(&mut self, una: SeqNum, d: &mut Delivered) {
        // One pass over the ring with its slice, head, length and counter deltas in locals,
        // written back once: this runs on every ACK, usually for one or two entries.
        let high_sacked = self.high_sacked;
        let (mut head, mut len) = (self.head, self.len);
        let (mut ds, mut dl, mut dp) = (0u32, 0u32, 0u32);
        // The slot of the entry `d.latest` came from in this pass: its snapshot is copied
        // once at the end, not for every delivered entry (removed slots keep their content
        // until `push` rewrites them).
        let mut latest_slot = None;
        let ring = self.ring();
        let mask = ring.len() - 1;
        while len > 0 {
            let e = &ring[head];
            if e.end > una {
                break;
            }
            if !e.sacked() {
                if note_delivery_at(d, e, high_sacked) {
                    latest_slot = Some(head);
                }
                d.bytes += e.gap_end.since(e.gap_start);
            } else {
                d.cum_sacked += e.len();
            }
            // The entry leaves the ring (`push` rewrites its slot whole): only its share
            // of the counters goes, nothing in it needs resetting.
            let (s0, l0, p0) = counts(e);
            ds += s0;
            dl += l0;
            dp += p0;
            head = (head + 1) & mask;
            len -= 1;
        }
        if let Some(j) = latest_slot {
            d.latest_snap = ring[j].snap;
        }
        self.sacked_bytes -= ds;
        self.lost_bytes -= dl;
        self.partial_bytes -= dp;
        self.head = if len == 0 { 0 } else { head };
        self.len = len;
        if len > 0 {
            let e = *self.get(0);
            if e.start < una {
                let gap_start = e.gap_start.max(una).min(e.gap_end);
                if !e.sacked() {
                    d.bytes += gap_start.since(e.gap_start);
                }
                self.update(0, |e| {
                    e.start = una;
                    e.retx_nxt = e.retx_nxt.max(una);
                    e.gap_start = gap_start;
                });
            }
        }
        if self.high_sacked.is_some_and(|h| h <= una) {
            self.high_sacked = None;
        }
    }

    /// Mark the entries `[left, right)` covers entirely as SACKed (RFC 2018 §5). The caller
    /// has validated the block against SND.UNA and SND.MAX. Returns the loop iterations.
    pub(crate) fn sack(&mut self, left: SeqNum, right: SeqNum, d: &mut Delivered) -> u32 {
        // Binary search: the first entry ending after `left`.
        let (mut lo, mut hi) = (0, self.len);
        let mut work = 0;
        while lo < hi {
            work += 1;
            let mid = (lo + hi) / 2;
            if self.get(mid).end <= left {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut i = lo;
        while i < self.len {
            work += 1;
            let e = *self.get(i);
            if e.start >= right {
                break;
            }
            if e.sacked() {
                i += 1;
                continue;
            }
            // A block covering the head or the tail of the entry's gap narrows it
            // (conservatively: a block inside the gap is not recorded).
            let mut gap = (e.gap_start, e.gap_end);
            if e.coarse && left <= gap.0 && right > gap.0 {
                gap.0 = right.min(gap.1);
            }
            if e.coarse && right >= gap.1 && left < gap.1 {
                gap.1 = left.max(gap.0);
            }
            let covered = (e.start >= left && e.end <= right) || gap.0 >= gap.1;
            let old_gap = e.gap_end.since(e.gap_start);
            if !covered {
                d.bytes += old_gap - gap.1.since(gap.0);
                self.update(i, |g| (g.gap_start, g.gap_end) = gap);
            } else {
                d.bytes += old_gap;
                note_delivery(d, &e, self.high_sacked);
                d.sacked += e.len();
                self.set_flags(i, SACKED | (e.flags & RETRANS));
                if self.high_sacked.is_none_or(|h| h < e.end) {
                    self.high_sacked = Some(e.end);
                }
            }
            i += 1;
        }
        work
    }

    /// RFC 8985 §6.2 step 5 (`RACK_detect_loss`): every unSACKed entry sent before the most
    /// recently delivered one (`rack_xmit`, `rack_end`) is lost once `rack_rtt + reo_wnd`
    /// has passed since its transmission. Returns how many entries were newly marked and
    /// the longest time any other such entry still has to wait (the reordering timer).
    /// `on_lost` sees each newly lost entry.
    pub(crate) fn rack_detect(
        &mut self,
        now: Instant,
        rack_xmit: Instant,
        rack_end: SeqNum,
        wait: core::time::Duration,
        mut on_lost: impl FnMut(&Entry),
    ) -> (u32, Option<core::time::Duration>) {
        let mut marked = 0;
        let mut timeout = None;
        for i in 0..self.len {
            let e = *self.get(i);
            // RACK_sent_after(RACK.xmit_ts, RACK.end_seq, Seg.xmit_ts, Seg.end_seq)
            let before = rack_xmit > e.xmit || (rack_xmit == e.xmit && rack_end > e.end);
            if !before && !e.retransmitted() {
                // New data goes out in sequence order, so every later entry was first sent
                // after this one, and resent (if at all) later still: none was sent before
                // the RACK segment. The scan stops at the flight sent in the last round
                // trip instead of walking it on every ACK.
                break;
            }
            if e.sacked() || e.lost() || !before {
                continue;
            }
            let deadline = e.xmit + wait;
            if deadline <= now {
                on_lost(&e);
                let e = self.get_mut(i);
                e.retx_nxt = e.start;
                let f = e.flags;
                self.set_flags(i, (f & RETRANS) | LOST);
                marked += 1;
            } else {
                let rem = deadline - now;
                timeout = Some(timeout.map_or(rem, |t: core::time::Duration| t.max(rem)));
            }
        }
        (marked, timeout)
    }

    /// A retransmission timeout: the peer may have reneged (RFC 2018 §8), so every SACK
    /// mark goes and every entry is lost, to be resent in sequence order.
    pub(crate) fn mark_all_lost(&mut self) {
        for i in 0..self.len {
            self.update(i, |e| {
                e.retx_nxt = e.start;
                (e.gap_start, e.gap_end) = (e.start, e.end);
                e.flags = (e.flags & RETRANS) | LOST;
            });
        }
        self.high_sacked = None;
    }

    /// The first lost entry with bytes still to resend, and the range to resend from it.
    pub(crate) fn next_lost(&self) -> Option<(usize, SeqNum, SeqNum)> {
        if self.lost_bytes == 0 {
            return None;
        }
        (0..self.len).find_map(|i| {
            let e = self.get(i);
            let from = e.retx_nxt.max(e.start).max(e.gap_start);
            (e.lost() && from < e.gap_end).then_some((i, from, e.gap_end))
        })
    }

    /// Some entry is lost (awaiting retransmission) or was resent and not yet SACKed: the
    /// sender's record of losses not yet repaired (Linux `lost_out`). At most one walk over
    /// the ring.
    pub(crate) fn lost_undelivered(&self) -> bool {
        self.lost_bytes > 0
            || (0..self.len).any(|i| {
                let e = self.get(i);
                e.retransmitted() && !e.sacked()
            })
    }

    /// `[seq, end)` was sent again at `now` (with the rate sampler's `snap`): advance the
    /// entries it covers.
    pub(crate) fn retransmitted(&mut self, seq: SeqNum, end: SeqNum, now: Instant, snap: TxSnap) {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid).end <= seq {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        for i in lo..self.len {
            let e = *self.get(i);
            if e.start >= end {
                break;
            }
            let g = self.get_mut(i);
            g.retx_nxt = g.retx_nxt.max(end.min(e.end));
            // Resent up to the end of its gap: what follows was SACKed.
            if end >= e.gap_end {
                g.xmit = now;
                g.snap = snap;
                let f = e.flags & SACKED;
                self.set_flags(i, f | RETRANS);
            }
        }
    }

    /// The entry holding the last sequence number sent (for a tail loss probe).
    pub(crate) fn last(&self) -> Option<&Entry> {
        (self.len > 0).then(|| self.get(self.len - 1))
    }
}

/// What entry `e` adds to the counters: SACKed bytes, lost bytes, and bytes SACKed outside
/// its gap while it is neither SACKed whole nor lost.
fn counts(e: &Entry) -> (u32, u32, u32) {
    let len = e.len();
    let partial = len - e.gap_end.since(e.gap_start).min(len);
    match (e.sacked(), e.lost()) {
        (true, lost) => (len, if lost { len } else { 0 }, 0),
        (false, true) => (0, len, 0),
        (false, false) => (0, 0, partial),
    }
}

/// RFC 8985 §6.2 steps 1-3 for one delivered entry: remember the most recently sent one,
/// and whether it filled a hole below SACKed data without being retransmitted.
fn note_delivery(d: &mut Delivered, e: &Entry, high_sacked: Option<SeqNum>) {
    if note_delivery_at(d, e, high_sacked) {
        d.latest_snap = e.snap;
    }
}

/// [`note_delivery`] but for the snapshot, which the caller copies if this returns true
/// (`e` became `d.latest`).
#[inline]
fn note_delivery_at(d: &mut Delivered, e: &Entry, high_sacked: Option<SeqNum>) -> bool {
    if !e.retransmitted() && high_sacked.is_some_and(|h| e.end < h) {
        d.reordered = true;
    }
    let newer = d.latest.is_none_or(|(x, end, _)| e.xmit > x || (e.xmit == x && e.end > end));
    if newer {
        d.latest = Some((e.xmit, e.end, e.retransmitted()));
    }
    newer
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// The entries cover `[from, to)` contiguously, in order.
    fn assert_contiguous(s: &Scoreboard, from: u32, to: u32) {
        assert_eq!(s.get(0).start, SeqNum(from));
        for i in 1..s.len() {
            assert_eq!(s.get(i).start, s.get(i - 1).end, "entry {i} follows its predecessor");
        }
        assert_eq!(s.get(s.len() - 1).end, SeqNum(to));
    }

    #[test]
    fn rx_04_scoreboard_coarsens_when_full_and_keeps_counters() {
        let mut s = Scoreboard::new();
        let n = CAPACITY as u32 + 10;
        for i in 0..n {
            s.push(SeqNum(i * 10), SeqNum(i * 10 + 10), t(u64::from(i)), TxSnap::ZERO);
        }
        assert!(s.len() <= CAPACITY / 2 + 10, "{}", s.len());
        assert_contiguous(&s, 0, n * 10);
        let mut d = Delivered::default();
        s.sack(SeqNum(0), SeqNum(u32::MAX / 2), &mut d);
        assert_eq!(s.sacked_bytes, n * 10);
        s.cum_ack(SeqNum(25), &mut d);
        assert_eq!(s.sacked_bytes, n * 10 - 25);
    }

    #[test]
    fn a_full_ring_coarsens_evenly_and_never_merges_across_flags() {
        let mut s = Scoreboard::new();
        let n = 8 * CAPACITY as u32;
        let mut d = Delivered::default();
        for i in 0..n {
            s.push(SeqNum(i * 10), SeqNum(i * 10 + 10), t(u64::from(i)), TxSnap::ZERO);
            if i % 100 == 50 {
                s.sack(SeqNum(i * 10), SeqNum(i * 10 + 10), &mut d); // one segment alone
            }
        }
        assert!(s.len() <= CAPACITY);
        assert_contiguous(&s, 0, n * 10);
        // Every lone SACKed segment kept its own entry: SACKed bytes are exact.
        assert_eq!(s.sacked_bytes, (n / 100 + u32::from(n % 100 > 50)) * 10);
        // About equally coarse: no entry spans more than a few times the average, so a
        // SACK block of a few segments still covers whole entries (merging only the oldest
        // pair grew one front entry to most of the flight).
        let avg = n * 10 / s.len() as u32;
        let widest = (0..s.len()).map(|i| s.get(i).len()).max().unwrap();
        assert!(widest <= 4 * avg, "widest entry {widest} bytes, average {avg}");
        // An entry's send time is its last segment's.
        for i in 0..s.len() {
            let e = s.get(i);
            assert_eq!(e.xmit, t(u64::from(e.end.0 / 10 - 1)), "entry {i}");
        }
    }

    /// RX-04: on a lossy long fat path most of a full ring is SACKed data between holes
    /// (1 Gbit/s × 100 ms at 1 % loss: ~8600 segments in flight, a hole in ~86 of them, and
    /// SACKed data held behind the holes for a round trip or more). Coarsening merges those
    /// runs and leaves every hole and every segment in flight its own entry, so no
    /// retransmission resends SACKed data (it merged unSACKed entries into several holes
    /// each, and resent what lay between them: D-SACKs, and a reordering window grown on
    /// them).
    #[test]
    fn coarsening_merges_sacked_runs_first() {
        let mut s = Scoreboard::new();
        let n = 4 * CAPACITY as u32;
        let (flight, every) = (1000, 50);
        let mut d = Delivered::default();
        for i in 0..n {
            s.push(SeqNum(i * 10), SeqNum(i * 10 + 10), t(u64::from(i)), TxSnap::ZERO);
            // A round trip (`flight` segments) later, all but one in `every` is SACKed.
            if let Some(j) = i.checked_sub(flight) {
                if j % every != 0 {
                    s.sack(SeqNum(j * 10), SeqNum(j * 10 + 10), &mut d);
                }
            }
        }
        assert_contiguous(&s, 0, n * 10);
        let holes = (n - flight).div_ceil(every);
        let unsacked: Vec<_> = (0..s.len()).filter(|&i| !s.get(i).sacked()).collect();
        assert_eq!(unsacked.len() as u32, holes + flight);
        assert!(unsacked.iter().all(|&i| s.get(i).len() == 10), "one entry per unSACKed segment");
        assert_eq!(s.sacked_bytes, (n - flight - holes) * 10);
    }

    #[test]
    fn alternating_flags_stay_contiguous_and_counted() {
        // Every other segment SACKed as it goes out: nothing coarsens, every push past the
        // capacity merges a pair conservatively (the fragmenting-peer pattern).
        let mut s = Scoreboard::new();
        let n = 3 * CAPACITY as u32;
        let mut d = Delivered::default();
        for i in 0..n {
            s.push(SeqNum(i * 10), SeqNum(i * 10 + 10), t(u64::from(i)), TxSnap::ZERO);
            if i % 2 == 1 {
                s.sack(SeqNum(i * 10), SeqNum(i * 10 + 10), &mut d);
            }
        }
        assert_eq!(s.len(), CAPACITY);
        assert_contiguous(&s, 0, n * 10);
        let sacked: u32 = (0..s.len()).filter(|&i| s.get(i).sacked()).map(|i| s.get(i).len()).sum();
        assert_eq!(s.sacked_bytes, sacked);
        assert!(s.coarsen_wait > 0, "a pass that frees nothing backs off");
        // The newest entries are still exact.
        assert!(s.get(CAPACITY - 1).sacked() && s.get(CAPACITY - 1).len() == 10);
    }

    /// A coarse entry (several segments) resends only the span no block covered, and is
    /// SACKed once blocks have covered it piecewise; its bytes count as delivered as the
    /// blocks arrive.
    #[test]
    fn a_coarse_entry_resends_only_its_gap() {
        let mut s = Scoreboard::new();
        s.push(SeqNum(0), SeqNum(40), t(1), TxSnap::ZERO);
        s.get_mut(0).coarse = true; // as `coarsen` leaves it
        s.push(SeqNum(40), SeqNum(50), t(2), TxSnap::ZERO);
        let mut d = Delivered::default();
        s.sack(SeqNum(20), SeqNum(50), &mut d);
        s.sack(SeqNum(0), SeqNum(10), &mut d);
        assert!(!s.get(0).sacked());
        assert_eq!(d.bytes, 40, "[0, 10) and [20, 50) delivered");
        let (marked, _) = s.rack_detect(t(10), t(2), SeqNum(50), Duration::ZERO, |_| {});
        assert_eq!(marked, 1);
        assert_eq!(s.next_lost(), Some((0, SeqNum(10), SeqNum(20))));
        s.retransmitted(SeqNum(10), SeqNum(20), t(11), TxSnap::ZERO);
        assert!(s.get(0).retransmitted() && !s.get(0).lost());
        assert_eq!((s.lost_bytes, s.next_lost()), (0, None));
        let mut d = Delivered::default();
        s.sack(SeqNum(10), SeqNum(20), &mut d);
        assert!(s.get(0).sacked());
        assert_eq!((d.bytes, s.sacked_bytes), (10, 50));
    }

    #[test]
    fn ring_grows_in_order_across_the_wrap() {
        let mut s = Scoreboard::new();
        assert_eq!(s.heap.len(), 0, "nothing allocated before the first segment");
        let seg = |i: u32| (SeqNum(i * 10), SeqNum(i * 10 + 10));
        for i in 0..MIN_SLOTS as u32 {
            let (a, b) = seg(i);
            s.push(a, b, t(1), TxSnap::ZERO);
        }
        let mut d = Delivered::default();
        s.cum_ack(SeqNum(30), &mut d);
        // Wrap around the first allocation, then outgrow it.
        for i in MIN_SLOTS as u32..40 {
            let (a, b) = seg(i);
            s.push(a, b, t(2), TxSnap::ZERO);
        }
        assert_eq!(s.len(), 37);
        assert_eq!(s.heap.len(), 64);
        for i in 0..s.len() {
            assert_eq!(s.get(i).start, SeqNum((i as u32 + 3) * 10), "entry {i}");
        }
    }
}
