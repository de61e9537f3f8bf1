//! Two tcpcore endpoints through the simulator with fuzz-chosen faults (loss, reordering,
//! duplication, corruption, MTU, delays, a bottleneck, partitions) and application actions:
//! the sweep's invariants after every step, every byte delivered is the sender's stream at its
//! position, and without partition, close or abort both streams arrive complete (see
//! `tcpcore_fuzz::sim`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpcore_fuzz::sim::{Harness, Input};

/// Steps per run.
const MAX_STEPS: usize = 64;

fuzz_target!(|input: Input| {
    let mut h = Harness::new(&input.setup);
    for action in input.actions.iter().take(MAX_STEPS) {
        h.step(*action);
    }
    h.finish();
});
