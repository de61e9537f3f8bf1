//! The IPv4 header (RFC 791 §3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |   DSCP/ECN    |          Total Length         |
//! |         Identification        |Flags|      Fragment Offset    |
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! |                    Options                    |    Padding    |
//! ```

use std::net::Ipv4Addr;

use super::{checksum, ParseError};

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// Time to live of emitted packets (RFC 1122 §3.2.1.7 recommends 64).
pub const DEFAULT_TTL: u8 = 64;
/// The IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;

mod field {
    pub(super) const VER_IHL: usize = 0;
    pub(super) const TOS: usize = 1;
    pub(super) const TOTAL_LEN: usize = 2;
    pub(super) const IDENT: usize = 4;
    pub(super) const FLAGS_FRAG: usize = 6;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: usize = 10;
    pub(super) const SRC: usize = 12;
    pub(super) const DST: usize = 16;
}

/// A read-only view of an IPv4 packet whose lengths have been validated.
///
/// The only constructor, [`Ipv4Packet::new_checked`], guarantees that the buffer holds at
/// least `header_len() <= total_len()` bytes, so no accessor can panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    /// Invariant: `HEADER_LEN <= header_len() <= total_len() <= buffer.len()`, version 4.
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap `buffer`, checking in this order: at least 20 bytes ([`ParseError::Truncated`]),
    /// version 4 ([`ParseError::BadIpVersion`]), IHL at least 5 and within the buffer
    /// ([`ParseError::BadIpHeaderLen`]), total length at least the header and at most the
    /// buffer ([`ParseError::BadIpLength`]). Bytes beyond the total length (link padding) are
    /// ignored.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        let Some(hdr) = b.get(..HEADER_LEN) else {
            return Err(ParseError::Truncated);
        };
        if hdr[field::VER_IHL] >> 4 != 4 {
            return Err(ParseError::BadIpVersion);
        }
        let ihl = usize::from(hdr[field::VER_IHL] & 0x0f) * 4;
        if ihl < HEADER_LEN || ihl > b.len() {
            return Err(ParseError::BadIpHeaderLen);
        }
        let total =
            usize::from(u16::from_be_bytes([hdr[field::TOTAL_LEN], hdr[field::TOTAL_LEN + 1]]));
        if total < ihl || total > b.len() {
            return Err(ParseError::BadIpLength);
        }
        Ok(Ipv4Packet { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn u16_at(&self, at: usize) -> u16 {
        // `at + 1 < HEADER_LEN <= buffer.len()` for every field offset used.
        u16::from_be_bytes([self.b()[at], self.b()[at + 1]])
    }

    /// The version field (always 4).
    pub fn version(&self) -> u8 {
        self.b()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::VER_IHL] & 0x0f) * 4
    }

    /// The total length field: header plus payload, in bytes.
    pub fn total_len(&self) -> u16 {
        self.u16_at(field::TOTAL_LEN)
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        self.u16_at(field::IDENT)
    }

    /// The Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.u16_at(field::FLAGS_FRAG) & 0x4000 != 0
    }

    /// The More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.u16_at(field::FLAGS_FRAG) & 0x2000 != 0
    }

    /// The fragment offset field, in units of 8 bytes.
    pub fn frag_offset(&self) -> u16 {
        self.u16_at(field::FLAGS_FRAG) & 0x1fff
    }

    /// The type-of-service byte (DSCP and ECN, RFC 2474 §3, RFC 3168 §5).
    pub fn tos(&self) -> u8 {
        self.b()[field::TOS]
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }

    /// The protocol of the payload (6 for TCP).
    pub fn protocol(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        self.addr(field::SRC)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        self.addr(field::DST)
    }

    /// The address at `at` (one bounds check for its four bytes).
    #[inline]
    fn addr(&self, at: usize) -> Ipv4Addr {
        match self.b().get(at..at + 4) {
            Some(&[a, b, c, d]) => Ipv4Addr::new(a, b, c, d),
            _ => Ipv4Addr::UNSPECIFIED, // unreachable: new_checked saw a whole header
        }
    }

    /// The header bytes, options included.
    pub fn header(&self) -> &[u8] {
        self.b().get(..self.header_len()).unwrap_or_default()
    }

    /// The payload: the bytes after the header up to the total length.
    pub fn payload(&self) -> &[u8] {
        self.b().get(self.header_len()..usize::from(self.total_len())).unwrap_or_default()
    }

    /// True when the header checksum verifies (RFC 791 §3.1, computed over the whole header
    /// including options).
    pub fn verify_checksum(&self) -> bool {
        // Nearly every header is the 20 bytes without options: summed as an array, the
        // sum unrolls into three additions (a third of the general loop's instructions).
        if let Ok(h) = <&[u8; HEADER_LEN]>::try_from(self.header()) {
            return checksum::is_valid(checksum::sum_array(h, 0));
        }
        checksum::is_valid(checksum::sum(self.header(), 0))
    }
}

/// Write a 20-byte IPv4 header carrying TCP: version 4, IHL 5, DSCP/ECN 0, the given total
/// length, identification 0 with DF set (RFC 6864 §4.1 allows any ID, including 0, on atomic
/// datagrams), TTL [`DEFAULT_TTL`], protocol [`PROTO_TCP`] and the header checksum.
pub fn emit_header(buf: &mut [u8; HEADER_LEN], src: Ipv4Addr, dst: Ipv4Addr, total_len: u16) {
    emit_header_with(buf, src, dst, total_len, DEFAULT_TTL, 0);
}

/// [`emit_header`] with the given time to live and type-of-service byte (RFC 791 §3.1; the
/// DSCP and ECN fields of RFC 2474 §3 and RFC 3168 §5).
pub fn emit_header_with(
    buf: &mut [u8; HEADER_LEN],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    total_len: u16,
    ttl: u8,
    tos: u8,
) {
    buf[field::VER_IHL] = 0x45;
    buf[field::TOS] = tos;
    buf[field::TOTAL_LEN..field::TOTAL_LEN + 2].copy_from_slice(&total_len.to_be_bytes());
    buf[field::IDENT..field::IDENT + 2].copy_from_slice(&[0, 0]);
    buf[field::FLAGS_FRAG..field::FLAGS_FRAG + 2].copy_from_slice(&0x4000u16.to_be_bytes());
    buf[field::TTL] = ttl;
    buf[field::PROTOCOL] = PROTO_TCP;
    buf[field::CHECKSUM..field::CHECKSUM + 2].copy_from_slice(&[0, 0]);
    buf[field::SRC..field::SRC + 4].copy_from_slice(&src.octets());
    buf[field::DST..field::DST + 4].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&buf[..]);
    buf[field::CHECKSUM..field::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(total: u16) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        emit_header(&mut h, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), total);
        h
    }

    #[test]
    fn emit_then_view() {
        let mut buf = [0u8; 30];
        let h: &mut [u8; HEADER_LEN] = (&mut buf[..HEADER_LEN]).try_into().unwrap();
        emit_header(h, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 24);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_frag() && !p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 6);
        assert_eq!(p.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.payload().len(), 4, "trailing bytes beyond total length are ignored");
        assert!(p.verify_checksum());
        assert_eq!(
            p.checksum(),
            checksum::checksum(&{
                let mut h = header(24);
                h[10] = 0;
                h[11] = 0;
                h
            })
        );
    }

    #[test]
    fn checked_constructor_rejects() {
        assert_eq!(Ipv4Packet::new_checked(&[0x45u8; 19][..]), Err(ParseError::Truncated));
        let mut h = header(20);
        h[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&h[..]), Err(ParseError::BadIpVersion));
        h[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&h[..]), Err(ParseError::BadIpHeaderLen));
        h[0] = 0x46;
        assert_eq!(Ipv4Packet::new_checked(&h[..]), Err(ParseError::BadIpHeaderLen));
        let h = header(19);
        assert_eq!(Ipv4Packet::new_checked(&h[..]), Err(ParseError::BadIpLength));
        let h = header(21);
        assert_eq!(Ipv4Packet::new_checked(&h[..]), Err(ParseError::BadIpLength));
    }
}
