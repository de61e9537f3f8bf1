//! ICMP errors other than "too big" (RFC 1122 §4.2.3.9, RFC 5461, RFC 5927), which the
//! endpoint routes here as [`crate::DatagramEvent::IcmpError`].
//!
//! A hard error (port or protocol unreachable, administratively prohibited) for a
//! connection still opening aborts it: `connect` fails at once with the error, as Linux's
//! `tcp_v4_err` / `tcp_v6_err` do, instead of retrying its SYN for two minutes. Any other
//! error, and every error on a synchronized connection, is soft (RFC 1122 §4.2.3.9: it
//! "MUST NOT abort the connection"; RFC 5461 §4 keeps hard errors soft once synchronized):
//! it is remembered and reported as the cause if the connection later times out, as Linux
//! reports `sk_err_soft` instead of `ETIMEDOUT`, unless something worked since.
//!
//! ICMP is easy to forge: the quoted sequence number must be in flight (RFC 5927 §4.1,
//! SND.UNA ≤ SEG.SEQ < SND.NXT; our SND.MAX is RFC 9293's SND.NXT).

use super::{Connection, State};
use crate::endpoint::IcmpUnreachable;
use crate::wire::SeqNum;
use crate::{ConnectionError, Instant};

/// A soft error and where the connection stood when it came: it is stale once either edge
/// has moved (the peer acknowledged or sent something: the path works again; Linux clears
/// `sk_err_soft` in `tcp_ack`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SoftError {
    error: ConnectionError,
    snd_una: SeqNum,
    rcv_nxt: SeqNum,
}

impl Connection {
    /// An ICMP error quoting one of this connection's segments (from
    /// [`crate::DatagramEvent::IcmpError`]).
    ///
    /// Ignored (counted in [`crate::TcpInfo::icmp_ignored`]) when the quoted segment is not
    /// in flight (RFC 5927 §4.1) or the connection is closed. A hard error in SYN-SENT (or
    /// SYN-RECEIVED of a simultaneous open) closes the connection with `e.error` (IC-07); any
    /// other error is remembered and becomes the connection's error if it later times out
    /// (IC-08). Call [`Connection::poll_event`] afterwards.
    pub fn handle_icmp_error(&mut self, now: Instant, e: IcmpUnreachable) {
        self.unsync_timers();
        let _span = self.span().entered();
        let in_flight = e.seq.in_range(self.snd_una, self.snd_max);
        if !in_flight || self.state == State::Closed {
            self.info.cold.icmp_ignored += 1;
            tracing::trace!(
                seq = e.seq.0,
                una = self.snd_una.0,
                "ICMP quotes a segment not in flight"
            );
            return;
        }
        let opening = matches!(self.state, State::SynSent | State::SynReceived);
        if e.hard && opening {
            tracing::debug!(error = ?e.error, "hard ICMP error while opening: aborted");
            self.enter_closed(Some(e.error));
            self.update_timers(now);
            return;
        }
        tracing::debug!(error = ?e.error, "soft ICMP error remembered");
        self.rare.soft_error =
            Some(SoftError { error: e.error, snd_una: self.snd_una, rcv_nxt: self.rcv_nxt });
    }

    /// The error to report instead of `TimedOut`: the last soft ICMP error, if nothing
    /// worked since it came (IC-08).
    pub(crate) fn timeout_cause(&self) -> Option<ConnectionError> {
        self.rare
            .soft_error
            .filter(|s| s.snd_una == self.snd_una && s.rcv_nxt == self.rcv_nxt)
            .map(|s| s.error)
    }
}
