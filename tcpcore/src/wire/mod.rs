//! Wire formats: IPv4, IPv6 and fragments, TCP and its options, UDP, Internet checksums, sequence numbers.
//!
//! Two layers, as in smoltcp: zero-copy `*Packet<T: AsRef<[u8]>>` views whose checked
//! constructor validates lengths so that no accessor can panic afterwards, and plain `Repr`
//! structs with `parse`/`emit`. Parsing hostile bytes never panics; it returns a
//! [`ParseError`] whose variant names the drop reason counted in the stats.

pub mod checksum;
pub mod frag;
pub mod icmp;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod options;
pub mod plain;
pub mod seq;
pub mod tcp;
pub mod udp;

pub use ip::{
    ecn, emit, emit_ip, emit_with, parse, parse_with, EmitError, IpFields, Segment, TcpChecksum,
};
pub use options::{FastOpenOption, SackBlock, TcpOptions, Timestamps};
pub use plain::{emit_plain, PlainHeader};
pub use seq::SeqNum;
pub use tcp::{TcpFlags, TcpRepr};

/// Why an incoming packet could not be parsed. Each variant is a drop counter in the stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum ParseError {
    /// Shorter than the headers it announces.
    Truncated,
    /// IP version is neither 4 nor 6.
    BadIpVersion,
    /// IPv4 IHL below 5 or beyond the packet.
    BadIpHeaderLen,
    /// IP total/payload length inconsistent with the buffer.
    BadIpLength,
    /// IPv4 header checksum wrong.
    BadIpChecksum,
    /// An IP fragment: parsing takes whole packets only; the endpoint reassembles fragments
    /// first (TCP itself sets DF and never needs it, RFC 9293 §3.7.1 / HS-11).
    Fragment,
    /// Not a TCP packet (other protocol, or an IPv6 header chain we do not follow).
    NotTcp,
    /// Source or destination is multicast, broadcast or unspecified (RFC 9293 §3.10.7.2).
    BadAddress,
    /// TCP data offset below 5 or beyond the segment.
    BadTcpHeaderLen,
    /// TCP checksum wrong.
    BadTcpChecksum,
    /// A TCP option with a length that is truncated, below 2, or wrong for its kind.
    BadOption,
    /// An impossible flag combination: SYN+FIN, SYN+RST, or no control flag at all.
    BadFlags,
}

impl ParseError {
    /// Every variant, in counter order.
    pub const ALL: [ParseError; 12] = [
        ParseError::Truncated,
        ParseError::BadIpVersion,
        ParseError::BadIpHeaderLen,
        ParseError::BadIpLength,
        ParseError::BadIpChecksum,
        ParseError::Fragment,
        ParseError::NotTcp,
        ParseError::BadAddress,
        ParseError::BadTcpHeaderLen,
        ParseError::BadTcpChecksum,
        ParseError::BadOption,
        ParseError::BadFlags,
    ];

    /// Index of this variant in [`ParseError::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for ParseError {}
