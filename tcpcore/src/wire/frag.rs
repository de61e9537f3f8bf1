//! IP fragments on the wire: the IPv4 fragment fields (RFC 791 §3.1), the IPv6 Fragment
//! header (RFC 8200 §4.5), and writing the headers of outgoing fragments (RFC 791 §3.2,
//! RFC 8200 §4.5 "Fragmentation").
//!
//! ```text
//! IPv6 Fragment header:
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
//! |                         Identification                        |
//! ```
//!
//! Only UDP is ever fragmented on output; TCP sizes its segments to the path MTU and sets DF.

use std::net::IpAddr;

use super::{checksum, ipv4, ipv6, EmitError};

/// Length of the IPv6 Fragment header.
pub const V6_FRAG_HEADER_LEN: usize = 8;

/// The IPv6 Fragment header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V6FragHeader {
    /// The header that follows in the reassembled datagram.
    pub next_header: u8,
    /// Offset of this fragment's data in the fragmentable part, in bytes (a multiple of 8).
    pub offset: usize,
    /// The M flag: more fragments follow.
    pub more: bool,
    /// The identification shared by the fragments of one datagram.
    pub ident: u32,
}

impl V6FragHeader {
    /// Parse the 8 bytes at the start of `b`; `None` when fewer are there.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let h = b.get(..V6_FRAG_HEADER_LEN)?;
        let off = u16::from_be_bytes([h[2], h[3]]);
        Some(V6FragHeader {
            next_header: h[0],
            offset: usize::from(off >> 3) * 8,
            more: off & 1 != 0,
            ident: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        })
    }

    /// Write the header into `b` (8 bytes).
    pub fn emit(&self, b: &mut [u8; V6_FRAG_HEADER_LEN]) {
        // `offset` is below 65536 for every datagram we fragment; the field holds offset / 8.
        let off = ((self.offset / 8) as u16) << 3 | u16::from(self.more);
        b[0] = self.next_header;
        b[1] = 0;
        b[2..4].copy_from_slice(&off.to_be_bytes());
        b[4..8].copy_from_slice(&self.ident.to_be_bytes());
    }
}

/// Write the IP header(s) in front of `payload_len` bytes of protocol `proto` into `buf`,
/// which must be exactly the header length: 20 bytes for IPv4, 40 for IPv6, 48 for an IPv6
/// fragment (with its Fragment header). `frag` is `(offset in bytes, more fragments)` for a
/// fragment, `None` for a whole datagram. IPv4 packets carry identification `ident` (its low
/// 16 bits), never DF: the stack does no path MTU discovery for UDP, so routers may
/// fragment what is too big for them (Linux `IP_PMTUDISC_DONT`). TTL and hop limit are 64.
///
/// # Errors
/// [`EmitError::MixedFamilies`] for mixed families; [`EmitError::BufferTooSmall`] when `buf`
/// has the wrong length or the length field cannot express the packet.
pub fn emit_ip_header(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload_len: usize,
    ident: u32,
    frag: Option<(usize, bool)>,
) -> Result<usize, EmitError> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(ipv4::HEADER_LEN + payload_len)
                .map_err(|_| EmitError::BufferTooSmall)?;
            let h = <&mut [u8; ipv4::HEADER_LEN]>::try_from(buf)
                .map_err(|_| EmitError::BufferTooSmall)?;
            ipv4::emit_header(h, s, d, total);
            let (offset, more) = frag.unwrap_or((0, false));
            // RFC 791 §3.1: flags (bit 1 DF, bit 2 MF) and the offset in 8-byte units.
            let flags = ((offset / 8) as u16 & 0x1fff) | if more { 0x2000 } else { 0 };
            h[4..6].copy_from_slice(&(ident as u16).to_be_bytes());
            h[6..8].copy_from_slice(&flags.to_be_bytes());
            h[9] = proto;
            h[10..12].fill(0);
            let c = checksum::checksum(&h[..]);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            Ok(ipv4::HEADER_LEN)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ext = if frag.is_some() { V6_FRAG_HEADER_LEN } else { 0 };
            if buf.len() != ipv6::HEADER_LEN + ext {
                return Err(EmitError::BufferTooSmall);
            }
            let plen = u16::try_from(ext + payload_len).map_err(|_| EmitError::BufferTooSmall)?;
            let (fixed, rest) = buf.split_at_mut(ipv6::HEADER_LEN);
            let h = <&mut [u8; ipv6::HEADER_LEN]>::try_from(fixed)
                .map_err(|_| EmitError::BufferTooSmall)?;
            ipv6::emit_header(h, s, d, plen);
            h[6] = proto;
            if let Some((offset, more)) = frag {
                h[6] = ipv6::NEXT_FRAGMENT;
                let fh = V6FragHeader { next_header: proto, offset, more, ident };
                let b = <&mut [u8; V6_FRAG_HEADER_LEN]>::try_from(rest)
                    .map_err(|_| EmitError::BufferTooSmall)?;
                fh.emit(b);
            }
            Ok(ipv6::HEADER_LEN + ext)
        }
        _ => Err(EmitError::MixedFamilies),
    }
}

/// Length of the headers of one outgoing fragment of the family of `src`.
pub fn fragment_header_len(src: IpAddr) -> usize {
    if src.is_ipv4() {
        ipv4::HEADER_LEN
    } else {
        ipv6::HEADER_LEN + V6_FRAG_HEADER_LEN
    }
}

/// Write into `buf` the fragment of `datagram` (the whole upper-layer datagram: UDP header
/// and data) that starts at byte `offset`, sized for an MTU of `mtu` (RFC 791 §3.2: every
/// fragment but the last carries a multiple of 8 bytes). Returns the packet length and the
/// offset of the next fragment (`datagram.len()` after the last).
///
/// # Errors
/// [`EmitError::BufferTooSmall`] when `buf` cannot hold the fragment or `mtu` leaves no room
/// for 8 bytes of data; [`EmitError::MixedFamilies`] for mixed families.
pub fn emit_fragment(
    buf: &mut [u8],
    (src, dst): (IpAddr, IpAddr),
    proto: u8,
    ident: u32,
    datagram: &[u8],
    offset: usize,
    mtu: usize,
) -> Result<(usize, usize), EmitError> {
    let hlen = fragment_header_len(src);
    let room = mtu.saturating_sub(hlen) & !7;
    if room == 0 {
        return Err(EmitError::BufferTooSmall);
    }
    let rest = datagram.get(offset..).ok_or(EmitError::BufferTooSmall)?;
    let (chunk, more) = if rest.len() <= room { (rest, false) } else { (&rest[..room], true) };
    let out = buf.get_mut(..hlen + chunk.len()).ok_or(EmitError::BufferTooSmall)?;
    let (hdr, data) = out.split_at_mut(hlen);
    emit_ip_header(hdr, src, dst, proto, chunk.len(), ident, Some((offset, more)))?;
    data.copy_from_slice(chunk);
    Ok((hlen + chunk.len(), offset + chunk.len()))
}
