//! UDP interception (AI-01): one socket takes the datagrams to every address and port that
//! no other socket takes, keeps each one's destination, and replies from it; fragmented
//! datagrams to foreign addresses reassemble first (FR-01) and large replies fragment
//! (FR-02), as a tun2socks forwarder needs for DNS and the rest of UDP; a flow refused
//! upstream is refused to its client with port unreachable from the dialled address (AI-03).

mod udp_util;

use tcpcore::{ConnectionError, EndpointError, Instant, ReadError, UdpHandle, UdpSendError};
use udp_util::{addr, icmp_type, payload, pump, udp_packet, Node};

const T0: Instant = Instant::ZERO;

/// The node's interception socket, kept with its other sockets.
fn intercept(n: &mut Node) -> UdpHandle {
    let s = n.ep.udp_intercept().expect("the first interception socket");
    let h = s.handle();
    n.socks.insert(h, s);
    h
}

/// AI-01: datagrams to foreign addresses reach the interception socket with their original
/// destination; bound sockets keep theirs; multicast and broadcast are not intercepted; the
/// reply leaves from the dialled address and port; closing the socket restores port
/// unreachable.
#[test]
fn ai_01_udp_intercept_any_address_and_reply_from_it() {
    let mut b = Node::new(2);
    let dns = b.bind("10.0.0.2:53");
    let all = intercept(&mut b);
    assert!(b.ep.udp_intercepting());
    assert_eq!(b.ep.udp_intercept().unwrap_err(), EndpointError::AddrInUse);

    b.recv(T0, &udp_packet("10.0.0.9:1000", "198.51.100.7:53", b"q1"));
    b.recv(T0, &udp_packet("10.0.0.9:1001", "10.0.0.2:53", b"mine"));
    b.recv(T0, &udp_packet("10.0.0.9:1002", "10.0.0.2:54", b"q2"));
    b.recv(T0, &udp_packet("10.0.0.9:1003", "224.0.0.251:5353", b"mdns"));
    b.recv(T0, &udp_packet("10.0.0.9:1004", "255.255.255.255:67", b"dhcp"));
    b.recv(T0, &udp_packet("[2001:db8::9]:1005", "[2001:db8:1::7]:443", b"q3"));
    assert_eq!(b.drain(dns), [(b"mine".to_vec(), addr("10.0.0.9:1001"))]);
    let mut buf = [0u8; 16];
    let mut got = Vec::new();
    while let Ok(r) = b.sock(all).recv_from(&mut buf) {
        got.push((buf[..r.len].to_vec(), r.src, r.dst));
    }
    assert_eq!(
        got,
        [
            (b"q1".to_vec(), addr("10.0.0.9:1000"), addr("198.51.100.7:53")),
            (b"q2".to_vec(), addr("10.0.0.9:1002"), addr("10.0.0.2:54")),
            (b"q3".to_vec(), addr("[2001:db8::9]:1005"), addr("[2001:db8:1::7]:443")),
        ]
    );

    b.sock(all).send_as(addr("198.51.100.7:53"), addr("10.0.0.9:1000"), b"a1").unwrap();
    let out = b.output(T0);
    assert_eq!(out.len(), 1);
    let d = tcpcore::wire::udp::parse_with(&out[0], true).expect("a valid datagram");
    assert_eq!(
        (d.src, d.dst, d.payload),
        (addr("198.51.100.7:53"), addr("10.0.0.9:1000"), &b"a1"[..])
    );

    let bad = b.sock(all).send_as(addr("0.0.0.0:53"), addr("10.0.0.9:1000"), b"x");
    assert_eq!(bad, Err(UdpSendError::InvalidAddress), "unspecified source");
    let bad = b.sock(all).send_as(addr("[2001:db8::1]:53"), addr("10.0.0.9:1000"), b"x");
    assert_eq!(bad, Err(UdpSendError::InvalidAddress), "mixed families");
    let bad = b.sock(dns).send_as(addr("198.51.100.7:53"), addr("10.0.0.9:1000"), b"x");
    assert_eq!(bad, Err(UdpSendError::InvalidAddress), "only the interception socket");

    b.socks.remove(&all);
    b.ep.udp_close(all);
    assert!(!b.ep.udp_intercepting());
    b.recv(T0, &udp_packet("10.0.0.9:1000", "198.51.100.7:53", b"q4"));
    let out = b.output(T0);
    assert_eq!(out.iter().filter_map(|p| icmp_type(p)).collect::<Vec<_>>(), [(3, 3)]);
}

/// AI-01 with FR-01/FR-02: a 10 KiB datagram to a foreign address arrives as fragments,
/// is reassembled and intercepted whole; the 10 KiB reply from that address leaves as
/// fragments and reassembles at the sender.
#[test]
fn ai_01_fr_01_fragmented_datagram_to_a_foreign_address() {
    let (mut a, mut b) = (Node::new(1), Node::new(2));
    let client = a.bind("10.0.0.1:5000");
    let all = intercept(&mut b);
    let big = payload(10 * 1024, 3);
    a.sock(client).send_to(addr("203.0.113.9:4000"), &big).unwrap();
    let frags = a.output(T0);
    assert!(frags.len() >= 7, "{} packets for 10 KiB at MTU 1500", frags.len());
    for p in &frags {
        b.recv(T0, p);
    }
    let mut buf = vec![0u8; 65_536];
    let r = b.sock(all).recv_from(&mut buf).unwrap();
    assert_eq!((r.src, r.dst), (addr("10.0.0.1:5000"), addr("203.0.113.9:4000")));
    assert!(buf[..r.len] == big[..], "the reassembled datagram");

    let reply = payload(10 * 1024, 7);
    b.sock(all).send_as(r.dst, r.src, &reply).unwrap();
    let frags = b.output(T0);
    assert!(frags.len() >= 7, "the reply leaves as fragments");
    for p in &frags {
        a.recv(T0, p);
    }
    let got = a.drain(client);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, addr("203.0.113.9:4000"), "from the dialled address");
    assert!(got[0].0 == reply, "the reassembled reply");
}

/// AI-03: a forwarder refuses an intercepted flow whose upstream answered with port
/// unreachable: the ICMP error leaves from the dialled address, quotes the client's
/// datagram closely enough for the client's stack to find its connected socket, which
/// reports ConnectionRefused, over IPv4 and IPv6; the endpoint's rate limit applies, and
/// addresses that could not have been intercepted get nothing.
#[test]
fn ai_03_refused_udp_flow_is_port_unreachable_at_the_client() {
    for (client_ip, dialled) in
        [("10.0.0.1", "198.51.100.7:53"), ("2001:db8::1", "[2001:db8:1::7]:53")]
    {
        let (mut a, mut b) = (Node::new(1), Node::new(2));
        let local = if client_ip.contains(':') {
            format!("[{client_ip}]:0")
        } else {
            format!("{client_ip}:0")
        };
        let hc = a.bind(&local);
        let mut s = a.socks.remove(&hc).unwrap();
        a.ep.udp_connect(&mut s, client_ip.parse().unwrap(), addr(dialled)).unwrap();
        a.socks.insert(hc, s);
        let all = intercept(&mut b);
        a.sock(hc).send(b"query").unwrap();
        pump(T0, &mut a, &mut b);
        let mut buf = [0u8; 64];
        let r = b.sock(all).recv_from(&mut buf).unwrap();
        assert_eq!(r.dst, addr(dialled));

        assert!(b.ep.udp_intercept_unreachable(T0, r.dst, r.src, &buf[..r.len]));
        let out = b.output(T0);
        assert_eq!(out.len(), 1);
        let want = if client_ip.contains(':') { (1, 4) } else { (3, 3) };
        assert_eq!(icmp_type(&out[0]), Some(want), "port unreachable");
        a.recv(T0, &out[0]);
        let err = a.sock(hc).recv_from(&mut buf).unwrap_err();
        assert_eq!(err, ReadError::Failed(ConnectionError::Refused), "{client_ip}");
        assert_eq!(a.ep.stats().icmp_errors_applied, 1);

        // Not about an address no interception could have taken, nor across families.
        assert!(!b.ep.udp_intercept_unreachable(T0, addr("224.0.0.1:53"), r.src, b"x"));
        let other = if client_ip.contains(':') { "10.0.0.1:5" } else { "[2001:db8::1]:5" };
        assert!(!b.ep.udp_intercept_unreachable(T0, r.dst, addr(other), b"x"));
        // The burst of six per destination, as for the endpoint's own errors.
        let sent =
            (0..10).filter(|_| b.ep.udp_intercept_unreachable(T0, r.dst, r.src, b"x")).count();
        assert_eq!(sent, 5, "six in the burst, one already sent");
        assert_eq!(b.output(T0).len(), 5);
    }
}
