//! One tcpcore endpoint (a listener or an active open) against a fuzz-driven peer: segments
//! built from the live connection's 4-tuple and sequence numbers with mutated flags, offsets,
//! windows, options, lengths and checksums; timer advances; application calls. After every
//! step the sweep's invariants hold, every emitted packet parses with valid checksums, the
//! endpoint acknowledges only what the peer sent and delivers and sends only the right bytes
//! (see `tcpcore_fuzz::endpoint`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpcore_fuzz::endpoint::{Harness, Input};

/// Steps per run: enough for a handshake, a transfer and a close, few enough to stay fast.
const MAX_STEPS: usize = 256;

fuzz_target!(|input: Input| {
    let mut h = Harness::new(&input.setup);
    for action in input.actions.iter().take(MAX_STEPS) {
        h.step(action);
    }
});
