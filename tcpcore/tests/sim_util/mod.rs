//! Shared test nodes for the simulator tests: a pinger that sends numbered fake IP packets and
//! records what it receives. No TCP involved.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tcpcore::sim::{LinkConfig, Network, Node, NodeId};
use tcpcore::Instant;

/// The address of node `i` in the helpers below (10.0.0.i+1).
pub fn v4(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i + 1))
}

/// The IPv6 address of node `i` (2001:db8::i+1).
pub fn v6(i: u8) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i) + 1))
}

/// A fake IP packet: a header with only version, length and destination filled in, then the
/// sequence number and a filler derived from both, so any flipped bit is detectable.
pub fn build(dst: IpAddr, seq: u64, size: usize, buf: &mut [u8]) -> usize {
    let hdr = header_len(dst);
    assert!(size >= hdr + 16, "packet too small");
    buf[..hdr].fill(0);
    match dst {
        IpAddr::V4(a) => {
            buf[0] = 0x45;
            buf[2..4].copy_from_slice(&(size as u16).to_be_bytes());
            buf[16..20].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            buf[0] = 0x60;
            buf[4..6].copy_from_slice(&((size - 40) as u16).to_be_bytes());
            buf[24..40].copy_from_slice(&a.octets());
        }
    }
    buf[hdr..hdr + 8].copy_from_slice(&seq.to_be_bytes());
    // The filler depends on the destination too, so a flipped address bit is detectable.
    let fold = buf[hdr - 16..hdr].iter().fold(seq, |h, &b| h.rotate_left(8) ^ u64::from(b));
    let mut x = fold.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in &mut buf[hdr + 8..size] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    size
}

fn header_len(dst: IpAddr) -> usize {
    if dst.is_ipv4() {
        20
    } else {
        40
    }
}

/// Sends `count` numbered packets of `size` bytes to `dst`, one every `interval` (all at once
/// if zero), and records every packet it receives.
#[derive(Debug)]
pub struct Pinger {
    pub dst: IpAddr,
    pub count: u64,
    pub size: usize,
    /// Sizes to cycle through instead of `size`, if not empty.
    pub sizes: Vec<usize>,
    pub interval: Duration,
    pub sent: u64,
    pub next_send: Instant,
    /// (sequence number, arrival time) of every intact packet received, in arrival order.
    pub received: Vec<(u64, Instant)>,
    /// Packets received whose bytes did not match what was sent.
    pub corrupted: u64,
    /// Byte lengths of everything received, in order.
    pub lengths: Vec<usize>,
    /// Scratch space for rebuilding a received packet (reused: the pinger does not allocate
    /// per packet, so allocation tests measure only the simulator).
    check: Vec<u8>,
}

impl Pinger {
    pub fn new(dst: IpAddr, count: u64, size: usize, interval: Duration) -> Self {
        Pinger {
            dst,
            count,
            size,
            sizes: Vec::new(),
            interval,
            sent: 0,
            next_send: Instant::ZERO,
            received: Vec::new(),
            corrupted: 0,
            lengths: Vec::new(),
            check: vec![0; 65_536],
        }
    }

    /// A node that only listens.
    pub fn sink(dst: IpAddr) -> Self {
        Pinger::new(dst, 0, 64, Duration::ZERO)
    }

    fn size_of(&self, seq: u64) -> usize {
        if self.sizes.is_empty() {
            self.size
        } else {
            self.sizes[seq as usize % self.sizes.len()]
        }
    }

    /// Sequence numbers received, in arrival order.
    pub fn seqs(&self) -> Vec<u64> {
        self.received.iter().map(|r| r.0).collect()
    }

    /// How many arrivals had a lower sequence number than one received before.
    pub fn out_of_order(&self) -> usize {
        let mut max = None;
        let mut n = 0;
        for &(s, _) in &self.received {
            if max.is_some_and(|m| s < m) {
                n += 1;
            }
            max = max.max(Some(s));
        }
        n
    }

    fn intact(check: &mut [u8], packet: &[u8]) -> Option<u64> {
        let hdr = match packet.first()? >> 4 {
            4 => 20,
            6 => 40,
            _ => return None,
        };
        let seq = u64::from_be_bytes(packet.get(hdr..hdr + 8)?.try_into().ok()?);
        let dst = if hdr == 20 {
            IpAddr::V4(<[u8; 4]>::try_from(&packet[16..20]).ok()?.into())
        } else {
            IpAddr::V6(<[u8; 16]>::try_from(&packet[24..40]).ok()?.into())
        };
        let expect = &mut check[..packet.len()];
        build(dst, seq, packet.len(), expect);
        (expect == packet).then_some(seq)
    }
}

impl Node for Pinger {
    fn handle(&mut self, now: Instant, packet: &[u8]) {
        self.lengths.push(packet.len());
        match Pinger::intact(&mut self.check, packet) {
            Some(seq) => self.received.push((seq, now)),
            None => self.corrupted += 1,
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.sent >= self.count || now < self.next_send {
            return None;
        }
        let len = build(self.dst, self.sent, self.size_of(self.sent), buf);
        self.sent += 1;
        self.next_send += self.interval;
        Some(len)
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        (self.sent < self.count).then_some(self.next_send)
    }

    fn handle_timeout(&mut self, _now: Instant) {}
}

/// Two nodes: 0 sends `count` packets to 1 over a link configured as `cfg` (both ways).
pub fn pair(seed: u64, cfg: LinkConfig, sender: Pinger) -> (Network<Pinger>, NodeId, NodeId) {
    let mut net = Network::new(seed);
    let a = net.add_node(sender, &[v4(0), v6(0)]);
    let b = net.add_node(Pinger::sink(v4(0)), &[v4(1), v6(1)]);
    net.link(a, b, cfg);
    (net, a, b)
}

/// Run until nothing is left to happen, failing the test on a livelock.
#[track_caller]
pub fn run_out(net: &mut Network<Pinger>) {
    match net.drive_bounded(10_000_000, |_| false) {
        Err(tcpcore::sim::SimError::Idle) => {}
        other => panic!("expected the network to go idle, got {other:?}"),
    }
}

/// Assert `x` lies within `k` standard deviations of a binomial(n, p) mean.
#[track_caller]
pub fn assert_binomial(x: u64, n: u64, p: f64, k: f64) {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    let lo = mean - k * sd;
    let hi = mean + k * sd;
    assert!((lo..=hi).contains(&(x as f64)), "{x} outside {lo:.0}..={hi:.0} (n={n}, p={p})");
}
