//! Giving buffers back. The send and receive rings, the out-of-order range list and the SACK
//! scoreboard are allocated on demand (`ring.rs`); once they are empty and the connection
//! has been quiet for an RTO, their storage is freed, with the state of the transfer that
//! used them (`lazy.rs`), so a connection that moved a burst and
//! went idle costs what an idle one does. Linux gets the same effect by freeing each skb as
//! it is acknowledged or read; a ring freed the moment it empties would instead be
//! reallocated by the next request of a request/response exchange, so the release waits
//! for a quiet RTO (`Timer::Release`). Nothing here runs per segment: the timer is armed
//! once while something is allocated and fires at most once per RTO.

use super::timers::Timer;
use super::{Connection, State};
use crate::Instant;

/// Timers that mean the connection is not quiet (data, a probe or an ACK under way): the
/// release timer waits until none of them runs.
const BUSY: [Timer; 5] =
    [Timer::Retransmit, Timer::DelayedAck, Timer::Persist, Timer::Reorder, Timer::LossProbe];

impl Connection {
    /// Heap bytes held by this connection's buffers (rings, out-of-order ranges, scoreboard).
    pub fn buffer_bytes(&self) -> usize {
        self.send_buf.allocated()
            + self.recv_buf.allocated()
            + self.sack_tx.sb.as_ref().map_or(0, |sb| sb.allocated())
    }

    /// Everything sent is acknowledged, everything received was read, no timer but the
    /// long ones (keepalive, FIN-WAIT-2) runs, and some buffer is allocated: the release
    /// timer should run.
    fn release_due(&self) -> bool {
        self.send_buf.len() == 0
            && self.recv_buf.unread() == 0
            && !self.recv_buf.has_ooo()
            && !BUSY.iter().any(|&t| self.timers.is_armed(t))
            && self.buffer_bytes() > 0
    }

    /// The release timer should run and does not yet: the owner must poll (a read that
    /// emptied the receive buffer has no `now` to arm it with).
    pub(crate) fn release_unarmed(&self) -> bool {
        // Not in TIME-WAIT: `update_timers` arms nothing but 2 MSL there.
        let live = self.state.is_synchronized() && self.state != State::TimeWait;
        live && !self.timers.is_armed(Timer::Release) && self.release_due()
    }

    /// Arm or stop the release timer (from `update_timers`).
    pub(crate) fn arm_release(&mut self, now: Instant) {
        if !self.release_due() {
            self.timers.stop(Timer::Release);
        } else if !self.timers.is_armed(Timer::Release) {
            self.timers.set(Timer::Release, self.rtt.rto_after(now));
        }
    }

    /// When the connection last moved data: sent new data or received some.
    fn last_activity(&self) -> Option<Instant> {
        self.cwv.last_send().max(self.ack.last_data)
    }

    /// `Timer::Release`: free what is empty if the connection has been quiet for an RTO.
    pub(crate) fn on_release_timer(&mut self, now: Instant) {
        let rto = self.rtt.rto();
        if let Some(last) = self.last_activity() {
            if now < last + rto {
                self.timers.set(Timer::Release, last + rto);
                return;
            }
        }
        let freed = self.release_buffers();
        tracing::trace!(freed, "buffers released");
    }

    /// Free every empty buffer now, and the transfer state (RACK, PRR and TLP; receive
    /// auto-tuning's measurement) once nothing is in flight; returns the bytes freed.
    pub(crate) fn release_buffers(&mut self) -> usize {
        let mut freed = self.send_buf.release_if_empty() + self.recv_buf.release_if_empty();
        if self.snd_una == self.snd_max && !self.recovery.active {
            if self.sack_tx.is_allocated() {
                freed += self.sack_tx.sb.as_ref().map_or(0, |sb| sb.allocated());
                freed += core::mem::size_of::<super::recovery::SackTx>();
                self.sack_tx.release();
            }
        } else if let Some(sb) = self.sack_tx.sb.as_mut() {
            freed += sb.release_if_empty();
        }
        if self.sack_rx.is_allocated() && !self.recv_buf.has_ooo() && self.sack_rx.dsack.is_none() {
            freed += core::mem::size_of::<super::sack::SackRx>();
            self.sack_rx.release();
        }
        if self.rcv_space.is_allocated() {
            freed += core::mem::size_of::<super::autotune::RcvSpace>();
            self.rcv_space.release();
        }
        freed
    }
}
