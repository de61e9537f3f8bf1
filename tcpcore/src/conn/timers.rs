//! The per-connection timer table: one slot per timer kind, not a heap (as quinn does), and
//! the index of the earliest armed slot, kept exact on every change so that
//! [`TimerTable::next`] (behind `Connection::poll_timeout`, which drivers call after every
//! poll of every connection) reads one slot instead of scanning the table.

use crate::Instant;

/// Every timer a connection runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Retransmission of SYN, SYN-ACK, data or FIN (RFC 6298).
    Retransmit = 0,
    /// Delayed acknowledgment (RFC 9293 §3.8.6.3).
    DelayedAck,
    /// Zero-window probe (RFC 9293 §3.8.6.1).
    Persist,
    /// Keepalive probe (RFC 9293 §3.8.4).
    Keepalive,
    /// 2 MSL in TIME-WAIT (RFC 9293 §3.6).
    TimeWait,
    /// Orphaned FIN-WAIT-2 (Linux `tcp_fin_timeout`).
    FinWait2,
    /// Unacknowledged data for too long (RFC 5482).
    UserTimeout,
    /// RACK reordering timeout (RFC 8985 §6.3).
    Reorder,
    /// Tail loss probe timeout (RFC 8985 §7.2).
    LossProbe,
    /// Give idle buffers back (`release.rs`).
    Release,
    /// The next paced release of data is due (`pacing.rs`; Linux's `pacing_timer`).
    Pace,
}

impl Timer {
    pub(crate) const ALL: [Timer; N] = [
        Timer::Retransmit,
        Timer::DelayedAck,
        Timer::Persist,
        Timer::Keepalive,
        Timer::TimeWait,
        Timer::FinWait2,
        Timer::UserTimeout,
        Timer::Reorder,
        Timer::LossProbe,
        Timer::Release,
        Timer::Pace,
    ];
}

/// How many kinds of timer there are.
const N: usize = 11;

/// [`TimerTable::first`] when no timer is armed.
const NONE: u8 = N as u8;

/// One deadline in microseconds since the epoch, as two 32-bit halves (low, high): a `u64`
/// would align the table to 8 bytes, and its small fields (`armed`, `first`) would then
/// cost 8 bytes in every connection instead of fitting in the connection's padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot([u32; 2]);

impl Slot {
    const UNARMED: Slot = Slot([u32::MAX; 2]);

    #[inline(always)]
    fn get(self) -> u64 {
        u64::from(self.0[0]) | u64::from(self.0[1]) << 32
    }

    #[inline(always)]
    fn new(micros: u64) -> Slot {
        Slot([micros as u32, (micros >> 32) as u32])
    }
}

/// Deadlines indexed by [`Timer`]; [`UNARMED`] marks a stopped timer. Not
/// `Option<Instant>`: that doubles the table's size in every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerTable {
    slots: [Slot; N],
    /// Bit `i` set when slot `i` is armed: a rescan visits only the armed slots (two or
    /// three as a rule, of eleven), and "is it armed?" is a bit test.
    armed: u16,
    /// The slot holding the earliest deadline ([`NONE`] when none is armed). Every change
    /// keeps it exact, so [`TimerTable::next`] and the "nothing due" answer of
    /// [`TimerTable::take_expired`] cost one load; debug builds check it against a scan.
    first: u8,
}

/// The value of a stopped timer's slot. A deadline this far away (an instant that
/// saturated) is stored one microsecond earlier: it never fires either way.
const UNARMED: u64 = u64::MAX;

impl Default for TimerTable {
    fn default() -> Self {
        TimerTable { slots: [Slot::UNARMED; N], armed: 0, first: NONE }
    }
}

fn armed(slot: u64) -> Option<Instant> {
    (slot != UNARMED).then_some(Instant::from_micros(slot))
}

impl TimerTable {
    #[inline(always)]
    fn slot(&self, i: usize) -> u64 {
        self.slots[i].get()
    }

    /// The earliest deadline, `UNARMED` if none.
    #[inline(always)]
    fn first_deadline(&self) -> u64 {
        match self.slots.get(usize::from(self.first)) {
            Some(s) => s.get(),
            None => UNARMED,
        }
    }

    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        let i = timer as usize;
        let new = at.as_micros().min(UNARMED - 1);
        let old = self.slot(i);
        self.slots[i] = Slot::new(new);
        self.armed |= 1 << i;
        if usize::from(self.first) == i {
            if new > old {
                self.rescan(); // the earliest moved later: another may now be first
            }
        } else if new < self.first_deadline() {
            self.first = i as u8;
        }
        self.check();
    }

    /// Arm `timer` unless it already runs.
    #[inline]
    pub(crate) fn set_if_idle(&mut self, timer: Timer, at: Instant) {
        if !self.is_armed(timer) {
            self.set(timer, at);
        }
    }

    /// Stop `timer`; inline for the usual case, a timer that does not run
    /// (`update_timers` stops every timer the state does not need, on every call).
    #[inline(always)]
    pub(crate) fn stop(&mut self, timer: Timer) {
        if self.is_armed(timer) {
            self.disarm(timer as usize);
        }
    }

    fn disarm(&mut self, i: usize) {
        self.slots[i] = Slot::UNARMED;
        self.armed &= !(1 << i);
        if usize::from(self.first) == i {
            self.rescan();
        }
        self.check();
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        armed(self.slot(timer as usize))
    }

    #[inline(always)]
    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.armed & (1 << timer as usize) != 0
    }

    pub(crate) fn stop_all(&mut self) {
        *self = TimerTable::default();
    }

    /// Earliest deadline of all armed timers: O(1).
    #[inline]
    pub(crate) fn next(&self) -> Option<Instant> {
        armed(self.first_deadline())
    }

    /// Disarm and return the first timer (in [`Timer::ALL`] order) due at `now`, if any.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let now = now.as_micros();
        if self.first_deadline() > now {
            return None; // also when nothing is armed: UNARMED is never reached
        }
        let mut bits = self.armed;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if self.slot(i) <= now {
                self.disarm(i);
                return Some(Timer::ALL[i]);
            }
        }
        None
    }

    /// Find the earliest armed slot again (after the earliest was stopped or moved later).
    fn rescan(&mut self) {
        let (mut first, mut min) = (NONE, UNARMED);
        let mut bits = self.armed;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let s = self.slot(i);
            if s < min {
                (first, min) = (i as u8, s);
            }
        }
        self.first = first;
    }

    /// Debug builds: the cached earliest and the armed bits agree with the slots.
    #[inline]
    fn check(&self) {
        #[cfg(debug_assertions)]
        {
            let scan = self.slots.iter().map(|s| s.get()).min().unwrap_or(UNARMED);
            assert_eq!(self.first_deadline(), scan, "timer table's cached earliest is stale");
            for (i, s) in self.slots.iter().enumerate() {
                assert_eq!(self.armed & (1 << i) != 0, s.get() != UNARMED, "armed bit {i}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Timer, TimerTable};
    use crate::Instant;

    /// The earliest deadline stays exact through arming, re-arming later and earlier,
    /// stopping and expiry, in any order (`check` asserts it after every change).
    #[test]
    fn earliest_deadline_follows_every_change() {
        let at = Instant::from_micros;
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Keepalive, at(500));
        t.set(Timer::Retransmit, at(300));
        t.set(Timer::LossProbe, at(100));
        assert_eq!(t.next(), Some(at(100)));
        t.set(Timer::LossProbe, at(400)); // the earliest moves later
        assert_eq!(t.next(), Some(at(300)));
        t.set(Timer::Keepalive, at(50)); // another moves earlier
        assert_eq!(t.next(), Some(at(50)));
        t.stop(Timer::Keepalive);
        assert_eq!(t.next(), Some(at(300)));
        assert_eq!(t.take_expired(at(299)), None);
        assert_eq!(t.take_expired(at(1000)), Some(Timer::Retransmit), "table order");
        assert_eq!(t.next(), Some(at(400)));
        assert_eq!(t.take_expired(at(1000)), Some(Timer::LossProbe));
        assert_eq!(t.next(), None);
        assert_eq!(t.take_expired(at(u64::MAX)), None);
        t.set(Timer::Pace, at(u64::MAX)); // saturates one below UNARMED
        assert_eq!(t.next(), Some(at(u64::MAX - 1)));
        t.stop_all();
        assert_eq!(t, TimerTable::default());
    }

    /// The cached fields fit beside the slots without aligning the table to 8 bytes, so
    /// the connection does not grow (issue 12, MEM-01's margin).
    #[test]
    fn table_stays_four_byte_aligned() {
        assert_eq!(core::mem::align_of::<TimerTable>(), 4);
        assert_eq!(core::mem::size_of::<TimerTable>(), 92);
    }
}
