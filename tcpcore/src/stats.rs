//! Endpoint-wide counters.

use crate::wire::ParseError;

/// Counters of one [`crate::endpoint::Endpoint`]. Every dropped packet is counted by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// IP packets handed to the endpoint.
    pub packets_in: u64,
    /// Packets the endpoint itself emitted (resets for segments with no connection).
    pub packets_out: u64,
    /// Packets dropped while parsing, indexed by [`ParseError::index`].
    pub parse_errors: [u64; ParseError::ALL.len()],
    /// Segments for no connection and no listener (answered with RST unless a RST).
    pub no_connection: u64,
    /// Segments at a listener that were neither a SYN nor answerable (dropped).
    pub listener_drops: u64,
    /// Resets sent for segments with no connection (RFC 9293 §3.10.7.1).
    pub resets_sent: u64,
    /// Resets suppressed by the rate limit.
    pub resets_rate_limited: u64,
    /// Connections opened by `connect`.
    pub active_opens: u64,
    /// Connections opened by a listener.
    pub passive_opens: u64,
}

impl EndpointStats {
    /// Drops counted for one parse error.
    pub fn parse_error(&self, e: ParseError) -> u64 {
        self.parse_errors[e.index()]
    }

    /// All packets dropped before reaching a connection.
    pub fn total_drops(&self) -> u64 {
        self.parse_errors.iter().sum::<u64>() + self.listener_drops + self.no_connection
    }
}
