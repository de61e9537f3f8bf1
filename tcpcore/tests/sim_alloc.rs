//! Steady-state forwarding must not allocate: after warm-up (or after `reserve`), moving
//! packets through the simulator with every fault enabled makes no heap allocation.

mod alloc_util;
use alloc_util::allocs;

mod sim_util;

use std::time::Duration;

use sim_util::{pair, v4, Pinger};
use tcpcore::sim::{LinkConfig, Loss, Network, NodeId};
use tcpcore::Instant;

/// 1500-byte packets every 100 us (120 Mbit/s) into a 100 Mbit/s link with every fault on.
fn overloaded(n: u64) -> (Network<Pinger>, NodeId, NodeId) {
    let cfg = LinkConfig {
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(1),
        rate_bps: 100_000_000,
        queue_bytes: 200_000,
        loss: Loss::Uniform(0.01),
        reorder: 0.01,
        reorder_delay: Duration::from_millis(2),
        duplicate: 0.01,
        corrupt: 0.01,
        ..LinkConfig::default()
    };
    let sender = Pinger::new(v4(1), n, 1500, Duration::from_micros(100));
    let (mut net, a, b) = pair(7, cfg, sender);
    // The receiver's bookkeeping belongs to the test, not the simulator: pre-size it.
    net.node_mut(b).received.reserve(2 * n as usize);
    net.node_mut(b).lengths.reserve(2 * n as usize);
    (net, a, b)
}

#[test]
fn steady_state_forwarding_does_not_allocate() {
    let (mut net, a, b) = overloaded(200_000);
    net.run_until(Instant::from_secs(2));
    let before = allocs();
    net.run_until(Instant::from_secs(18));
    let during = allocs() - before;
    let stats = net.link_stats(a, b);
    assert!(stats.delivered > 100_000, "{stats:?}");
    assert!(stats.dropped_queue > 0, "the queue never filled: {stats:?}");
    assert_eq!(during, 0, "{during} allocations in steady state");
}

#[test]
fn reserved_network_never_allocates() {
    let (mut net, a, b) = overloaded(50_000);
    net.reserve(1024, 1500);
    let before = allocs();
    net.run_until(Instant::from_secs(6));
    let during = allocs() - before;
    assert_eq!(net.link_stats(a, b).sent, 50_000);
    assert_eq!(during, 0, "{during} allocations after reserve");
}
