//! TIME-WAIT kept as compact entries after a connection's buffers are freed (RFC 9293 §3.6,
//! Linux `inet_timewait_sock`): enough to re-ACK a retransmitted FIN, answer stray segments,
//! and judge whether a new SYN may reuse the 4-tuple (RFC 6191). Capped like
//! `tcp_max_tw_buckets`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::demux::{Demux, FourTuple};
use crate::rng::SipKey;
use crate::wire::SeqNum;
use crate::Instant;

/// One 4-tuple in TIME-WAIT. Small by design (at most 128 bytes, asserted in tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWaitEntry {
    /// The connection.
    pub tuple: FourTuple,
    /// Our SND.NXT (after our FIN).
    pub snd_nxt: SeqNum,
    /// Our RCV.NXT (after the peer's FIN).
    pub rcv_nxt: SeqNum,
    /// TS.Recent, when timestamps were in use.
    pub ts_recent: Option<u32>,
    /// Our timestamp clock offset.
    pub ts_offset: u32,
    /// When the entry expires (2 MSL after the last FIN).
    pub expires: Instant,
}

/// TIME-WAIT entries by 4-tuple plus an expiry queue in time order.
#[derive(Debug)]
pub(crate) struct TimeWaitTable {
    entries: Demux<TimeWaitEntry>,
    /// (expiry, tuple), earliest first; lazily deleted like the SYN queue's timers. A heap,
    /// not a FIFO: restarts and late hand-overs do not arrive in deadline order.
    expiry: BinaryHeap<Reverse<(Instant, FourTuple)>>,
    cap: usize,
}

impl TimeWaitTable {
    pub(crate) fn new(key: SipKey, cap: usize) -> Self {
        TimeWaitTable { entries: Demux::new(key), expiry: BinaryHeap::new(), cap }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn get(&self, t: FourTuple) -> Option<&TimeWaitEntry> {
        self.entries.get(t)
    }

    /// Keep `e`; false (and nothing kept) when the table is full.
    pub(crate) fn insert(&mut self, e: TimeWaitEntry) -> bool {
        if self.entries.len() >= self.cap && !self.entries.contains(e.tuple) {
            return false;
        }
        self.push_expiry(e.expires, e.tuple);
        self.entries.insert(e.tuple, e);
        true
    }

    /// Restart the 2 MSL timer of `t` (a retransmitted FIN, RFC 9293 §3.10.7.4).
    pub(crate) fn restart(&mut self, t: FourTuple, expires: Instant) {
        let Some(mut e) = self.entries.get(t).copied() else { return };
        e.expires = expires;
        self.entries.insert(t, e);
        self.push_expiry(expires, t);
    }

    fn push_expiry(&mut self, at: Instant, t: FourTuple) {
        self.expiry.push(Reverse((at, t)));
        if self.expiry.len() > 64 && self.expiry.len() > 4 * self.entries.len() {
            let entries = &self.entries;
            self.expiry
                .retain(|Reverse((at, t))| entries.get(*t).is_some_and(|e| e.expires == *at));
        }
    }

    pub(crate) fn remove(&mut self, t: FourTuple) {
        self.entries.remove(t);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.expiry.peek().map(|Reverse((at, _))| *at)
    }

    /// Drop every entry whose 2 MSL have passed; returns how many.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(&Reverse((at, t))) = self.expiry.peek() {
            if at > now {
                break;
            }
            self.expiry.pop();
            if self.entries.get(t).is_some_and(|e| e.expires == at) {
                self.entries.remove(t);
                n += 1;
            }
        }
        n
    }
}
