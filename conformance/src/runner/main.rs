//! Runs packetdrill suites against the conformance shim.

fn main() {}
