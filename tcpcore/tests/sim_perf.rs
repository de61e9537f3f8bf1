//! Simulator overhead: how many packets per second of wall time it forwards. Ignored by
//! default; run with `cargo test --release --features sim --test sim_perf -- --ignored`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tcpcore::sim::{LinkConfig, Loss, Network, Node};
use tcpcore::Instant;

/// Sends `left` 1500-byte packets to `dst`, one every `gap`, stamping only the header; counts
/// what arrives. Deliberately cheap, so the measurement is the simulator's own cost.
struct Blaster {
    dst: [u8; 4],
    left: u64,
    gap: Duration,
    next: Instant,
    got: u64,
}

impl Node for Blaster {
    fn handle(&mut self, _now: Instant, _packet: &[u8]) {
        self.got += 1;
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.left == 0 || now < self.next {
            return None;
        }
        self.left -= 1;
        self.next += self.gap;
        buf[0] = 0x45;
        buf[16..20].copy_from_slice(&self.dst);
        buf[20..28].copy_from_slice(&self.left.to_be_bytes());
        Some(1500)
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        (self.left > 0).then_some(self.next)
    }
    fn handle_timeout(&mut self, _now: Instant) {}
}

#[test]
#[ignore = "a measurement, meaningful only in release mode"]
fn forwarding_rate() {
    let n = 2_000_000;
    let cfg = LinkConfig {
        jitter: Duration::from_micros(200),
        loss: Loss::Uniform(0.01),
        rate_bps: 10_000_000_000,
        queue_bytes: 1 << 20,
        ..LinkConfig::default()
    };
    let mut net = Network::new(1);
    let addr = |i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
    let blaster = |dst, left| Blaster {
        dst,
        left,
        gap: Duration::from_micros(2),
        next: Instant::ZERO,
        got: 0,
    };
    let a = net.add_node(blaster([10, 0, 0, 2], n), &[addr(1)]);
    let b = net.add_node(blaster([10, 0, 0, 1], n / 2), &[addr(2)]);
    net.link(a, b, cfg);
    let start = std::time::Instant::now();
    net.drive(|_| false);
    let secs = start.elapsed().as_secs_f64();
    let got = net.node(a).got + net.node(b).got;
    let steps = net.stats().steps;
    eprintln!("{got} packets, {steps} steps in {secs:.2} s: {:.0} packets/s", got as f64 / secs);
    assert!(got > 2_900_000);
}
