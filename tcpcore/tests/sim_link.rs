//! Link fault models: each test sends numbered packets across one link and checks what the
//! receiver saw against the configuration and the link counters.

mod sim_util;

use std::time::Duration;

use sim_util::{assert_binomial, pair, run_out, v4, Pinger};
use tcpcore::sim::{LinkConfig, Loss};
use tcpcore::Instant;

const MS: Duration = Duration::from_millis(1);

#[test]
fn delay_is_exact() {
    let cfg = LinkConfig { delay: 5 * MS, ..LinkConfig::default() };
    let (mut net, a, b) = pair(1, cfg, Pinger::new(v4(1), 10, 100, MS));
    run_out(&mut net);
    let got = &net.node(b).received;
    assert_eq!(got.len(), 10);
    for &(seq, at) in got {
        assert_eq!(at, Instant::from_millis(seq + 5), "packet {seq}");
    }
    let stats = net.link_stats(a, b);
    assert_eq!((stats.sent, stats.delivered, stats.dropped()), (10, 10, 0));
    assert_eq!(stats.bytes_delivered, 1000);
}

#[test]
fn uniform_loss_rate_is_within_bounds() {
    let n = 100_000;
    let cfg = LinkConfig { loss: Loss::Uniform(0.1), ..LinkConfig::default() };
    let (mut net, a, b) = pair(2, cfg, Pinger::new(v4(1), n, 64, Duration::ZERO));
    run_out(&mut net);
    let lost = n - net.node(b).received.len() as u64;
    assert_binomial(lost, n, 0.1, 5.0);
    assert_eq!(net.link_stats(a, b).dropped_loss, lost);
}

/// Lengths of the runs of consecutive missing sequence numbers.
fn loss_bursts(n: u64, seqs: &[u64]) -> Vec<u64> {
    let mut got = vec![false; n as usize];
    for &s in seqs {
        got[s as usize] = true;
    }
    let mut bursts = Vec::new();
    let mut run = 0;
    for g in got {
        if g && run > 0 {
            bursts.push(run);
            run = 0;
        } else if !g {
            run += 1;
        }
    }
    bursts.extend((run > 0).then_some(run));
    bursts
}

#[test]
fn gilbert_elliott_loses_in_bursts() {
    let n = 100_000;
    let loss = Loss::GilbertElliott {
        p_good_to_bad: 0.01,
        p_bad_to_good: 0.25,
        loss_in_good: 0.0,
        loss_in_bad: 1.0,
    };
    let cfg = LinkConfig { loss, ..LinkConfig::default() };
    let (mut net, _, b) = pair(3, cfg, Pinger::new(v4(1), n, 64, Duration::ZERO));
    run_out(&mut net);
    let bursts = loss_bursts(n, &net.node(b).seqs());
    let mean = bursts.iter().sum::<u64>() as f64 / bursts.len() as f64;
    assert!(bursts.len() > 300, "only {} bursts", bursts.len());
    assert!((3.6..=4.4).contains(&mean), "mean burst length {mean}, expected 4");
    // Stationary loss rate: 0.01 / (0.01 + 0.25).
    let lost = n - net.node(b).received.len() as u64;
    assert!((3000..=4700).contains(&lost), "lost {lost}, expected about 3846");
}

#[test]
fn uniform_loss_bursts_are_short() {
    let n = 100_000;
    let cfg = LinkConfig { loss: Loss::Uniform(0.04), ..LinkConfig::default() };
    let (mut net, _, b) = pair(4, cfg, Pinger::new(v4(1), n, 64, Duration::ZERO));
    run_out(&mut net);
    let bursts = loss_bursts(n, &net.node(b).seqs());
    let mean = bursts.iter().sum::<u64>() as f64 / bursts.len() as f64;
    assert!(mean < 1.1, "uniform loss mean burst {mean}");
}

#[test]
fn rate_limit_serialises_packets() {
    // 1250 bytes at 10 Mbit/s take exactly 1 ms each.
    let cfg = LinkConfig { rate_bps: 10_000_000, ..LinkConfig::default() };
    let (mut net, a, b) = pair(5, cfg, Pinger::new(v4(1), 1000, 1250, Duration::ZERO));
    run_out(&mut net);
    let got = &net.node(b).received;
    assert_eq!(got.len(), 1000);
    for &(seq, at) in got {
        // Serialisation ends at (seq + 1) ms, plus 1 ms of propagation delay.
        assert_eq!(at, Instant::from_millis(seq + 2), "packet {seq}");
    }
    assert_eq!(net.link_stats(a, b).dropped_queue, 0);
}

#[test]
fn rate_limit_queue_drops_tail() {
    let cfg = LinkConfig { rate_bps: 10_000_000, queue_bytes: 12_500, ..LinkConfig::default() };
    let (mut net, a, b) = pair(6, cfg, Pinger::new(v4(1), 100, 1250, Duration::ZERO));
    run_out(&mut net);
    assert_eq!(net.node(b).seqs(), (0..10).collect::<Vec<_>>());
    let stats = net.link_stats(a, b);
    assert_eq!((stats.delivered, stats.dropped_queue), (10, 90));
}

#[test]
fn overloaded_link_delivers_its_rate() {
    // Offer 20 Mbit/s (1250 bytes every 0.5 ms) to a 10 Mbit/s link for 2 s.
    let cfg = LinkConfig { rate_bps: 10_000_000, queue_bytes: 25_000, ..LinkConfig::default() };
    let pinger = Pinger::new(v4(1), 4000, 1250, Duration::from_micros(500));
    let (mut net, a, b) = pair(7, cfg, pinger);
    run_out(&mut net);
    let got = &net.node(b).received;
    let first = got.first().unwrap().1;
    let last = got.last().unwrap().1;
    let bits = (got.len() as u64 - 1) * 1250 * 8;
    let rate = bits as f64 / (last - first).as_secs_f64();
    assert!((9.9e6..=10.1e6).contains(&rate), "throughput {rate} bit/s");
    let stats = net.link_stats(a, b);
    assert_eq!(stats.delivered + stats.dropped_queue, 4000);
    assert!((1950..=2050).contains(&stats.dropped_queue), "{stats:?}");
}

#[test]
fn packets_over_the_mtu_are_dropped() {
    let cfg = LinkConfig { mtu: 1000, ..LinkConfig::default() };
    let mut pinger = Pinger::new(v4(1), 100, 0, Duration::ZERO);
    pinger.sizes = vec![900, 1000, 1001, 1500];
    let (mut net, a, b) = pair(8, cfg, pinger);
    run_out(&mut net);
    assert!(net.node(b).lengths.iter().all(|&l| l <= 1000));
    let stats = net.link_stats(a, b);
    assert_eq!((stats.delivered, stats.dropped_mtu), (50, 50));
}

#[test]
fn duplication_rate_is_within_bounds() {
    let n = 100_000;
    let cfg = LinkConfig { duplicate: 0.05, ..LinkConfig::default() };
    let (mut net, a, b) = pair(9, cfg, Pinger::new(v4(1), n, 64, Duration::ZERO));
    run_out(&mut net);
    let stats = net.link_stats(a, b);
    assert_binomial(stats.duplicated, n, 0.05, 5.0);
    assert_eq!(net.node(b).received.len() as u64, n + stats.duplicated);
    assert_eq!(stats.delivered, n + stats.duplicated);
}

#[test]
fn corruption_flips_one_bit_at_the_configured_rate() {
    let n = 100_000;
    let cfg = LinkConfig { corrupt: 0.05, ..LinkConfig::default() };
    let (mut net, a, b) = pair(10, cfg, Pinger::new(v4(1), n, 100, Duration::ZERO));
    run_out(&mut net);
    let stats = net.link_stats(a, b);
    assert_binomial(stats.corrupted, n, 0.05, 5.0);
    assert_eq!(net.node(b).corrupted, stats.corrupted);
    assert_eq!(net.node(b).received.len() as u64, n - stats.corrupted);
}

#[test]
fn jitter_alone_never_reorders() {
    let cfg = LinkConfig { jitter: 5 * MS, ..LinkConfig::default() };
    let pinger = Pinger::new(v4(1), 10_000, 64, Duration::from_micros(100));
    let (mut net, _, b) = pair(11, cfg, pinger);
    run_out(&mut net);
    let got = &net.node(b).received;
    assert_eq!(got.len(), 10_000);
    assert_eq!(net.node(b).out_of_order(), 0);
    // The jitter did spread the delays.
    let delays: Vec<_> = got.iter().map(|&(s, at)| at - Instant::from_micros(s * 100)).collect();
    assert!(delays.iter().any(|&d| d > 3 * MS), "no packet was jittered much");
    assert!(delays.iter().all(|&d| d >= MS));
}

#[test]
fn reorder_lets_later_packets_overtake() {
    let n = 10_000;
    let cfg = LinkConfig { reorder: 0.1, reorder_delay: 5 * MS, ..LinkConfig::default() };
    let pinger = Pinger::new(v4(1), n, 64, Duration::from_micros(100));
    let (mut net, a, b) = pair(12, cfg, pinger);
    run_out(&mut net);
    let stats = net.link_stats(a, b);
    assert_binomial(stats.reordered, n, 0.1, 5.0);
    assert_eq!(net.node(b).received.len() as u64, n);
    assert!(net.node(b).out_of_order() > 500, "{} out of order", net.node(b).out_of_order());
}

#[test]
fn partition_drops_everything_and_heals() {
    let (mut net, a, b) = pair(13, LinkConfig::default(), Pinger::new(v4(1), 300, 64, MS));
    net.run_until(Instant::from_millis(100));
    net.set_partition(a, b, true);
    net.run_until(Instant::from_millis(200));
    net.set_partition(b, a, false);
    run_out(&mut net);
    // Packet 100 left at 100 ms but was still in flight when the cut came; packet 200 left at
    // 200 ms, just before the heal.
    let expected: Vec<u64> = (0..100).chain(201..300).collect();
    assert_eq!(net.node(b).seqs(), expected);
    assert_eq!(net.link_stats(a, b).dropped_partition, 101);
}

#[test]
fn reconfiguring_a_link_keeps_its_counters() {
    let (mut net, a, b) = pair(14, LinkConfig::default(), Pinger::new(v4(1), 20, 64, MS));
    net.run_until(Instant::from_millis(10));
    let lossy = LinkConfig { loss: Loss::Uniform(1.0), ..LinkConfig::default() };
    net.link_dir(a, b, lossy);
    run_out(&mut net);
    let stats = net.link_stats(a, b);
    assert_eq!(stats.sent, 20);
    // Packets 0..=10 left before the change (10 was still in flight); 11..20 were lost.
    assert_eq!(stats.delivered, 11);
    assert_eq!(stats.dropped_loss, 9);
    assert_eq!(net.node(b).received.len(), 11);
}
