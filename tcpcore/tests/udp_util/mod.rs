//! A host with UDP sockets around one endpoint, for the UDP and fragment scenarios.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tcpcore::{DatagramEvent, Endpoint, EndpointConfig, Instant, UdpHandle, UdpSocket};

/// One endpoint and the UDP sockets bound on it.
pub struct Node {
    pub ep: Endpoint,
    pub socks: BTreeMap<UdpHandle, UdpSocket>,
}

impl Node {
    pub fn new(seed: u64) -> Self {
        Self::with(EndpointConfig { seed, ..Default::default() })
    }

    pub fn with(cfg: EndpointConfig) -> Self {
        Node { ep: Endpoint::new(cfg), socks: BTreeMap::new() }
    }

    /// Bind a socket; returns its handle.
    #[track_caller]
    pub fn bind(&mut self, addr: &str) -> UdpHandle {
        let s = self.ep.udp_bind(addr.parse().unwrap()).expect("bind");
        let h = s.handle();
        self.socks.insert(h, s);
        h
    }

    pub fn sock(&mut self, h: UdpHandle) -> &mut UdpSocket {
        self.socks.get_mut(&h).expect("socket")
    }

    /// Route one packet as an application would: datagrams and ICMP errors to their
    /// sockets, reassembled packets through `handle` again.
    pub fn recv(&mut self, now: Instant, pkt: &[u8]) {
        match self.ep.handle(now, pkt) {
            Some(DatagramEvent::Udp(h, d)) => {
                if let Some(s) = self.socks.get_mut(&h) {
                    s.handle_datagram(&d);
                }
            }
            Some(DatagramEvent::UdpError(h, e)) => {
                if let Some(s) = self.socks.get_mut(&h) {
                    s.handle_icmp_error(e);
                }
            }
            Some(DatagramEvent::Reassembled(r)) => {
                self.recv(now, r.packet());
                self.ep.recycle(r);
            }
            _ => {}
        }
    }

    /// Everything the endpoint and the sockets want to send now.
    pub fn output(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Some(t) = self.ep.poll_transmit(now, &mut buf) {
            out.push(buf[..t.len].to_vec());
        }
        for s in self.socks.values_mut() {
            while let Some(t) = s.poll_transmit(now, &mut buf) {
                out.push(buf[..t.len].to_vec());
            }
        }
        out
    }

    /// Read every queued datagram of `h`: `(data, source)`.
    pub fn drain(&mut self, h: UdpHandle) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut v = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Ok(r) = self.sock(h).recv_from(&mut buf) {
            v.push((buf[..r.len].to_vec(), r.src));
        }
        v
    }
}

/// Move everything `from` sends to `to`, once.
pub fn pump(now: Instant, from: &mut Node, to: &mut Node) -> usize {
    let pkts = from.output(now);
    for p in &pkts {
        to.recv(now, p);
    }
    pkts.len()
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A patterned payload of `n` bytes (`seed` varies it).
pub fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// A UDP datagram in one IP packet, built with the wire layer.
pub fn udp_packet(src: &str, dst: &str, data: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = tcpcore::wire::udp::emit(&mut buf, addr(src), addr(dst), 7, data).unwrap();
    buf.truncate(n);
    buf
}

/// Recompute the IPv4 header checksum after an edit.
pub fn fix_v4_header(p: &mut [u8]) {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    p[10..12].fill(0);
    let c = tcpcore::wire::checksum::checksum(&p[..ihl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

/// ICMP `(type, code)` of an ICMPv4 or ICMPv6 packet, `None` for anything else.
pub fn icmp_type(p: &[u8]) -> Option<(u8, u8)> {
    match p[0] >> 4 {
        4 if p[9] == 1 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            Some((p[ihl], p[ihl + 1]))
        }
        6 if p[6] == 58 => Some((p[40], p[41])),
        _ => None,
    }
}
