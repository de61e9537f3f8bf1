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

/// Deadlines indexed by [`Timer`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TimerTable {
    slots: [Option<Instant>; 9],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.slots[timer as usize] = Some(at);
    }

    /// Arm `timer` unless it already runs.
    pub(crate) fn set_if_idle(&mut self, timer: Timer, at: Instant) {
        self.slots[timer as usize].get_or_insert(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.slots[timer as usize] = None;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.slots[timer as usize]
    }

    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.slots[timer as usize].is_some()
    }

    pub(crate) fn stop_all(&mut self) {
        self.slots = [None; 9];
    }

    /// Earliest deadline of all armed timers.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.slots.iter().flatten().min().copied()
    }

    /// Disarm and return the first timer due at `now`, if any.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let t =
            Timer::ALL.into_iter().find(|t| self.slots[*t as usize].is_some_and(|d| d <= now))?;
        self.slots[t as usize] = None;
        Some(t)
    }
}
