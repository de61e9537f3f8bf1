//! Ephemeral ports (RFC 6056 §3.3) and the bind conflicts they respect (PT-01): an active
//! open never takes a port a listener, or a connection accepted on a port, holds on its
//! address, so a stack never connects to itself by accident; a listener on port 0 never
//! takes a port a live connection uses.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::Seg;
use tcpcore::wire::TcpFlags;
use tcpcore::{DatagramEvent, Endpoint, EndpointConfig, EndpointError, Instant};

const IP: &str = "10.0.0.1";

fn ip() -> IpAddr {
    IP.parse().unwrap()
}

fn sa(port: u16) -> SocketAddr {
    SocketAddr::new(ip(), port)
}

/// An endpoint whose ephemeral range is `start..=end`.
fn endpoint(seed: u64, start: u16, end: u16) -> Endpoint {
    Endpoint::new(EndpointConfig {
        seed,
        ephemeral_start: start,
        ephemeral_end: end,
        ..EndpointConfig::default()
    })
}

/// Every port `connect` to `remote` hands out until the range is used up.
#[track_caller]
fn connect_until_exhausted(ep: &mut Endpoint, remote: SocketAddr) -> Vec<u16> {
    let mut ports = Vec::new();
    loop {
        match ep.connect(Instant::ZERO, ip(), remote) {
            Ok((_, conn)) => ports.push(conn.local_addr().port()),
            Err(e) => {
                assert_eq!(e, EndpointError::AddrNotAvailable);
                return ports;
            }
        }
    }
}

/// PT-01: with a listener on an ephemeral port, connects to that very listener never pick
/// its port (which would connect the stack to itself), whatever the seed.
#[test]
fn pt_01_connect_to_own_listener_never_picks_the_listener_port() {
    for seed in 0..64 {
        let mut ep = endpoint(seed, 32768, 32771);
        ep.listen(sa(32768)).unwrap();
        let ports = connect_until_exhausted(&mut ep, sa(32768));
        assert_eq!(ports.len(), 3, "seed {seed}: {ports:?}");
        assert!(!ports.contains(&32768), "seed {seed}: took the listener's port: {ports:?}");
    }
}

/// PT-01: a wildcard listener holds its port on every address of its family; a listener
/// on another address does not.
#[test]
fn pt_01_wildcard_listener_port_is_never_ephemeral() {
    for seed in 0..16 {
        let mut ep = endpoint(seed, 40000, 40003);
        ep.listen("0.0.0.0:40001".parse().unwrap()).unwrap();
        ep.listen("10.9.9.9:40002".parse().unwrap()).unwrap();
        let ports = connect_until_exhausted(&mut ep, "10.0.0.2:80".parse().unwrap());
        assert_eq!(ports.len(), 3, "seed {seed}: {ports:?}");
        assert!(!ports.contains(&40001), "seed {seed}: {ports:?}");
    }
}

/// PT-01: a connection accepted on a port keeps holding it after its listener closes (as
/// Linux's accepted sockets keep the listener's bind bucket); once it is gone, the port is
/// free again.
#[test]
fn pt_01_accepted_connection_holds_its_port_after_unlisten() {
    let mut ep = endpoint(3, 50000, 50001);
    ep.listen(sa(50000)).unwrap();
    let client: SocketAddr = "10.0.0.2:40000".parse().unwrap();
    let syn = Seg::syn(1000).packet(client, sa(50000));
    assert!(ep.handle(Instant::ZERO, &syn).is_none());
    let mut buf = vec![0u8; 2048];
    let t = ep.poll_transmit(Instant::ZERO, &mut buf).expect("a SYN-ACK");
    let sa_seg = tcpcore::wire::parse(&buf[..t.len]).unwrap();
    let ack = Seg::ack(1001, sa_seg.tcp.seq.0.wrapping_add(1)).packet(client, sa(50000));
    let Some(DatagramEvent::NewConnection(h, conn)) = ep.handle(Instant::ZERO, &ack) else {
        panic!("the handshake completes");
    };
    let _ = ep.unlisten(sa(50000));
    assert_eq!(connect_until_exhausted(&mut ep, "10.0.0.3:80".parse().unwrap()), [50001]);
    ep.connection_closed(h, &conn);
    assert_eq!(connect_until_exhausted(&mut ep, "10.0.0.4:80".parse().unwrap()), [50000, 50001]);
}

/// PT-01: a listener on port 0 takes a port that no live connection uses on its address
/// (or, for a wildcard listener, on any address of its family) and no listener holds.
#[test]
fn pt_01_listen_on_port_zero_skips_ports_of_live_connections() {
    for seed in 0..16 {
        let mut ep = endpoint(seed, 45000, 45001);
        let (_, conn) = ep.connect(Instant::ZERO, ip(), "10.0.0.2:80".parse().unwrap()).unwrap();
        let used = conn.local_addr().port();
        let a = ep.listen_ephemeral(ip(), Default::default()).unwrap();
        assert_eq!(a.ip(), ip());
        assert_ne!(a.port(), used, "seed {seed}: the connection's port");
        let none = Err(EndpointError::AddrNotAvailable);
        assert_eq!(ep.listen_ephemeral(ip(), Default::default()), none, "seed {seed}");
        assert_eq!(ep.listen_ephemeral("0.0.0.0".parse().unwrap(), Default::default()), none);
    }
}

/// PT-01: a bound socket's reservation (`bind` before `listen` or `connect`) keeps its port
/// from every other bind, listener and active open until it is released.
#[test]
fn pt_01_bind_reserves_the_port_until_unbind() {
    let mut ep = endpoint(5, 40000, 40000);
    let bound = ep.bind(SocketAddr::new(ip(), 0), false).unwrap();
    assert_eq!(bound, sa(40000), "port 0 takes the one ephemeral port");
    let remote: SocketAddr = "10.0.0.2:80".parse().unwrap();
    assert_eq!(
        ep.connect(Instant::ZERO, ip(), remote).unwrap_err(),
        EndpointError::AddrNotAvailable
    );
    assert_eq!(ep.bind(sa(40000), true), Err(EndpointError::AddrInUse));
    assert_eq!(ep.bind("0.0.0.0:40000".parse().unwrap(), false), Err(EndpointError::AddrInUse));
    assert_eq!(ep.listen(sa(40000)), Err(EndpointError::AddrInUse));
    assert_eq!(ep.bind(SocketAddr::new(ip(), 0), false), Err(EndpointError::AddrNotAvailable));
    assert!(ep.bind(sa(80), false).is_ok(), "another port is free");
    assert!(ep.unbind(bound));
    assert!(!ep.unbind(bound), "released once");
    ep.listen(sa(40000)).unwrap();
    assert_eq!(ep.bind(sa(40000), true), Err(EndpointError::AddrInUse), "a listener conflicts");
}

/// PT-01: a connection from a bound address takes the bound port; without `SO_REUSEADDR`
/// a bind conflicts with the live connection there, with it only a listener would.
#[test]
fn pt_01_connect_from_bound_port_then_reuse_addr() {
    let mut ep = endpoint(6, 40000, 40010);
    let bound = ep.bind(SocketAddr::new(ip(), 0), false).unwrap();
    assert!(ep.unbind(bound));
    let remote: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let cfg = ep.config().conn;
    let (_, conn) = ep.connect_from(Instant::ZERO, bound, remote, cfg).unwrap();
    assert_eq!(conn.local_addr(), bound);
    let again = ep.connect_from(Instant::ZERO, bound, remote, cfg).unwrap_err();
    assert_eq!(again, EndpointError::AddrNotAvailable, "the 4-tuple is live");
    assert_eq!(ep.bind(bound, false), Err(EndpointError::AddrInUse));
    assert_eq!(ep.bind(bound, true), Ok(bound));
}

/// FA-02: a connection refused in SYN-SENT that its owner still holds (CLOSED, given back
/// with `release_tuple`) does not keep its 4-tuple: a new `connect_from` on it succeeds (as
/// on Linux, where the closed socket is unhashed), segments go to the new connection, and
/// dropping the old one later leaves the new one's table entry alone.
#[test]
fn fa_02_connect_reuses_the_four_tuple_of_a_closed_held_connection() {
    let mut ep = endpoint(6, 40000, 40010);
    let local = sa(40005);
    let remote: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let cfg = ep.config().conn;
    let (old, mut conn) = ep.connect_from(Instant::ZERO, local, remote, cfg).unwrap();
    let mut buf = [0u8; 1500];
    let t = conn.poll_transmit(Instant::ZERO, &mut buf).expect("the SYN");
    let iss = tcpcore::wire::parse(&buf[..t.len]).unwrap().tcp.seq.0;
    let pkt = Seg::new(TcpFlags::RST | TcpFlags::ACK, 0, iss.wrapping_add(1)).packet(remote, local);
    let Some(DatagramEvent::Connection(h, seg)) = ep.handle(Instant::ZERO, &pkt) else {
        panic!("the RST goes to the connection")
    };
    assert_eq!(h, old);
    conn.handle_segment(Instant::ZERO, &seg);
    assert_eq!(conn.state(), tcpcore::State::Closed);
    ep.release_tuple(old, &conn);
    ep.release_tuple(old, &conn); // again: nothing more
    assert_eq!((ep.connection_count(), ep.stats().tuples_released), (1, 1));

    let (new, _conn2) = ep.connect_from(Instant::ZERO, local, remote, cfg).unwrap();
    assert_ne!(new, old);
    assert_eq!(ep.connection_count(), 2);
    ep.connection_closed(old, &conn);
    assert_eq!(ep.connection_count(), 1);
    let pkt = Seg::new(TcpFlags::RST | TcpFlags::ACK, 0, 1).packet(remote, local);
    let Some(DatagramEvent::Connection(h, _)) = ep.handle(Instant::ZERO, &pkt) else {
        panic!("the 4-tuple is the new connection's")
    };
    assert_eq!(h, new);
    let again = ep.connect_from(Instant::ZERO, local, remote, cfg).unwrap_err();
    assert_eq!(again, EndpointError::AddrNotAvailable, "the new connection holds it");
}
