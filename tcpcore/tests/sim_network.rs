//! The network as a whole: routing, the step loop, livelock detection, determinism and pcap.

mod sim_util;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use sim_util::{pair, run_out, v4, v6, Pinger};
use tcpcore::sim::{LinkConfig, Loss, Network, Node, SimError, LINKTYPE_RAW, PCAP_MAGIC};
use tcpcore::Instant;

const MS: Duration = Duration::from_millis(1);

/// A node whose timer fires forever without time moving on.
struct Spinner {
    deadline: Instant,
    fired: u64,
    advance: Duration,
}

impl Node for Spinner {
    fn handle(&mut self, _now: Instant, _packet: &[u8]) {}
    fn poll_transmit(&mut self, _now: Instant, _buf: &mut [u8]) -> Option<usize> {
        None
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        Some(self.deadline)
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.fired += 1;
        self.deadline = now + self.advance;
    }
}

#[test]
fn drive_bounded_reports_a_timer_livelock() {
    let mut net = Network::new(1);
    let s = net.add_node(
        Spinner { deadline: Instant::from_millis(3), fired: 0, advance: Duration::ZERO },
        &[],
    );
    assert_eq!(net.drive_bounded(1000, |_| false), Err(SimError::Livelock { steps: 1000 }));
    assert_eq!(net.node(s).fired, 1000);
    assert_eq!(net.now(), Instant::from_millis(3));
    assert_eq!(net.stats().timers_fired, 1000);
}

#[test]
fn drive_bounded_stops_when_the_goal_holds() {
    let mut net = Network::new(1);
    let s = net.add_node(Spinner { deadline: Instant::ZERO, fired: 0, advance: MS }, &[]);
    assert_eq!(net.drive_bounded(1000, |net| net.node(s).fired == 10), Ok(10));
    assert_eq!(net.now(), Instant::from_millis(9));
}

#[test]
fn drive_bounded_reports_idle() {
    let (mut net, _, b) = pair(1, LinkConfig::default(), Pinger::new(v4(1), 3, 64, MS));
    assert_eq!(net.drive_bounded(1000, |net| net.node(b).received.len() == 4), Err(SimError::Idle));
    assert_eq!(net.node(b).received.len(), 3);
    assert!(!net.step());
}

#[test]
fn drive_stops_at_the_goal() {
    let (mut net, _, b) = pair(1, LinkConfig::default(), Pinger::new(v4(1), 50, 64, MS));
    net.drive(|net| net.node(b).received.len() == 5);
    assert_eq!(net.now(), Instant::from_millis(5));
}

#[test]
fn run_until_processes_due_events_and_sets_the_clock() {
    let (mut net, _, b) = pair(1, LinkConfig::default(), Pinger::new(v4(1), 50, 64, MS));
    net.run_until(Instant::from_micros(10_500));
    assert_eq!(net.now(), Instant::from_micros(10_500));
    assert_eq!(net.node(b).received.len(), 10);
    net.run_until(Instant::from_millis(1));
    assert_eq!(net.now(), Instant::from_micros(10_500), "time went backwards");
    net.run_until(Instant::from_millis(11));
    assert_eq!(net.node(b).received.len(), 11);
}

#[test]
fn ipv6_packets_are_routed() {
    let (mut net, a, b) = pair(1, LinkConfig::default(), Pinger::new(v6(1), 5, 80, MS));
    run_out(&mut net);
    assert_eq!(net.node(b).seqs(), vec![0, 1, 2, 3, 4]);
    assert_eq!(net.link_stats(a, b).delivered, 5);
}

#[test]
fn unroutable_and_malformed_packets_are_counted() {
    let mut net = Network::new(1);
    let a = net.add_node(Pinger::new(v4(9), 3, 64, MS), &[v4(0)]);
    let b = net.add_node(Pinger::new(v4(2), 4, 64, MS), &[v4(1)]);
    let c = net.add_node(Pinger::sink(v4(0)), &[v4(2)]);
    net.link(a, b, LinkConfig::default());
    run_out(&mut net);
    // a sends to an unknown address; b sends to c with no link between them.
    assert_eq!(net.stats().dropped_no_route, 7);
    assert_eq!(net.link_stats(b, c).dropped_no_route, 4);
    assert_eq!(net.link_stats(a, b).dropped_no_route, 0);
    assert!(net.node(c).received.is_empty());
}

/// Emits packets with a bad version nibble, then a truncated IPv4 header.
struct Junk(u8);

impl Node for Junk {
    fn handle(&mut self, _now: Instant, _packet: &[u8]) {}
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.0 += 1;
        match self.0 {
            1 => {
                buf[0] = 0x55;
                Some(60)
            }
            2 => {
                buf[0] = 0x45;
                Some(19)
            }
            3 => Some(0),
            _ => None,
        }
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
}

#[test]
fn malformed_packets_are_dropped_and_counted() {
    let mut net = Network::new(1);
    net.add_node(Junk(0), &[v4(0)]);
    assert!(!net.step());
    assert_eq!(net.stats().dropped_malformed, 3);
}

#[test]
#[should_panic(expected = "already belongs")]
fn duplicate_addresses_are_refused() {
    let mut net = Network::new(1);
    net.add_node(Pinger::sink(v4(0)), &[v4(0)]);
    net.add_node(Pinger::sink(v4(0)), &[v4(0)]);
}

/// Two pingers talking both ways over a link with every fault enabled.
fn faulty_run(seed: u64) -> (u64, usize) {
    let cfg = LinkConfig {
        delay: 2 * MS,
        jitter: MS,
        rate_bps: 50_000_000,
        queue_bytes: 30_000,
        mtu: 1400,
        loss: Loss::GilbertElliott {
            p_good_to_bad: 0.02,
            p_bad_to_good: 0.3,
            loss_in_good: 0.01,
            loss_in_bad: 0.7,
        },
        reorder: 0.05,
        reorder_delay: 3 * MS,
        duplicate: 0.02,
        corrupt: 0.02,
        ..LinkConfig::default()
    };
    let mut net = Network::new(seed);
    let mut p = Pinger::new(v4(1), 2000, 0, Duration::from_micros(50));
    p.sizes = vec![100, 1300, 1500, 600];
    let a = net.add_node(p, &[v4(0)]);
    let b = net.add_node(Pinger::new(v4(0), 1000, 200, Duration::from_micros(130)), &[v4(1)]);
    net.link(a, b, cfg);
    run_out(&mut net);
    (net.trace_hash(), net.node(a).received.len() + net.node(b).received.len())
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let (h1, n1) = faulty_run(42);
    let (h2, n2) = faulty_run(42);
    let (h3, _) = faulty_run(43);
    assert_eq!((h1, n1), (h2, n2));
    assert_ne!(h1, h3);
    assert!(n1 > 1000);
}

#[test]
fn trace_hash_covers_timing() {
    let run = |delay| {
        let cfg = LinkConfig { delay, ..LinkConfig::default() };
        let (mut net, _, _) = pair(1, cfg, Pinger::new(v4(1), 5, 64, MS));
        run_out(&mut net);
        net.trace_hash()
    };
    assert_ne!(run(MS), run(2 * MS));
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn pcap_bytes_parse_back() {
    let mut p = Pinger::new(v4(1), 6, 0, Duration::from_micros(1_500_250));
    p.sizes = vec![64, 1500, 300];
    let (mut net, a, b) = pair(1, LinkConfig::default(), p);
    net.capture(a, b);
    run_out(&mut net);
    let pcap = net.take_pcap(a, b).expect("capture running");
    assert!(net.take_pcap(a, b).is_none());

    assert_eq!(u32_at(&pcap, 0), PCAP_MAGIC);
    assert_eq!(&pcap[4..8], &[2, 0, 4, 0], "version 2.4");
    assert_eq!(u32_at(&pcap, 16), 65_535, "snaplen");
    assert_eq!(u32_at(&pcap, 20), LINKTYPE_RAW);

    let mut at = 24;
    let mut records = Vec::new();
    while at < pcap.len() {
        let (secs, usecs) = (u32_at(&pcap, at), u32_at(&pcap, at + 4));
        let (incl, orig) = (u32_at(&pcap, at + 8) as usize, u32_at(&pcap, at + 12) as usize);
        assert_eq!(incl, orig);
        let micros = u64::from(secs) * 1_000_000 + u64::from(usecs);
        records.push((micros, pcap[at + 16..at + 16 + incl].to_vec()));
        at += 16 + incl;
    }
    assert_eq!(at, pcap.len());
    assert_eq!(records.len(), 6);
    let sizes: Vec<_> = records.iter().map(|r| r.1.len()).collect();
    assert_eq!(sizes, vec![64, 1500, 300, 64, 1500, 300]);
    for (seq, (micros, bytes)) in records.iter().enumerate() {
        assert_eq!(*micros, seq as u64 * 1_500_250 + 1000);
        assert_eq!(bytes[0], 0x45);
        assert_eq!(&bytes[16..20], &[10, 0, 0, 2]);
    }
    assert_eq!(net.node(b).received.len(), 6);
}

#[test]
fn pcap_can_be_written_to_a_file() {
    let (mut net, a, b) = pair(1, LinkConfig::default(), Pinger::new(v4(1), 3, 64, MS));
    assert!(net.write_pcap(a, b, "/nonexistent").is_err());
    net.capture(a, b);
    run_out(&mut net);
    let path = std::env::temp_dir().join(format!("tcpcore-sim-{}.pcap", std::process::id()));
    net.write_pcap(a, b, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(bytes.len(), 24 + 3 * (16 + 64));
    assert_eq!(Some(&bytes[..]), net.pcap(a, b));
}

#[test]
fn ties_are_delivered_in_send_order() {
    // Everything sent at once, zero delay: arrivals share one instant and keep their order.
    let cfg = LinkConfig { delay: Duration::ZERO, ..LinkConfig::default() };
    let (mut net, _, b) = pair(1, cfg, Pinger::new(v4(1), 100, 64, Duration::ZERO));
    run_out(&mut net);
    assert_eq!(net.node(b).seqs(), (0..100).collect::<Vec<_>>());
    assert!(net.node(b).received.iter().all(|r| r.1 == Instant::ZERO));
}

#[test]
fn a_star_of_nodes_routes_by_address() {
    let mut net = Network::new(5);
    let hub = net.add_node(Pinger::sink(v4(0)), &[v4(0)]);
    let mut spokes = Vec::new();
    for i in 1..=5u8 {
        let s = net.add_node(Pinger::new(v4(0), u64::from(i), 64, MS), &[v4(i)]);
        net.link(s, hub, LinkConfig::default());
        spokes.push(s);
    }
    run_out(&mut net);
    assert_eq!(net.node(hub).received.len(), 15);
    for (i, &s) in spokes.iter().enumerate() {
        assert_eq!(net.link_stats(s, hub).delivered, i as u64 + 1);
    }
    assert_eq!(net.node_count(), 6);
}

/// AI-01 in the simulator: packets to addresses nobody owns follow the default route to
/// its node (an any-IP interceptor), owned addresses still go to their owner, and the
/// gateway's own packets to unowned addresses are dropped as no route, not looped back.
#[test]
fn ai_01_a_default_route_takes_addresses_nobody_owns() {
    let mut net = Network::new(3);
    let far = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    let a = net.add_node(Pinger::new(far, 3, 64, MS), &[v4(0)]);
    let gw = net.add_node(Pinger::new(far, 2, 64, MS), &[v4(1)]);
    let b = net.add_node(Pinger::new(v4(1), 1, 64, MS), &[v4(2)]);
    net.link(a, gw, LinkConfig::default());
    net.link(b, gw, LinkConfig::default());
    net.set_default_route(Some(gw));
    run_out(&mut net);
    assert_eq!(net.node(gw).seqs(), vec![0, 0, 1, 2], "b's packet, then a's three");
    assert_eq!(net.link_stats(a, gw).delivered, 3);
    assert_eq!(net.stats().dropped_no_route, 2, "the gateway's own, not looped back");
    assert!(net.node(a).received.is_empty() && net.node(b).received.is_empty());

    net.set_default_route(None);
    net.node_mut(a).count = 4;
    run_out(&mut net);
    assert_eq!(net.stats().dropped_no_route, 3, "no default route: dropped again");
}
