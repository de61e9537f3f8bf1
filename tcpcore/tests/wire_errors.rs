//! SEC-04: bad checksum, bad header length, truncated or malformed options and bad flag
//! combinations (SYN+FIN, SYN+RST, no flags) are reported as a [`ParseError`], never a panic.
//! One crafted packet per error variant, and the order in which checks apply.

use std::net::Ipv6Addr;

use tcpcore::wire::{self, ParseError};

/// Naive RFC 1071 checksum over the concatenation of `parts`.
fn naive_checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let mut s: u32 = 0;
    for (i, b) in bytes.iter().enumerate() {
        s += if i % 2 == 0 { u32::from(*b) << 8 } else { u32::from(*b) };
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// A TCP segment with the given option bytes (padded by the caller), flags and payload, whose
/// checksum field is left zero.
fn tcp_segment(options: &[u8], flags: u8, payload: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let mut t = vec![0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0];
    t.push((((20 + options.len()) / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(options);
    t.extend_from_slice(payload);
    t
}

/// Wrap `tcp` in an IPv4 header from `src` to `dst` with protocol 6 and fix both checksums.
fn v4(src: [u8; 4], dst: [u8; 4], mut tcp: Vec<u8>) -> Vec<u8> {
    let pseudo = [&src[..], &dst[..], &[0, 6], &(tcp.len() as u16).to_be_bytes()].concat();
    let c = naive_checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
    p[2..4].copy_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    fix_ip_checksum(&mut p);
    p.extend_from_slice(&tcp);
    p
}

fn fix_ip_checksum(p: &mut [u8]) {
    let ihl = usize::from(p[0] & 0xf) * 4;
    p[10..12].fill(0);
    let c = naive_checksum(&[&p[..ihl]]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];
const ACK: u8 = 0x10;

fn good_v4() -> Vec<u8> {
    v4(A, B, tcp_segment(&[2, 4, 5, 0xb4], ACK, b"hello"))
}

/// Wrap `tcp` in IPv6 after the extension headers `ext` (first next header `first`).
fn v6(src: Ipv6Addr, dst: Ipv6Addr, first: u8, ext: &[u8], mut tcp: Vec<u8>) -> Vec<u8> {
    let mut pseudo = [&src.octets()[..], &dst.octets()[..]].concat();
    pseudo.extend_from_slice(&(tcp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 6]);
    let c = naive_checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&((ext.len() + tcp.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[first, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(ext);
    p.extend_from_slice(&tcp);
    p
}

fn s6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn good_v6() -> Vec<u8> {
    v6(s6("2001:db8::1"), s6("2001:db8::2"), 6, &[], tcp_segment(&[], ACK, b"hi"))
}

#[track_caller]
fn rejects(p: &[u8], e: ParseError) {
    assert_eq!(wire::parse(p).map(|_| ()), Err(e), "{p:02x?}");
}

#[test]
fn valid_packets_parse() {
    let p = good_v4();
    let s = wire::parse(&p).unwrap();
    assert_eq!(s.payload, b"hello");
    assert_eq!(s.tcp.options.mss, Some(1460));
    let p = good_v6();
    assert_eq!(wire::parse(&p).unwrap().payload, b"hi");
}

#[test]
fn sec_04_truncated_is_reported() {
    rejects(&[], ParseError::Truncated);
    let p = good_v4();
    rejects(&p[..19], ParseError::Truncated);
    let p = good_v6();
    rejects(&p[..39], ParseError::Truncated);
    // A TCP segment shorter than the fixed header.
    let mut p = good_v4();
    p.truncate(20 + 19);
    p[2..4].copy_from_slice(&39u16.to_be_bytes());
    fix_ip_checksum(&mut p);
    rejects(&p, ParseError::Truncated);
    // An IPv6 extension header that runs past the payload.
    let p = v6(s6("2001:db8::1"), s6("2001:db8::2"), 0, &[6, 4, 0, 0, 0, 0, 0, 0], vec![0; 20]);
    rejects(&p, ParseError::Truncated);
}

#[test]
fn sec_04_bad_ip_version_is_reported() {
    let mut p = good_v4();
    p[0] = 0x55;
    rejects(&p, ParseError::BadIpVersion);
    p[0] = 0x05;
    rejects(&p, ParseError::BadIpVersion);
}

#[test]
fn sec_04_bad_ip_header_len_is_reported() {
    let mut p = good_v4();
    p[0] = 0x44;
    rejects(&p, ParseError::BadIpHeaderLen);
    let mut p = good_v4();
    p.truncate(21 + 20);
    p[0] = 0x4f; // 60 bytes of header in a 41-byte packet
    rejects(&p, ParseError::BadIpHeaderLen);
}

#[test]
fn sec_04_bad_ip_length_is_reported() {
    let mut p = good_v4();
    let n = p.len() as u16;
    p[2..4].copy_from_slice(&(n + 1).to_be_bytes());
    fix_ip_checksum(&mut p);
    rejects(&p, ParseError::BadIpLength);
    p[2..4].copy_from_slice(&19u16.to_be_bytes());
    fix_ip_checksum(&mut p);
    rejects(&p, ParseError::BadIpLength);
    let p = good_v6();
    rejects(&p[..p.len() - 1], ParseError::BadIpLength);
}

#[test]
fn sec_04_bad_ip_checksum_is_reported() {
    let mut p = good_v4();
    p[8] = 63; // TTL changed without fixing the checksum
    rejects(&p, ParseError::BadIpChecksum);
}

#[test]
fn sec_04_fragments_are_reported() {
    let mut p = good_v4();
    p[6] = 0x20; // MF
    fix_ip_checksum(&mut p);
    rejects(&p, ParseError::Fragment);
    let mut p = good_v4();
    p[6..8].copy_from_slice(&0x0001u16.to_be_bytes()); // offset 8
    fix_ip_checksum(&mut p);
    rejects(&p, ParseError::Fragment);
    let frag = [6, 0, 0, 0, 0, 0, 0, 1];
    let p = v6(s6("2001:db8::1"), s6("2001:db8::2"), 44, &frag, tcp_segment(&[], ACK, b""));
    rejects(&p, ParseError::Fragment);
}

#[test]
fn sec_04_other_protocols_are_reported() {
    let mut p = good_v4();
    p[9] = 17;
    fix_ip_checksum(&mut p);
    rejects(&p, ParseError::NotTcp);
    let p = v6(s6("2001:db8::1"), s6("2001:db8::2"), 17, &[], tcp_segment(&[], ACK, b""));
    rejects(&p, ParseError::NotTcp);
    // Hop-by-Hop then ICMPv6.
    let hbh = [58, 0, 1, 4, 0, 0, 0, 0];
    let p = v6(s6("2001:db8::1"), s6("2001:db8::2"), 0, &hbh, tcp_segment(&[], ACK, b""));
    rejects(&p, ParseError::NotTcp);
}

#[test]
fn ipv6_extension_headers_are_followed() {
    // Hop-by-Hop (8) -> Routing (16) -> Destination Options (8) -> TCP.
    let mut ext = vec![43, 0, 1, 4, 0, 0, 0, 0];
    ext.extend_from_slice(&[60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    ext.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    let p = v6(s6("2001:db8::1"), s6("2001:db8::2"), 0, &ext, tcp_segment(&[], ACK, b"xyz"));
    assert_eq!(wire::parse(&p).unwrap().payload, b"xyz");
}

#[test]
fn sec_04_bad_addresses_are_reported() {
    let t = || tcp_segment(&[], ACK, b"");
    for (s, d) in [
        (A, [255, 255, 255, 255]),
        ([255, 255, 255, 255], B),
        (A, [224, 0, 0, 1]),
        ([239, 1, 2, 3], B),
        ([0, 0, 0, 0], B),
        (A, [0, 0, 0, 0]),
    ] {
        rejects(&v4(s, d, t()), ParseError::BadAddress);
    }
    for (s, d) in [("2001:db8::1", "ff02::1"), ("ff05::2", "2001:db8::1"), ("::", "2001:db8::1")] {
        rejects(&v6(s6(s), s6(d), 6, &[], t()), ParseError::BadAddress);
    }
}

#[test]
fn sec_04_bad_header_length_is_reported() {
    let mut seg = tcp_segment(&[], ACK, b"");
    seg[12] = 4 << 4;
    rejects(&v4(A, B, seg), ParseError::BadTcpHeaderLen);
    let mut seg = tcp_segment(&[], ACK, b"0123456789");
    seg[12] = 15 << 4; // 60 bytes of header in a 30-byte segment
    rejects(&v4(A, B, seg), ParseError::BadTcpHeaderLen);
    let mut seg = tcp_segment(&[], ACK, b"");
    seg[12] = 0;
    rejects(&v6(s6("2001:db8::1"), s6("2001:db8::2"), 6, &[], seg), ParseError::BadTcpHeaderLen);
}

#[test]
fn sec_04_bad_checksum_is_reported() {
    let mut p = good_v4();
    let last = p.len() - 1;
    p[last] ^= 0x01;
    rejects(&p, ParseError::BadTcpChecksum);
    let mut p = good_v6();
    p[40 + 16] ^= 0x80;
    rejects(&p, ParseError::BadTcpChecksum);
    // A checksum computed without the pseudo-header is wrong.
    let mut p = good_v4();
    p[36..38].fill(0);
    let c = naive_checksum(&[&p[20..]]);
    p[36..38].copy_from_slice(&c.to_be_bytes());
    rejects(&p, ParseError::BadTcpChecksum);
}

#[test]
fn sec_04_malformed_options_are_reported() {
    // Every case is a multiple of 4 bytes so the data offset covers it exactly.
    for opts in [
        &[1, 2, 4, 5][..],                         // MSS truncated by the end of the header
        &[1, 1, 1, 9],                             // unknown kind 9 without its length byte
        &[1, 1, 2, 1],                             // length below 2
        &[1, 1, 9, 0],                             // length 0
        &[1, 1, 30, 6],                            // unknown kind running past the end
        &[2, 3, 5, 1],                             // MSS with length 3
        &[3, 4, 7, 1],                             // WS with length 4
        &[4, 3, 0, 1],                             // SACK-permitted with length 3
        &[1, 1, 8, 8, 0, 0, 0, 0],                 // timestamps with length 8
        &[1, 1, 5, 2],                             // SACK without blocks
        &[5, 6, 0, 0, 0, 1, 1, 1],                 // SACK with a partial block
        &[1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2],    // SACK running past the end
        &[2, 4, 5, 0xb4, 8, 10, 0, 0, 0, 0, 0, 0], // timestamps truncated
    ] {
        let p = v4(A, B, tcp_segment(opts, ACK, b""));
        let r = wire::parse(&p).map(|_| ());
        assert_eq!(r, Err(ParseError::BadOption), "{opts:?}");
    }
}

#[test]
fn unusual_but_valid_options_parse() {
    let seg = |o: &[u8]| v4(A, B, tcp_segment(o, ACK, b""));
    // Unknown kinds are skipped; EOL stops parsing (garbage after it is ignored).
    let p = seg(&[30, 4, 1, 2, 2, 4, 1, 0, 0, 99, 99, 99]);
    assert_eq!(wire::parse(&p).unwrap().tcp.options.mss, Some(256));
    // A window scale above 14 is clamped (RFC 7323 §2.3).
    let p = seg(&[1, 3, 3, 200]);
    assert_eq!(wire::parse(&p).unwrap().tcp.options.window_scale, Some(14));
    // Four SACK blocks fill 34 bytes (plus 2 NOPs).
    let mut o = vec![1, 1, 5, 34];
    for i in 0..8u32 {
        o.extend_from_slice(&(i * 10).to_be_bytes());
    }
    let p = seg(&o);
    let s = wire::parse(&p).unwrap();
    assert_eq!(s.tcp.options.sacks().len(), 4);
    assert_eq!(s.tcp.options.sacks()[3].right.get(), 70);
}

#[test]
fn sec_04_bad_flag_combinations_are_reported() {
    for flags in [0x03u8, 0x06, 0x07, 0x13, 0x16, 0x00, 0x40, 0x80, 0xc0] {
        let p = v4(A, B, tcp_segment(&[], flags, b""));
        rejects(&p, ParseError::BadFlags);
    }
    for flags in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x12, 0x11, 0x14, 0x18, 0x20, 0xc2] {
        let p = v4(A, B, tcp_segment(&[], flags, b""));
        assert_eq!(wire::parse(&p).unwrap().tcp.flags.0, flags);
    }
}

#[test]
fn sec_04_checks_apply_in_documented_order() {
    // Bad IP checksum wins over everything behind it.
    let mut p = v4([224, 0, 0, 1], B, tcp_segment(&[2, 3, 0, 0], 0x03, b""));
    p[9] = 17;
    rejects(&p, ParseError::BadIpChecksum);
    // Fragment before protocol.
    fix_ip_checksum(&mut p);
    let mut q = p.clone();
    q[6] = 0x20;
    fix_ip_checksum(&mut q);
    rejects(&q, ParseError::Fragment);
    // Protocol before address.
    rejects(&p, ParseError::NotTcp);
    // Address before the TCP header.
    p[9] = 6;
    fix_ip_checksum(&mut p);
    rejects(&p, ParseError::BadAddress);
    // TCP checksum before options, options before flags.
    let mut p = v4(A, B, tcp_segment(&[2, 3, 0, 0], 0x03, b"x"));
    rejects(&p, ParseError::BadOption);
    let last = p.len() - 1;
    p[last] ^= 1;
    rejects(&p, ParseError::BadTcpChecksum);
    let p = v4(A, B, tcp_segment(&[2, 4, 0, 0], 0x03, b"x"));
    rejects(&p, ParseError::BadFlags);
}

#[test]
fn every_variant_is_covered() {
    // Keep this list in sync with the tests above: one crafted packet per variant.
    let cases: Vec<(Vec<u8>, ParseError)> = vec![
        (vec![], ParseError::Truncated),
        (vec![0x50], ParseError::BadIpVersion),
        (
            {
                let mut p = good_v4();
                p[0] = 0x44;
                p
            },
            ParseError::BadIpHeaderLen,
        ),
        (good_v4()[..30].to_vec(), ParseError::BadIpLength),
        (
            {
                let mut p = good_v4();
                p[8] ^= 1;
                p
            },
            ParseError::BadIpChecksum,
        ),
        (
            {
                let mut p = good_v4();
                p[6] = 0x20;
                fix_ip_checksum(&mut p);
                p
            },
            ParseError::Fragment,
        ),
        (
            {
                let mut p = good_v4();
                p[9] = 1;
                fix_ip_checksum(&mut p);
                p
            },
            ParseError::NotTcp,
        ),
        (v4(A, [255; 4], tcp_segment(&[], ACK, b"")), ParseError::BadAddress),
        (
            {
                let mut s = tcp_segment(&[], ACK, b"");
                s[12] = 0x10;
                v4(A, B, s)
            },
            ParseError::BadTcpHeaderLen,
        ),
        (
            {
                let mut p = good_v4();
                p[24] ^= 1;
                p
            },
            ParseError::BadTcpChecksum,
        ),
        (v4(A, B, tcp_segment(&[2, 2, 0, 0], ACK, b"")), ParseError::BadOption),
        (v4(A, B, tcp_segment(&[], 0x03, b"")), ParseError::BadFlags),
    ];
    let mut seen = [false; ParseError::ALL.len()];
    for (p, e) in &cases {
        rejects(p, *e);
        seen[e.index()] = true;
    }
    assert!(seen.iter().all(|&s| s), "{seen:?}");
}
