//! The IPv6 header (RFC 8200 §3) and the extension headers we walk past (RFC 8200 §4).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! |                     Source Address (16 bytes)                 |
//! |                  Destination Address (16 bytes)               |
//! ```

use std::net::Ipv6Addr;

use super::ParseError;

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;
/// Hop limit of emitted packets.
pub const DEFAULT_HOP_LIMIT: u8 = 64;
/// Next header: Hop-by-Hop Options (RFC 8200 §4.3).
pub const NEXT_HOP_BY_HOP: u8 = 0;
/// Next header: TCP.
pub const NEXT_TCP: u8 = 6;
/// Next header: Routing (RFC 8200 §4.4).
pub const NEXT_ROUTING: u8 = 43;
/// Next header: Fragment (RFC 8200 §4.5).
pub const NEXT_FRAGMENT: u8 = 44;
/// Next header: Destination Options (RFC 8200 §4.6).
pub const NEXT_DST_OPTS: u8 = 60;

mod field {
    pub(super) const PAYLOAD_LEN: usize = 4;
    pub(super) const NEXT_HEADER: usize = 6;
    pub(super) const HOP_LIMIT: usize = 7;
    pub(super) const SRC: usize = 8;
    pub(super) const DST: usize = 24;
}

/// A read-only view of an IPv6 packet whose lengths have been validated.
///
/// The only constructor, [`Ipv6Packet::new_checked`], guarantees that the buffer holds the
/// 40-byte header and the announced payload, so no accessor can panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    /// Invariant: `HEADER_LEN + payload_len() <= buffer.len()`, version 6.
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wrap `buffer`, checking in this order: at least 40 bytes ([`ParseError::Truncated`]),
    /// version 6 ([`ParseError::BadIpVersion`]), payload length within the buffer
    /// ([`ParseError::BadIpLength`]). Bytes beyond the payload length are ignored. Jumbograms
    /// (RFC 2675) are not supported: a zero payload length means an empty payload.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        let Some(hdr) = b.get(..HEADER_LEN) else {
            return Err(ParseError::Truncated);
        };
        if hdr[0] >> 4 != 6 {
            return Err(ParseError::BadIpVersion);
        }
        let plen =
            usize::from(u16::from_be_bytes([hdr[field::PAYLOAD_LEN], hdr[field::PAYLOAD_LEN + 1]]));
        if HEADER_LEN + plen > b.len() {
            return Err(ParseError::BadIpLength);
        }
        Ok(Ipv6Packet { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The version field (always 6).
    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }

    /// The traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        let b = self.b();
        (b[0] << 4) | (b[1] >> 4)
    }

    /// The 20-bit flow label.
    pub fn flow_label(&self) -> u32 {
        let b = self.b();
        u32::from_be_bytes([0, b[1] & 0x0f, b[2], b[3]])
    }

    /// The payload length field: bytes after the fixed header, extension headers included.
    pub fn payload_len(&self) -> u16 {
        let b = self.b();
        u16::from_be_bytes([b[field::PAYLOAD_LEN], b[field::PAYLOAD_LEN + 1]])
    }

    /// The next header field of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.b()[field::NEXT_HEADER]
    }

    /// The hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[field::SRC..field::SRC + 16]);
        Ipv6Addr::from(a)
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[field::DST..field::DST + 16]);
        Ipv6Addr::from(a)
    }

    /// The payload (extension headers and upper-layer data), bounded by the payload length.
    pub fn payload(&self) -> &[u8] {
        self.b().get(HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())).unwrap_or_default()
    }

    /// The TCP segment carried by this packet: the payload from [`Ipv6Packet::tcp_offset`].
    pub fn tcp_payload(&self) -> Result<&[u8], ParseError> {
        let at = self.tcp_offset()?;
        Ok(self.b().get(at..HEADER_LEN + usize::from(self.payload_len())).unwrap_or_default())
    }

    /// Offset in the buffer of the TCP header, found by following the next-header chain
    /// (RFC 8200 §4.1). Hop-by-Hop, Routing and Destination Options headers are skipped by
    /// their length, `(Hdr Ext Len + 1) × 8` bytes; an extension header that runs past the
    /// payload is [`ParseError::Truncated`]. A Fragment header is [`ParseError::Fragment`]
    /// (we never reassemble); any other next header is [`ParseError::NotTcp`].
    pub fn tcp_offset(&self) -> Result<usize, ParseError> {
        let payload = self.payload();
        let mut next = self.next_header();
        let mut at = 0;
        // Every extension header is at least 8 bytes long, so this terminates.
        loop {
            match next {
                NEXT_TCP => return Ok(HEADER_LEN + at),
                NEXT_HOP_BY_HOP | NEXT_ROUTING | NEXT_DST_OPTS => {
                    let (Some(&nh), Some(&ext_len)) = (payload.get(at), payload.get(at + 1)) else {
                        return Err(ParseError::Truncated);
                    };
                    at += (usize::from(ext_len) + 1) * 8;
                    if at > payload.len() {
                        return Err(ParseError::Truncated);
                    }
                    next = nh;
                }
                NEXT_FRAGMENT => return Err(ParseError::Fragment),
                _ => return Err(ParseError::NotTcp),
            }
        }
    }
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// The first header after the Hop-by-Hop, Routing and Destination Options headers
    /// (RFC 8200 §4.1), as `(next header value, offset in the buffer)`: the upper-layer
    /// protocol, or a Fragment header ([`NEXT_FRAGMENT`]) for the reassembly to take apart.
    /// An extension header that runs past the payload is [`ParseError::Truncated`].
    pub fn upper_layer(&self) -> Result<(u8, usize), ParseError> {
        let payload = self.payload();
        let mut next = self.next_header();
        let mut at = 0;
        // Every extension header is at least 8 bytes long, so this terminates.
        while let NEXT_HOP_BY_HOP | NEXT_ROUTING | NEXT_DST_OPTS = next {
            let (Some(&nh), Some(&ext_len)) = (payload.get(at), payload.get(at + 1)) else {
                return Err(ParseError::Truncated);
            };
            at += (usize::from(ext_len) + 1) * 8;
            if at > payload.len() {
                return Err(ParseError::Truncated);
            }
            next = nh;
        }
        Ok((next, HEADER_LEN + at))
    }
}

/// Write a 40-byte IPv6 header carrying TCP directly: traffic class and flow label 0, the
/// given payload length, next header [`NEXT_TCP`], hop limit [`DEFAULT_HOP_LIMIT`].
pub fn emit_header(buf: &mut [u8; HEADER_LEN], src: Ipv6Addr, dst: Ipv6Addr, payload_len: u16) {
    emit_header_with(buf, src, dst, payload_len, DEFAULT_HOP_LIMIT, 0);
}

/// [`emit_header`] with the given hop limit and traffic class (RFC 8200 §3 and §7).
pub fn emit_header_with(
    buf: &mut [u8; HEADER_LEN],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    payload_len: u16,
    hop_limit: u8,
    traffic_class: u8,
) {
    buf[..4].copy_from_slice(&[0x60 | (traffic_class >> 4), traffic_class << 4, 0, 0]);
    buf[field::PAYLOAD_LEN..field::PAYLOAD_LEN + 2].copy_from_slice(&payload_len.to_be_bytes());
    buf[field::NEXT_HEADER] = NEXT_TCP;
    buf[field::HOP_LIMIT] = hop_limit;
    buf[field::SRC..field::SRC + 16].copy_from_slice(&src.octets());
    buf[field::DST..field::DST + 16].copy_from_slice(&dst.octets());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ext: &[u8], first_next: u8, tcp_len: usize) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_LEN];
        let h: &mut [u8; HEADER_LEN] = (&mut v[..]).try_into().unwrap();
        let plen = (ext.len() + tcp_len) as u16;
        emit_header(h, "2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap(), plen);
        v[field::NEXT_HEADER] = first_next;
        v.extend_from_slice(ext);
        v.extend(std::iter::repeat_n(0xab, tcp_len));
        v
    }

    #[test]
    fn emit_then_view() {
        let v = packet(&[], NEXT_TCP, 24);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.flow_label(), 0);
        assert_eq!(p.payload_len(), 24);
        assert_eq!(p.next_header(), 6);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.tcp_payload().unwrap().len(), 24);
    }

    #[test]
    fn walks_extension_headers() {
        // Hop-by-Hop (8 bytes) -> Destination Options (16 bytes) -> TCP.
        let mut ext = vec![NEXT_DST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[NEXT_TCP, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let v = packet(&ext, NEXT_HOP_BY_HOP, 20);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.tcp_payload().unwrap(), &[0xab; 20][..]);

        let v = packet(&[NEXT_TCP, 0, 0, 0, 0, 0, 0, 0], NEXT_FRAGMENT, 20);
        assert_eq!(
            Ipv6Packet::new_checked(&v[..]).unwrap().tcp_payload(),
            Err(ParseError::Fragment)
        );
        let v = packet(&[], 17, 20);
        assert_eq!(Ipv6Packet::new_checked(&v[..]).unwrap().tcp_payload(), Err(ParseError::NotTcp));
        let v = packet(&[NEXT_TCP, 3, 0, 0, 0, 0, 0, 0], NEXT_ROUTING, 20);
        assert_eq!(
            Ipv6Packet::new_checked(&v[..]).unwrap().tcp_payload(),
            Err(ParseError::Truncated)
        );
        let v = packet(&[NEXT_TCP], NEXT_ROUTING, 0);
        assert_eq!(
            Ipv6Packet::new_checked(&v[..]).unwrap().tcp_payload(),
            Err(ParseError::Truncated)
        );
    }

    #[test]
    fn checked_constructor_rejects() {
        let v = packet(&[], NEXT_TCP, 20);
        assert_eq!(Ipv6Packet::new_checked(&v[..39]), Err(ParseError::Truncated));
        assert_eq!(Ipv6Packet::new_checked(&v[..59]), Err(ParseError::BadIpLength));
        let mut w = v.clone();
        w[0] = 0x40;
        assert_eq!(Ipv6Packet::new_checked(&w[..]), Err(ParseError::BadIpVersion));
    }
}
