//! A server `Endpoint` against hand-played clients: client segments in (as IP packets), the
//! endpoint's own packets (SYN-ACKs, resets, TIME-WAIT ACKs) out, endpoint timers fired at
//! their exact deadlines in virtual time. Connections the endpoint hands out are kept here and
//! fed their segments.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::common::{Out, Seg};
use tcpcore::wire::{self, TcpFlags};
use tcpcore::{
    ConnConfig, Connection, ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, Instant,
    ListenOptions,
};

/// The listening address.
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
/// The hand-played client's ISN.
pub const C_ISN: u32 = 5_000;

/// Client number `port` (all from 10.0.0.1).
pub fn client(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port)
}

/// No window scaling, timestamps or SACK.
pub fn plain() -> ConnConfig {
    ConnConfig { window_scaling: false, timestamps: false, sack: false, ..ConnConfig::default() }
}

/// The endpoint under test, as a server.
pub struct Srv {
    pub now: Instant,
    pub ep: Endpoint,
    /// Connections handed out by the endpoint.
    pub conns: BTreeMap<ConnectionHandle, Connection>,
    buf: Vec<u8>,
}

impl Srv {
    /// An endpoint (seed 1 unless `cfg` says otherwise) listening on [`SERVER`] with `opts`.
    pub fn new(cfg: EndpointConfig, opts: ListenOptions) -> Srv {
        let mut ep = Endpoint::new(cfg);
        ep.listen_with(SERVER, opts).unwrap();
        Srv { now: Instant::ZERO, ep, conns: BTreeMap::new(), buf: vec![0; 65_600] }
    }

    /// Default endpoint config with connection config `conn`.
    pub fn with_conn(conn: ConnConfig, opts: ListenOptions) -> Srv {
        Srv::new(EndpointConfig { seed: 1, conn, ..EndpointConfig::default() }, opts)
    }

    /// `seg` from `from` to [`SERVER`] arrives now. Returns the handle of a connection the
    /// endpoint created with it (a completed handshake).
    pub fn deliver(&mut self, from: SocketAddr, seg: Seg) -> Option<ConnectionHandle> {
        self.deliver_to(from, SERVER, seg)
    }

    pub fn deliver_to(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        seg: Seg,
    ) -> Option<ConnectionHandle> {
        let pkt = seg.packet(from, to);
        match self.ep.handle(self.now, &pkt) {
            Some(DatagramEvent::Connection(h, seg)) => {
                let c = self.conns.get_mut(&h).expect("handle of a live connection");
                c.handle_segment(self.now, &seg);
                // FA-02: a connection closed by this segment and held for the application
                // gives up its 4-tuple at once, as a driver does.
                if c.state() == tcpcore::State::Closed {
                    self.ep.release_tuple(h, c);
                }
                None
            }
            Some(DatagramEvent::NewConnection(h, c)) => {
                assert!(self.conns.insert(h, *c).is_none(), "handle {h:?} reused while live");
                Some(h)
            }
            Some(
                DatagramEvent::PathMtu(..)
                | DatagramEvent::IcmpError(..)
                | DatagramEvent::Udp(..)
                | DatagramEvent::UdpError(..)
                | DatagramEvent::Reassembled(..),
            ) => {
                panic!("no ICMP, UDP or fragments in these tests")
            }
            None => None,
        }
    }

    /// Everything the endpoint itself sends now.
    pub fn output(&mut self) -> Vec<Out> {
        let mut v = Vec::new();
        while let Some(t) = self.ep.poll_transmit(self.now, &mut self.buf) {
            v.push(Out::parse(self.now, &self.buf[..t.len]));
        }
        v
    }

    /// Everything connection `h` sends now.
    pub fn conn_output(&mut self, h: ConnectionHandle) -> Vec<Out> {
        let c = self.conns.get_mut(&h).expect("live connection");
        let mut v = Vec::new();
        while let Some(t) = c.poll_transmit(self.now, &mut self.buf) {
            v.push(Out::parse(self.now, &self.buf[..t.len]));
        }
        v
    }

    #[track_caller]
    pub fn expect_one(&mut self) -> Out {
        let mut v = self.output();
        assert_eq!(v.len(), 1, "expected exactly one packet at {}, got {:#?}", self.now, v);
        v.remove(0)
    }

    #[track_caller]
    pub fn expect_none(&mut self) {
        let v = self.output();
        assert!(v.is_empty(), "expected no packet at {}, got {:#?}", self.now, v);
    }

    /// Move virtual time forward by `d`, running the endpoint's timers at their own deadlines;
    /// returns what the endpoint sent on the way.
    pub fn advance(&mut self, d: Duration) -> Vec<Out> {
        let end = self.now + d;
        let mut out = self.output();
        while let Some(t) = self.ep.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.ep.handle_timeout(self.now);
            out.extend(self.output());
        }
        self.now = end;
        out
    }

    /// Move to the absolute time `at`.
    pub fn advance_to(&mut self, at: Instant) -> Vec<Out> {
        let d = at.saturating_duration_since(self.now);
        self.advance(d)
    }

    /// A SYN from `from` must be answered by exactly one SYN-ACK (ack = its seq + 1) to
    /// `from`; returns it.
    #[track_caller]
    pub fn syn(&mut self, from: SocketAddr, syn: Seg) -> Out {
        let seq = syn.seq;
        assert_eq!(self.deliver(from, syn), None);
        let sa = self.expect_one();
        sa.assert_flags(TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(sa.ack(), seq.wrapping_add(1), "SYN-ACK acknowledges the SYN");
        assert_eq!(dst(&sa), from, "SYN-ACK goes back to the client");
        sa
    }

    /// SYN (ISN [`C_ISN`], MSS 1460) and completing ACK from `from`: the new connection's
    /// handle and our ISN.
    #[track_caller]
    pub fn handshake(&mut self, from: SocketAddr) -> (ConnectionHandle, u32) {
        let isn = self.syn(from, Seg::syn(C_ISN)).seq();
        let h = self.deliver(from, Seg::ack(C_ISN + 1, isn.wrapping_add(1)));
        let h = h.expect("the completing ACK creates a connection");
        self.expect_none();
        (h, isn)
    }
}

/// Where an endpoint packet goes.
pub fn dst(o: &Out) -> SocketAddr {
    let seg = wire::parse(&o.packet).unwrap();
    SocketAddr::new(seg.dst, seg.tcp.dst_port)
}

/// Where an endpoint packet comes from.
pub fn src(o: &Out) -> SocketAddr {
    let seg = wire::parse(&o.packet).unwrap();
    SocketAddr::new(seg.src, seg.tcp.src_port)
}
