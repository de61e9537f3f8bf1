//! The per-connection timer table: one slot per timer kind, not a heap (as quinn does).

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
}

impl Timer {
    pub(crate) const ALL: [Timer; 9] = [
        Timer::Retransmit,
        Timer::DelayedAck,
        Timer::Persist,
        Timer::Keepalive,
        Timer::TimeWait,
        Timer::FinWait2,
        Timer::UserTimeout,
        Timer::Reorder,
        Timer::LossProbe,
    ];
}

/// Deadlines indexed by [`Timer`], in microseconds, `u64::MAX` when disarmed (a deadline
/// that far away never fires either). Plain integers keep [`TimerTable::next`], which the
/// caller asks after every input and output, to a branch-free minimum.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimerTable {
    slots: [u64; 9],
}

/// A disarmed slot.
const IDLE: u64 = u64::MAX;

impl Default for TimerTable {
    fn default() -> Self {
        TimerTable { slots: [IDLE; 9] }
    }
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.slots[timer as usize] = at.as_micros();
    }

    /// Arm `timer` unless it already runs.
    pub(crate) fn set_if_idle(&mut self, timer: Timer, at: Instant) {
        let slot = &mut self.slots[timer as usize];
        if *slot == IDLE {
            *slot = at.as_micros();
        }
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.slots[timer as usize] = IDLE;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        let at = self.slots[timer as usize];
        (at != IDLE).then_some(Instant::from_micros(at))
    }

    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.slots[timer as usize] != IDLE
    }

    pub(crate) fn stop_all(&mut self) {
        self.slots = [IDLE; 9];
    }

    /// Earliest deadline of all armed timers.
    pub(crate) fn next(&self) -> Option<Instant> {
        let at = self.slots.iter().fold(IDLE, |m, &s| m.min(s));
        (at != IDLE).then_some(Instant::from_micros(at))
    }

    /// Disarm and return the first timer due at `now`, if any.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let now = now.as_micros();
        let t = Timer::ALL.into_iter().find(|t| {
            let at = self.slots[*t as usize];
            at != IDLE && at <= now
        })?;
        self.slots[t as usize] = IDLE;
        Some(t)
    }
}
