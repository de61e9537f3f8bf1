//! UDP scenarios (UDP-01..03): delivery of whole datagrams, bounded receive queues, the
//! socket table's demux and bind rules, port unreachable and its rate limit, ICMP errors on
//! connected sockets, and the checksum rules of each family.

mod udp_util;

use std::io::ErrorKind;
use std::time::Duration;

use tcpcore::{ConnectionError, EndpointConfig, EndpointError, Instant, ReadError, UdpSendError};
use udp_util::{addr, fix_v4_header, icmp_type, payload, pump, udp_packet, Node};

const T0: Instant = Instant::ZERO;

/// UDP-01: each datagram arrives as sent, with its source; a buffer too small gets the
/// start and the rest is discarded, never delivered as another datagram.
#[test]
fn udp_01_datagrams_delivered_whole_or_not_at_all() {
    let (mut a, mut b) = (Node::new(1), Node::new(2));
    let ha = a.bind("10.0.0.1:5000");
    let hb = b.bind("10.0.0.2:53");
    for (i, n) in [0usize, 1, 100, 1472, 3000].into_iter().enumerate() {
        a.sock(ha).send_to(addr("10.0.0.2:53"), &payload(n, i as u8)).unwrap();
    }
    pump(T0, &mut a, &mut b);
    let got = b.drain(hb);
    let sizes: Vec<_> = got.iter().map(|(d, _)| d.len()).collect();
    assert_eq!(sizes, [0, 1, 100, 1472, 3000]);
    for (i, (d, src)) in got.iter().enumerate() {
        assert_eq!(*d, payload(d.len(), i as u8));
        assert_eq!(*src, addr("10.0.0.1:5000"));
    }

    // A short buffer: the start of the datagram, its true length, and the next receive
    // gets the next datagram.
    a.sock(ha).send_to(addr("10.0.0.2:53"), &payload(500, 9)).unwrap();
    a.sock(ha).send_to(addr("10.0.0.2:53"), b"second").unwrap();
    pump(T0, &mut a, &mut b);
    let mut small = [0u8; 10];
    let r = b.sock(hb).recv_from(&mut small).unwrap();
    assert_eq!((r.len, r.datagram_len), (10, 500));
    assert_eq!(&small[..], &payload(500, 9)[..10]);
    assert_eq!(r.dst, addr("10.0.0.2:53"));
    let mut buf = [0u8; 64];
    let r = b.sock(hb).recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..r.len], b"second");
    assert_eq!(b.sock(hb).recv_from(&mut buf), Err(ReadError::WouldBlock));
}

/// UDP-01: peeking leaves the datagram queued.
#[test]
fn udp_01_peek_leaves_the_datagram() {
    let (mut a, mut b) = (Node::new(1), Node::new(2));
    let ha = a.bind("10.0.0.1:5000");
    let hb = b.bind("10.0.0.2:53");
    a.sock(ha).send_to(addr("10.0.0.2:53"), b"hello").unwrap();
    pump(T0, &mut a, &mut b);
    let mut buf = [0u8; 16];
    let p = b.sock(hb).peek_from(&mut buf).unwrap();
    let r = b.sock(hb).recv_from(&mut buf).unwrap();
    assert_eq!(p, r);
    assert_eq!(&buf[..r.len], b"hello");
    assert_eq!(b.sock(hb).recv_queue_len(), 0);
}

/// UDP-01: a full receive queue drops whole datagrams and counts them (`SO_RCVBUF`); what
/// was queued stays intact, and reading makes room again.
#[test]
fn udp_01_queue_overflow_dropped_and_counted() {
    let (mut a, mut b) = (Node::new(1), Node::new(2));
    let ha = a.bind("10.0.0.1:5000");
    let hb = b.bind("10.0.0.2:53");
    let per = 1000 + tcpcore::endpoint::DATAGRAM_OVERHEAD;
    b.sock(hb).set_recv_buffer_size(4 * per);
    for i in 0..10u8 {
        a.sock(ha).send_to(addr("10.0.0.2:53"), &payload(1000, i)).unwrap();
    }
    pump(T0, &mut a, &mut b);
    assert_eq!(b.sock(hb).stats().rcvbuf_errors, 6);
    assert_eq!(b.sock(hb).stats().datagrams_in, 4);
    let got = b.drain(hb);
    assert_eq!(got.len(), 4);
    for (i, (d, _)) in got.iter().enumerate() {
        assert_eq!(*d, payload(1000, i as u8), "the first four, whole");
    }
    a.sock(ha).send_to(addr("10.0.0.2:53"), b"again").unwrap();
    pump(T0, &mut a, &mut b);
    assert_eq!(b.drain(hb)[0].0, b"again");
    // One datagram always fits an empty queue, even beyond the limit.
    b.sock(hb).set_recv_buffer_size(10);
    a.sock(ha).send_to(addr("10.0.0.2:53"), &payload(2000, 1)).unwrap();
    pump(T0, &mut a, &mut b);
    assert_eq!(b.drain(hb).len(), 1);
}

/// UDP-01: demux prefers a connected socket, then one bound to the address, then the
/// wildcard; a connected socket hears only its peer.
#[test]
fn udp_01_demux_connected_then_bound_then_wildcard() {
    let mut b = Node::new(2);
    let wild = b.bind("0.0.0.0:7000");
    let exact = b.bind("10.0.0.2:7001");
    let conn = b.bind("10.0.0.2:7002");
    let mut s = b.socks.remove(&conn).unwrap();
    b.ep.udp_connect(&mut s, "10.0.0.2".parse().unwrap(), addr("10.0.0.9:99")).unwrap();
    b.socks.insert(conn, s);

    b.recv(T0, &udp_packet("10.0.0.9:1", "10.0.0.2:7000", b"w"));
    b.recv(T0, &udp_packet("10.0.0.9:1", "10.0.0.77:7000", b"w2"));
    b.recv(T0, &udp_packet("10.0.0.9:1", "10.0.0.2:7001", b"e"));
    b.recv(T0, &udp_packet("10.0.0.9:99", "10.0.0.2:7002", b"c"));
    b.recv(T0, &udp_packet("10.0.0.9:98", "10.0.0.2:7002", b"not the peer"));
    let data = |v: Vec<(Vec<u8>, _)>| v.into_iter().map(|x| x.0).collect::<Vec<_>>();
    assert_eq!(data(b.drain(wild)), [b"w".to_vec(), b"w2".to_vec()]);
    assert_eq!(data(b.drain(exact)), [b"e".to_vec()]);
    assert_eq!(data(b.drain(conn)), [b"c".to_vec()]);
    assert_eq!(b.ep.stats().udp_no_port, 1, "the stranger to the connected socket");
    assert_eq!(b.ep.stats().udp_datagrams_in, 5);
}

/// Bind rules: conflicts by port and address (the wildcard conflicts with all), port 0
/// picks an ephemeral port, UDP ports are their own space (a TCP listener does not hold
/// them), and a closed socket's port is free again.
#[test]
fn udp_01_bind_conflicts_and_ephemeral_ports() {
    let mut n = Node::new(3);
    n.ep.listen(addr("10.0.0.2:80")).unwrap();
    let h = n.bind("10.0.0.2:80");
    assert_eq!(n.ep.udp_bind(addr("10.0.0.2:80")).unwrap_err(), EndpointError::AddrInUse);
    assert_eq!(n.ep.udp_bind(addr("0.0.0.0:80")).unwrap_err(), EndpointError::AddrInUse);
    n.bind("10.0.0.3:80");
    n.bind("[::]:80");
    n.ep.udp_close(h);
    n.bind("10.0.0.2:80");
    let cfg = EndpointConfig::default();
    let mut ports = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let s = n.ep.udp_bind(addr("10.0.0.2:0")).unwrap();
        let p = s.local_addr().port();
        assert!((cfg.ephemeral_start..=cfg.ephemeral_end).contains(&p));
        assert!(ports.insert(p), "port {p} handed out twice");
    }
    assert_eq!(n.ep.udp_socket_count(), 53);
    assert_eq!(n.ep.udp_bind(addr("224.0.0.1:5")).unwrap_err(), EndpointError::InvalidAddress);
}

/// UDP-02: a datagram to a closed port is answered with ICMP port unreachable quoting it
/// (ICMPv4 3/3, ICMPv6 1/4), from the address it was sent to.
#[test]
fn udp_02_closed_port_gets_port_unreachable() {
    let mut b = Node::new(2);
    let dgram = udp_packet("10.0.0.1:5000", "10.0.0.2:9", b"anyone?");
    b.recv(T0, &dgram);
    let out = b.output(T0);
    assert_eq!(out.len(), 1);
    let icmp = &out[0];
    assert_eq!(icmp_type(icmp), Some((3, 3)));
    assert_eq!(&icmp[12..16], &[10, 0, 0, 2], "from the address the datagram went to");
    assert_eq!(&icmp[16..20], &[10, 0, 0, 1]);
    assert_eq!(&icmp[28..], &dgram[..], "the whole datagram quoted");
    assert!(tcpcore::wire::icmp::parse(icmp).is_ok(), "checksums valid");

    let v6 = udp_packet("[2001:db8::1]:5000", "[2001:db8::2]:9", b"anyone?");
    b.recv(T0, &v6);
    let out = b.output(T0);
    assert_eq!(out.len(), 1);
    assert_eq!(icmp_type(&out[0]), Some((1, 4)));
    assert_eq!(&out[0][48..], &v6[..]);
    assert!(tcpcore::wire::icmp::parse(&out[0]).is_ok());
    assert_eq!(b.ep.stats().udp_no_port, 2);
    assert_eq!(b.ep.stats().icmp_errors_sent, 2);
}

/// UDP-02: port unreachable is rate-limited as Linux's `icmp_ratelimit`: per destination a
/// burst of 6 then one per second; over all destinations `icmp_msgs_burst` then
/// `icmp_msgs_per_sec`.
#[test]
fn udp_02_port_unreachable_rate_limited() {
    let mut b = Node::new(2);
    let probe = |b: &mut Node, now: Instant, src: &str, n: usize| {
        for _ in 0..n {
            b.recv(now, &udp_packet(src, "10.0.0.2:9", b"x"));
        }
        b.output(now).len()
    };
    assert_eq!(probe(&mut b, T0, "10.0.0.1:1", 10), 6, "the burst");
    assert_eq!(probe(&mut b, T0 + Duration::from_millis(500), "10.0.0.1:1", 5), 0);
    assert_eq!(probe(&mut b, T0 + Duration::from_millis(1000), "10.0.0.1:1", 5), 1);
    assert_eq!(probe(&mut b, T0 + Duration::from_secs(3), "10.0.0.1:1", 5), 2);
    // Another destination has its own budget.
    assert_eq!(probe(&mut b, T0 + Duration::from_secs(3), "10.0.0.3:1", 10), 6);
    let s = *b.ep.stats();
    assert_eq!(s.icmp_errors_sent, 15);
    assert_eq!(s.icmp_errors_rate_limited, 35 - 15);

    // Many destinations at once: the global burst of 50 caps them.
    let mut c = Node::new(3);
    let mut sent = 0;
    for i in 0..200u32 {
        let src = format!("10.1.{}.{}:1", i / 250, i % 250 + 1);
        sent += probe(&mut c, T0, &src, 1);
    }
    assert_eq!(sent, 50);
}

/// UDP-02: a connected socket whose datagram was refused (port unreachable) reports
/// ConnectionRefused on its next receive, once, as Linux; an unconnected one does not.
#[test]
fn udp_02_connected_socket_reports_connection_refused() {
    let (mut a, mut b) = (Node::new(1), Node::new(2));
    let hc = a.bind("10.0.0.1:0");
    let hu = a.bind("10.0.0.1:6000");
    let mut s = a.socks.remove(&hc).unwrap();
    a.ep.udp_connect(&mut s, "10.0.0.1".parse().unwrap(), addr("10.0.0.2:9")).unwrap();
    a.socks.insert(hc, s);
    a.sock(hc).send(b"ping").unwrap();
    a.sock(hu).send_to(addr("10.0.0.2:10"), b"ping").unwrap();
    pump(T0, &mut a, &mut b);
    assert_eq!(pump(T0, &mut b, &mut a), 2, "two port unreachables");
    let mut buf = [0u8; 8];
    let err = a.sock(hc).recv_from(&mut buf).unwrap_err();
    assert_eq!(err, ReadError::Failed(ConnectionError::Refused));
    assert_eq!(std::io::Error::from(err).kind(), ErrorKind::ConnectionRefused);
    assert_eq!(a.sock(hc).recv_from(&mut buf), Err(ReadError::WouldBlock), "reported once");
    assert_eq!(a.sock(hu).recv_from(&mut buf), Err(ReadError::WouldBlock));
    assert_eq!(a.ep.stats().icmp_errors_applied, 2);

    // The error also fails the next send, once.
    a.sock(hc).send(b"ping").unwrap();
    pump(T0, &mut a, &mut b);
    pump(T0, &mut b, &mut a);
    assert_eq!(a.sock(hc).send(b"x"), Err(UdpSendError::Failed(ConnectionError::Refused)));
    assert!(a.sock(hc).send(b"x").is_ok());
}

/// UDP-03: over IPv6 a zero checksum is dropped and counted; over IPv4 it means "none" and
/// the datagram is delivered; a wrong checksum is dropped in both.
#[test]
fn udp_03_zero_checksum_rules() {
    let mut b = Node::new(2);
    let h4 = b.bind("10.0.0.2:53");
    let h6 = b.bind("[2001:db8::2]:53");
    let mut v4 = udp_packet("10.0.0.1:5000", "10.0.0.2:53", b"no checksum");
    v4[26..28].fill(0);
    b.recv(T0, &v4);
    assert_eq!(b.drain(h4)[0].0, b"no checksum");
    let mut v6 = udp_packet("[2001:db8::1]:5000", "[2001:db8::2]:53", b"no checksum");
    v6[46..48].fill(0);
    b.recv(T0, &v6);
    assert!(b.drain(h6).is_empty());
    assert_eq!(b.ep.stats().udp_zero_checksum_v6, 1);
    assert!(b.output(T0).is_empty(), "no ICMP for a dropped datagram");

    let mut bad = udp_packet("10.0.0.1:5000", "10.0.0.2:53", b"flipped");
    *bad.last_mut().unwrap() ^= 1;
    b.recv(T0, &bad);
    let mut bad6 = udp_packet("[2001:db8::1]:5000", "[2001:db8::2]:53", b"flipped");
    *bad6.last_mut().unwrap() ^= 1;
    b.recv(T0, &bad6);
    assert!(b.drain(h4).is_empty() && b.drain(h6).is_empty());
    assert_eq!(b.ep.stats().udp_bad_checksum, 2);
}

/// Hostile lengths: a UDP length beyond the packet or below the header, a truncated header,
/// multicast and broadcast destinations: dropped and counted, never delivered, never
/// answered.
#[test]
fn udp_malformed_datagrams_dropped_and_counted() {
    let mut b = Node::new(2);
    let h = b.bind("0.0.0.0:53");
    let good = udp_packet("10.0.0.1:5000", "10.0.0.2:53", b"12345678");
    for len in [0u16, 7, 17, 1000, 12] {
        let mut p = good.clone();
        p[24..26].copy_from_slice(&len.to_be_bytes());
        b.recv(T0, &p);
    }
    let mut short = good[..24].to_vec();
    short[2..4].copy_from_slice(&24u16.to_be_bytes());
    fix_v4_header(&mut short);
    b.recv(T0, &short);
    for dst in ["255.255.255.255:53", "224.0.0.251:53"] {
        b.recv(T0, &udp_packet("10.0.0.1:5000", dst, b"x"));
    }
    let s = *b.ep.stats();
    assert_eq!(s.udp_malformed, 5);
    assert_eq!(s.parse_error(tcpcore::wire::ParseError::BadAddress), 2);
    assert_eq!(s.udp_bad_checksum, 1, "a shorter length field: the checksum no longer matches");
    assert!(b.drain(h).is_empty());
    assert!(b.output(T0).is_empty());
}

/// Caller mistakes are typed errors: no peer, a bad destination, a datagram too long for
/// IP, a full send queue.
#[test]
fn udp_send_errors() {
    let mut a = Node::new(1);
    let h = a.bind("10.0.0.1:5000");
    let w = a.bind("0.0.0.0:5001");
    let s = a.sock(h);
    assert_eq!(s.send(b"x"), Err(UdpSendError::NotConnected));
    assert_eq!(s.send_to(addr("10.0.0.2:0"), b"x"), Err(UdpSendError::InvalidAddress));
    assert_eq!(s.send_to(addr("[2001:db8::2]:9"), b"x"), Err(UdpSendError::InvalidAddress));
    assert_eq!(s.send_to(addr("10.0.0.2:9"), &[0; 65_508]), Err(UdpSendError::MessageTooLong));
    assert!(s.send_to(addr("10.0.0.2:9"), &[0; 65_507]).is_ok());
    s.set_send_buffer_size(70_000);
    assert_eq!(s.send_to(addr("10.0.0.2:9"), &[0; 10_000]), Err(UdpSendError::Blocked));
    let ws = a.sock(w);
    assert_eq!(ws.send_to(addr("10.0.0.2:9"), b"x"), Err(UdpSendError::InvalidAddress));
    assert!(ws.send_from("10.0.0.1".parse().unwrap(), addr("10.0.0.2:9"), b"x").is_ok());
    let e = std::io::Error::from(UdpSendError::Blocked);
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
}

/// Many rounds of datagrams of changing sizes arrive byte-exact (heap use of this path:
/// `tests/udp_alloc.rs`).
#[test]
fn udp_many_datagrams_round_trip() {
    let (mut a, mut b) = (Node::new(1), Node::new(2));
    let ha = a.bind("[2001:db8::1]:5000");
    let hb = b.bind("[2001:db8::2]:53");
    let mut now = T0;
    for round in 0..100u32 {
        for i in 0..10u8 {
            a.sock(ha)
                .send_to(addr("[2001:db8::2]:53"), &payload(200 + round as usize, i))
                .unwrap();
        }
        pump(now, &mut a, &mut b);
        let got = b.drain(hb);
        assert_eq!(got.len(), 10);
        for (i, (d, _)) in got.iter().enumerate() {
            assert_eq!(*d, payload(200 + round as usize, i as u8));
        }
        now += Duration::from_millis(1);
    }
    assert_eq!(b.sock(hb).stats().datagrams_in, 1000);
    assert_eq!(a.sock(ha).stats().packets_out, 1000);
}
