//! Two real endpoints back to back with no delay: a client that dials any address, and an
//! intercepting server. Packets the server sends to other addresses (spoofed sources) are
//! counted and dropped; those to the client are delivered and, when `record` is set, kept.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tcpcore::{
    Connection, ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, Instant,
    InterceptOptions,
};

/// The client's addresses (the server's replies to anything else are lost).
pub const CLIENT_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1));
pub const CLIENT_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, 0, 1));

/// A client endpoint and an intercepting server endpoint, in virtual time.
pub struct Net {
    pub now: Instant,
    pub server: Endpoint,
    pub client: Endpoint,
    pub sconns: BTreeMap<ConnectionHandle, Connection>,
    pub cconns: BTreeMap<ConnectionHandle, Connection>,
    /// Server packets to addresses other than the client's.
    pub lost: u64,
    /// Keep the server's packets to the client in `to_client`.
    pub record: bool,
    pub to_client: Vec<Vec<u8>>,
    /// Connections the server handed out, in order.
    pub accepted: Vec<ConnectionHandle>,
    buf: Vec<u8>,
}

impl Net {
    /// The server's interception set to `opts` (seeds 1 and 2).
    pub fn new(opts: InterceptOptions) -> Net {
        let mut server = Endpoint::new(EndpointConfig { seed: 1, ..EndpointConfig::default() });
        server.set_interception(opts);
        Net {
            now: Instant::ZERO,
            server,
            client: Endpoint::new(EndpointConfig { seed: 2, ..EndpointConfig::default() }),
            sconns: BTreeMap::new(),
            cconns: BTreeMap::new(),
            lost: 0,
            record: true,
            to_client: Vec::new(),
            accepted: Vec::new(),
            buf: vec![0; 65_600],
        }
    }

    /// The client dials `to` (its SYN leaves at the next [`Net::run`]).
    pub fn connect(&mut self, to: SocketAddr) -> ConnectionHandle {
        let ip = if to.is_ipv4() { CLIENT_V4 } else { CLIENT_V6 };
        let (h, c) = self.client.connect(self.now, ip, to).unwrap();
        self.cconns.insert(h, c);
        h
    }

    pub fn conn(&self, h: ConnectionHandle) -> &Connection {
        &self.cconns[&h]
    }

    pub fn sconn(&mut self, h: ConnectionHandle) -> &mut Connection {
        self.sconns.get_mut(&h).expect("a server connection")
    }

    /// A packet arrives at the server now (from anyone).
    pub fn inject(&mut self, packet: &[u8]) {
        match self.server.handle(self.now, packet) {
            Some(DatagramEvent::Connection(h, seg)) => {
                if let Some(c) = self.sconns.get_mut(&h) {
                    c.handle_segment(self.now, &seg);
                }
            }
            Some(DatagramEvent::NewConnection(h, c)) => {
                assert!(self.sconns.insert(h, *c).is_none(), "handle {h:?} reused");
                self.accepted.push(h);
            }
            Some(
                DatagramEvent::PathMtu(..)
                | DatagramEvent::IcmpError(..)
                | DatagramEvent::Udp(..)
                | DatagramEvent::UdpError(..)
                | DatagramEvent::Reassembled(..),
            )
            | None => {}
        }
    }

    fn deliver_to_client(&mut self, packet: &[u8]) {
        if self.record {
            self.to_client.push(packet.to_vec());
        }
        match self.client.handle(self.now, packet) {
            Some(DatagramEvent::Connection(h, seg)) => {
                if let Some(c) = self.cconns.get_mut(&h) {
                    c.handle_segment(self.now, &seg);
                }
            }
            Some(DatagramEvent::IcmpError(h, e)) => {
                if let Some(c) = self.cconns.get_mut(&h) {
                    c.handle_icmp_error(self.now, e);
                }
            }
            _ => {}
        }
    }

    /// The server's packets now: the client's are delivered, the others lost. Returns how
    /// many were sent.
    fn server_output(&mut self) -> usize {
        let mut pkts = Vec::new();
        while let Some(t) = self.server.poll_transmit(self.now, &mut self.buf) {
            pkts.push(self.buf[..t.len].to_vec());
        }
        for c in self.sconns.values_mut() {
            while let Some(t) = c.poll_transmit(self.now, &mut self.buf) {
                pkts.push(self.buf[..t.len].to_vec());
            }
        }
        let n = pkts.len();
        for p in pkts {
            if dst_ip(&p) == Some(CLIENT_V4) || dst_ip(&p) == Some(CLIENT_V6) {
                self.deliver_to_client(&p);
            } else {
                self.lost += 1;
            }
        }
        n
    }

    fn client_output(&mut self) -> usize {
        let mut pkts = Vec::new();
        while let Some(t) = self.client.poll_transmit(self.now, &mut self.buf) {
            pkts.push(self.buf[..t.len].to_vec());
        }
        for c in self.cconns.values_mut() {
            while let Some(t) = c.poll_transmit(self.now, &mut self.buf) {
                pkts.push(self.buf[..t.len].to_vec());
            }
        }
        let n = pkts.len();
        for p in pkts {
            self.inject(&p);
        }
        n
    }

    /// Exchange packets at `now` until both sides are quiet.
    pub fn run(&mut self) {
        for _ in 0..1000 {
            if self.client_output() + self.server_output() == 0 {
                return;
            }
        }
        panic!("no quiescence at {}", self.now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let conns = self.cconns.values().chain(self.sconns.values());
        conns
            .filter_map(Connection::poll_timeout)
            .chain(self.server.poll_timeout())
            .chain(self.client.poll_timeout())
            .min()
    }

    /// Move virtual time forward by `d`, running every timer at its deadline.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        self.run();
        while let Some(t) = self.next_deadline().filter(|&t| t <= end) {
            self.now = self.now.max(t);
            let now = self.now;
            for c in self.cconns.values_mut().chain(self.sconns.values_mut()) {
                if c.poll_timeout().is_some_and(|t| t <= now) {
                    c.handle_timeout(now);
                }
            }
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
            }
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
            self.run();
        }
        self.now = end;
        self.run();
    }

    /// Take the packets recorded for the client.
    pub fn take_to_client(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.to_client)
    }
}

/// The destination address of an IP packet.
pub fn dst_ip(p: &[u8]) -> Option<IpAddr> {
    match p.first()? >> 4 {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(p.get(16..20)?).ok()?)),
        6 => Some(IpAddr::from(<[u8; 16]>::try_from(p.get(24..40)?).ok()?)),
        _ => None,
    }
}
