//! IP fragment scenarios (FR-01, FR-02): reassembly in any order for both families,
//! overlaps, duplicates, atomic fragments, the 30 s timeout with "time exceeded", the
//! memory budget under a flood, hostile lengths, and outgoing fragmentation round trips.

mod udp_util;

use std::net::IpAddr;
use std::time::Duration;

use tcpcore::rng::Rng;
use tcpcore::wire::frag::emit_fragment;
use tcpcore::wire::icmp::IcmpError;
use tcpcore::{EndpointConfig, Instant};
use udp_util::{addr, icmp_type, payload, pump, udp_packet, Node};

const T0: Instant = Instant::ZERO;

/// The fragments socket `h` of `a` sends for one datagram of `n` bytes to `to`.
fn fragments_of(a: &mut Node, h: tcpcore::UdpHandle, to: &str, n: usize, seed: u8) -> Vec<Vec<u8>> {
    a.sock(h).send_to(addr(to), &payload(n, seed)).unwrap();
    a.output(T0)
}

/// Cut an IP packet's payload (after a 20-byte IPv4 or 40-byte IPv6 header) into fragments
/// of at most `mtu` bytes, as a router or another stack would.
fn cut(packet: &[u8], ident: u32, mtu: usize) -> Vec<Vec<u8>> {
    let v4 = packet[0] >> 4 == 4;
    let (hlen, proto) = if v4 { (20, packet[9]) } else { (40, packet[6]) };
    let (src, dst): (IpAddr, IpAddr) = if v4 {
        (
            <[u8; 4]>::try_from(&packet[12..16]).unwrap().into(),
            <[u8; 4]>::try_from(&packet[16..20]).unwrap().into(),
        )
    } else {
        (
            <[u8; 16]>::try_from(&packet[8..24]).unwrap().into(),
            <[u8; 16]>::try_from(&packet[24..40]).unwrap().into(),
        )
    };
    let data = &packet[hlen..];
    let (mut out, mut at) = (Vec::new(), 0);
    let mut buf = vec![0u8; 2000];
    while at < data.len() {
        let (n, next) = emit_fragment(&mut buf, (src, dst), proto, ident, data, at, mtu).unwrap();
        out.push(buf[..n].to_vec());
        at = next;
    }
    out
}

#[track_caller]
fn assert_one(b: &mut Node, h: tcpcore::UdpHandle, n: usize, seed: u8) {
    let got = b.drain(h);
    assert_eq!(got.len(), 1, "one datagram");
    assert_eq!(got[0].0, payload(n, seed), "byte-exact");
}

/// FR-01: fragments reassemble whatever their order, IPv4 and IPv6, and the result goes
/// through the normal demux.
#[test]
fn fr_01_fragments_reassemble_in_any_order() {
    for (src, dst) in [("10.0.0.1:5000", "10.0.0.2:53"), ("[2001:db8::1]:5000", "[2001:db8::2]:53")]
    {
        let mut rng = Rng::new(7);
        for round in 0..20u8 {
            let (mut a, mut b) = (Node::new(1), Node::new(2));
            let ha = a.bind(src);
            let hb = b.bind(dst);
            let n = 2000 + usize::from(round) * 3001;
            let mut frags = fragments_of(&mut a, ha, dst, n, round);
            assert!(frags.len() >= 2);
            match round % 3 {
                0 => frags.reverse(),
                1 => frags.rotate_left(1),
                _ => {
                    for i in (1..frags.len()).rev() {
                        frags.swap(i, rng.below(i as u64 + 1) as usize);
                    }
                }
            }
            for f in &frags {
                b.recv(T0, f);
            }
            assert_one(&mut b, hb, n, round);
            assert_eq!(b.ep.reassembly_usage(), (0, 0), "nothing left pending");
            assert_eq!(b.ep.stats().frags_in, frags.len() as u64);
            assert_eq!(b.ep.stats().frag_reassembled, 1);
        }
    }
}

/// FR-01: reassembly comes before demux, so a fragmented TCP SYN reaches the listener.
#[test]
fn fr_01_fragmented_tcp_segment_reaches_the_listener() {
    let mut b = Node::new(2);
    b.ep.listen(addr("10.0.0.2:80")).unwrap();
    let syn = tcpcore::wire::TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq: tcpcore::wire::SeqNum(1),
        flags: tcpcore::wire::TcpFlags::SYN,
        window: 1000,
        ..Default::default()
    };
    let mut buf = [0u8; 200];
    let n = tcpcore::wire::emit(
        &mut buf,
        "10.0.0.1".parse().unwrap(),
        "10.0.0.2".parse().unwrap(),
        &syn,
        [&[], &[]],
    )
    .unwrap();
    let mut packet = buf[..n].to_vec();
    packet[6] = 0; // clear DF, as a sender that lets routers fragment
    udp_util::fix_v4_header(&mut packet);
    let frags = cut(&packet, 77, 36);
    assert_eq!(frags.len(), 2);
    for f in frags.iter().rev() {
        b.recv(T0, f);
    }
    assert_eq!(b.ep.stats().syn_acks_sent, 1, "the SYN was answered");
}

/// FR-01: an overlapping fragment discards the whole datagram (RFC 5722); the remaining
/// fragments never complete it. An exact duplicate is only itself dropped.
#[test]
fn fr_01_overlap_discards_the_datagram_duplicate_does_not() {
    let (mut a, mut b) = (Node::new(1), Node::new(2));
    let ha = a.bind("10.0.0.1:5000");
    let hb = b.bind("10.0.0.2:53");
    let frags = fragments_of(&mut a, ha, "10.0.0.2:53", 4000, 1);
    assert_eq!(frags.len(), 3);
    // Duplicate: the first fragment twice.
    b.recv(T0, &frags[0]);
    b.recv(T0, &frags[0]);
    b.recv(T0, &frags[1]);
    b.recv(T0, &frags[2]);
    assert_one(&mut b, hb, 4000, 1);
    assert_eq!(b.ep.stats().frag_duplicates, 1);

    // Overlap: the second fragment shifted back by 8 bytes into the first.
    let frags = fragments_of(&mut a, ha, "10.0.0.2:53", 4000, 2);
    let mut shifted = frags[1].clone();
    let off = u16::from_be_bytes([shifted[6], shifted[7]]);
    shifted[6..8].copy_from_slice(&(off - 1).to_be_bytes());
    udp_util::fix_v4_header(&mut shifted);
    b.recv(T0, &frags[0]);
    b.recv(T0, &shifted);
    assert_eq!(b.ep.stats().frag_overlaps, 1);
    assert_eq!(b.ep.reassembly_usage(), (0, 0), "the whole datagram discarded");
    for f in &frags[1..] {
        b.recv(T0, f);
    }
    assert!(b.drain(hb).is_empty(), "never completed");
}

/// FR-01: an incomplete datagram is given up 30 s after its first fragment arrived; the
/// sender gets "fragment reassembly time exceeded" quoting the first fragment, but only if
/// that fragment (offset 0) had arrived (Linux `ip_expire`). Both families.
#[test]
fn fr_01_incomplete_datagram_times_out_after_30s() {
    for (src, dst, te) in [
        ("10.0.0.1:5000", "10.0.0.2:53", (11, 1)),
        ("[2001:db8::1]:5000", "[2001:db8::2]:53", (3, 1)),
    ] {
        let (mut a, mut b) = (Node::new(1), Node::new(2));
        let ha = a.bind(src);
        b.bind(dst);
        let first = fragments_of(&mut a, ha, dst, 4000, 1);
        let later = fragments_of(&mut a, ha, dst, 4000, 2);
        let t1 = T0 + Duration::from_secs(1);
        b.recv(T0, &first[0]);
        b.recv(t1, &later[1]);
        assert_eq!(b.ep.poll_timeout(), Some(T0 + Duration::from_secs(30)));
        b.ep.handle_timeout(T0 + Duration::from_millis(29_999));
        assert_eq!(b.ep.reassembly_usage().0, 2);
        let t30 = T0 + Duration::from_secs(30);
        b.ep.handle_timeout(t30);
        let out = b.output(t30);
        assert_eq!(out.len(), 1, "time exceeded for the datagram with its first fragment");
        assert_eq!(icmp_type(&out[0]), Some(te));
        let hlen = if out[0][0] >> 4 == 4 { 28 } else { 48 };
        assert_eq!(&out[0][hlen..hlen + 40], &first[0][..40], "quotes the first fragment");
        // Checksums valid (checked before the quote: our parser follows no Fragment header
        // in an IPv6 quote, so that one ends as BadQuote after the checksum passed).
        let parsed = tcpcore::wire::icmp::parse(&out[0]);
        let v4 = out[0][0] >> 4 == 4;
        assert!(parsed.is_ok() || (!v4 && parsed == Err(IcmpError::BadQuote)), "{parsed:?}");
        b.ep.handle_timeout(t1 + Duration::from_secs(30));
        assert!(b.output(t1 + Duration::from_secs(30)).is_empty(), "no first fragment: silent");
        assert_eq!(b.ep.stats().frag_timeouts, 2);
        assert_eq!(b.ep.reassembly_usage(), (0, 0));
        assert_eq!(b.ep.poll_timeout(), None);
    }
}

/// FR-01: an IPv6 atomic fragment (offset 0, M clear) is a whole datagram, delivered at
/// once without disturbing a pending reassembly that shares its identification (RFC 6946).
#[test]
fn fr_01_atomic_fragment_handled_as_whole() {
    let mut b = Node::new(2);
    let hb = b.bind("[2001:db8::2]:53");
    let whole = udp_packet("[2001:db8::1]:5000", "[2001:db8::2]:53", &payload(3000, 4));
    let frags = cut(&whole, 99, 1280);
    b.recv(T0, &frags[0]);
    let small = udp_packet("[2001:db8::1]:5000", "[2001:db8::2]:53", b"atomic");
    let atomic = cut(&small, 99, 1500);
    assert_eq!(atomic.len(), 1);
    assert_eq!(atomic[0][6], 44, "carries a Fragment header");
    b.recv(T0, &atomic[0]);
    assert_eq!(b.drain(hb)[0].0, b"atomic");
    assert_eq!(b.ep.stats().frag_atomic, 1);
    for f in &frags[1..] {
        b.recv(T0, f);
    }
    assert_one(&mut b, hb, 3000, 4);
}

/// FR-01: a flood of fragments that never complete stays within the reassembly budget;
/// the excess is dropped and counted, and once the flood's entries time out a legitimate
/// datagram reassembles again.
#[test]
fn fr_01_fragment_flood_stays_within_budget() {
    let budget = 256 * 1024;
    let cfg = EndpointConfig { seed: 2, ipfrag_high_thresh: budget, ..Default::default() };
    let mut b = Node::with(cfg);
    let hb = b.bind("10.0.0.2:53");
    let mut rng = Rng::new(11);
    let template = udp_packet("10.9.0.1:1", "10.0.0.2:53", &[0xa5; 1024]);
    let mut peak = 0;
    for i in 0..20_000u32 {
        // A middle fragment of 1 KiB at a random offset of a datagram from one of many
        // sources: every one opens a reassembly that never completes.
        let mut f = template[..20 + 1024].to_vec();
        let offset8 = 1 + rng.below(1000) as u16;
        f[2..4].copy_from_slice(&((20 + 1024) as u16).to_be_bytes());
        f[4..6].copy_from_slice(&(i as u16).to_be_bytes());
        f[6..8].copy_from_slice(&(0x2000 | offset8).to_be_bytes());
        f[12..16].copy_from_slice(&[10, 9, (i >> 8) as u8, i as u8]);
        udp_util::fix_v4_header(&mut f);
        b.recv(T0, &f);
        peak = peak.max(b.ep.reassembly_usage().1);
        assert!(b.ep.reassembly_usage().1 <= budget, "within budget after fragment {i}");
    }
    let s = *b.ep.stats();
    assert!(s.frag_budget_drops > 10_000, "the flood hit the budget: {s:?}");
    assert!(peak > budget / 2, "the budget was used: peak {peak}");

    // After the timeout the flood is gone, and a real datagram gets through.
    let later = T0 + Duration::from_secs(30);
    b.ep.handle_timeout(later);
    assert_eq!(b.ep.reassembly_usage(), (0, 0));
    let mut a = Node::new(1);
    let ha = a.bind("10.0.0.1:5000");
    a.sock(ha).send_to(addr("10.0.0.2:53"), &payload(5000, 3)).unwrap();
    pump(later, &mut a, &mut b);
    assert_one(&mut b, hb, 5000, 3);
}

/// Hostile fragments: a non-final fragment whose length is not a multiple of 8, one
/// reaching past 64 KiB, data beyond an already-known end: dropped and counted, no panic.
#[test]
fn fr_01_malformed_fragments_dropped_and_counted() {
    let mut b = Node::new(2);
    let hb = b.bind("10.0.0.2:53");
    let base = udp_packet("10.0.0.1:5000", "10.0.0.2:53", &payload(100, 1));
    let frag = |off8: u16, more: bool, len: usize| {
        let mut p = base[..20 + len].to_vec();
        p[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
        p[6..8].copy_from_slice(&(off8 | if more { 0x2000 } else { 0 }).to_be_bytes());
        udp_util::fix_v4_header(&mut p);
        p
    };
    b.recv(T0, &frag(0, true, 13)); // not a multiple of 8
    b.recv(T0, &frag(8190, true, 80)); // past 65535
    b.recv(T0, &frag(0, true, 0)); // empty with more to come
    assert_eq!(b.ep.stats().frag_malformed, 3);
    // A last fragment ending at 64, then data beyond it: the datagram goes.
    b.recv(T0, &frag(4, false, 32));
    b.recv(T0, &frag(10, true, 16));
    assert_eq!(b.ep.stats().frag_malformed, 4);
    assert_eq!(b.ep.reassembly_usage(), (0, 0));
    // Truncated IPv6 Fragment header.
    let mut v6 = udp_packet("[2001:db8::1]:5000", "[2001:db8::2]:53", b"x");
    v6[6] = 44;
    v6.truncate(44);
    v6[4..6].copy_from_slice(&4u16.to_be_bytes());
    b.recv(T0, &v6);
    assert_eq!(b.ep.stats().frag_malformed, 5);
    assert!(b.drain(hb).is_empty());
}

/// FR-02: a datagram larger than the MTU leaves as fragments no larger than the MTU, each
/// but the last carrying a multiple of 8 bytes, sharing one identification, none with DF;
/// they reassemble into the datagram. Datagrams that fit leave whole.
#[test]
fn fr_02_outgoing_datagrams_fragmented_to_the_mtu() {
    for (src, dst, mtu) in [
        ("10.0.0.1:5000", "10.0.0.2:53", 576u16),
        ("10.0.0.1:5000", "10.0.0.2:53", 1500),
        ("[2001:db8::1]:5000", "[2001:db8::2]:53", 1280),
        ("[2001:db8::1]:5000", "[2001:db8::2]:53", 9000),
    ] {
        let (mut a, mut b) = (Node::new(1), Node::new(2));
        let ha = a.bind(src);
        let hb = b.bind(dst);
        a.sock(ha).set_mtu(mtu);
        let max = if src.starts_with('[') { 65_527 } else { 65_507 };
        for n in [10usize, 1472, 10_240, max] {
            let frags = fragments_of(&mut a, ha, dst, n, 5);
            let whole = frags.len() == 1;
            let hdr = if src.starts_with('[') { 40 } else { 20 };
            assert_eq!(whole, hdr + 8 + n <= usize::from(mtu), "{n} bytes at MTU {mtu}");
            for (i, f) in frags.iter().enumerate() {
                assert!(f.len() <= usize::from(mtu), "{} > {mtu}", f.len());
                if hdr == 20 {
                    assert_eq!(f[6] & 0x40, 0, "no DF");
                    let more = f[6] & 0x20 != 0;
                    assert_eq!(more, i + 1 < frags.len());
                    if more {
                        assert_eq!((f.len() - 20) % 8, 0);
                    }
                    assert_eq!(f[4..6], frags[0][4..6], "one identification");
                } else if !whole {
                    assert_eq!(f[6], 44);
                    assert_eq!(f[44..48], frags[0][44..48], "one identification");
                }
            }
            for f in frags.iter().rev() {
                b.recv(T0, f);
            }
            assert_one(&mut b, hb, n, 5);
        }
        let id = |f: &[u8]| if f[0] >> 4 == 4 { f[4..6].to_vec() } else { f[44..48].to_vec() };
        assert_ne!(
            id(&fragments_of(&mut a, ha, dst, 10_240, 1)[0]),
            id(&fragments_of(&mut a, ha, dst, 10_240, 1)[0]),
            "each datagram its own identification"
        );
    }
}

/// Hostile input: random edits of fragments, whole datagrams and their headers (IPv4
/// header checksum fixed half the time, so the edits reach reassembly and UDP) never panic,
/// never exceed the reassembly budget, and leave the endpoint working.
#[test]
fn fr_01_mutated_packets_never_panic_and_stay_in_budget() {
    let budget = 64 * 1024;
    let cfg = EndpointConfig { seed: 2, ipfrag_high_thresh: budget, ..Default::default() };
    let mut b = Node::with(cfg);
    let hb = b.bind("0.0.0.0:53");
    b.bind("[::]:53");
    let mut a = Node::new(1);
    let (h4, h6) = (a.bind("10.0.0.1:5000"), a.bind("[2001:db8::1]:5000"));
    let mut corpus = fragments_of(&mut a, h4, "10.0.0.2:53", 5000, 1);
    corpus.extend(fragments_of(&mut a, h6, "[2001:db8::2]:53", 5000, 2));
    corpus.push(udp_packet("10.0.0.1:5000", "10.0.0.2:53", b"whole"));
    corpus.push(udp_packet("[2001:db8::1]:5000", "[2001:db8::2]:53", b"whole"));
    let mut rng = Rng::new(99);
    let mut now = T0;
    for i in 0..60_000u32 {
        let mut p = corpus[rng.below(corpus.len() as u64) as usize].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(p.len().min(64) as u64) as usize;
            p[at] ^= 1 << rng.below(8);
        }
        if rng.chance(0.1) {
            p.truncate(rng.below(p.len() as u64 + 1) as usize);
        }
        if p.len() >= 20 && p[0] >> 4 == 4 && (p[0] & 0x0f) == 5 && rng.chance(0.5) {
            udp_util::fix_v4_header(&mut p);
        }
        b.recv(now, &p);
        assert!(b.ep.reassembly_usage().1 <= budget);
        if i % 1000 == 0 {
            now += Duration::from_secs(5);
            b.ep.handle_timeout(now);
            b.output(now);
        }
    }
    let s = *b.ep.stats();
    assert!(s.frags_in > 10_000 && s.frag_overlaps > 0 && s.frag_malformed > 0, "{s:?}");
    assert!(s.frag_reassembled > 0 && s.udp_bad_checksum > 0, "{s:?}");
    b.drain(hb);
    now += Duration::from_secs(31);
    b.ep.handle_timeout(now);
    assert_eq!(b.ep.reassembly_usage(), (0, 0));
    let frags = fragments_of(&mut a, h4, "10.0.0.2:53", 5000, 3);
    for f in &frags {
        b.recv(now, f);
    }
    assert_one(&mut b, hb, 5000, 3);
}
