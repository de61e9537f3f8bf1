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

/// Deadlines indexed by [`Timer`], in microseconds since the epoch; [`UNARMED`] marks a
/// stopped timer. Not `Option<Instant>`: that doubles the table's size in every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerTable {
    slots: [u64; N],
}

/// The value of a stopped timer's slot. A deadline this far away (an instant that
/// saturated) is stored one microsecond earlier: it never fires either way.
const UNARMED: u64 = u64::MAX;

impl Default for TimerTable {
    fn default() -> Self {
        TimerTable { slots: [UNARMED; N] }
    }
}

fn armed(slot: u64) -> Option<Instant> {
    (slot != UNARMED).then_some(Instant::from_micros(slot))
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.slots[timer as usize] = at.as_micros().min(UNARMED - 1);
    }

    /// Arm `timer` unless it already runs.
    pub(crate) fn set_if_idle(&mut self, timer: Timer, at: Instant) {
        if !self.is_armed(timer) {
            self.set(timer, at);
        }
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.slots[timer as usize] = UNARMED;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        armed(self.slots[timer as usize])
    }

    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.slots[timer as usize] != UNARMED
    }

    pub(crate) fn stop_all(&mut self) {
        self.slots = [UNARMED; N];
    }

    /// Earliest deadline of all armed timers.
    pub(crate) fn next(&self) -> Option<Instant> {
        armed(self.slots.iter().copied().min().unwrap_or(UNARMED))
    }

    /// Disarm and return the first timer due at `now`, if any.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let now = now.as_micros();
        let t = Timer::ALL.into_iter().find(|t| {
            let slot = self.slots[*t as usize];
            slot != UNARMED && slot <= now
        })?;
        self.slots[t as usize] = UNARMED;
        Some(t)
    }
}
