//! ICMP errors other than "too big" (RFC 1122 §4.2.3.9, RFC 5461, RFC 5927 §4.1): hard
//! errors abort a connection in SYN-SENT with the kernel's error (IC-07); soft errors are
//! reported as the cause when a connection later times out (IC-08).

mod common;
mod icmp_util;

use std::net::IpAddr;
use std::time::Duration;

use common::{secs, Sc, Seg, D, P};
use icmp_util::hand_icmp;
use tcpcore::wire::SeqNum;
use tcpcore::{
    Connection, ConnectionError, ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig,
    IcmpUnreachable, Instant, State,
};

/// An endpoint at `local` with a connection in SYN-SENT to `peer`, and its SYN.
fn syn_sent(local: &str, peer: &str) -> (Endpoint, ConnectionHandle, Connection, Vec<u8>) {
    let mut ep = Endpoint::new(EndpointConfig::default());
    let local: IpAddr = local.parse().unwrap();
    let (h, mut conn) = ep.connect(Instant::ZERO, local, peer.parse().unwrap()).unwrap();
    let mut buf = [0u8; 1500];
    let t = conn.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    (ep, h, conn, buf[..t.len].to_vec())
}

/// What the peer host (or a router at its address) sends back for `pkt`: ICMP type `ty`,
/// code `code`, quoting the IP header and 8 bytes of TCP (RFC 792; ICMPv6 may quote more).
fn icmp_for(pkt: &[u8], ty: u8, code: u8) -> Vec<u8> {
    let v4 = pkt[0] >> 4 == 4;
    let (src, dst, quote_len) = if v4 {
        let ip = |r: std::ops::Range<usize>| IpAddr::from(<[u8; 4]>::try_from(&pkt[r]).unwrap());
        (ip(12..16), ip(16..20), usize::from(pkt[0] & 0xf) * 4 + 8)
    } else {
        let ip = |r: std::ops::Range<usize>| IpAddr::from(<[u8; 16]>::try_from(&pkt[r]).unwrap());
        (ip(8..24), ip(24..40), pkt.len())
    };
    hand_icmp(dst, src, ty, code, [0; 4], &pkt[..quote_len])
}

/// Hand `pkt` to the endpoint and its event to `conn`, as a run loop does.
#[track_caller]
fn deliver(ep: &mut Endpoint, h: ConnectionHandle, conn: &mut Connection, pkt: &[u8]) -> bool {
    match ep.handle(Instant::from_millis(20), pkt) {
        Some(DatagramEvent::IcmpError(got, e)) => {
            assert_eq!(got, h);
            conn.handle_icmp_error(Instant::from_millis(20), e);
            true
        }
        None => false,
        Some(other) => panic!("unexpected {other:?}"),
    }
}

/// Run `conn`'s timers until it closes (or a day passes); returns when it closed.
fn run_until_closed(conn: &mut Connection, mut now: Instant) -> Instant {
    let mut buf = [0u8; 1500];
    let end = now + Duration::from_secs(86_400);
    while conn.state() != State::Closed && now < end {
        while conn.poll_transmit(now, &mut buf).is_some() {}
        let Some(t) = conn.poll_timeout() else { break };
        now = now.max(t);
        conn.handle_timeout(now);
    }
    now
}

/// IC-07: port or protocol unreachable, administratively prohibited (and ICMPv6 parameter
/// problem) for our SYN close the connection at once with the error Linux reports
/// (`icmp_err_convert`, `icmpv6_err_convert`), and nothing more is sent.
#[test]
fn ic_07_hard_errors_abort_syn_sent_with_the_kernels_error() {
    use ConnectionError::*;
    let cases = [
        ("10.0.0.1", "10.0.0.2:80", 3, 2, ProtocolError),
        ("10.0.0.1", "10.0.0.2:80", 3, 3, Refused),
        ("10.0.0.1", "10.0.0.2:80", 3, 9, NetworkUnreachable),
        ("10.0.0.1", "10.0.0.2:80", 3, 10, HostUnreachable),
        ("10.0.0.1", "10.0.0.2:80", 3, 13, HostUnreachable),
        ("fd00::1", "[fd00::2]:80", 1, 1, Prohibited),
        ("fd00::1", "[fd00::2]:80", 1, 4, Refused),
        ("fd00::1", "[fd00::2]:80", 4, 1, ProtocolError),
    ];
    for (local, peer, ty, code, want) in cases {
        let (mut ep, h, mut conn, syn) = syn_sent(local, peer);
        assert!(deliver(&mut ep, h, &mut conn, &icmp_for(&syn, ty, code)), "{ty}/{code}");
        assert_eq!(conn.state(), State::Closed, "type {ty} code {code}");
        assert_eq!(conn.error(), Some(want), "type {ty} code {code}");
        assert!(conn.is_drained() && conn.poll_timeout().is_none());
        let mut buf = [0u8; 1500];
        assert!(conn.poll_transmit(Instant::from_millis(20), &mut buf).is_none(), "no RST");
        assert_eq!(ep.stats().icmp_errors_applied, 1);
        assert_eq!(std::io::Error::from(want).kind(), want.kind());
    }
}

/// IC-07: a soft error (network or host unreachable, time exceeded) does not abort SYN-SENT
/// (RFC 1122 §4.2.3.9: it "MUST NOT"); the SYN is retried and, when connect finally times
/// out, the soft error is its cause (IC-08; Linux `sk_err_soft`).
#[test]
fn ic_08_soft_errors_in_syn_sent_become_the_cause_of_the_timeout() {
    use ConnectionError::*;
    let cases = [
        ("10.0.0.1", "10.0.0.2:80", 3, 0, NetworkUnreachable),
        ("10.0.0.1", "10.0.0.2:80", 3, 1, HostUnreachable),
        ("10.0.0.1", "10.0.0.2:80", 11, 0, HostUnreachable),
        ("fd00::1", "[fd00::2]:80", 1, 0, NetworkUnreachable),
        ("fd00::1", "[fd00::2]:80", 1, 3, HostUnreachable),
    ];
    for (local, peer, ty, code, want) in cases {
        let (mut ep, h, mut conn, syn) = syn_sent(local, peer);
        assert!(deliver(&mut ep, h, &mut conn, &icmp_for(&syn, ty, code)));
        assert_eq!(conn.state(), State::SynSent, "type {ty} code {code} is soft");
        let closed = run_until_closed(&mut conn, Instant::from_millis(20));
        assert_eq!(closed, Instant::from_secs(127), "the usual 6 SYN retries");
        assert_eq!(conn.error(), Some(want), "type {ty} code {code}");
    }
}

/// IC-07 / RFC 5927 §4.1: an error quoting a sequence number that is not in flight, or
/// addressed to another host than the quote's source, changes nothing.
#[test]
fn ic_07_forged_errors_are_ignored() {
    let (mut ep, h, mut conn, mut syn) = syn_sent("10.0.0.1", "10.0.0.2:80");
    let mut forged = syn.clone();
    forged[24..28].copy_from_slice(&(conn.seq_vars().snd_una.0.wrapping_add(1)).to_be_bytes());
    assert!(deliver(&mut ep, h, &mut conn, &icmp_for(&forged, 3, 3)));
    assert_eq!(conn.state(), State::SynSent);
    assert_eq!(conn.info().icmp_ignored, 1);
    // Sent to another address: not about our segment.
    syn[12..16].copy_from_slice(&[10, 0, 0, 7]);
    assert!(!deliver(&mut ep, h, &mut conn, &icmp_for(&syn, 3, 3)));
    assert_eq!(ep.stats().icmp_unknown_connection, 1);
    assert_eq!(conn.state(), State::SynSent);
}

/// The error a connection reports when its data retransmissions run out after
/// `icmp` (for data in flight) and then, if `ack_first`, an ACK of that data and more data.
fn established_timeout(
    icmp: ConnectionError,
    hard: bool,
    ack_first: bool,
) -> Option<ConnectionError> {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.write(&[7; 100]).unwrap();
    assert_eq!(sc.output().len(), 1);
    let e = IcmpUnreachable { error: icmp, hard, seq: SeqNum(D) };
    sc.conn.handle_icmp_error(sc.now, e);
    assert_eq!(sc.conn.state(), State::Established, "never aborts a synchronized connection");
    if ack_first {
        sc.deliver(Seg::ack(P, D + 100));
        sc.conn.write(&[8; 100]).unwrap();
        assert_eq!(sc.output().len(), 1);
    }
    sc.advance(secs(3600));
    assert_eq!(sc.conn.state(), State::Closed);
    sc.conn.error()
}

/// IC-08: on an established connection a soft error (or a hard one: RFC 5461 §4, Linux)
/// never aborts; if the connection later times out, the error is its cause instead of
/// TimedOut, unless the peer acknowledged something since (the path worked again).
#[test]
fn ic_08_soft_error_reported_when_an_established_connection_times_out() {
    use ConnectionError::*;
    assert_eq!(established_timeout(HostUnreachable, false, false), Some(HostUnreachable));
    assert_eq!(established_timeout(NetworkUnreachable, false, false), Some(NetworkUnreachable));
    assert_eq!(established_timeout(Refused, true, false), Some(Refused));
    assert_eq!(established_timeout(HostUnreachable, false, true), Some(TimedOut));
}

/// IC-08: a quote that is not in flight is not remembered either.
#[test]
fn ic_08_soft_error_for_a_segment_not_in_flight_is_ignored() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.write(&[7; 100]).unwrap();
    sc.output();
    let stale = IcmpUnreachable {
        error: ConnectionError::HostUnreachable,
        hard: false,
        seq: SeqNum(D + 100),
    };
    sc.conn.handle_icmp_error(sc.now, stale);
    assert_eq!(sc.conn.info().icmp_ignored, 1);
    sc.advance(secs(3600));
    assert_eq!(sc.conn.error(), Some(ConnectionError::TimedOut));
}
