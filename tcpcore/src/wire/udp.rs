//! The UDP header (RFC 768) and whole IP packets carrying UDP.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! |            Length             |           Checksum            |
//! |                          data octets ...                      |
//! ```
//!
//! The checksum covers the pseudo-header (RFC 768; RFC 8200 §8.1), the header and the data.
//! Over IPv4 a zero checksum means the sender computed none (RFC 768); over IPv6 the checksum
//! is mandatory and a zero one is dropped (RFC 8200 §8.1). A computed checksum of zero is sent
//! as all ones (RFC 768). As everywhere in `wire`, parsing never panics or allocates.

use std::net::{IpAddr, SocketAddr};

use super::ipv4::{self, Ipv4Packet};
use super::ipv6::{self, Ipv6Packet};
use super::{checksum, EmitError, ParseError};

/// The IP protocol number (and IPv6 next header) of UDP.
pub const PROTO_UDP: u8 = 17;
/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;
/// Largest UDP payload in one IPv4 datagram: 65535 less the IPv4 and UDP headers.
pub const MAX_PAYLOAD_V4: usize = 65_535 - ipv4::HEADER_LEN - HEADER_LEN;
/// Largest UDP payload in one IPv6 datagram (no jumbograms): 65535 less the UDP header.
pub const MAX_PAYLOAD_V6: usize = 65_535 - HEADER_LEN;

/// Why an IP packet was not accepted as a UDP datagram. Each variant is a drop reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UdpError {
    /// The enclosing IP packet failed the same checks as for TCP.
    Ip(ParseError),
    /// The packet does not carry UDP.
    NotUdp,
    /// Shorter than the 8-byte UDP header.
    Truncated,
    /// The UDP length field is below 8 or beyond the IP payload (Linux `UDP_MIB_INERRORS`).
    BadLength,
    /// The checksum is wrong (Linux `UDP_MIB_CSUMERRORS`).
    BadChecksum,
    /// An IPv6 datagram with a zero checksum (RFC 8200 §8.1: "IPv6 receivers must discard
    /// UDP packets containing a zero checksum").
    ZeroChecksumV6,
}

impl core::fmt::Display for UdpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for UdpError {}

/// A read-only view of a UDP datagram (header and data) whose length field has been checked.
///
/// The only constructor, [`UdpPacket::new_checked`], guarantees `8 <= len() <= buffer.len()`,
/// so no accessor can panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    /// Invariant: `HEADER_LEN <= length field <= buffer.len()`.
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wrap `buffer` (the IP payload), checking that it holds the header
    /// ([`UdpError::Truncated`]) and that the length field is at least 8 and within the
    /// buffer ([`UdpError::BadLength`]). Bytes beyond the length field are ignored, as Linux
    /// trims them (`pskb_trim_rcsum`).
    pub fn new_checked(buffer: T) -> Result<Self, UdpError> {
        let b = buffer.as_ref();
        let hdr = b.get(..HEADER_LEN).ok_or(UdpError::Truncated)?;
        let len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
        if len < HEADER_LEN || len > b.len() {
            return Err(UdpError::BadLength);
        }
        Ok(UdpPacket { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn u16_at(&self, at: usize) -> u16 {
        // `at + 1 < HEADER_LEN <= buffer.len()` for every field.
        u16::from_be_bytes([self.b()[at], self.b()[at + 1]])
    }

    /// Source port (0: none given, RFC 768).
    pub fn src_port(&self) -> u16 {
        self.u16_at(0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(2)
    }

    /// The length field: header plus data.
    pub fn len(&self) -> u16 {
        self.u16_at(4)
    }

    /// Never true: the length covers at least the header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(6)
    }

    /// The data: the bytes after the header up to the length field.
    pub fn payload(&self) -> &[u8] {
        self.b().get(HEADER_LEN..usize::from(self.len())).unwrap_or_default()
    }

    /// True when the checksum over the pseudo-header of `src` and `dst`, the header and the
    /// data verifies. A zero field is not special here (see [`parse_with`]).
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let b = self.b().get(..usize::from(self.len())).unwrap_or_default();
        let acc = checksum::pseudo_header(src, dst, PROTO_UDP, u32::from(self.len()));
        checksum::is_valid(checksum::sum(b, acc))
    }
}

/// A parsed, checksum-verified UDP datagram with its addresses; the data is borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// The sender's address and port.
    pub src: SocketAddr,
    /// The address and port the datagram was sent to.
    pub dst: SocketAddr,
    /// The data.
    pub payload: &'a [u8],
}

/// Parse a whole IP packet carrying UDP, verifying every checksum. See [`parse_with`].
///
/// # Errors
/// As [`parse_with`].
pub fn parse(packet: &[u8]) -> Result<UdpDatagram<'_>, UdpError> {
    parse_with(packet, true)
}

/// Parse a whole IPv4 or IPv6 packet carrying UDP. Checks, in order: the IP header as
/// [`super::parse`] does (lengths, IPv4 header checksum, fragments, IPv6 extension headers),
/// the protocol ([`UdpError::NotUdp`]), the addresses (multicast, broadcast or unspecified
/// ones are [`ParseError::BadAddress`]: we join no groups and answer no broadcasts), the UDP
/// length, then the checksum: a zero IPv6 checksum is always dropped, a zero IPv4 one means
/// none, and any other is verified unless `verify` is false (the device already did:
/// receive checksum offload).
///
/// # Errors
/// The first check that fails.
pub fn parse_with(packet: &[u8], verify: bool) -> Result<UdpDatagram<'_>, UdpError> {
    let first = *packet.first().ok_or(UdpError::Ip(ParseError::Truncated))?;
    let (src, dst, bytes) = match first >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).map_err(UdpError::Ip)?;
            if !ip.verify_checksum() {
                return Err(UdpError::Ip(ParseError::BadIpChecksum));
            }
            if ip.more_frags() || ip.frag_offset() != 0 {
                return Err(UdpError::Ip(ParseError::Fragment));
            }
            if ip.protocol() != PROTO_UDP {
                return Err(UdpError::NotUdp);
            }
            let (s, d) = (ip.src(), ip.dst());
            let bad = |a: std::net::Ipv4Addr| a.is_multicast() || a.is_broadcast();
            if bad(s) || bad(d) || s.is_unspecified() || d.is_unspecified() {
                return Err(UdpError::Ip(ParseError::BadAddress));
            }
            let bytes = packet.get(ip.header_len()..usize::from(ip.total_len()));
            (IpAddr::V4(s), IpAddr::V4(d), bytes.unwrap_or_default())
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).map_err(UdpError::Ip)?;
            let at = match ip.upper_layer().map_err(UdpError::Ip)? {
                (PROTO_UDP, at) => at,
                (ipv6::NEXT_FRAGMENT, _) => return Err(UdpError::Ip(ParseError::Fragment)),
                _ => return Err(UdpError::NotUdp),
            };
            let (s, d) = (ip.src(), ip.dst());
            if s.is_multicast() || d.is_multicast() || s.is_unspecified() || d.is_unspecified() {
                return Err(UdpError::Ip(ParseError::BadAddress));
            }
            let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
            (IpAddr::V6(s), IpAddr::V6(d), packet.get(at..end).unwrap_or_default())
        }
        _ => return Err(UdpError::Ip(ParseError::BadIpVersion)),
    };
    let udp = UdpPacket::new_checked(bytes)?;
    match udp.checksum() {
        0 if src.is_ipv6() => return Err(UdpError::ZeroChecksumV6),
        0 => {}
        _ if verify && !udp.verify_checksum(src, dst) => return Err(UdpError::BadChecksum),
        _ => {}
    }
    Ok(UdpDatagram {
        src: SocketAddr::new(src, udp.src_port()),
        dst: SocketAddr::new(dst, udp.dst_port()),
        payload: bytes.get(HEADER_LEN..usize::from(udp.len())).unwrap_or_default(),
    })
}

/// Write the 8-byte UDP header for `payload` (already in place after it) from `src` to
/// `dst`, with the checksum over the pseudo-header, the header and `payload`; a computed zero
/// is sent as `0xffff` (RFC 768). `payload.len()` must be at most [`MAX_PAYLOAD_V6`].
pub fn emit_header(hdr: &mut [u8; HEADER_LEN], src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
    // Callers check the length; saturate rather than wrap if one did not.
    let len = u16::try_from(HEADER_LEN + payload.len()).unwrap_or(u16::MAX);
    hdr[0..2].copy_from_slice(&src.port().to_be_bytes());
    hdr[2..4].copy_from_slice(&dst.port().to_be_bytes());
    hdr[4..6].copy_from_slice(&len.to_be_bytes());
    hdr[6..8].fill(0);
    let acc = checksum::pseudo_header(src.ip(), dst.ip(), PROTO_UDP, u32::from(len));
    let c = match checksum::finish(checksum::sum(payload, checksum::sum(&hdr[..], acc))) {
        0 => 0xffff,
        c => c,
    };
    hdr[6..8].copy_from_slice(&c.to_be_bytes());
}

/// Emit a whole, unfragmented IP packet carrying one UDP datagram into `buf`: IPv4 with
/// identification `ident`, no DF (see [`super::frag`]) and TTL 64, or IPv6 with hop limit 64.
/// Returns the packet length.
///
/// # Errors
/// [`EmitError::MixedFamilies`] when `src` and `dst` differ in family;
/// [`EmitError::BufferTooSmall`] when `buf` cannot hold the packet or the IP length field
/// cannot express it.
pub fn emit(
    buf: &mut [u8],
    src: SocketAddr,
    dst: SocketAddr,
    ident: u16,
    payload: &[u8],
) -> Result<usize, EmitError> {
    let ip_len = match (src.ip(), dst.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => ipv4::HEADER_LEN,
        (IpAddr::V6(_), IpAddr::V6(_)) => ipv6::HEADER_LEN,
        _ => return Err(EmitError::MixedFamilies),
    };
    let udp_len = HEADER_LEN + payload.len();
    let total = ip_len + udp_len;
    if udp_len > usize::from(u16::MAX) || (src.is_ipv4() && total > usize::from(u16::MAX)) {
        return Err(EmitError::BufferTooSmall);
    }
    let buf = buf.get_mut(..total).ok_or(EmitError::BufferTooSmall)?;
    let (ip, udp) = buf.split_at_mut(ip_len);
    super::frag::emit_ip_header(ip, src.ip(), dst.ip(), PROTO_UDP, udp_len, ident.into(), None)?;
    let (hdr, data) = udp.split_at_mut(HEADER_LEN);
    data.copy_from_slice(payload);
    let hdr = <&mut [u8; HEADER_LEN]>::try_from(hdr).map_err(|_| EmitError::BufferTooSmall)?;
    emit_header(hdr, src, dst, data);
    Ok(total)
}
