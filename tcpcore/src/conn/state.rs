//! The connection states of RFC 9293 §3.3.2.

/// A TCP connection state (RFC 9293 §3.3.2, figure 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "SCREAMING_SNAKE_CASE"))]
pub enum State {
    /// No connection.
    Closed,
    /// Waiting for a SYN (held by the endpoint's listener; listed for completeness).
    Listen,
    /// SYN sent, waiting for the peer's SYN.
    SynSent,
    /// SYN received and SYN-ACK sent, waiting for its acknowledgment.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    /// We sent FIN; waiting for its ACK or the peer's FIN.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// The peer sent FIN; we may still send.
    CloseWait,
    /// Both sent FIN simultaneously; waiting for the ACK of ours.
    Closing,
    /// We sent FIN after the peer's; waiting for its ACK.
    LastAck,
    /// Both FINs are acknowledged; waiting 2 MSL for stray segments.
    TimeWait,
}

impl State {
    /// Every state, in the order used by per-state counters.
    pub const ALL: [State; 11] = [
        State::Closed,
        State::Listen,
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];

    /// RFC 9293 §3.3.2: the states after the handshake, where both ISNs are known.
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::Closed | State::Listen | State::SynSent | State::SynReceived)
    }

    /// States in which we may still send new data.
    pub fn can_send(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }

    /// States in which incoming data is accepted (RFC 9293 §3.10.7.4 seventh step).
    pub fn can_receive(self) -> bool {
        matches!(self, State::Established | State::FinWait1 | State::FinWait2)
    }

    /// Whether our FIN has been queued (we are past ESTABLISHED/CLOSE-WAIT on our side).
    pub fn fin_queued(self) -> bool {
        matches!(
            self,
            State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck | State::TimeWait
        )
    }

    /// Index in [`State::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}
