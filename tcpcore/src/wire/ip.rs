//! Whole IP packets carrying TCP: the entry point for parsing input and emitting output.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ipv4::{self, Ipv4Packet};
use super::ipv6::{self, Ipv6Packet};
use super::tcp::{self, TcpPacket};
use super::{checksum, ParseError, TcpRepr};

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
    /// The ECN field of the IP header (RFC 3168 §5): one of the [`ecn`] codepoints.
    pub ecn: u8,
}

/// The ECN codepoints of the IP header's two low TOS / traffic-class bits (RFC 3168 §5).
pub mod ecn {
    /// Not ECN-Capable Transport.
    pub const NOT_ECT: u8 = 0b00;
    /// ECN-Capable Transport, ECT(1).
    pub const ECT1: u8 = 0b01;
    /// ECN-Capable Transport, ECT(0): what an ECN sender marks its data with.
    pub const ECT0: u8 = 0b10;
    /// Congestion Experienced, set by a router instead of dropping.
    pub const CE: u8 = 0b11;
    /// The ECN bits of the TOS / traffic-class byte.
    pub const MASK: u8 = 0b11;

    /// The ECN field of a whole IPv4 or IPv6 packet (`NOT_ECT` for anything shorter than
    /// the byte that holds it).
    pub fn field(packet: &[u8]) -> u8 {
        match (packet.first().map(|b| b >> 4), packet.get(1)) {
            (Some(4), Some(tos)) => tos & MASK,
            (Some(6), Some(b)) => (b >> 4) & MASK,
            _ => NOT_ECT,
        }
    }

    /// Mark an ECN-capable packet Congestion Experienced, as a router's AQM does instead of
    /// dropping it (RFC 3168 §5), fixing the IPv4 header checksum. Returns false, changing
    /// nothing, for a Not-ECT packet (or one too short to be IP).
    pub fn mark_ce(packet: &mut [u8]) -> bool {
        if field(packet) == NOT_ECT {
            return false;
        }
        if packet[0] >> 4 == 6 {
            packet[1] |= MASK << 4;
            return true;
        }
        let ihl = usize::from(packet[0] & 0xf) * 4;
        let Some(header) = packet.get_mut(..ihl.max(20)) else { return false };
        header[1] |= MASK;
        header[10..12].fill(0);
        let c = super::super::checksum::checksum(header);
        header[10..12].copy_from_slice(&c.to_be_bytes());
        true
    }
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
///
/// Checks, in order: the IP header lengths ([`ParseError::Truncated`],
/// [`ParseError::BadIpVersion`], [`ParseError::BadIpHeaderLen`], [`ParseError::BadIpLength`]),
/// the IPv4 header checksum, fragments, the protocol (following IPv6 extension headers), the
/// addresses (RFC 9293 §3.10.7.2: segments from or to broadcast or multicast addresses are
/// dropped; unspecified addresses likewise), the TCP data offset, the TCP checksum, the
/// options and the flags ([`TcpRepr::parse`]).
pub fn parse(packet: &[u8]) -> Result<Segment<'_>, ParseError> {
    parse_with(packet, TcpChecksum::Full)
}

/// [`parse`], but with [`TcpChecksum::Partial`] the TCP checksum is not verified: the device
/// already did, or the packet never left memory (receive checksum offload). Everything else
/// is checked as by [`parse`].
#[inline]
pub fn parse_with(packet: &[u8], csum: TcpChecksum) -> Result<Segment<'_>, ParseError> {
    let first = *packet.first().ok_or(ParseError::Truncated)?;
    match first >> 4 {
        4 => parse_v4(packet, csum),
        6 => parse_v6(packet, csum),
        _ => Err(ParseError::BadIpVersion),
    }
}

/// Who computes (on send) or checks (on receive) the TCP checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpChecksum {
    /// The stack: a complete checksum is written, and verified on receive.
    Full,
    /// The device (checksum offload): on send the field holds only the pseudo-header sum, as
    /// Linux's `CHECKSUM_PARTIAL`; on receive it is not verified.
    Partial,
}

#[inline(always)]
fn parse_v4(packet: &[u8], csum: TcpChecksum) -> Result<Segment<'_>, ParseError> {
    let ip = Ipv4Packet::new_checked(packet)?;
    if !ip.verify_checksum() {
        return Err(ParseError::BadIpChecksum);
    }
    // RFC 791 §3.2: a datagram with MF set or a nonzero offset is a fragment.
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(ParseError::Fragment);
    }
    if ip.protocol() != ipv4::PROTO_TCP {
        return Err(ParseError::NotTcp);
    }
    let (src, dst) = (ip.src(), ip.dst());
    let bad = |a: Ipv4Addr| a.is_multicast() || a.is_broadcast() || a.is_unspecified();
    if bad(src) || bad(dst) {
        return Err(ParseError::BadAddress);
    }
    let ecn = ip.tos() & ecn::MASK;
    let tcp = v4_payload(packet, &ip);
    // The pseudo-header sum from the IPv4 addresses themselves (RFC 9293 §3.1), not through
    // `IpAddr`; only when the checksum is ours to verify.
    let pseudo = match csum {
        TcpChecksum::Full => {
            let len = u16::try_from(tcp.len()).unwrap_or(u16::MAX);
            Some(checksum::pseudo_header_v4(src, dst, ipv4::PROTO_TCP, len))
        }
        TcpChecksum::Partial => None,
    };
    segment_with(IpAddr::V4(src), IpAddr::V4(dst), tcp, pseudo, ecn)
}

/// The IPv4 payload with the lifetime of the packet (the view's accessors borrow the view).
#[inline(always)]
fn v4_payload<'a>(packet: &'a [u8], ip: &Ipv4Packet<&'a [u8]>) -> &'a [u8] {
    packet.get(ip.header_len()..usize::from(ip.total_len())).unwrap_or_default()
}

fn parse_v6(packet: &[u8], csum: TcpChecksum) -> Result<Segment<'_>, ParseError> {
    let ip = Ipv6Packet::new_checked(packet)?;
    let tcp_at = ip.tcp_offset()?;
    let tcp_end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let tcp = packet.get(tcp_at..tcp_end).unwrap_or_default();
    let (src, dst) = (ip.src(), ip.dst());
    let bad = |a: Ipv6Addr| a.is_multicast() || a.is_unspecified();
    if bad(src) || bad(dst) {
        return Err(ParseError::BadAddress);
    }
    let ecn = ip.traffic_class() & ecn::MASK;
    segment(IpAddr::V6(src), IpAddr::V6(dst), tcp, csum, ecn)
}

/// Check and parse the TCP segment `bytes` carried between `src` and `dst`.
#[inline(always)]
fn segment(
    src: IpAddr,
    dst: IpAddr,
    bytes: &[u8],
    csum: TcpChecksum,
    ecn: u8,
) -> Result<Segment<'_>, ParseError> {
    let pseudo = match csum {
        TcpChecksum::Full => {
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            Some(checksum::pseudo_header(src, dst, ipv4::PROTO_TCP, len))
        }
        TcpChecksum::Partial => None,
    };
    segment_with(src, dst, bytes, pseudo, ecn)
}

/// [`segment`] given the pseudo-header sum of `src` and `dst`, or `None` when the TCP
/// checksum is not ours to verify.
#[inline(always)]
fn segment_with(
    src: IpAddr,
    dst: IpAddr,
    bytes: &[u8],
    pseudo: Option<u64>,
    ecn: u8,
) -> Result<Segment<'_>, ParseError> {
    let tcp = TcpPacket::new_checked(bytes)?;
    if pseudo.is_some_and(|acc| !checksum::is_valid(checksum::sum(bytes, acc))) {
        return Err(ParseError::BadTcpChecksum);
    }
    let payload = bytes.get(tcp.header_len()..).unwrap_or_default();
    let mut seg = Segment { src, dst, tcp: TcpRepr::default(), payload, ecn };
    seg.tcp.parse_from(&tcp)?;
    Ok(seg)
}

/// Emit an IP packet (IPv4 with DF set and TTL 64, or IPv6 with hop limit 64) carrying `tcp`
/// and the concatenation of `payload` into `buf`, with all checksums. Returns the packet length.
///
/// The TCP checksum is computed while the payload is copied into `buf`; the split point of
/// `payload` may be anywhere (odd offsets included).
///
/// # Errors
///
/// [`EmitError::MixedFamilies`] when `src` and `dst` differ in family;
/// [`EmitError::BufferTooSmall`] when `buf` cannot hold the packet, or the packet is longer
/// than the IP length field can express (65535 bytes for IPv4, a 65535-byte payload for IPv6).
pub fn emit(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    tcp: &TcpRepr,
    payload: [&[u8]; 2],
) -> Result<usize, EmitError> {
    emit_with(buf, src, dst, tcp, payload, TcpChecksum::Full)
}

/// [`emit`], but with [`TcpChecksum::Partial`] the TCP checksum field gets only the folded
/// pseudo-header sum, for a device with transmit checksum offload to complete over the TCP
/// header and payload (the IPv4 header checksum is always complete).
///
/// # Errors
///
/// As [`emit`].
pub fn emit_with(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    tcp: &TcpRepr,
    payload: [&[u8]; 2],
    csum: TcpChecksum,
) -> Result<usize, EmitError> {
    emit_ip(buf, src, dst, tcp, payload, csum, IpFields::default())
}

/// The IP header fields a socket chooses (`IP_TTL`/`IPV6_UNICAST_HOPS`,
/// `IP_TOS`/`IPV6_TCLASS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpFields {
    /// IPv4 time to live, or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 type of service, or IPv6 traffic class (DSCP and ECN bits).
    pub tos: u8,
}

impl Default for IpFields {
    /// TTL / hop limit 64 (RFC 1122 §3.2.1.7), TOS 0.
    fn default() -> Self {
        IpFields { ttl: ipv4::DEFAULT_TTL, tos: 0 }
    }
}

/// Copy a TCP payload's two pieces after its header `hdr` and return the checksum field:
/// with [`TcpChecksum::Full`] the header is a whole number of 32-bit words and the payload
/// is summed while it is copied, its second piece at whatever offset the first leaves
/// (RFC 1071 §2: the sum is associative); with [`TcpChecksum::Partial`] the folded
/// pseudo-header sum `acc`, which the device completes.
#[inline]
pub(crate) fn copy_payload(
    hdr: &[u8],
    [d0, d1]: [&mut [u8]; 2],
    [p0, p1]: [&[u8]; 2],
    acc: u64,
    csum: TcpChecksum,
) -> u16 {
    match csum {
        TcpChecksum::Full => {
            let acc = checksum::copy_and_sum(d0, p0, checksum::sum(hdr, acc));
            checksum::finish(checksum::add_at(acc, checksum::copy_and_sum(d1, p1, 0), p0.len()))
        }
        TcpChecksum::Partial => {
            d0.copy_from_slice(p0);
            d1.copy_from_slice(p1);
            checksum::fold(acc)
        }
    }
}

/// [`emit_with`] with the given IP header fields.
///
/// # Errors
///
/// As [`emit`].
pub fn emit_ip(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    tcp: &TcpRepr,
    payload: [&[u8]; 2],
    csum: TcpChecksum,
    ip: IpFields,
) -> Result<usize, EmitError> {
    let [p0, p1] = payload;
    let tcp_len = tcp.header_len() + p0.len() + p1.len();
    let ip_len = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => ipv4::HEADER_LEN,
        (IpAddr::V6(_), IpAddr::V6(_)) => ipv6::HEADER_LEN,
        _ => return Err(EmitError::MixedFamilies),
    };
    let total = ip_len + tcp_len;
    let buf = buf.get_mut(..total).ok_or(EmitError::BufferTooSmall)?;
    let (ip_hdr, seg) = buf.split_at_mut(ip_len);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(total).map_err(|_| EmitError::BufferTooSmall)?;
            let h = <&mut [u8; ipv4::HEADER_LEN]>::try_from(ip_hdr)
                .map_err(|_| EmitError::BufferTooSmall)?;
            ipv4::emit_header_with(h, s, d, total, ip.ttl, ip.tos);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let plen = u16::try_from(tcp_len).map_err(|_| EmitError::BufferTooSmall)?;
            let h = <&mut [u8; ipv6::HEADER_LEN]>::try_from(ip_hdr)
                .map_err(|_| EmitError::BufferTooSmall)?;
            ipv6::emit_header_with(h, s, d, plen, ip.ttl, ip.tos);
        }
        _ => return Err(EmitError::MixedFamilies),
    }
    let hlen = tcp.emit(seg)?;
    let (hdr, data) = seg.split_at_mut(hlen.min(tcp_len));
    let (d0, d1) = data.split_at_mut(p0.len().min(data.len()));
    // `tcp_len <= 65535` was checked above for both families.
    let acc = checksum::pseudo_header(src, dst, ipv4::PROTO_TCP, tcp_len as u32);
    let c = copy_payload(hdr, [d0, d1], [p0, p1], acc, csum);
    if let Some(field) = seg.get_mut(tcp::CHECKSUM_OFFSET..tcp::CHECKSUM_OFFSET + 2) {
        field.copy_from_slice(&c.to_be_bytes());
    }
    Ok(total)
}

/// Complete a TCP checksum left partial ([`TcpChecksum::Partial`]): add the TCP header and
/// payload to the pseudo-header sum in the field and store the complement, as a device with
/// checksum offload does. Returns false (changing nothing) for a packet that is not an IPv4
/// or IPv6 packet carrying TCP directly after the fixed header.
pub fn complete_tcp_checksum(packet: &mut [u8]) -> bool {
    let at = match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= ipv4::HEADER_LEN && packet[9] == ipv4::PROTO_TCP => {
            usize::from(packet[0] & 0x0f) * 4
        }
        Some(6) if packet.len() >= ipv6::HEADER_LEN && packet[6] == ipv4::PROTO_TCP => {
            ipv6::HEADER_LEN
        }
        _ => return false,
    };
    let field = at + tcp::CHECKSUM_OFFSET;
    if field + 2 > packet.len() {
        return false;
    }
    let c = checksum::finish(checksum::sum(&packet[at..], 0));
    packet[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}
