//! The SYN queue: half-open connections (SYN received, SYN-ACK sent) as small entries with no
//! buffers; a `Connection` is built only when the handshake completes (RFC 9293 §3.10.7.2;
//! Linux request sockets). SYN-ACKs are retransmitted with backoff up to a retry limit.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::demux::{Demux, FourTuple};
use crate::conn::SynInfo;
use crate::rng::SipKey;
use crate::wire::SeqNum;
use crate::Instant;

/// One half-open connection. Small by design (LQ-01, issue: at most 256 bytes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HalfOpen {
    pub(crate) tuple: FourTuple,
    /// Index of the listener that owns it.
    pub(crate) listener: u32,
    pub(crate) iss: SeqNum,
    pub(crate) ts_offset: u32,
    pub(crate) syn: SynInfo,
    /// When the SYN arrived and the first SYN-ACK left.
    pub(crate) first_sent: Instant,
    /// Next SYN-ACK retransmission (or expiry).
    pub(crate) deadline: Instant,
    pub(crate) retries: u8,
    /// The SYN-ACK also went out for a retransmitted SYN, outside the retry budget: the
    /// completing ACK gives no RTT sample (Karn, RFC 6298 §3).
    pub(crate) resent: bool,
    /// When a duplicate SYN was last answered: the next is answered only an
    /// `invalid_ack_interval` later (Linux `last_oow_ack_time`).
    pub(crate) last_dup_answer: Option<Instant>,
    /// A bare ACK completed the handshake while the listener defers accepting until data
    /// (`ListenOptions::defer_accept`): dropped, remembered (Linux `inet_rsk(req)->acked`).
    pub(crate) acked: bool,
    /// The SYN-ACK carries a Fast Open cookie (RFC 7413 §4.1.2): 0 no, 1 in option kind 34,
    /// 2 in the experimental option the client used.
    pub(crate) fast_open: u8,
}

/// Half-open entries by 4-tuple, with their retransmission deadlines.
#[derive(Debug)]
pub(crate) struct SynQueue {
    entries: Demux<HalfOpen>,
    /// Deadlines, lazily deleted: an item is stale when its entry is gone or has moved on.
    timers: BinaryHeap<Reverse<(Instant, FourTuple)>>,
}

impl SynQueue {
    pub(crate) fn new(key: SipKey) -> Self {
        SynQueue { entries: Demux::new(key), timers: BinaryHeap::new() }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn get(&self, t: FourTuple) -> Option<&HalfOpen> {
        self.entries.get(t)
    }

    pub(crate) fn insert(&mut self, entry: HalfOpen) {
        self.timers.push(Reverse((entry.deadline, entry.tuple)));
        self.entries.insert(entry.tuple, entry);
        // Drop stale timers when they dominate (entries completed before their deadline).
        if self.timers.len() > 64 && self.timers.len() > 4 * self.entries.len() {
            let entries = &self.entries;
            self.timers
                .retain(|Reverse((at, t))| entries.get(*t).is_some_and(|e| e.deadline == *at));
        }
    }

    /// Record that `t`'s SYN-ACK was sent again at `now` for a retransmitted SYN.
    pub(crate) fn mark_resent(&mut self, t: FourTuple, now: Instant) {
        if let Some(mut e) = self.entries.get(t).copied() {
            e.resent = true;
            e.last_dup_answer = Some(now);
            self.entries.insert(t, e);
        }
    }

    /// Put back an entry [`SynQueue::remove`] just took out, unchanged but for its flags
    /// (`acked`: a bare ACK completed its handshake while its listener defers accepting):
    /// its timer is still queued (same deadline), so none is added.
    pub(crate) fn put_back(&mut self, entry: HalfOpen) {
        self.entries.insert(entry.tuple, entry);
    }

    pub(crate) fn remove(&mut self, t: FourTuple) -> Option<HalfOpen> {
        self.entries.remove(t)
    }

    /// Earliest deadline (may be a stale one; handling it is then a no-op).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// The next entry whose deadline has passed, taken out of the queue's timers; the caller
    /// either re-inserts it (retransmission) or drops it (expiry).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<HalfOpen> {
        while let Some(Reverse((at, t))) = self.timers.peek().copied() {
            if at > now {
                return None;
            }
            self.timers.pop();
            if self.entries.get(t).is_some_and(|e| e.deadline == at) {
                return self.entries.remove(t);
            }
        }
        None
    }

    /// Count of entries per listener index is kept by the caller; this drops every entry of
    /// listener `idx` (the listener closed).
    pub(crate) fn forget_listener(&mut self, idx: u32, tuples: &mut Vec<FourTuple>) {
        tuples.clear();
        for Reverse((_, t)) in self.timers.iter() {
            if self.entries.get(*t).is_some_and(|e| e.listener == idx) {
                tuples.push(*t);
            }
        }
        for t in tuples.iter() {
            self.entries.remove(*t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lq_01_half_open_entry_is_at_most_256_bytes() {
        let size = core::mem::size_of::<HalfOpen>();
        assert!(size <= 256, "HalfOpen is {size} bytes");
    }
}
