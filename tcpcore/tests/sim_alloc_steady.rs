//! A steady-state bulk transfer through the whole stack (simulator, `Host`, `Endpoint`,
//! `Connection`, `BulkApp`) makes no heap allocation per segment: after warm-up, many
//! thousands of segments in both directions cause zero allocations.

mod alloc_util;
use alloc_util::allocs;

mod sweep_util;

use std::time::Duration;

use sweep_util::{Params, Run};
use tcpcore::Instant;

/// Two hosts each sending 1 TiB over a clean 10 ms link: the transfer is still running
/// when the measurement ends (with send-buffer auto-tuning 1 GiB took under 3 s).
fn bulk(checks: bool) -> Run {
    let p = Params { rtt: Duration::from_millis(10), ..Params::clean(3, 1 << 40) };
    Run::new(p, checks)
}

#[track_caller]
fn assert_steady(mut run: Run, warm_up: Instant, until: Instant, min_segments: u64) {
    run.net.run_until(warm_up);
    let (before, delivered) = (allocs(), run.net.stats().delivered);
    run.net.run_until(until);
    let during = allocs() - before;
    let segments = run.net.stats().delivered - delivered;
    assert!(segments > min_segments, "only {segments} segments in the measured interval");
    assert!(!run.done(), "the transfer ended during the measurement");
    assert_eq!(during, 0, "{during} allocations over {segments} segments");
}

#[test]
fn bulk_transfer_makes_no_allocation_per_segment() {
    assert_steady(bulk(false), Instant::from_secs(1), Instant::from_secs(3), 20_000);
}

#[test]
fn invariant_checks_make_no_allocation_per_segment() {
    assert_steady(bulk(true), Instant::from_secs(1), Instant::from_secs(3), 20_000);
}

#[test]
fn lossy_bulk_transfer_makes_no_allocation_per_segment() {
    let p = Params {
        rtt: Duration::from_millis(10),
        loss: tcpcore::sim::Loss::Uniform(0.01),
        loss_rate: 0.01,
        reorder: 0.02,
        reorder_delay: Duration::from_millis(3),
        duplicate: 0.01,
        ..Params::clean(4, 1 << 30)
    };
    // With SACK recovery the window (and so the packets in flight) keeps growing after the
    // warm-up: give the simulator's packet pool room for both full windows and their ACKs
    // up front, so the measurement sees the engine's allocations only.
    let mut run = Run::new(p, true);
    run.net.reserve(1024, 1600);
    // The receive ring grows by doubling, once, to its cap (the 256 KiB buffer) the first
    // time a window peaks that far (a run of segments without loss); under 1 % random loss
    // that first peak may come 10-30 s in. Warm up past it: after it, nothing allocates.
    assert_steady(run, Instant::from_secs(30), Instant::from_secs(40), 10_000);
}

#[test]
fn the_counter_counts() {
    let before = allocs();
    std::hint::black_box(Vec::<u8>::with_capacity(1));
    assert_eq!(allocs() - before, 1);
}
