//! Endpoint-wide counters.

use crate::wire::ParseError;
use crate::{Connection, Endpoint, State};

/// Counters of one [`crate::Endpoint`]. Every dropped packet is counted by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct EndpointStats {
    /// IP packets handed to the endpoint.
    pub packets_in: u64,
    /// Packets the endpoint itself emitted (SYN-ACKs, resets, TIME-WAIT ACKs).
    pub packets_out: u64,
    /// Packets dropped while parsing, indexed by [`ParseError::index`] (serialized as a map
    /// by reason).
    #[cfg_attr(feature = "serde", serde(serialize_with = "parse_errors_by_reason"))]
    pub parse_errors: [u64; ParseError::ALL.len()],
    /// Segments for no connection and no listener (answered with RST unless a RST).
    pub no_connection: u64,
    /// Segments at a listener that were neither a SYN nor answerable (dropped).
    pub listener_drops: u64,
    /// Resets sent for segments with no connection (RFC 9293 §3.10.7.1).
    pub resets_sent: u64,
    /// Replies (resets, TIME-WAIT ACKs) suppressed by the rate limit or a full queue.
    pub replies_rate_limited: u64,
    /// Connections opened by `connect`.
    pub active_opens: u64,
    /// Connections opened by a listener (handshake completed).
    pub passive_opens: u64,
    /// SYNs received by listeners.
    pub syns_received: u64,
    /// SYN-ACKs sent from the SYN queue or with cookies, retransmissions included.
    pub syn_acks_sent: u64,
    /// SYN-ACK retransmissions.
    pub syn_ack_retransmits: u64,
    /// Duplicate SYNs to a half-open entry not answered: within `invalid_ack_interval` of
    /// the last one answered (LQ-07).
    pub dup_syns_rate_limited: u64,
    /// SYNs dropped because the SYN queue was full and cookies were off (LQ-03).
    pub syn_queue_drops: u64,
    /// Half-open entries dropped after the SYN-ACK retries ran out (LQ-06).
    pub syn_queue_expired: u64,
    /// Bare ACKs completing a handshake dropped while the listener defers accepting until
    /// data (`ListenOptions::defer_accept`, Linux `TCPDeferAcceptDrop`).
    pub defer_accept_drops: u64,
    /// Half-open entries the peer reset (HS-05).
    pub syn_queue_reset: u64,
    /// SYNs and completing ACKs dropped because the accept queue was full (LQ-02; Linux
    /// `ListenOverflows`).
    pub listen_overflows: u64,
    /// Cookies sent in SYN-ACKs.
    pub cookies_sent: u64,
    /// Completing ACKs whose cookie verified (a connection was made).
    pub cookies_accepted: u64,
    /// Completing ACKs whose cookie was wrong or stale (dropped, LQ-04).
    pub cookies_rejected: u64,
    /// Fast Open children made: SYN data accepted with a valid cookie (RFC 7413 §4.2.2;
    /// Linux `TCPFastOpenPassive`).
    pub fast_open_accepted: u64,
    /// Fast Open cookie requests answered (Linux `TCPFastOpenCookieReqd`).
    pub fast_open_cookie_requests: u64,
    /// Fast Open SYNs with an invalid cookie: data dropped, a fresh cookie sent (Linux
    /// `TCPFastOpenPassiveFail`).
    pub fast_open_cookie_rejected: u64,
    /// Fast Open SYNs handled as plain SYNs because the listener's Fast Open queue was full
    /// (Linux `TCPFastOpenListenOverflow`).
    pub fast_open_queue_full: u64,
    /// Connections that entered the TIME-WAIT table.
    pub time_wait_entered: u64,
    /// TIME-WAIT entries not kept because the table was full.
    pub time_wait_overflows: u64,
    /// TIME-WAIT entries ended early by a new SYN (RFC 6191) or a RST.
    pub time_wait_recycled: u64,
    /// Closed connections still held for the application whose 4-tuple was freed for new
    /// connections ([`crate::Endpoint::release_tuple`], FA-02).
    pub tuples_released: u64,
    /// ACKs sent from TIME-WAIT entries (stray segments, retransmitted FINs).
    pub time_wait_acks: u64,
    /// Segments at TIME-WAIT entries that PAWS found to be old duplicates (RFC 7323 §5.3;
    /// answered with an ACK). Live connections count theirs in `TcpInfo::paws_rejected`.
    pub time_wait_paws_rejected: u64,
    /// ICMP echo replies queued (RFC 792, RFC 4443 §4.2).
    pub icmp_echo_replies: u64,
    /// Echo requests not answered: not to one of our addresses, data too long, or no free
    /// echo buffer (rate-limited ones count in `replies_rate_limited`).
    pub icmp_echo_dropped: u64,
    /// "Fragmentation needed" / "packet too big" messages passed to a connection.
    pub icmp_errors_applied: u64,
    /// ICMP errors quoting a segment of no connection of ours (or not addressed to the
    /// quoted source).
    pub icmp_unknown_connection: u64,
    /// ICMP errors whose MTU is below the family's minimum or not below the interface MTU.
    pub icmp_bad_mtu: u64,
    /// ICMP packets that failed to parse: truncated, bad checksum, bad quote.
    pub icmp_malformed: u64,
    /// Well-formed ICMP messages of a type we do not act on (echo replies included).
    pub icmp_ignored: u64,
    /// Any-IP interception and its connection requests (AI-01, AI-02).
    pub intercept: crate::endpoint::InterceptStats,
    /// ICMP errors queued by the endpoint: port unreachable, reassembly time exceeded.
    pub icmp_errors_sent: u64,
    /// ICMP errors not sent: over the rate limit (`icmp_ratelimit`, `icmp_msgs_per_sec`)
    /// or no free quote buffer.
    pub icmp_errors_rate_limited: u64,
    /// Well-formed UDP datagrams received (Linux `InDatagrams` plus `NoPorts`).
    pub udp_datagrams_in: u64,
    /// UDP datagrams to a port no socket is bound to (Linux `NoPorts`), answered with
    /// port unreachable unless rate-limited.
    pub udp_no_port: u64,
    /// UDP datagrams shorter than their header or with a bad length field (`InErrors`).
    pub udp_malformed: u64,
    /// UDP datagrams with a wrong checksum (`InCsumErrors`).
    pub udp_bad_checksum: u64,
    /// IPv6 UDP datagrams with a zero checksum (RFC 8200 §8.1; UDP-03).
    pub udp_zero_checksum_v6: u64,
    /// IP fragments received (Linux `ReasmReqds`).
    pub frags_in: u64,
    /// Datagrams reassembled, IPv6 atomic fragments included (`ReasmOKs`).
    pub frag_reassembled: u64,
    /// IPv6 atomic fragments handled as whole datagrams (RFC 6946).
    pub frag_atomic: u64,
    /// Fragments exactly duplicating data already received (dropped alone).
    pub frag_duplicates: u64,
    /// Fragments overlapping others: their whole datagram was discarded (RFC 5722,
    /// `ReasmOverlaps`).
    pub frag_overlaps: u64,
    /// Fragments with bad lengths or inconsistent with the others (their datagram is
    /// discarded), or unparsable.
    pub frag_malformed: u64,
    /// Fragments dropped because reassembly memory reached `ipfrag_high_thresh`.
    pub frag_budget_drops: u64,
    /// Datagrams given up after `ipfrag_time` (`ReasmTimeout`).
    pub frag_timeouts: u64,
}

impl EndpointStats {
    /// Drops counted for one parse error.
    pub fn parse_error(&self, e: ParseError) -> u64 {
        self.parse_errors[e.index()]
    }

    /// All packets dropped before reaching a connection.
    pub fn total_drops(&self) -> u64 {
        self.parse_errors.iter().sum::<u64>()
            + self.listener_drops
            + self.no_connection
            + self.syn_queue_drops
            + self.listen_overflows
            + self.cookies_rejected
            + self.icmp_echo_dropped
            + self.icmp_unknown_connection
            + self.icmp_bad_mtu
            + self.icmp_malformed
            + self.icmp_ignored
            + self.intercept.pending_overflows
            + self.intercept.expired
            + self.udp_no_port
            + self.udp_malformed
            + self.udp_bad_checksum
            + self.udp_zero_checksum_v6
            + self.frag_duplicates
            + self.frag_overlaps
            + self.frag_malformed
            + self.frag_budget_drops
    }
}

/// `parse_errors` as a map from each [`ParseError`] to its count.
#[cfg(feature = "serde")]
fn parse_errors_by_reason<S: serde::Serializer>(
    counts: &[u64; ParseError::ALL.len()],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(ParseError::ALL.iter().zip(counts))
}

/// Connections per state (like `ss -s`): the owner's connections plus the endpoint's
/// half-open (SYN-RECEIVED) and TIME-WAIT entries. CL-11: a CLOSE-WAIT the application never
/// closes stays visible here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    counts: [usize; State::ALL.len()],
}

impl StateCounts {
    /// Connections in `state`.
    pub fn get(&self, state: State) -> usize {
        self.counts[state.index()]
    }

    /// All connections counted.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Count one more connection in `state`.
    pub fn add(&mut self, state: State) {
        self.counts[state.index()] += 1;
    }

    /// `(state, count)` for every state with at least one connection.
    pub fn iter(&self) -> impl Iterator<Item = (State, usize)> + '_ {
        State::ALL.into_iter().map(|s| (s, self.get(s))).filter(|(_, n)| *n > 0)
    }
}

/// A map from every state (`"ESTABLISHED"`, `"CLOSE_WAIT"`, …) to its count, zeros included.
#[cfg(feature = "serde")]
impl serde::Serialize for StateCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(State::ALL.iter().zip(&self.counts))
    }
}

impl Endpoint {
    /// Connections per state: `conns` are the caller's connections of this endpoint.
    pub fn state_counts<'a>(&self, conns: impl IntoIterator<Item = &'a Connection>) -> StateCounts {
        let mut c = StateCounts::default();
        for conn in conns {
            c.add(conn.state());
        }
        c.counts[State::SynReceived.index()] += self.half_open_count();
        c.counts[State::TimeWait.index()] += self.time_wait_count();
        c
    }
}
