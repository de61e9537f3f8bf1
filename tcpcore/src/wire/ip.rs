//! Whole IP packets carrying TCP: the entry point for parsing input and emitting output.

use std::net::IpAddr;

use super::{ParseError, TcpRepr};

/// A parsed, checksum-verified TCP segment with its IP addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address.
    pub dst: IpAddr,
    /// The TCP header.
    pub tcp: TcpRepr,
    /// The TCP payload, borrowed from the packet.
    pub payload: &'a [u8],
}

/// Why a segment could not be emitted (a caller mistake, never a network input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitError {
    /// The output buffer is smaller than the packet.
    BufferTooSmall,
    /// Source and destination are of different IP families.
    MixedFamilies,
}

/// Parse a whole IPv4 or IPv6 packet carrying TCP, verifying the IPv4 header checksum and the
/// TCP checksum. Never panics.
pub fn parse(packet: &[u8]) -> Result<Segment<'_>, ParseError> {
    let _ = packet;
    todo!("wire helper")
}

/// Emit an IP packet (IPv4 with DF set and TTL 64, or IPv6 with hop limit 64) carrying `tcp`
/// and the concatenation of `payload` into `buf`, with all checksums. Returns the packet length.
pub fn emit(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    tcp: &TcpRepr,
    payload: [&[u8]; 2],
) -> Result<usize, EmitError> {
    let _ = (buf, src, dst, tcp, payload);
    todo!("wire helper")
}
