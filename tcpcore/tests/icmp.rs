//! ICMP: wire format (RFC 792, RFC 4443), the endpoint's echo server (RFC 1122 §3.2.2.6) and
//! path MTU discovery (RFC 1191, RFC 8201) with the RFC 5927 §4.1 sequence check.
//!
//! IDs (proposed for BEHAVIOURS.md): IC-01 an echo request to one of our addresses gets a
//! byte-exact echo reply; IC-02 echo requests to other addresses, too large, beyond the rate
//! limit or the echo buffers get nothing; IC-03 "fragmentation needed"/"packet too big"
//! quoting an in-flight segment lowers the MSS to fit and resends in-flight data at the new
//! size without touching cwnd; IC-04 a quote not in flight (or before the handshake) is
//! ignored; IC-05 the MSS never grows from ICMP and never drops below the floor; IC-06 ICMP
//! errors for no connection or with implausible MTUs are dropped and counted. SEC-04 for
//! malformed ICMP.

mod icmp_util;

use std::net::{IpAddr, SocketAddr};

use icmp_util::*;
use tcpcore::rng::Rng;
use tcpcore::wire::icmp::{self, Echo, IcmpError, IcmpRepr, QuotedTcp};
use tcpcore::wire::{self, EmitError, ParseError, SeqNum, TcpFlags, TcpRepr};
use tcpcore::{DatagramEvent, Endpoint, EndpointConfig, Instant, PathMtu};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A TCP data segment `from → to` with `len` payload bytes, as a connection would emit it.
fn tcp_packet(from: SocketAddr, to: SocketAddr, seq: u32, len: usize) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: from.port(),
        dst_port: to.port(),
        seq: SeqNum(seq),
        ack: SeqNum(77),
        flags: TcpFlags::ACK,
        window: 1000,
        ..TcpRepr::default()
    };
    let payload = vec![0x5a; len];
    let mut buf = vec![0u8; 2000];
    let n = wire::emit(&mut buf, from.ip(), to.ip(), &repr, [&payload, &[]]).unwrap();
    buf.truncate(n);
    buf
}

// ---- wire ------------------------------------------------------------------------------

#[test]
fn ic_01_echo_emit_matches_hand_built_packets_and_parses_back() {
    // The classic vector: type 8, id 1, seq 1, no data: checksum !(0x0800 + 1 + 1) = 0xf7fd.
    let (a, b) = (ip("10.0.0.9"), ip("10.0.0.2"));
    let req = IcmpRepr::EchoRequest(Echo { ident: 1, seq_no: 1, data: &[] });
    let p = emitted(a, b, &req);
    assert_eq!(&p[20..], &[8, 0, 0xf7, 0xfd, 0, 1, 0, 1]);
    assert_eq!((p[9], p.len()), (1, 28), "protocol ICMP, 28 bytes");

    let data = b"0123456789abcdefg";
    for (a, b) in [(ip("10.0.0.9"), ip("10.0.0.2")), (ip("2001:db8::9"), ip("2001:db8::2"))] {
        for len in 0..=data.len() {
            for request in [true, false] {
                let e = Echo { ident: 0xbeef, seq_no: len as u16, data: &data[..len] };
                let repr = if request { IcmpRepr::EchoRequest(e) } else { IcmpRepr::EchoReply(e) };
                let p = emitted(a, b, &repr);
                assert_eq!(p, hand_echo(a, b, request, 0xbeef, len as u16, &data[..len]));
                let m = icmp::parse(&p).unwrap();
                assert_eq!((m.src, m.dst, m.repr), (a, b, repr));
                assert_eq!(repr.len(), 8 + len);
            }
        }
    }
}

#[test]
fn ic_03_frag_needed_quotes_our_segment() {
    let (us, peer, router) = (at80("10.0.0.1"), at80("10.0.0.2"), ip("10.0.0.254"));
    let us = SocketAddr::new(us.ip(), 40000);
    let seg = tcp_packet(us, peer, 123_456_789, 1460);
    let pkt = too_big(router, &seg, 1000);
    assert_eq!(pkt.len(), 20 + 8 + 28, "IP header + ICMP header + quoted header and 8 bytes");
    let m = icmp::parse(&pkt).unwrap();
    assert_eq!((m.src, m.dst), (router, us.ip()));
    let IcmpRepr::FragNeeded { next_hop_mtu, quote } = m.repr else { panic!("{:?}", m.repr) };
    assert_eq!(next_hop_mtu, 1000);
    assert_eq!((quote.src(), quote.dst(), quote.seq()), (us, peer, SeqNum(123_456_789)));
    assert!(quote.is_ipv4());
    assert_eq!(quote.bytes(), &seg[..28]);
    assert_eq!(emitted(router, us.ip(), &m.repr), pkt, "emit reproduces the router's bytes");

    // A quoted header with options (IHL 6): the ports are found after it.
    let mut opt = seg[..20].to_vec();
    opt[0] = 0x46;
    opt.extend_from_slice(&[1, 1, 1, 0]);
    opt.extend_from_slice(&seg[20..28]);
    let q = QuotedTcp::new_checked(&opt).unwrap();
    assert_eq!((q.src(), q.dst(), q.seq()), (us, peer, SeqNum(123_456_789)));
    // The whole packet may be quoted (RFC 1812 §4.3.2.3 asks for as much as fits in 576).
    let repr = IcmpRepr::FragNeeded { next_hop_mtu: 552, quote: quote_of(&seg, 548) };
    let p = emitted(router, us.ip(), &repr);
    assert_eq!(p.len(), 576);
    assert_eq!(icmp::parse(&p).unwrap().repr, repr);
}

#[test]
fn ic_03_packet_too_big_quotes_our_segment() {
    let us = SocketAddr::new(ip("2001:db8::1"), 40000);
    let (peer, router) = (at80("2001:db8::2"), ip("2001:db8::fe"));
    let seg = tcp_packet(us, peer, 0xffff_fff0, 1440);
    let pkt = too_big(router, &seg, 1280);
    assert_eq!(pkt.len(), 1280, "as much of the packet as fits in the minimum MTU");
    let m = icmp::parse(&pkt).unwrap();
    let IcmpRepr::PacketTooBig { mtu, quote } = m.repr else { panic!("{:?}", m.repr) };
    assert_eq!((m.src, m.dst, mtu), (router, us.ip(), 1280));
    assert_eq!((quote.src(), quote.dst(), quote.seq()), (us, peer, SeqNum(0xffff_fff0)));
    assert_eq!(quote.bytes(), &seg[..1280 - 48]);
    assert_eq!(emitted(router, us.ip(), &m.repr), pkt);
    // The 32-bit MTU field roundtrips beyond 16 bits.
    let repr = IcmpRepr::PacketTooBig { mtu: 70_000, quote: quote_of(&seg, 48) };
    assert_eq!(icmp::parse(&emitted(router, us.ip(), &repr)).unwrap().repr, repr);
}

/// Rewrite the checksums of a hand-edited ICMP packet (IPv4 header and ICMP, or ICMPv6).
/// The first 28 bytes of `tcp` with the protocol made UDP.
fn udp_quote(tcp: &[u8]) -> Vec<u8> {
    let mut q = tcp[..28].to_vec();
    q[9] = 17;
    q
}

fn fix_icmp_checksums(p: &mut [u8]) {
    if p.len() >= 20 && p[0] >> 4 == 4 {
        let ihl = usize::from(p[0] & 0xf) * 4;
        let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
        if ihl < 20 || ihl > total || total > p.len() {
            return;
        }
        p[10..12].fill(0);
        let c = naive_checksum(&[&p[..ihl]]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        if total >= ihl + 4 {
            p[ihl + 2..ihl + 4].fill(0);
            let c = naive_checksum(&[&p[ihl..total]]);
            p[ihl + 2..ihl + 4].copy_from_slice(&c.to_be_bytes());
        }
    } else if p.len() >= 44 && p[0] >> 4 == 6 {
        let end = 40 + usize::from(u16::from_be_bytes([p[4], p[5]]));
        if end > p.len() || end < 44 {
            return;
        }
        p[42..44].fill(0);
        let mut pseudo = p[8..40].to_vec();
        pseudo.extend_from_slice(&((end - 40) as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        let c = naive_checksum(&[&pseudo, &p[40..end]]);
        p[42..44].copy_from_slice(&c.to_be_bytes());
    }
}

#[test]
fn sec_04_icmp_rejections_one_per_reason() {
    let (a, b) = (ip("10.0.0.9"), ip("10.0.0.2"));
    let echo = hand_echo(a, b, true, 1, 2, b"data");
    let parse = |p: &[u8]| icmp::parse(p).map(|_| ());
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = echo.clone();
        f(&mut p);
        fix_icmp_checksums(&mut p);
        parse(&p)
    };
    assert_eq!(parse(&[]), Err(IcmpError::Ip(ParseError::Truncated)));
    assert_eq!(edit(&|p| p[0] = 0x55), Err(IcmpError::Ip(ParseError::BadIpVersion)));
    let mut bad_ip = echo.clone();
    bad_ip[8] = 63;
    assert_eq!(parse(&bad_ip), Err(IcmpError::Ip(ParseError::BadIpChecksum)));
    assert_eq!(edit(&|p| p[6] = 0x20), Err(IcmpError::Ip(ParseError::Fragment)));
    assert_eq!(edit(&|p| p[12] = 224), Err(IcmpError::Ip(ParseError::BadAddress)));
    assert_eq!(edit(&|p| p[12..16].fill(255)), Err(IcmpError::Ip(ParseError::BadAddress)));
    assert_eq!(edit(&|p| p[9] = 17), Err(IcmpError::NotIcmp));
    let tcp = tcp_packet(SocketAddr::new(a, 1), SocketAddr::new(b, 2), 1, 10);
    assert_eq!(parse(&tcp), Err(IcmpError::NotIcmp));
    assert_eq!(
        edit(&|p| {
            p.truncate(27);
            p[3] = 27
        }),
        Err(IcmpError::Truncated)
    );
    let mut bad_sum = echo.clone();
    bad_sum[30] ^= 1;
    assert_eq!(parse(&bad_sum), Err(IcmpError::BadChecksum));
    assert_eq!(edit(&|p| p[21] = 1), Err(IcmpError::Unsupported), "echo with code 1");
    // Redirect and timestamp request: nothing a TCP endpoint acts on.
    assert_eq!(parse(&hand_icmp(a, b, 5, 1, [0; 4], &tcp[..28])), Err(IcmpError::Unsupported));
    assert_eq!(parse(&hand_icmp(a, b, 13, 0, [0; 4], &[0; 12])), Err(IcmpError::Unsupported));
    // Port unreachable and time exceeded quoting TCP are errors a connection acts on (IC-07).
    assert_eq!(parse(&hand_icmp(a, b, 3, 3, [0; 4], &tcp[..28])), Ok(()));
    assert_eq!(parse(&hand_icmp(a, b, 11, 0, [0; 4], &tcp[..28])), Ok(()));
    // UDP-02: quotes of UDP datagrams are parsed too, for the socket that sent them.
    assert_eq!(parse(&hand_icmp(a, b, 3, 3, [0; 4], &udp_quote(&tcp))), Ok(()));
    assert_eq!(parse(&hand_icmp(a, b, 8, 0, [0; 4], &[])), Ok(()));

    // Quotes: neither TCP nor UDP, a later fragment, the wrong family, too short, not IP.
    let quote = |q: &[u8]| parse(&hand_icmp(a, b, 3, 4, [0, 0, 3, 232], q));
    let mut icmp_quote = tcp[..28].to_vec();
    icmp_quote[9] = 1;
    assert_eq!(quote(&icmp_quote), Err(IcmpError::BadQuote));
    let mut frag = tcp[..28].to_vec();
    frag[7] = 1;
    assert_eq!(quote(&frag), Err(IcmpError::BadQuote));
    let mut ihl4 = tcp[..28].to_vec();
    ihl4[0] = 0x44;
    assert_eq!(quote(&ihl4), Err(IcmpError::BadQuote));
    assert_eq!(quote(&tcp[..27]), Err(IcmpError::Truncated));
    assert_eq!(quote(&tcp[..19]), Err(IcmpError::Truncated));
    assert_eq!(quote(&[0x75; 40]), Err(IcmpError::BadQuote));
    assert_eq!(quote(&tcp[..28]), Ok(()));
    let v6 = tcp_packet(at80("2001:db8::1"), at80("2001:db8::2"), 1, 0);
    assert_eq!(quote(&v6[..48]), Err(IcmpError::BadQuote), "IPv6 quote in ICMPv4");
    let (a6, b6) = (ip("2001:db8::fe"), ip("2001:db8::1"));
    let v6_quote = |q: &[u8]| parse(&hand_icmp(a6, b6, 2, 0, [0, 0, 5, 0], q));
    assert_eq!(v6_quote(&tcp[..28]), Err(IcmpError::BadQuote), "IPv4 quote in ICMPv6");
    assert_eq!(v6_quote(&v6[..47]), Err(IcmpError::Truncated));
    assert!(v6_quote(&v6[..48]).is_ok());
    let mut v6_src = hand_icmp(ip("ff02::1"), b6, 128, 0, [0; 4], &[]);
    fix_icmp_checksums(&mut v6_src);
    assert_eq!(parse(&v6_src), Err(IcmpError::Ip(ParseError::BadAddress)));

    // Emit refuses what it cannot write.
    let q4 = quote_of(&tcp, 28);
    let repr = IcmpRepr::FragNeeded { next_hop_mtu: 1000, quote: q4 };
    let mut buf = [0u8; 100];
    assert_eq!(icmp::emit(&mut buf, a6, b6, &repr), Err(EmitError::MixedFamilies));
    assert_eq!(icmp::emit(&mut buf, a, b6, &repr), Err(EmitError::MixedFamilies));
    let repr6 = IcmpRepr::PacketTooBig { mtu: 1280, quote: q4 };
    assert_eq!(icmp::emit(&mut buf, a6, b6, &repr6), Err(EmitError::MixedFamilies));
    assert_eq!(icmp::emit(&mut buf[..55], a, b, &repr), Err(EmitError::BufferTooSmall));
    assert_eq!(icmp::emit(&mut buf[..56], a, b, &repr), Ok(56));
}

fn seeds() -> Vec<Vec<u8>> {
    let us4 = SocketAddr::new(ip("10.0.0.1"), 40000);
    let us6 = SocketAddr::new(ip("2001:db8::1"), 40000);
    let seg4 = tcp_packet(us4, at80("10.0.0.2"), 5, 100);
    let seg6 = tcp_packet(us6, at80("2001:db8::2"), 5, 100);
    vec![
        hand_echo(ip("10.0.0.9"), ip("10.0.0.1"), true, 1, 2, b"some echo data"),
        hand_echo(ip("10.0.0.9"), ip("10.0.0.1"), false, 1, 2, b"x"),
        hand_echo(ip("2001:db8::9"), ip("2001:db8::1"), true, 3, 4, b"more echo data!"),
        too_big(ip("10.0.0.254"), &seg4, 1000),
        too_big(ip("2001:db8::fe"), &seg6, 1280),
    ]
}

/// An endpoint with addresses, a listener and one connection of each family, to receive noise.
fn noisy_endpoint() -> Endpoint {
    let mut ep = Endpoint::new(EndpointConfig::default());
    ep.add_local_addr(ip("10.0.0.1"));
    ep.add_local_addr(ip("2001:db8::1"));
    ep.listen(at80("10.0.0.1")).unwrap();
    ep.connect(Instant::ZERO, ip("10.0.0.1"), at80("10.0.0.2")).unwrap();
    ep.connect(Instant::ZERO, ip("2001:db8::1"), at80("2001:db8::2")).unwrap();
    ep
}

/// Whatever parses re-emits to the same message; the endpoint survives it all.
fn check(ep: &mut Endpoint, now: Instant, p: &[u8]) -> bool {
    let _ = ep.handle(now, p);
    let mut out = [0u8; 1500];
    while ep.poll_transmit(now, &mut out).is_some() {}
    let Ok(m) = icmp::parse(p) else { return false };
    let again = emitted(m.src, m.dst, &m.repr);
    assert_eq!(icmp::parse(&again).unwrap(), m);
    true
}

#[test]
fn sec_04_random_and_mutated_icmp_never_panics() {
    let seeds = seeds();
    let mut ep = noisy_endpoint();
    let mut rng = Rng::new(0x1C3B);
    let mut parsed = 0;
    for i in 0..100_000u64 {
        let now = Instant::from_millis(i);
        let mut p = Vec::new();
        match i % 3 {
            0 => {
                let len = rng.below(100) as usize;
                p.extend((0..len).map(|_| rng.next_u32() as u8));
                if len > 0 {
                    p[0] = (p[0] & 0x0f) | if rng.chance(0.5) { 0x40 } else { 0x60 };
                }
                if len > 40 {
                    p[9] = 1; // v4 protocol ICMP
                    p[6] = if p[0] >> 4 == 6 { 58 } else { p[6] };
                }
                fix_icmp_checksums(&mut p);
            }
            _ => {
                p.extend_from_slice(&seeds[rng.below(seeds.len() as u64) as usize]);
                for _ in 0..=rng.below(4) {
                    let at = rng.below(p.len() as u64) as usize;
                    p[at] = rng.next_u32() as u8;
                }
                if rng.chance(0.2) {
                    p.truncate(rng.below(p.len() as u64 + 1) as usize);
                }
                if i % 3 == 2 {
                    fix_icmp_checksums(&mut p);
                }
            }
        }
        parsed += usize::from(check(&mut ep, now, &p));
    }
    eprintln!("{parsed} of 100000 parsed");
    assert!(parsed > 1_000, "only {parsed} parsed");
    assert_eq!(ep.stats().packets_in, 100_000);
}

#[test]
fn sec_04_every_truncated_icmp_is_an_error() {
    let mut ep = noisy_endpoint();
    for s in seeds() {
        assert!(check(&mut ep, Instant::ZERO, &s));
        for len in 0..s.len() {
            assert!(icmp::parse(&s[..len]).is_err(), "len {len}");
            // With the IP length rewritten and checksums repaired: still no panic.
            let mut t = s[..len].to_vec();
            if t.len() >= 20 && t[0] >> 4 == 4 {
                let n = t.len() as u16;
                t[2..4].copy_from_slice(&n.to_be_bytes());
            } else if t.len() >= 40 {
                let n = (t.len() - 40) as u16;
                t[4..6].copy_from_slice(&n.to_be_bytes());
            }
            fix_icmp_checksums(&mut t);
            let _ = check(&mut ep, Instant::ZERO, &t);
        }
    }
}

// ---- the endpoint's echo server ----------------------------------------------------------

/// An endpoint answering pings to `addrs`.
fn pinged(addrs: &[&str], cfg: EndpointConfig) -> Endpoint {
    let mut ep = Endpoint::new(cfg);
    for a in addrs {
        ep.add_local_addr(ip(a));
    }
    ep
}

/// Everything the endpoint sends now.
fn drain(ep: &mut Endpoint, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 1500];
    std::iter::from_fn(|| ep.poll_transmit(now, &mut buf).map(|t| buf[..t.len].to_vec())).collect()
}

#[test]
fn ic_01_ping_gets_a_byte_exact_echo_reply() {
    for (ours, them) in [("10.0.0.2", "10.0.0.9"), ("2001:db8::2", "2001:db8::9")] {
        let mut ep = pinged(&["10.0.0.2", "2001:db8::2"], EndpointConfig::default());
        let data = b"0123456789abcdef!"; // odd length: the checksum pads the last byte
        let req = hand_echo(ip(them), ip(ours), true, 0x1234, 7, data);
        assert!(ep.handle(Instant::ZERO, &req).is_none());
        let out = drain(&mut ep, Instant::ZERO);
        assert_eq!(out, vec![hand_echo(ip(ours), ip(them), false, 0x1234, 7, data)]);
        let s = ep.stats();
        assert_eq!((s.packets_in, s.packets_out, s.icmp_echo_replies), (1, 1, 1));
        assert_eq!((s.parse_error(ParseError::NotTcp), s.total_drops()), (0, 0));
    }
}

#[test]
fn ic_02_ping_to_another_address_gets_nothing() {
    let mut ep = pinged(&["10.0.0.2"], EndpointConfig::default());
    for dst in ["10.0.0.3", "10.0.0.255", "255.255.255.255", "224.0.0.1"] {
        let req = hand_echo(ip("10.0.0.9"), ip(dst), true, 1, 1, b"x");
        assert!(ep.handle(Instant::ZERO, &req).is_none());
    }
    assert_eq!(drain(&mut ep, Instant::ZERO), Vec::<Vec<u8>>::new());
    assert_eq!((ep.stats().icmp_echo_dropped, ep.stats().icmp_echo_replies), (4, 0));

    // An endpoint with no address answers nobody; broadcast and multicast cannot be added.
    let mut ep = pinged(&["255.255.255.255", "0.0.0.0", "ff02::1"], EndpointConfig::default());
    assert!(ep.local_addrs().is_empty());
    let req = hand_echo(ip("10.0.0.9"), ip("10.0.0.2"), true, 1, 1, b"x");
    ep.handle(Instant::ZERO, &req);
    assert!(drain(&mut ep, Instant::ZERO).is_empty());
    ep.add_local_addr(ip("10.0.0.2"));
    ep.handle(Instant::ZERO, &req);
    assert_eq!(drain(&mut ep, Instant::ZERO).len(), 1);
    ep.remove_local_addr(ip("10.0.0.2"));
    ep.handle(Instant::ZERO, &req);
    assert!(drain(&mut ep, Instant::ZERO).is_empty());

    // Echo replies addressed to us are not for us (we never ping).
    let reply = hand_echo(ip("10.0.0.9"), ip("10.0.0.2"), false, 1, 1, b"x");
    ep.handle(Instant::ZERO, &reply);
    assert!(drain(&mut ep, Instant::ZERO).is_empty());
    assert_eq!(ep.stats().icmp_ignored, 1);
}

#[test]
fn ic_02_echo_data_is_capped_by_the_mtu() {
    let mut ep = pinged(&["10.0.0.2", "2001:db8::2"], EndpointConfig::default());
    let big = vec![0xa5u8; 1473];
    // IPv4: 1472 bytes of data make a 1500-byte reply; one more is dropped.
    for (them, ours, max) in [("10.0.0.9", "10.0.0.2", 1472), ("2001:db8::9", "2001:db8::2", 1452)]
    {
        ep.handle(Instant::ZERO, &hand_echo(ip(them), ip(ours), true, 1, 1, &big[..max]));
        let out = drain(&mut ep, Instant::ZERO);
        assert_eq!(out, vec![hand_echo(ip(ours), ip(them), false, 1, 1, &big[..max])]);
        assert_eq!(out[0].len(), 1500);
        ep.handle(Instant::ZERO, &hand_echo(ip(them), ip(ours), true, 1, 2, &big[..max + 1]));
        assert!(drain(&mut ep, Instant::ZERO).is_empty());
    }
    assert_eq!((ep.stats().icmp_echo_replies, ep.stats().icmp_echo_dropped), (2, 2));
}

#[test]
fn ic_02_echo_replies_are_rate_limited_and_buffers_bounded() {
    let cfg = EndpointConfig { rst_rate_limit: 3, ..Default::default() };
    let mut ep = pinged(&["10.0.0.2"], cfg);
    let req = |seq| hand_echo(ip("10.0.0.9"), ip("10.0.0.2"), true, 9, seq, b"abc");
    for seq in 0..5 {
        ep.handle(Instant::ZERO, &req(seq));
    }
    assert_eq!(drain(&mut ep, Instant::ZERO).len(), 3);
    assert_eq!(ep.stats().replies_rate_limited, 2);
    let t = Instant::from_secs(1);
    ep.handle(t, &req(5));
    assert_eq!(
        drain(&mut ep, t),
        vec![hand_echo(ip("10.0.0.2"), ip("10.0.0.9"), false, 9, 5, b"abc")]
    );

    // Eight echo replies may wait at once; buffers come back once they are sent.
    let mut ep = pinged(&["10.0.0.2"], EndpointConfig::default());
    for seq in 0..10 {
        ep.handle(Instant::ZERO, &req(seq));
    }
    assert_eq!(ep.stats().icmp_echo_dropped, 2);
    let expect: Vec<_> =
        (0..8).map(|s| hand_echo(ip("10.0.0.2"), ip("10.0.0.9"), false, 9, s, b"abc")).collect();
    assert_eq!(drain(&mut ep, Instant::ZERO), expect);
    for round in 0..3 {
        for seq in 0..8 {
            ep.handle(Instant::ZERO, &req(100 * round + seq));
        }
        assert_eq!(drain(&mut ep, Instant::ZERO).len(), 8, "round {round}");
    }
    assert_eq!((ep.stats().icmp_echo_replies, ep.stats().icmp_echo_dropped), (32, 2));
}

// ---- ICMP errors at the endpoint ----------------------------------------------------------

/// A client endpoint with one connection to `peer`; returns the endpoint, the handle and the
/// connection's SYN packet.
fn client_with_syn(
    local: &str,
    peer: SocketAddr,
) -> (Endpoint, tcpcore::ConnectionHandle, Vec<u8>) {
    let mut ep = Endpoint::new(EndpointConfig::default());
    let (h, mut conn) = ep.connect(Instant::ZERO, ip(local), peer).unwrap();
    let mut buf = [0u8; 1500];
    let t = conn.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    (ep, h, buf[..t.len].to_vec())
}

#[test]
fn ic_03_too_big_for_a_connection_becomes_a_path_mtu_event() {
    for (local, peer, router, mtu) in [
        ("10.0.0.1", at80("10.0.0.2"), "10.0.0.254", 1000),
        ("2001:db8::1", at80("2001:db8::2"), "2001:db8::fe", 1280),
    ] {
        let (mut ep, h, syn) = client_with_syn(local, peer);
        let iss = wire::parse(&syn).unwrap().tcp.seq;
        let pkt = too_big(ip(router), &syn, mtu);
        let ev = ep.handle(Instant::ZERO, &pkt);
        let Some(DatagramEvent::PathMtu(got, p)) = ev else { panic!("{ev:?}") };
        assert_eq!((got, p), (h, PathMtu { mtu: mtu as u16, seq: iss }));
        assert_eq!(ep.stats().icmp_errors_applied, 1);
        assert_eq!(ep.stats().total_drops(), 0);
    }
}

#[test]
fn ic_06_too_big_for_no_connection_or_with_bogus_mtu_is_dropped() {
    let (mut ep, _, syn) = client_with_syn("10.0.0.1", at80("10.0.0.2"));
    let router = ip("10.0.0.254");
    let mut now = Instant::ZERO;
    let mut handle = |ep: &mut Endpoint, pkt: &[u8]| {
        now += std::time::Duration::from_millis(1);
        ep.handle(now, pkt).is_some()
    };
    // Another destination port: no such connection.
    let mut other = syn.clone();
    other[23] ^= 1;
    assert!(!handle(&mut ep, &too_big(router, &other, 1000)));
    // Addressed to someone other than the quoted source.
    let mut pkt = too_big(router, &syn, 1000);
    pkt[19] = 77;
    fix_icmp_checksums(&mut pkt);
    assert!(!handle(&mut ep, &pkt));
    assert_eq!(ep.stats().icmp_unknown_connection, 2);
    // RFC 1191: MTUs below 68 (0 from old routers) and MTUs not below the interface's.
    for mtu in [0, 67, 1500, 1501, 65535] {
        assert!(!handle(&mut ep, &too_big(router, &syn, mtu)), "mtu {mtu}");
    }
    assert_eq!(ep.stats().icmp_bad_mtu, 5);
    for mtu in [68, 1499] {
        assert!(handle(&mut ep, &too_big(router, &syn, mtu)), "mtu {mtu}");
    }
    // IPv6: below 1280 (RFC 8201 §4) or not below the interface MTU.
    let (mut ep, _, syn) = client_with_syn("2001:db8::1", at80("2001:db8::2"));
    for mtu in [0, 1279, 1500, 70_000] {
        assert!(!handle(&mut ep, &too_big(ip("2001:db8::fe"), &syn, mtu)), "mtu {mtu}");
    }
    assert!(handle(&mut ep, &too_big(ip("2001:db8::fe"), &syn, 1280)));
    assert_eq!((ep.stats().icmp_bad_mtu, ep.stats().icmp_errors_applied), (4, 1));
    // Nothing is ever sent in answer to an ICMP error.
    assert!(drain(&mut ep, now).is_empty());
}
