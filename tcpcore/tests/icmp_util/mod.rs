//! Helpers for `tests/icmp.rs`: hand-built reference packets (checksums by the naive RFC 1071
//! loop, independent of `wire::checksum`), ICMP error construction as a router would do it,
//! and two endpoints joined through a router with a small MTU.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tcpcore::wire::icmp::{self, IcmpRepr, QuotedTcp};
use tcpcore::{Connection, ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, Instant};

/// RFC 1071 §4.1, 16 bits at a time.
pub fn naive_checksum(parts: &[&[u8]]) -> u16 {
    let data: Vec<u8> = parts.concat();
    let mut s: u32 = 0;
    for w in data.chunks(2) {
        let word = u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0));
        s += word;
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// A whole ICMP/ICMPv6 packet built by hand: IPv4 (DF, TTL 64, protocol 1) or IPv6 (hop
/// limit 64, next header 58), `ty`, code `code`, the 4-byte rest of header and `body`.
pub fn hand_icmp(
    src: IpAddr,
    dst: IpAddr,
    ty: u8,
    code: u8,
    rest: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    let mut msg = vec![ty, code, 0, 0];
    msg.extend_from_slice(&rest);
    msg.extend_from_slice(body);
    let mut p;
    if src.is_ipv4() {
        let total = (20 + msg.len()) as u16;
        p = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 1, 0, 0];
        p.extend(octets(src));
        p.extend(octets(dst));
        let c = naive_checksum(&[&p]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        let c = naive_checksum(&[&msg]);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
    } else {
        let plen = msg.len() as u16;
        p = vec![0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, 58, 64];
        p.extend(octets(src));
        p.extend(octets(dst));
        let mut pseudo = octets(src);
        pseudo.extend(octets(dst));
        pseudo.extend_from_slice(&u32::from(plen).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        let c = naive_checksum(&[&pseudo, &msg]);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p.extend(msg);
    p
}

/// A hand-built echo request or reply.
pub fn hand_echo(
    src: IpAddr,
    dst: IpAddr,
    request: bool,
    ident: u16,
    seq: u16,
    data: &[u8],
) -> Vec<u8> {
    let ty = match (src.is_ipv4(), request) {
        (true, true) => 8,
        (true, false) => 0,
        (false, true) => 128,
        (false, false) => 129,
    };
    let [a, b] = ident.to_be_bytes();
    let [c, d] = seq.to_be_bytes();
    hand_icmp(src, dst, ty, 0, [a, b, c, d], data)
}

/// What a router at `router` sends back for `pkt`, too large for its next hop of `mtu`:
/// ICMPv4 type 3 code 4 quoting the IP header and 8 bytes (RFC 792), or ICMPv6 packet too
/// big quoting as much as fits in 1280 bytes (RFC 4443 §3.2).
pub fn too_big(router: IpAddr, pkt: &[u8], mtu: u32) -> Vec<u8> {
    let src = if pkt[0] >> 4 == 4 {
        IpAddr::from(<[u8; 4]>::try_from(&pkt[12..16]).unwrap())
    } else {
        IpAddr::from(<[u8; 16]>::try_from(&pkt[8..24]).unwrap())
    };
    let (quote_len, rest) = if src.is_ipv4() {
        (usize::from(pkt[0] & 0xf) * 4 + 8, [0, 0, (mtu >> 8) as u8, mtu as u8])
    } else {
        (pkt.len().min(1280 - 48), mtu.to_be_bytes())
    };
    let (ty, code) = if src.is_ipv4() { (3, 4) } else { (2, 0) };
    hand_icmp(router, src, ty, code, rest, &pkt[..quote_len])
}

/// The same message built by `icmp::emit`.
pub fn emitted(src: IpAddr, dst: IpAddr, repr: &IcmpRepr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = icmp::emit(&mut buf, src, dst, repr).unwrap();
    buf.truncate(n);
    buf
}

/// The quote of `pkt` as a router would cut it.
pub fn quote_of(pkt: &[u8], len: usize) -> QuotedTcp<'_> {
    QuotedTcp::new_checked(&pkt[..len]).unwrap()
}

/// An endpoint and the connections it handed out.
pub struct Host {
    pub ep: Endpoint,
    pub conns: BTreeMap<ConnectionHandle, Connection>,
    /// Path MTU events seen.
    pub pmtu_events: usize,
}

impl Host {
    pub fn new(seed: u64) -> Self {
        Host {
            ep: Endpoint::new(EndpointConfig { seed, ..Default::default() }),
            conns: BTreeMap::new(),
            pmtu_events: 0,
        }
    }

    pub fn recv(&mut self, now: Instant, pkt: &[u8]) {
        match self.ep.handle(now, pkt) {
            Some(DatagramEvent::Connection(h, seg)) => {
                if let Some(c) = self.conns.get_mut(&h) {
                    c.handle_segment(now, &seg)
                }
            }
            Some(DatagramEvent::NewConnection(h, c)) => {
                self.conns.insert(h, *c);
            }
            Some(DatagramEvent::PathMtu(h, p)) => {
                self.pmtu_events += 1;
                if let Some(c) = self.conns.get_mut(&h) {
                    c.handle_path_mtu(now, p.mtu, p.seq)
                }
            }
            Some(DatagramEvent::IcmpError(h, e)) => {
                if let Some(c) = self.conns.get_mut(&h) {
                    c.handle_icmp_error(now, e)
                }
            }
            Some(DatagramEvent::Reassembled(r)) => {
                self.recv(now, r.packet());
                self.ep.recycle(r);
            }
            Some(DatagramEvent::Udp(..) | DatagramEvent::UdpError(..)) | None => {}
        }
    }

    pub fn drive(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some(t) = self.ep.poll_transmit(now, &mut buf) {
            out.push(buf[..t.len].to_vec());
        }
        for c in self.conns.values_mut() {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now)
            }
            while let Some(t) = c.poll_transmit(now, &mut buf) {
                out.push(buf[..t.len].to_vec());
            }
        }
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now)
        }
        out
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.values().filter_map(Connection::poll_timeout).chain(self.ep.poll_timeout()).min()
    }
}

/// A client and a server joined by a router at `router` whose next hop towards the server
/// carries at most `mtu` bytes: larger client packets are dropped and answered with ICMP.
pub struct Path {
    pub now: Instant,
    pub client: Host,
    pub server: Host,
    pub router: IpAddr,
    pub mtu: usize,
    /// Client packets that reached the server, with their send time.
    pub delivered: Vec<(Instant, Vec<u8>)>,
    /// Client packets the router dropped.
    pub dropped: Vec<Vec<u8>>,
}

impl Path {
    pub fn new(router: IpAddr, mtu: usize) -> Path {
        Path {
            now: Instant::ZERO,
            client: Host::new(1),
            server: Host::new(2),
            router,
            mtu,
            delivered: vec![],
            dropped: vec![],
        }
    }

    /// One round: both sides send, everything arrives 1 ms later (or time jumps to the next
    /// deadline when nothing was sent).
    pub fn step(&mut self) {
        let (to_server, to_client) = (self.client.drive(self.now), self.server.drive(self.now));
        if to_server.is_empty() && to_client.is_empty() {
            let next = [self.client.next_deadline(), self.server.next_deadline()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(self.now + Duration::from_millis(1));
            self.now = next.max(self.now + Duration::from_millis(1));
            return;
        }
        let sent_at = self.now;
        self.now += Duration::from_millis(1);
        for p in to_server {
            if p.len() > self.mtu {
                let icmp = too_big(self.router, &p, self.mtu as u32);
                self.client.recv(self.now, &icmp);
                self.dropped.push(p);
            } else {
                self.server.recv(self.now, &p);
                self.delivered.push((sent_at, p));
            }
        }
        for p in to_client {
            self.client.recv(self.now, &p);
        }
    }

    /// Run until `cond` or `limit` of virtual time.
    #[track_caller]
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&mut Path) -> bool) {
        let end = self.now + limit;
        while !cond(self) {
            assert!(self.now < end, "condition not reached by {}", self.now);
            self.step();
        }
    }
}

/// `addr` as a socket address on port 80.
pub fn at80(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 80)
}
