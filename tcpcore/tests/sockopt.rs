//! Socket options on a live connection and on a listener (`conn/sockopt.rs`): each changes
//! what goes on the wire from the next segment.
mod common;
use common::*;
use std::net::SocketAddr;
use tcpcore::config::CongestionAlgorithm;
use tcpcore::wire::{ipv4::Ipv4Packet, ipv6::Ipv6Packet, TcpFlags};
use tcpcore::{
    ConnConfig, ConnParams, Connection, DatagramEvent, Endpoint, EndpointConfig, Instant,
};

/// The TTL and TOS of an IPv4 packet.
#[track_caller]
fn ttl_tos(o: &Out) -> (u8, u8) {
    let p = Ipv4Packet::new_checked(&o.packet[..]).unwrap();
    assert!(p.verify_checksum(), "the header checksum covers TTL and TOS");
    (p.ttl(), p.tos())
}

/// `IP_TTL` and `IP_TOS` from the configuration are on every packet; changed on the live
/// connection, on the next one. The ECN bits of the TOS are not the socket's.
#[test]
fn ttl_and_tos_on_the_wire_and_changed_live() {
    let mut sc = Sc::client(ConnConfig { ttl: 7, tos: 0x10 | 0b11, ..Sc::plain() });
    assert_eq!(ttl_tos(&sc.log[0]), (7, 0x10), "the SYN");
    assert_eq!(sc.conn.config().ttl, 7);
    sc.advance(ms(10));
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1));
    assert_eq!(ttl_tos(&sc.expect_one()), (7, 0x10), "the ACK");
    sc.conn.set_ttl(200);
    sc.conn.set_tos(0xb8);
    sc.conn.write(b"x").unwrap();
    assert_eq!(ttl_tos(&sc.expect_one()), (200, 0xb8), "data after the change");
    assert_eq!(sc.conn.config().tos, 0xb8);
}

/// The IPv6 hop limit and traffic class come from the same options.
#[test]
fn hop_limit_and_traffic_class_on_ipv6() {
    let params = ConnParams {
        local: "[2001:db8::1]:40000".parse().unwrap(),
        remote: "[2001:db8::2]:80".parse().unwrap(),
        ..Sc::params()
    };
    let mut conn = Connection::connect(ConnConfig { ttl: 3, tos: 0x28, ..Sc::plain() }, params);
    let mut buf = vec![0u8; 2048];
    let t = conn.poll_transmit(Instant::ZERO, &mut buf).expect("the SYN");
    let p = Ipv6Packet::new_checked(&buf[..t.len]).unwrap();
    assert_eq!((p.hop_limit(), p.traffic_class()), (3, 0x28));
}

/// A listener's own connection options (`setsockopt` on the listening socket) give its
/// SYN-ACK's TTL and TOS, and are the accepted connection's configuration.
#[test]
fn listener_conn_config_applies_to_syn_ack_and_accepted_connection() {
    let mut ep = Endpoint::new(EndpointConfig::default());
    let addr: SocketAddr = "10.0.0.1:80".parse().unwrap();
    ep.listen(addr).unwrap();
    let cfg = ConnConfig { ttl: 9, tos: 0x20, keepalive: true, ..ep.config().conn };
    ep.set_listener_conn_config(addr, cfg).unwrap();
    assert_eq!(ep.listener_conn_config(addr).unwrap().ttl, 9);
    let syn = Seg::syn(PEER_ISS).packet(PEER, addr);
    assert!(ep.handle(at(0), &syn).is_none());
    let mut buf = vec![0u8; 2048];
    let t = ep.poll_transmit(at(0), &mut buf).expect("the SYN-ACK");
    let sa = Out::parse(at(0), &buf[..t.len]);
    sa.assert_flags(TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(ttl_tos(&sa), (9, 0x20));
    let ack = Seg::ack(PEER_ISS + 1, sa.seq() + 1).packet(PEER, addr);
    let Some(DatagramEvent::NewConnection(_, conn)) = ep.handle(at(1), &ack) else {
        panic!("the handshake completes")
    };
    assert!(conn.config().keepalive);
    assert_eq!((conn.config().ttl, conn.config().tos), (9, 0x20));
}

/// `TCP_QUICKACK` off: data is acknowledged after the delayed-ACK timeout, not at once;
/// turned on again, the delayed ACK goes out at once and the next segment is acknowledged
/// at once.
#[test]
fn quickack_off_delays_and_on_sends_the_pending_ack() {
    let mut sc = Sc::established(Sc::plain());
    assert!(sc.conn.quickack(), "quick-ack mode at the start");
    sc.conn.set_quickack(false);
    assert!(!sc.conn.quickack());
    sc.deliver(Seg::ack(P, D).data(b"abc"));
    sc.expect_none();
    sc.advance(ms(5));
    sc.conn.set_quickack(true);
    assert!(sc.conn.wants_transmit());
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(D, P + 3);
    sc.deliver(Seg::ack(P + 3, D).data(b"def"));
    sc.expect_one().assert_seq_ack(D, P + 6);
    // Off again: the ACK waits the delayed-ACK timeout (40 ms).
    sc.conn.set_quickack(false);
    sc.deliver(Seg::ack(P + 6, D).data(b"ghi"));
    sc.expect_none();
    let before = sc.now;
    let out = sc.advance(ms(100));
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].at, before + ms(40));
}

/// `SO_SNDBUF` caps the bytes in flight and queued together, and auto-tuning no longer
/// grows it, however often the application finds it full.
#[test]
fn send_buffer_caps_queued_and_in_flight_bytes() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.set_send_buffer(3000);
    let data = bytes(0, 100_000);
    let mut off = 0;
    let mut una = D;
    for _ in 0..20 {
        off += sc.conn.write(&data[off..]).unwrap_or(0);
        let out = sc.output();
        let end = out.last().map_or(una, |o| o.seq() + o.len() as u32);
        assert!(end - una <= 3000, "{} bytes in flight", end - una);
        if let Some(o) = out.last() {
            una = o.seq() + o.len() as u32;
            sc.deliver(Seg::ack(P, una));
        }
        assert!(sc.conn.send_queued() <= 3000);
    }
    assert_eq!(sc.conn.info().snd_buf, 3000, "auto-tuning is off");
    assert!(off > 20_000, "the transfer went on: {off}");
}

/// `TCP_CONGESTION` on a live connection keeps the congestion window.
#[test]
fn congestion_switch_keeps_cwnd() {
    let mut sc = Sc::established(Sc::plain());
    let cwnd = sc.conn.info().cwnd;
    sc.conn.set_congestion(CongestionAlgorithm::NewReno);
    assert_eq!(sc.conn.config().congestion, CongestionAlgorithm::NewReno);
    assert_eq!(sc.conn.info().cwnd, cwnd);
}
