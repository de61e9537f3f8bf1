//! The virtio-net header (`struct virtio_net_hdr`, `linux/virtio_net.h`) that precedes every
//! packet on a TUN opened with `IFF_VNET_HDR`, the headers for the stack's super-segments and
//! partial checksums, checksum checks for packets the kernel did not vouch for, and the
//! coalescing of runs of TCP segments into one GSO super-segment
//! on send.

use tcpcore::wire::{self, checksum};

/// Size of `struct virtio_net_hdr` (without `num_buffers`), set with `TUNSETVNETHDRSZ`.
pub(crate) const HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` holds only the
/// pseudo-header sum; the rest is to be added from `csum_start` to the end.
pub(crate) const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub(crate) const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub(crate) const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub(crate) const GSO_TCPV6: u8 = 4;
/// Largest IP packet a super-segment may be (the IPv4 total length is 16 bits).
const MAX_SUPER: usize = 65_535;
/// Most segments coalesced into one super-segment (the kernel's `GSO_MAX_SEGS` is 65535;
/// this bounds the iovec array).
pub(crate) const MAX_SEGS: usize = 60;

/// The fields of `struct virtio_net_hdr`, in native byte order (a TUN without
/// `TUNSETVNETLE`/`TUNSETVNETBE` uses the host's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct VnetHdr {
    pub(crate) flags: u8,
    pub(crate) gso_type: u8,
    pub(crate) hdr_len: u16,
    pub(crate) gso_size: u16,
    pub(crate) csum_start: u16,
    pub(crate) csum_offset: u16,
}

impl VnetHdr {
    pub(crate) fn decode(b: &[u8; HDR_LEN]) -> Self {
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        }
    }

    pub(crate) fn encode(&self) -> [u8; HDR_LEN] {
        let mut b = [0; HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }
}

/// `VIRTIO_NET_HDR_F_DATA_VALID`: the kernel has verified the packet's checksums.
pub(crate) const F_DATA_VALID: u8 = 2;

/// The header for a packet the stack wrote with offloads asked for: a GSO super-segment
/// (`gso_size`), a partial TCP checksum (`csum_partial`), or neither. A packet that is not
/// TCP over IP without extension headers gets the empty header.
pub(crate) fn header_for(packet: &[u8], gso_size: Option<u16>, csum_partial: bool) -> VnetHdr {
    let Some(l) = layout(packet) else { return VnetHdr::default() };
    let mut h = VnetHdr::default();
    if csum_partial || gso_size.is_some() {
        h.flags = F_NEEDS_CSUM;
        h.csum_start = l.ip_len as u16;
        h.csum_offset = 16;
    }
    if let Some(size) = gso_size {
        h.gso_type = if l.v4 { GSO_TCPV4 } else { GSO_TCPV6 };
        h.gso_size = size;
        h.hdr_len = (l.ip_len + l.tcp_len) as u16;
    }
    h
}

/// Whether a packet the kernel did not vouch for (neither `F_NEEDS_CSUM` nor
/// `F_DATA_VALID`) may go to the stack, which trusts this device's checksums
/// (`Capabilities::rx_checksum`): false exactly when it is a TCP segment with a wrong checksum.
///
/// The common layouts (TCP right after an IPv4 header, options included, or after the fixed
/// IPv6 header, the length fields matching the packet, not a fragment) are checked by the
/// checksum alone, so such a packet is parsed once, by the stack. Any other layout goes
/// through tcpcore's own full parse, so the check follows every layout the stack accepts
/// (IPv6 extension headers, IPv4 link padding past the length field). Whatever that parse
/// rejects for another reason (not TCP, truncated, a fragment) the stack rejects and counts
/// in the same way; ICMP checksums are always verified by the stack.
pub(crate) fn tcp_checksum_ok(packet: &[u8]) -> bool {
    if let Some(l) = layout(packet) {
        let tcp = &packet[l.ip_len..];
        let acc = pseudo_header(packet, &l, tcp.len());
        return checksum::is_valid(checksum::sum(tcp, acc));
    }
    !matches!(
        wire::parse_with(packet, wire::TcpChecksum::Full),
        Err(wire::ParseError::BadTcpChecksum)
    )
}

/// What [`coalesce`] found at the front of a batch: `count` packets (≥ 2) that can go out as
/// one super-segment, and the headers to send before their payloads.
#[derive(Debug)]
pub(crate) struct Super {
    /// Packets taken from the front of the batch.
    pub(crate) count: usize,
    /// The virtio-net header, then the IP and TCP headers of the super-segment.
    pub(crate) head: [u8; HDR_LEN + 60 + 60],
    pub(crate) head_len: usize,
    /// Where the TCP payload starts in each packet (the same in all of them).
    pub(crate) payload_at: usize,
}

/// A TCP segment's layout, from its IP header.
struct Layout {
    v4: bool,
    ip_len: usize,
    tcp_len: usize,
}

fn layout(p: &[u8]) -> Option<Layout> {
    match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            if ihl < 20 || p.len() < ihl + 20 || p[9] != 6 {
                return None;
            }
            // Fragments and packets whose length field disagrees are left alone.
            let frag = u16::from_be_bytes([p[6], p[7]]) & 0x3fff;
            if frag != 0 || usize::from(u16::from_be_bytes([p[2], p[3]])) != p.len() {
                return None;
            }
            let tcp_len = usize::from(p[ihl + 12] >> 4) * 4;
            (tcp_len >= 20 && p.len() >= ihl + tcp_len).then_some(Layout {
                v4: true,
                ip_len: ihl,
                tcp_len,
            })
        }
        6 => {
            // Only a TCP header directly after the fixed header (no extension headers).
            if p.len() < 60
                || p[6] != 6
                || usize::from(u16::from_be_bytes([p[4], p[5]])) + 40 != p.len()
            {
                return None;
            }
            let tcp_len = usize::from(p[40 + 12] >> 4) * 4;
            (tcp_len >= 20 && p.len() >= 40 + tcp_len).then_some(Layout {
                v4: false,
                ip_len: 40,
                tcp_len,
            })
        }
        _ => None,
    }
}

/// The checksum accumulator of the pseudo-header (RFC 9293 §3.1 for IPv4, RFC 8200 §8.1 for
/// IPv6) of the TCP segment in `p`, whose TCP header and data are `tcp_len` bytes. The IPv4
/// length is 16 bits and the IPv6 one 32; summed as 32 bits both give the same sum.
fn pseudo_header(p: &[u8], l: &Layout, tcp_len: usize) -> u64 {
    let src_dst = if l.v4 { &p[12..20] } else { &p[8..40] };
    let acc = checksum::sum(src_dst, 0);
    let acc = checksum::sum(&[0, 6], acc);
    checksum::sum(&(tcp_len as u32).to_be_bytes(), acc)
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;
const ECE: u8 = 0x40;
const CWR: u8 = 0x80;

fn seq(p: &[u8], ip_len: usize) -> u32 {
    u32::from_be_bytes([p[ip_len + 4], p[ip_len + 5], p[ip_len + 6], p[ip_len + 7]])
}

/// Whether `q` continues `p` (same flow and headers, the next sequence number), given `p`'s
/// layout and payload length.
fn continues(p: &[u8], q: &[u8], l: &Layout, payload: usize) -> bool {
    let hdr = l.ip_len + l.tcp_len;
    if q.len() < hdr || q.len() - hdr > payload || q.len() == hdr {
        return false;
    }
    if q[0] != p[0] {
        return false;
    }
    // IP: everything but length, ID and checksum (v4) / payload length (v6) must match.
    let ip_same = if l.v4 {
        q[..l.ip_len].len() == l.ip_len
            && q[1] == p[1]
            && q[6..10] == p[6..10]
            && q[12..l.ip_len] == p[12..l.ip_len]
            && usize::from(u16::from_be_bytes([q[2], q[3]])) == q.len()
    } else {
        q[..4] == p[..4]
            && q[6..40] == p[6..40]
            && usize::from(u16::from_be_bytes([q[4], q[5]])) + 40 == q.len()
    };
    if !ip_same {
        return false;
    }
    let (pt, qt) = (&p[l.ip_len..hdr], &q[l.ip_len..hdr]);
    // TCP: ports, ack, data offset, window, urgent pointer and options equal; flags equal but
    // for PSH; sequence number continues.
    pt[0..4] == qt[0..4]
        && pt[8..13] == qt[8..13]
        && (pt[13] & !PSH) == (qt[13] & !PSH)
        && pt[14..16] == qt[14..16]
        && pt[18..] == qt[18..]
        && seq(q, l.ip_len) == seq(p, l.ip_len).wrapping_add(payload as u32)
}

/// Find a run of TCP segments at the front of `packets` that the kernel can take as one GSO
/// super-segment: the same connection and headers, consecutive sequence numbers, equal
/// payload lengths but for a shorter last one, only ACK (and PSH on the last) set, at most
/// 64 KiB in all. `None` when fewer than two qualify.
pub(crate) fn coalesce(packets: &[&[u8]]) -> Option<Super> {
    let first = *packets.first()?;
    let l = layout(first)?;
    let hdr = l.ip_len + l.tcp_len;
    let seg = first.len().checked_sub(hdr).filter(|&s| s > 0)?;
    let flags = first[l.ip_len + 13];
    if flags & (FIN | SYN | RST | URG | PSH | CWR | ECE) != 0 || flags & ACK == 0 {
        return None;
    }
    let mut count = 1;
    let mut total = first.len();
    let mut last_flags = flags;
    let mut prev = first;
    for &q in &packets[1..] {
        if count == MAX_SEGS || !continues(prev, q, &l, seg) {
            break;
        }
        let grown = total + (q.len() - hdr);
        if grown > MAX_SUPER {
            break;
        }
        total = grown;
        count += 1;
        last_flags = q[l.ip_len + 13];
        prev = q;
        if q.len() - hdr < seg || last_flags & PSH != 0 {
            // A short segment or a push ends the run.
            break;
        }
    }
    if count < 2 {
        return None;
    }
    let mut head = [0u8; HDR_LEN + 120];
    let h = &mut head[HDR_LEN..HDR_LEN + hdr];
    h.copy_from_slice(&first[..hdr]);
    let total16 = u16::try_from(total).ok()?;
    if l.v4 {
        h[2..4].copy_from_slice(&total16.to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&h[..l.ip_len]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        h[4..6].copy_from_slice(&(total16 - 40).to_be_bytes());
    }
    h[l.ip_len + 13] = last_flags;
    // The kernel completes the checksum of each segment: leave the pseudo-header sum of
    // the whole super-segment (as Linux's own TSO does), which it adjusts per segment.
    let pseudo = checksum::fold(pseudo_header(first, &l, total - l.ip_len));
    h[l.ip_len + 16..l.ip_len + 18].copy_from_slice(&pseudo.to_be_bytes());
    let vh = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: if l.v4 { GSO_TCPV4 } else { GSO_TCPV6 },
        hdr_len: hdr as u16,
        gso_size: seg as u16,
        csum_start: l.ip_len as u16,
        csum_offset: 16,
    };
    head[..HDR_LEN].copy_from_slice(&vh.encode());
    Some(Super { count, head, head_len: HDR_LEN + hdr, payload_at: hdr })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP segment with `payload` bytes of `fill` at `seq`, checksums correct.
    fn segment(seq: u32, payload: usize, flags: u8, fill: u8) -> Vec<u8> {
        let total = 20 + 32 + payload;
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[4..6].copy_from_slice(&seq.to_be_bytes()[2..]);
        p[6] = 0x40;
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 77, 0, 2]);
        p[16..20].copy_from_slice(&[10, 77, 0, 1]);
        let c = checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        let t = &mut p[20..];
        t[0..2].copy_from_slice(&8080u16.to_be_bytes());
        t[2..4].copy_from_slice(&40000u16.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[8..12].copy_from_slice(&7u32.to_be_bytes());
        t[12] = 8 << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&512u16.to_be_bytes());
        t[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        for b in &mut t[32..] {
            *b = fill;
        }
        let acc = checksum::pseudo_header_v4(
            [10, 77, 0, 2].into(),
            [10, 77, 0, 1].into(),
            6,
            (32 + payload) as u16,
        );
        let c = checksum::finish(checksum::sum(&p[20..], acc));
        p[36..38].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn headers_for_super_segments_and_partial_checksums() {
        let p = segment(1000, 1448 * 3, ACK, 1);
        let h = header_for(&p, Some(1448), true);
        assert_eq!(
            (h.flags, h.gso_type, h.gso_size, h.hdr_len, h.csum_start, h.csum_offset),
            (F_NEEDS_CSUM, GSO_TCPV4, 1448, 52, 20, 16)
        );
        let h = header_for(&p, None, true);
        assert_eq!((h.flags, h.gso_type, h.csum_start), (F_NEEDS_CSUM, GSO_NONE, 20));
        assert_eq!(header_for(&p, None, false), VnetHdr::default());
        assert_eq!(header_for(&[0x45, 0, 0], Some(1448), true), VnetHdr::default());
    }

    #[test]
    fn verifies_tcp_checksums() {
        let mut p = segment(1000, 100, ACK, 9);
        assert!(tcp_checksum_ok(&p));
        p[60] ^= 1;
        assert!(!tcp_checksum_ok(&p));
    }

    /// An IPv6 TCP segment behind a destination-options extension header (RFC 8200 §4.6),
    /// `payload` bytes of `fill`, checksums correct.
    fn segment_v6_with_ext(payload: usize, fill: u8) -> Vec<u8> {
        let (src, dst) = ([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], [0xfd; 16]);
        let tcp_len = 20 + payload;
        let mut p = vec![0u8; 40 + 8 + tcp_len];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((8 + tcp_len) as u16).to_be_bytes());
        p[6] = 60; // destination options
        p[7] = 64;
        p[8..24].copy_from_slice(&src);
        p[24..40].copy_from_slice(&dst);
        // Next header TCP, length 0 (8 bytes), a PadN option filling the rest.
        p[40..48].copy_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        let t = &mut p[48..];
        t[0..2].copy_from_slice(&8080u16.to_be_bytes());
        t[2..4].copy_from_slice(&40000u16.to_be_bytes());
        t[4..8].copy_from_slice(&1000u32.to_be_bytes());
        t[8..12].copy_from_slice(&7u32.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = ACK;
        t[14..16].copy_from_slice(&512u16.to_be_bytes());
        t[20..].fill(fill);
        let acc = checksum::pseudo_header_v6(src.into(), dst.into(), 6, tcp_len as u32);
        let c = checksum::finish(checksum::sum(&p[48..], acc));
        p[64..66].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// An unvouched packet whose layout the fast path cannot follow is still verified:
    /// a corrupted payload behind an IPv6 extension header, or in an IPv4 packet whose
    /// length field disagrees with the read length (link padding), never passes.
    #[test]
    fn rx_checksum_verified_behind_ipv6_extension_headers_and_ipv4_padding() {
        let mut v6 = segment_v6_with_ext(100, 9);
        assert!(tcp_checksum_ok(&v6), "a good IPv6 packet with an extension header passes");
        let last = v6.len() - 1;
        v6[last] ^= 1;
        assert!(!tcp_checksum_ok(&v6), "a corrupted IPv6 payload behind an extension header");

        let mut v4 = segment(1000, 100, ACK, 9);
        v4.extend_from_slice(&[0; 6]); // Ethernet-style padding past the IP length
        assert!(tcp_checksum_ok(&v4), "padding after a good packet is ignored");
        v4[60] ^= 1;
        assert!(!tcp_checksum_ok(&v4), "a corrupted IPv4 payload followed by padding");
    }

    /// An IPv6 TCP segment with no extension header, `payload` bytes of `fill`, checksum
    /// correct.
    fn segment_v6(payload: usize, fill: u8) -> Vec<u8> {
        let ext = segment_v6_with_ext(payload, fill);
        let mut p = [&ext[..40], &ext[48..]].concat();
        p[4..6].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
        p[6] = 6;
        p
    }

    /// The checksum-only check of the common layouts lets through exactly what the full
    /// parse would, but for packets the stack drops anyway for another reason (a bad IPv4
    /// header checksum): checked for every single-byte corruption of an IPv4 and an IPv6
    /// segment.
    #[test]
    fn checksum_only_check_agrees_with_the_full_parse() {
        for good in [segment(1000, 100, ACK, 9), segment_v6(100, 9)] {
            assert!(layout(&good).is_some(), "the fast path takes this layout");
            assert!(tcp_checksum_ok(&good));
            assert!(wire::parse_with(&good, wire::TcpChecksum::Full).is_ok());
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i] ^= 0x10;
                let parsed = wire::parse_with(&bad, wire::TcpChecksum::Full);
                let ok = tcp_checksum_ok(&bad);
                let at = format!("byte {i} of {} flipped: {parsed:?}", good.len());
                if matches!(parsed, Err(wire::ParseError::BadTcpChecksum)) {
                    assert!(!ok, "{at}");
                }
                assert!(ok || parsed.is_err(), "{at}");
            }
        }
    }

    #[test]
    fn header_round_trips() {
        let h = VnetHdr {
            flags: 1,
            gso_type: 4,
            hdr_len: 52,
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        };
        assert_eq!(VnetHdr::decode(&h.encode()), h);
    }

    #[test]
    fn coalesces_a_run_and_stops_at_a_short_segment() {
        let a = segment(1000, 1448, ACK, 1);
        let b = segment(2448, 1448, ACK, 2);
        let c = segment(3896, 100, ACK | PSH, 3);
        let d = segment(3996, 1448, ACK, 4);
        let s = coalesce(&[&a, &b, &c, &d]).expect("a run");
        assert_eq!(s.count, 3);
        let vh = VnetHdr::decode(s.head[..HDR_LEN].try_into().unwrap());
        assert_eq!(
            (vh.gso_type, vh.gso_size, vh.hdr_len, vh.csum_start),
            (GSO_TCPV4, 1448, 52, 20)
        );
        let ip = &s.head[HDR_LEN..s.head_len];
        assert_eq!(usize::from(u16::from_be_bytes([ip[2], ip[3]])), 52 + 1448 * 2 + 100);
        assert_eq!(checksum::checksum(&ip[..20]), 0, "IP header checksum valid");
        assert_eq!(ip[33] & PSH, PSH, "PSH of the last segment");
    }

    #[test]
    fn leaves_lone_gapped_and_control_segments() {
        let a = segment(1000, 1448, ACK, 1);
        let gap = segment(5000, 1448, ACK, 2);
        assert!(coalesce(&[&a, &gap]).is_none());
        assert!(coalesce(&[&a]).is_none());
        let fin = segment(1000, 1448, ACK | FIN, 1);
        let b = segment(2448, 1448, ACK, 2);
        assert!(coalesce(&[&fin, &b]).is_none());
        let pure_ack = segment(1000, 0, ACK, 0);
        assert!(coalesce(&[&pure_ack, &pure_ack]).is_none());
    }
}
