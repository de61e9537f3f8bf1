//! `MSG_ZEROCOPY` completion notifications (Linux `Documentation/networking/msg_zerocopy.rst`).
//! The shim always copies, as Linux does when it cannot pin pages (loopback, a tun device):
//! each `MSG_ZEROCOPY` send on an `SO_ZEROCOPY` socket gets the next notification ID, and
//! once the peer has acknowledged all its bytes, the error queue holds the range of
//! completed IDs with `SO_EE_CODE_ZEROCOPY_COPIED`.

use std::collections::VecDeque;

use crate::sockets::Host;

/// `MSG_ZEROCOPY` send flag.
pub(crate) const MSG_ZEROCOPY: i32 = 0x400_0000;
/// `MSG_ERRQUEUE` receive flag.
pub(crate) const MSG_ERRQUEUE: i32 = 0x2000;
/// `SOL_IP` / `IP_RECVERR`: the control message the error queue is read with.
const SOL_IP: i32 = 0;
const IP_RECVERR: i32 = 11;
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// A socket's notification state.
#[derive(Clone, Debug, Default)]
pub(crate) struct ZeroCopy {
    /// Bytes written through the socket so far.
    written: u64,
    /// The next notification ID.
    next_id: u32,
    /// Sends not yet acknowledged: (ID, stream offset of their end).
    pending: VecDeque<(u32, u64)>,
    /// Completed IDs not yet read, as an inclusive range (Linux coalesces consecutive ones).
    done: Option<(u32, u32)>,
}

impl ZeroCopy {
    /// `n` bytes were queued by a send with `flags`; `enabled`: `SO_ZEROCOPY` is on.
    pub(crate) fn on_send(&mut self, n: usize, flags: i32, enabled: bool) {
        self.written += n as u64;
        if enabled && flags & MSG_ZEROCOPY != 0 && n > 0 {
            self.pending.push_back((self.next_id, self.written));
            self.next_id = self.next_id.wrapping_add(1);
        }
    }

    /// Complete the sends whose bytes `acked` (stream bytes acknowledged) covers.
    fn complete(&mut self, acked: u64) {
        while let Some(&(id, end)) = self.pending.front() {
            if end > acked {
                break;
            }
            self.pending.pop_front();
            self.done = match self.done {
                Some((lo, hi)) if hi.wrapping_add(1) == id => Some((lo, id)),
                Some(range) => Some(range),
                None => Some((id, id)),
            };
        }
    }
}

impl Host {
    /// Bring `fd`'s notifications up to date; whether its error queue holds one (`POLLERR`).
    pub(crate) fn zerocopy_ready(&mut self, fd: i32) -> bool {
        let acked = self.conn(fd).map_or(u64::MAX, |c| c.info().bytes_acked);
        let Some(s) = self.socks.get_mut(&fd) else { return false };
        s.zerocopy.complete(acked);
        s.zerocopy.done.is_some()
    }

    /// `recvmsg(MSG_ERRQUEUE)`: the pending notification as the bytes of an `IP_RECVERR`
    /// control message (`struct sock_extended_err` and an empty offender address), or `None`
    /// when the queue is empty (`EAGAIN`).
    pub(crate) fn zerocopy_take(&mut self, fd: i32) -> Option<(i32, i32, [u8; 32])> {
        if !self.zerocopy_ready(fd) {
            return None;
        }
        let (lo, hi) = self.socks.get_mut(&fd)?.zerocopy.done.take()?;
        let mut err = [0u8; 32];
        err[4] = SO_EE_ORIGIN_ZEROCOPY;
        err[6] = SO_EE_CODE_ZEROCOPY_COPIED;
        err[8..12].copy_from_slice(&lo.to_ne_bytes());
        err[12..16].copy_from_slice(&hi.to_ne_bytes());
        Some((SOL_IP, IP_RECVERR, err))
    }
}
