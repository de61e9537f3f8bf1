//! Heap use of the UDP and reassembly paths at steady state (UDP-01, FR-01, FR-02): once the
//! socket and reassembly buffer pools are warm, sending, receiving, fragmenting and
//! reassembling datagrams allocate nothing.

mod alloc_util;
mod udp_util;

use std::time::Duration;

use tcpcore::{Instant, UdpHandle};
use udp_util::{payload, Node};

/// One round: `count` datagrams of `size` bytes from `a` to `b`, read back, with every
/// buffer preallocated by the caller.
fn round(
    now: Instant,
    (a, ha): (&mut Node, UdpHandle),
    (b, hb): (&mut Node, UdpHandle),
    size: usize,
    bufs: (&[u8], &mut [u8], &mut [u8]),
) -> usize {
    let (data, wire, rx) = bufs;
    let to = b.sock(hb).local_addr();
    for _ in 0..4 {
        a.sock(ha).send_to(to, &data[..size]).unwrap();
    }
    let mut got = 0;
    while let Some(t) = a.sock(ha).poll_transmit(now, wire) {
        b.recv(now, &wire[..t.len]);
    }
    while let Ok(r) = b.sock(hb).recv_from(rx) {
        assert_eq!(r.len, size);
        got += 1;
    }
    got
}

/// UDP-01 / FR-02: after warm-up, whole and fragmented datagrams cross without a single
/// allocation (the datagrams' buffers come from the sockets' and the reassembly's pools).
#[test]
fn udp_01_steady_state_allocates_nothing() {
    for (src, dst) in [("10.0.0.1:5000", "10.0.0.2:53"), ("[2001:db8::1]:5000", "[2001:db8::2]:53")]
    {
        let (mut a, mut b) = (Node::new(1), Node::new(2));
        let ha = a.bind(src);
        let hb = b.bind(dst);
        let data = payload(9000, 1);
        let (mut wire, mut rx) = (vec![0u8; 1500], vec![0u8; 9000]);
        let mut now = Instant::ZERO;
        for size in [100, 1400, 9000] {
            for _ in 0..4 {
                round(now, (&mut a, ha), (&mut b, hb), size, (&data, &mut wire, &mut rx));
                now += Duration::from_millis(1);
            }
        }
        let before = alloc_util::allocs();
        let mut got = 0;
        for i in 0..300 {
            let size = [100, 1400, 9000][i % 3];
            got += round(now, (&mut a, ha), (&mut b, hb), size, (&data, &mut wire, &mut rx));
            now += Duration::from_millis(1);
        }
        let allocs = alloc_util::allocs() - before;
        assert_eq!(got, 1200);
        assert_eq!(allocs, 0, "{src}: allocations for 1200 datagrams, a third of them fragmented");
        assert!(b.ep.stats().frag_reassembled >= 400);
    }
}

/// FR-01: reassembling many datagrams within one instant (a burst, or a coarse clock) holds
/// no memory once they are complete: the bookkeeping of their timeouts goes with them.
#[test]
fn fr_01_completed_datagrams_hold_no_memory() {
    let (mut a, mut b) = (Node::new(1), Node::new(2));
    let ha = a.bind("10.0.0.1:5000");
    let hb = b.bind("10.0.0.2:53");
    let data = payload(3000, 1);
    let (mut wire, mut rx) = (vec![0u8; 1500], vec![0u8; 3000]);
    let now = Instant::ZERO;
    let mut run = |a: &mut Node, b: &mut Node, n: usize| {
        for _ in 0..n {
            round(now, (&mut *a, ha), (&mut *b, hb), 3000, (&data, &mut wire, &mut rx));
        }
    };
    run(&mut a, &mut b, 100);
    let before = alloc_util::live_bytes();
    run(&mut a, &mut b, 20_000);
    let grown = alloc_util::live_bytes() - before;
    assert!(grown < 4096, "80,000 datagrams left {grown} bytes behind");
    assert_eq!(b.ep.reassembly_usage(), (0, 0));
}
