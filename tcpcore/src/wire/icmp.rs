//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443): the messages a TCP endpoint acts on.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! |   Echo: Identifier            |   Echo: Sequence Number       |
//! |   v4 frag. needed: unused     |   Next-Hop MTU (RFC 1191 §4)  |
//! |   v6 packet too big: MTU (32 bits, RFC 4443 §3.2)             |
//! |   Echo data, or the quoted packet of an error message ...     |
//! ```
//!
//! These kinds of message:
//! - echo request and reply (RFC 792 types 8/0; RFC 4443 §4.1–4.2 types 128/129);
//! - "fragmentation needed and DF set": ICMPv4 destination unreachable, code 4, with the
//!   next-hop MTU of RFC 1191 §4;
//! - ICMPv6 packet too big (RFC 4443 §3.2);
//! - the other errors a TCP connection acts on (RFC 1122 §4.2.3.9, RFC 5461): destination
//!   unreachable, time exceeded and parameter problem in both families, as
//!   [`IcmpRepr::Error`] with their own type and code.
//!
//! The error messages quote the packet that caused them: RFC 792 guarantees "the internet
//! header plus the first 64 bits of the original datagram's data", which for TCP is the
//! ports and the sequence number. [`QuotedTcp`] is a zero-copy view of such a quote.
//!
//! As for TCP, parsing never panics and never allocates; every rejection is an [`IcmpError`].
//! The ICMPv4 checksum covers the ICMP message alone (RFC 792); the ICMPv6 checksum also
//! covers the pseudo-header of RFC 8200 §8.1 with next header 58 (RFC 4443 §2.3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::ipv4::{self, Ipv4Packet};
use super::ipv6::{self, Ipv6Packet};
use super::{checksum, EmitError, ParseError, SeqNum};

/// The IP protocol number of ICMP (RFC 792).
pub const PROTO_ICMP: u8 = 1;
/// The IPv6 next-header value of ICMPv6 (RFC 4443 §1).
pub const NEXT_ICMPV6: u8 = 58;
/// Length of the ICMP header: type, code, checksum and the 4-byte rest of header.
pub const HEADER_LEN: usize = 8;
/// Bytes of the original datagram's data every error message must quote (RFC 792).
pub const QUOTED_DATA_LEN: usize = 8;

/// ICMPv4 type: echo reply (RFC 792).
pub const V4_ECHO_REPLY: u8 = 0;
/// ICMPv4 type: destination unreachable (RFC 792).
pub const V4_DEST_UNREACHABLE: u8 = 3;
/// ICMPv4 destination unreachable code 4: fragmentation needed and DF set (RFC 792).
pub const V4_CODE_FRAG_NEEDED: u8 = 4;
/// ICMPv4 type: echo request (RFC 792).
pub const V4_ECHO_REQUEST: u8 = 8;
/// ICMPv4 type: time exceeded (RFC 792).
pub const V4_TIME_EXCEEDED: u8 = 11;
/// ICMPv4 type: parameter problem (RFC 792).
pub const V4_PARAMETER_PROBLEM: u8 = 12;
/// ICMPv6 type: destination unreachable (RFC 4443 §3.1).
pub const V6_DEST_UNREACHABLE: u8 = 1;
/// ICMPv6 type: time exceeded (RFC 4443 §3.3).
pub const V6_TIME_EXCEEDED: u8 = 3;
/// ICMPv6 type: parameter problem (RFC 4443 §3.4).
pub const V6_PARAMETER_PROBLEM: u8 = 4;
/// ICMPv6 type: packet too big (RFC 4443 §3.2).
pub const V6_PACKET_TOO_BIG: u8 = 2;
/// ICMPv6 type: echo request (RFC 4443 §4.1).
pub const V6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 type: echo reply (RFC 4443 §4.2).
pub const V6_ECHO_REPLY: u8 = 129;

/// Why an ICMP packet was not accepted. Each variant is a drop reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcmpError {
    /// The enclosing IP packet failed the same checks as for TCP (lengths, IPv4 header
    /// checksum, fragments, a bad source address).
    Ip(ParseError),
    /// The packet carries neither ICMP nor ICMPv6.
    NotIcmp,
    /// The ICMP message is shorter than its header or than what its type requires.
    Truncated,
    /// The ICMP checksum is wrong.
    BadChecksum,
    /// A type or code we do not act on (including ICMPv4 messages inside IPv6 and the
    /// reverse, which cannot happen: the families have disjoint protocol numbers).
    Unsupported,
    /// The quoted packet of an error message is not a TCP segment of the same IP family with
    /// its first 8 bytes: wrong version, bad IPv4 header length, another protocol, or an IPv4
    /// fragment other than the first.
    BadQuote,
}

impl core::fmt::Display for IcmpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for IcmpError {}

/// An echo request or reply: identifier, sequence number and data, the data borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo<'a> {
    /// Identifier (RFC 792: "to aid in matching echos and replies").
    pub ident: u16,
    /// Sequence number.
    pub seq_no: u16,
    /// The data, returned unchanged in the reply.
    pub data: &'a [u8],
}

/// The beginning of a TCP segment (or UDP datagram) we sent, quoted by an ICMP error: its IP
/// header (options included) and at least the first 8 bytes of its TCP (or UDP) header.
///
/// The only constructor, [`QuotedTcp::new_checked`], validates the header so no accessor
/// can panic. The quote's source is *our* address (we sent the packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedTcp<'a> {
    /// Invariant: an IPv4 header (IHL ≥ 5, protocol TCP, fragment offset 0) or an IPv6
    /// header with next header TCP, of length `ip_len`, followed by at least 8 bytes.
    bytes: &'a [u8],
    ip_len: usize,
}

impl<'a> QuotedTcp<'a> {
    /// Check that `bytes` starts with an IPv4 or IPv6 header carrying TCP or UDP and holds
    /// the first 8 bytes of its header; anything after them is kept and ignored. The quoted IP
    /// length fields are not checked (the quote is truncated by design), nor is the quoted
    /// IPv4 header checksum. IPv6 extension headers are not followed: we never send them.
    ///
    /// # Errors
    /// [`IcmpError::Truncated`] when the headers are cut short, [`IcmpError::BadQuote`] for
    /// anything else.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, IcmpError> {
        let first = *bytes.first().ok_or(IcmpError::Truncated)?;
        let ip_len = match first >> 4 {
            4 => {
                let ihl = usize::from(first & 0x0f) * 4;
                let hdr = bytes.get(..ipv4::HEADER_LEN).ok_or(IcmpError::Truncated)?;
                let frag_offset = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x1fff;
                if ihl < ipv4::HEADER_LEN || !quotable(hdr[9]) || frag_offset != 0 {
                    return Err(IcmpError::BadQuote);
                }
                ihl
            }
            6 => {
                let hdr = bytes.get(..ipv6::HEADER_LEN).ok_or(IcmpError::Truncated)?;
                if !quotable(hdr[6]) {
                    return Err(IcmpError::BadQuote);
                }
                ipv6::HEADER_LEN
            }
            _ => return Err(IcmpError::BadQuote),
        };
        if bytes.len() < ip_len + QUOTED_DATA_LEN {
            return Err(IcmpError::Truncated);
        }
        Ok(QuotedTcp { bytes, ip_len })
    }

    /// The quoted packet's protocol: TCP (6) or UDP (17).
    pub fn protocol(&self) -> u8 {
        self.bytes[if self.is_ipv4() { 9 } else { 6 }]
    }

    /// The whole quote, as carried by the message.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether the quoted packet is IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.bytes[0] >> 4 == 4
    }

    fn tcp_u16(&self, at: usize) -> u16 {
        // `ip_len + 8 <= bytes.len()` and `at + 1 < 8`.
        let b = &self.bytes[self.ip_len + at..];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The quoted packet's source: our address and port.
    pub fn src(&self) -> SocketAddr {
        let b = self.bytes;
        let ip = if self.is_ipv4() {
            IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]))
        } else {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&b[8..24]).unwrap_or_default()))
        };
        SocketAddr::new(ip, self.tcp_u16(0))
    }

    /// The quoted packet's destination: the peer's address and port.
    pub fn dst(&self) -> SocketAddr {
        let b = self.bytes;
        let ip = if self.is_ipv4() {
            IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19]))
        } else {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&b[24..40]).unwrap_or_default()))
        };
        SocketAddr::new(ip, self.tcp_u16(2))
    }

    /// The quoted segment's sequence number (RFC 5927 §4.1 checks it against the window);
    /// for a UDP quote, the length and checksum fields.
    pub fn seq(&self) -> SeqNum {
        SeqNum(u32::from(self.tcp_u16(4)) << 16 | u32::from(self.tcp_u16(6)))
    }
}

/// The protocols whose quotes we route: TCP, and UDP (RFC 1122 §4.1.3.3: "UDP MUST pass to
/// the application layer all ICMP error messages that it receives from the IP layer").
fn quotable(proto: u8) -> bool {
    proto == ipv4::PROTO_TCP || proto == super::udp::PROTO_UDP
}

/// An ICMP or ICMPv6 message we understand. The family comes from the enclosing packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpRepr<'a> {
    /// Echo request (ICMPv4 type 8, ICMPv6 type 128), code 0.
    EchoRequest(Echo<'a>),
    /// Echo reply (ICMPv4 type 0, ICMPv6 type 129), code 0.
    EchoReply(Echo<'a>),
    /// ICMPv4 destination unreachable, code 4, "fragmentation needed and DF set", with the
    /// next-hop MTU of RFC 1191 §4 (0 from routers older than RFC 1191).
    FragNeeded {
        /// The MTU of the next-hop network.
        next_hop_mtu: u16,
        /// The packet that was too big.
        quote: QuotedTcp<'a>,
    },
    /// ICMPv6 packet too big (RFC 4443 §3.2), code 0.
    PacketTooBig {
        /// The MTU of the next-hop link.
        mtu: u32,
        /// The packet that was too big.
        quote: QuotedTcp<'a>,
    },
    /// Another error quoting one of our segments: destination unreachable (ICMPv4 type 3
    /// but code 4, ICMPv6 type 1), time exceeded (ICMPv4 11, ICMPv6 3) or parameter problem
    /// (ICMPv4 12, ICMPv6 4), any code.
    Error {
        /// The message type, in its family's numbering.
        ty: u8,
        /// The code.
        code: u8,
        /// The 4-byte rest of the header (unused, or the parameter-problem pointer).
        rest: [u8; 4],
        /// The packet the error is about.
        quote: QuotedTcp<'a>,
    },
}

impl IcmpRepr<'_> {
    /// Length of the ICMP message: header plus data or quote.
    pub fn len(&self) -> usize {
        HEADER_LEN
            + match self {
                IcmpRepr::EchoRequest(e) | IcmpRepr::EchoReply(e) => e.data.len(),
                IcmpRepr::FragNeeded { quote, .. }
                | IcmpRepr::PacketTooBig { quote, .. }
                | IcmpRepr::Error { quote, .. } => quote.bytes.len(),
            }
    }

    /// Never true: every message has at least its 8-byte header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A parsed, checksum-verified ICMP or ICMPv6 message with its IP addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpMessage<'a> {
    /// IP source address (the pinging host, or the router reporting an error).
    pub src: IpAddr,
    /// IP destination address.
    pub dst: IpAddr,
    /// The message.
    pub repr: IcmpRepr<'a>,
}

/// Parse a whole IPv4 packet carrying ICMP or IPv6 packet carrying ICMPv6 (the packets for
/// which [`super::parse`] says [`ParseError::NotTcp`]). Never panics, never allocates.
///
/// Checks, in order: the IP header as [`super::parse`] does (lengths, IPv4 header checksum,
/// fragments, IPv6 extension headers); the protocol ([`IcmpError::NotIcmp`]); the source
/// address (multicast, broadcast or unspecified sources are [`ParseError::BadAddress`]: a
/// reply to them would be an amplifier); the message length, the checksum, the type and code,
/// and for error messages the family of the quote ([`IcmpError::BadQuote`]).
///
/// # Errors
/// The first check that fails, as an [`IcmpError`].
pub fn parse(packet: &[u8]) -> Result<IcmpMessage<'_>, IcmpError> {
    let first = *packet.first().ok_or(IcmpError::Ip(ParseError::Truncated))?;
    match first >> 4 {
        4 => parse_v4(packet),
        6 => parse_v6(packet),
        _ => Err(IcmpError::Ip(ParseError::BadIpVersion)),
    }
}

fn parse_v4(packet: &[u8]) -> Result<IcmpMessage<'_>, IcmpError> {
    let ip = Ipv4Packet::new_checked(packet).map_err(IcmpError::Ip)?;
    if !ip.verify_checksum() {
        return Err(IcmpError::Ip(ParseError::BadIpChecksum));
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(IcmpError::Ip(ParseError::Fragment));
    }
    if ip.protocol() != PROTO_ICMP {
        return Err(IcmpError::NotIcmp);
    }
    let src = ip.src();
    if src.is_multicast() || src.is_broadcast() || src.is_unspecified() {
        return Err(IcmpError::Ip(ParseError::BadAddress));
    }
    let msg = packet.get(ip.header_len()..usize::from(ip.total_len())).unwrap_or_default();
    let header = msg.get(..HEADER_LEN).ok_or(IcmpError::Truncated)?;
    // RFC 792: "the 16-bit one's complement of the one's complement sum of the ICMP message".
    if !checksum::is_valid(checksum::sum(msg, 0)) {
        return Err(IcmpError::BadChecksum);
    }
    let rest = &msg[HEADER_LEN..];
    let repr = match (header[0], header[1]) {
        (V4_ECHO_REQUEST, 0) => IcmpRepr::EchoRequest(echo(header, rest)),
        (V4_ECHO_REPLY, 0) => IcmpRepr::EchoReply(echo(header, rest)),
        (V4_DEST_UNREACHABLE, V4_CODE_FRAG_NEEDED) => {
            let quote = quote(rest, true)?;
            IcmpRepr::FragNeeded { next_hop_mtu: u16::from_be_bytes([header[6], header[7]]), quote }
        }
        (ty @ (V4_DEST_UNREACHABLE | V4_TIME_EXCEEDED | V4_PARAMETER_PROBLEM), code) => {
            error(header, quote(rest, true)?, ty, code)
        }
        _ => return Err(IcmpError::Unsupported),
    };
    Ok(IcmpMessage { src: IpAddr::V4(src), dst: IpAddr::V4(ip.dst()), repr })
}

fn parse_v6(packet: &[u8]) -> Result<IcmpMessage<'_>, IcmpError> {
    let ip = Ipv6Packet::new_checked(packet).map_err(IcmpError::Ip)?;
    let at = upper_layer_v6(&ip)?;
    let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let msg = packet.get(at..end).unwrap_or_default();
    let (src, dst) = (ip.src(), ip.dst());
    if src.is_multicast() || src.is_unspecified() {
        return Err(IcmpError::Ip(ParseError::BadAddress));
    }
    let header = msg.get(..HEADER_LEN).ok_or(IcmpError::Truncated)?;
    // RFC 4443 §2.3: the checksum covers the pseudo-header and the ICMPv6 message. The length
    // is at most the 16-bit payload length, so it fits in 32 bits.
    let acc = checksum::pseudo_header_v6(src, dst, NEXT_ICMPV6, msg.len() as u32);
    if !checksum::is_valid(checksum::sum(msg, acc)) {
        return Err(IcmpError::BadChecksum);
    }
    let rest = &msg[HEADER_LEN..];
    let repr = match (header[0], header[1]) {
        (V6_ECHO_REQUEST, 0) => IcmpRepr::EchoRequest(echo(header, rest)),
        (V6_ECHO_REPLY, 0) => IcmpRepr::EchoReply(echo(header, rest)),
        (V6_PACKET_TOO_BIG, 0) => {
            let quote = quote(rest, false)?;
            let mtu = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
            IcmpRepr::PacketTooBig { mtu, quote }
        }
        (ty @ (V6_DEST_UNREACHABLE | V6_TIME_EXCEEDED | V6_PARAMETER_PROBLEM), code) => {
            error(header, quote(rest, false)?, ty, code)
        }
        _ => return Err(IcmpError::Unsupported),
    };
    Ok(IcmpMessage { src: IpAddr::V6(src), dst: IpAddr::V6(dst), repr })
}

/// Offset of the ICMPv6 message: the next-header chain walked as
/// [`Ipv6Packet::tcp_offset`] does (RFC 8200 §4.1), ending at ICMPv6 instead of TCP.
fn upper_layer_v6(ip: &Ipv6Packet<&[u8]>) -> Result<usize, IcmpError> {
    let payload = ip.payload();
    let mut next = ip.next_header();
    let mut at = 0;
    // Every extension header is at least 8 bytes long, so this terminates.
    loop {
        match next {
            NEXT_ICMPV6 => return Ok(ipv6::HEADER_LEN + at),
            ipv6::NEXT_HOP_BY_HOP | ipv6::NEXT_ROUTING | ipv6::NEXT_DST_OPTS => {
                let (Some(&nh), Some(&ext_len)) = (payload.get(at), payload.get(at + 1)) else {
                    return Err(IcmpError::Ip(ParseError::Truncated));
                };
                at += (usize::from(ext_len) + 1) * 8;
                if at > payload.len() {
                    return Err(IcmpError::Ip(ParseError::Truncated));
                }
                next = nh;
            }
            ipv6::NEXT_FRAGMENT => return Err(IcmpError::Ip(ParseError::Fragment)),
            _ => return Err(IcmpError::NotIcmp),
        }
    }
}

/// The echo fields of an 8-byte `header` followed by `data`.
fn echo<'a>(header: &[u8], data: &'a [u8]) -> Echo<'a> {
    Echo {
        ident: u16::from_be_bytes([header[4], header[5]]),
        seq_no: u16::from_be_bytes([header[6], header[7]]),
        data,
    }
}

/// An [`IcmpRepr::Error`] from its 8-byte `header`.
fn error<'a>(header: &[u8], quote: QuotedTcp<'a>, ty: u8, code: u8) -> IcmpRepr<'a> {
    IcmpRepr::Error { ty, code, rest: [header[4], header[5], header[6], header[7]], quote }
}

/// The quote of an error message, which must be of the message's own family.
fn quote(rest: &[u8], ipv4: bool) -> Result<QuotedTcp<'_>, IcmpError> {
    let q = QuotedTcp::new_checked(rest)?;
    if q.is_ipv4() != ipv4 {
        return Err(IcmpError::BadQuote);
    }
    Ok(q)
}

/// Emit an IP packet (IPv4 with DF set and TTL 64, or IPv6 with hop limit 64) carrying the
/// ICMP or ICMPv6 message `repr` into `buf`, with every checksum. Returns the packet length.
///
/// # Errors
/// [`EmitError::MixedFamilies`] when `src` and `dst` differ in family, or when `repr` belongs
/// to the other family ([`IcmpRepr::FragNeeded`] is ICMPv4 only, [`IcmpRepr::PacketTooBig`]
/// ICMPv6 only, and a quote must be of the packet's family; the type of an
/// [`IcmpRepr::Error`] is written as given); [`EmitError::BufferTooSmall`]
/// when `buf` cannot hold the packet or the IP length field cannot express it.
pub fn emit(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    repr: &IcmpRepr<'_>,
) -> Result<usize, EmitError> {
    let v4 = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => true,
        (IpAddr::V6(_), IpAddr::V6(_)) => false,
        _ => return Err(EmitError::MixedFamilies),
    };
    let (ty, code, rest_of_header, body): (u8, u8, [u8; 4], &[u8]) = match *repr {
        IcmpRepr::EchoRequest(e) => {
            (if v4 { V4_ECHO_REQUEST } else { V6_ECHO_REQUEST }, 0, echo_fields(&e), e.data)
        }
        IcmpRepr::EchoReply(e) => {
            (if v4 { V4_ECHO_REPLY } else { V6_ECHO_REPLY }, 0, echo_fields(&e), e.data)
        }
        IcmpRepr::FragNeeded { next_hop_mtu, quote } if v4 && quote.is_ipv4() => {
            let [hi, lo] = next_hop_mtu.to_be_bytes();
            (V4_DEST_UNREACHABLE, V4_CODE_FRAG_NEEDED, [0, 0, hi, lo], quote.bytes)
        }
        IcmpRepr::PacketTooBig { mtu, quote } if !v4 && !quote.is_ipv4() => {
            (V6_PACKET_TOO_BIG, 0, mtu.to_be_bytes(), quote.bytes)
        }
        IcmpRepr::Error { ty, code, rest, quote } if v4 == quote.is_ipv4() => {
            (ty, code, rest, quote.bytes)
        }
        _ => return Err(EmitError::MixedFamilies),
    };
    emit_message(buf, (src, dst), (ty, code, rest_of_header), body)
}

/// Emit an ICMP or ICMPv6 error of type `ty` and code `code` quoting `quote` as given (any
/// protocol: the endpoint quotes what it received, as Linux's `icmp_send`), with every
/// checksum. Returns the packet length.
///
/// # Errors
/// As [`emit`].
pub fn emit_error(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    (ty, code): (u8, u8),
    quote: &[u8],
) -> Result<usize, EmitError> {
    emit_message(buf, (src, dst), (ty, code, [0; 4]), quote)
}

/// Write the IP header, the ICMP header and `body`, with the checksum.
fn emit_message(
    buf: &mut [u8],
    (src, dst): (IpAddr, IpAddr),
    (ty, code, rest_of_header): (u8, u8, [u8; 4]),
    body: &[u8],
) -> Result<usize, EmitError> {
    let msg_len = HEADER_LEN + body.len();
    let ip_len = ip_header(buf, src, dst, msg_len)?;
    let msg = buf.get_mut(ip_len..ip_len + msg_len).ok_or(EmitError::BufferTooSmall)?;
    let (header, data) = msg.split_at_mut(HEADER_LEN);
    header[..4].copy_from_slice(&[ty, code, 0, 0]);
    header[4..].copy_from_slice(&rest_of_header);
    data.copy_from_slice(body);
    let acc = match (src, dst) {
        // `msg_len` fits in the IP length field: `ip_header` checked it.
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            checksum::pseudo_header_v6(s, d, NEXT_ICMPV6, msg_len as u32)
        }
        _ => 0,
    };
    let c = checksum::finish(checksum::sum(msg, acc));
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    Ok(ip_len + msg_len)
}

fn echo_fields(e: &Echo<'_>) -> [u8; 4] {
    let [a, b] = e.ident.to_be_bytes();
    let [c, d] = e.seq_no.to_be_bytes();
    [a, b, c, d]
}

/// Write the IP header for an ICMP message of `msg_len` bytes; returns the header length.
/// The TCP header writers of [`ipv4`] and [`ipv6`] are reused and their protocol patched.
fn ip_header(buf: &mut [u8], src: IpAddr, dst: IpAddr, msg_len: usize) -> Result<usize, EmitError> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total =
                u16::try_from(ipv4::HEADER_LEN + msg_len).map_err(|_| EmitError::BufferTooSmall)?;
            let h = buf.get_mut(..ipv4::HEADER_LEN).ok_or(EmitError::BufferTooSmall)?;
            let h = <&mut [u8; ipv4::HEADER_LEN]>::try_from(h)
                .map_err(|_| EmitError::BufferTooSmall)?;
            ipv4::emit_header(h, s, d, total);
            // Protocol at byte 9, header checksum at bytes 10–11 (RFC 791 §3.1).
            h[9] = PROTO_ICMP;
            h[10..12].fill(0);
            let c = checksum::checksum(&h[..]);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            Ok(ipv4::HEADER_LEN)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let plen = u16::try_from(msg_len).map_err(|_| EmitError::BufferTooSmall)?;
            let h = buf.get_mut(..ipv6::HEADER_LEN).ok_or(EmitError::BufferTooSmall)?;
            let h = <&mut [u8; ipv6::HEADER_LEN]>::try_from(h)
                .map_err(|_| EmitError::BufferTooSmall)?;
            ipv6::emit_header(h, s, d, plen);
            // Next header at byte 6 (RFC 8200 §3).
            h[6] = NEXT_ICMPV6;
            Ok(ipv6::HEADER_LEN)
        }
        _ => Err(EmitError::MixedFamilies),
    }
}
