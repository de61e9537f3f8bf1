//! A short path for the segments an established connection sends most: no options but
//! timestamps (RFC 7323 §3, Appendix A layout), no SYN, no urgent data. The bytes are exactly
//! what [`super::emit_ip`] writes for the same header (a test compares them); only the work
//! differs: fixed-size header images stored whole, no option layout decisions, and the IPv4
//! header checksum summed from its few non-constant words (RFC 1071 §2).

use std::net::SocketAddr;

use super::ip::{copy_payload, EmitError, IpFields, TcpChecksum};
use super::tcp::{TcpFlags, CHECKSUM_OFFSET};
use super::{checksum, ipv4, ipv6, SeqNum, Timestamps};

/// The header of a segment carrying no option but (optionally) timestamps; the addresses
/// and ports are [`emit_plain`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainHeader {
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number (as written: zero it when ACK is not set).
    pub ack: SeqNum,
    /// Control flags (never SYN: a SYN carries other options).
    pub flags: TcpFlags,
    /// Window field as on the wire (already scaled).
    pub window: u16,
    /// The timestamps option, if any.
    pub timestamps: Option<Timestamps>,
}

/// Longest header [`emit_plain`] writes: 20 fixed bytes and 12 of timestamps.
const MAX_TCP: usize = 32;

/// Payloads up to this long are copied first and summed with the header after; longer ones
/// are summed while they are copied (each byte read once).
const SMALL_PAYLOAD: usize = 256;

/// Write a whole IP packet from `src` to `dst` (addresses and ports) carrying `h` and
/// `payload` into `buf`, as [`super::emit_ip`] does for a [`super::TcpRepr`] with the same
/// fields (urgent pointer 0, no other option).
/// Returns the packet length.
///
/// # Errors
/// [`EmitError::BufferTooSmall`] when `buf` cannot hold the packet or it would exceed 65535
/// bytes (IPv4; the payload length for IPv6); [`EmitError::MixedFamilies`] for mixed families.
#[inline]
pub fn emit_plain(
    buf: &mut [u8],
    (src, dst): (&SocketAddr, &SocketAddr),
    h: &PlainHeader,
    payload: [&[u8]; 2],
    csum: TcpChecksum,
    ip: IpFields,
) -> Result<usize, EmitError> {
    let [p0, p1] = payload;
    let (tcp_hdr, hlen) = tcp_image(h, src.port(), dst.port());
    let tcp_len = hlen + p0.len() + p1.len();
    let (ip_len, acc) = match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            let (s, d) = (*s.ip(), *d.ip());
            let total =
                u16::try_from(ipv4::HEADER_LEN + tcp_len).map_err(|_| EmitError::BufferTooSmall)?;
            let hdr =
                buf.first_chunk_mut::<{ ipv4::HEADER_LEN }>().ok_or(EmitError::BufferTooSmall)?;
            *hdr = ipv4_image(s.octets(), d.octets(), total, ip);
            (ipv4::HEADER_LEN, checksum::pseudo_header_v4(s, d, ipv4::PROTO_TCP, tcp_len as u16))
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            let (s, d) = (*s.ip(), *d.ip());
            let plen = u16::try_from(tcp_len).map_err(|_| EmitError::BufferTooSmall)?;
            let hdr =
                buf.first_chunk_mut::<{ ipv6::HEADER_LEN }>().ok_or(EmitError::BufferTooSmall)?;
            ipv6::emit_header_with(hdr, s, d, plen, ip.ttl, ip.tos);
            let acc = checksum::pseudo_header_v6(s, d, ipv4::PROTO_TCP, tcp_len as u32);
            (ipv6::HEADER_LEN, acc)
        }
        _ => return Err(EmitError::MixedFamilies),
    };
    let total = ip_len + tcp_len;
    let seg = buf.get_mut(ip_len..total).ok_or(EmitError::BufferTooSmall)?;
    seg[..hlen].copy_from_slice(&tcp_hdr[..hlen]);
    let (hdr, data) = seg.split_at_mut(hlen);
    let (d0, d1) = data.split_at_mut(p0.len());
    let c = match csum {
        TcpChecksum::Full if p0.len() + p1.len() <= SMALL_PAYLOAD => {
            // A short payload: copied, then summed with the header in one call (each call
            // ends in a fold, the bulk of the work for a few bytes; RFC 1071 §2(A): the sum
            // is associative).
            d0.copy_from_slice(p0);
            d1.copy_from_slice(p1);
            checksum::finish(checksum::sum(seg, acc))
        }
        _ => copy_payload(hdr, [d0, d1], [p0, p1], acc, csum),
    };
    seg[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].copy_from_slice(&c.to_be_bytes());
    Ok(total)
}

/// The TCP header of `h` (checksum zero) and its length, 20 or 32.
#[inline]
fn tcp_image(h: &PlainHeader, src_port: u16, dst_port: u16) -> ([u8; MAX_TCP], usize) {
    let (sp, dp) = (src_port.to_be_bytes(), dst_port.to_be_bytes());
    let (s, a) = (h.seq.get().to_be_bytes(), h.ack.get().to_be_bytes());
    let w = h.window.to_be_bytes();
    let (off, v, e) = match h.timestamps {
        Some(ts) => (8u8 << 4, ts.tsval.to_be_bytes(), ts.tsecr.to_be_bytes()),
        None => (5u8 << 4, [0; 4], [0; 4]),
    };
    let image = [
        sp[0], sp[1], dp[0], dp[1], s[0], s[1], s[2], s[3], a[0], a[1], a[2], a[3], off, h.flags.0,
        w[0], w[1], 0, 0, 0, 0,
        // RFC 7323 Appendix A: NOP, NOP, kind 8, length 10, TSval, TSecr.
        1, 1, 8, 10, v[0], v[1], v[2], v[3], e[0], e[1], e[2], e[3],
    ];
    (image, usize::from(off >> 4) * 4)
}

/// An IPv4 header (RFC 791 §3.1: no options, identification 0, DF, protocol TCP), with
/// its checksum.
#[inline]
fn ipv4_image(s: [u8; 4], d: [u8; 4], total: u16, ip: IpFields) -> [u8; ipv4::HEADER_LEN] {
    let t = total.to_be_bytes();
    let word = |hi: u8, lo: u8| u32::from(u16::from_be_bytes([hi, lo]));
    // RFC 1071: the one's complement sum of the ten 16-bit words (the checksum word zero).
    let sum = word(0x45, ip.tos)
        + u32::from(total)
        + 0x4000
        + word(ip.ttl, ipv4::PROTO_TCP)
        + word(s[0], s[1])
        + word(s[2], s[3])
        + word(d[0], d[1])
        + word(d[2], d[3]);
    let folded = (sum & 0xffff) + (sum >> 16);
    let c = !(((folded & 0xffff) + (folded >> 16)) as u16);
    let c = c.to_be_bytes();
    [
        0x45,
        ip.tos,
        t[0],
        t[1],
        0,
        0,
        0x40,
        0,
        ip.ttl,
        ipv4::PROTO_TCP,
        c[0],
        c[1],
        s[0],
        s[1],
        s[2],
        s[3],
        d[0],
        d[1],
        d[2],
        d[3],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{emit_ip, TcpOptions, TcpRepr};
    use std::net::IpAddr;

    fn repr(h: &PlainHeader, (src, dst): (SocketAddr, SocketAddr)) -> TcpRepr {
        TcpRepr {
            src_port: src.port(),
            dst_port: dst.port(),
            seq: h.seq,
            ack: h.ack,
            flags: h.flags,
            window: h.window,
            urgent: 0,
            options: TcpOptions { timestamps: h.timestamps, ..TcpOptions::default() },
        }
    }

    /// The short path writes byte for byte what `emit_ip` writes, both families, both
    /// checksum modes, payloads split anywhere (odd offsets included), with and without
    /// timestamps.
    #[test]
    fn plain_matches_emit_ip() {
        let v4: (IpAddr, IpAddr) = ("10.1.2.3".parse().unwrap(), "192.168.254.9".parse().unwrap());
        let v6: (IpAddr, IpAddr) =
            ("2001:db8::1".parse().unwrap(), "2001:db8:ffff::fe02".parse().unwrap());
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut x = 0x9e37_79b9_u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for round in 0..400 {
            let (a, b) = if round % 2 == 0 { v4 } else { v6 };
            let addrs = (SocketAddr::new(a, next() as u16), SocketAddr::new(b, next() as u16));
            let ts = (round % 3 != 0).then(|| Timestamps { tsval: next(), tsecr: next() });
            let h = PlainHeader {
                seq: SeqNum(next()),
                ack: SeqNum(next()),
                flags: TcpFlags((next() as u8) & !0x02),
                window: next() as u16,
                timestamps: ts,
            };
            let len = (next() % 1600) as usize;
            let split = (next() as usize) % (len + 1);
            let payload = [&data[..split], &data[split + 7..len + 7]];
            let ip = IpFields { ttl: next() as u8, tos: next() as u8 };
            for csum in [TcpChecksum::Full, TcpChecksum::Partial] {
                let (mut a, mut b) = (vec![0xa5u8; 2000], vec![0x5au8; 2000]);
                let n = emit_plain(&mut a, (&addrs.0, &addrs.1), &h, payload, csum, ip).unwrap();
                let (src, dst) = (addrs.0.ip(), addrs.1.ip());
                let m = emit_ip(&mut b, src, dst, &repr(&h, addrs), payload, csum, ip).unwrap();
                assert_eq!(n, m);
                assert_eq!(a[..n], b[..m], "round {round} {csum:?}");
            }
        }
    }

    #[test]
    fn plain_rejects_small_buffers_and_mixed_families() {
        let h = PlainHeader {
            seq: SeqNum(3),
            ack: SeqNum(4),
            flags: TcpFlags::ACK,
            window: 5,
            timestamps: None,
        };
        let v4: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let v6: SocketAddr = "[::1]:2".parse().unwrap();
        let mut buf = [0u8; 45];
        let p = [&[1u8; 10][..], &[][..]];
        let ip = IpFields::default();
        assert_eq!(
            emit_plain(&mut buf, (&v4, &v4), &h, p, TcpChecksum::Full, ip),
            Err(EmitError::BufferTooSmall)
        );
        assert_eq!(
            emit_plain(&mut buf, (&v4, &v6), &h, p, TcpChecksum::Full, ip),
            Err(EmitError::MixedFamilies)
        );
        let mut big = [0u8; 50];
        assert_eq!(emit_plain(&mut big, (&v4, &v4), &h, p, TcpChecksum::Full, ip), Ok(50));
    }
}
