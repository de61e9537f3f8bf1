//! Support code of the fuzz targets (`fuzz_targets/`): the stateful one-endpoint harness, the
//! two-endpoint simulator harness and the invariants they assert. Uses only tcpcore's public API.

pub mod endpoint;
pub mod invariants;
pub mod peer;
pub mod sim;

/// Byte `i` of a deterministic stream named by `salt`: the bytes a fuzz peer or application
/// sends, so that every byte delivered can be checked against its stream position.
pub fn stream_byte(salt: u32, i: u32) -> u8 {
    let x = i.wrapping_add(salt).wrapping_mul(0x9e37_79b1);
    (x ^ (x >> 15)).wrapping_mul(0x85eb_ca6b).to_be_bytes()[0]
}

/// Fill `out` with the stream `salt` from position `start`.
pub fn stream_fill(salt: u32, start: u32, out: &mut [u8]) {
    for (k, b) in out.iter_mut().enumerate() {
        *b = stream_byte(salt, start.wrapping_add(k as u32));
    }
}

/// Index of the first byte of `data` that differs from the stream `salt` at `start`.
pub fn stream_mismatch(salt: u32, start: u32, data: &[u8]) -> Option<usize> {
    data.iter().enumerate().position(|(k, b)| *b != stream_byte(salt, start.wrapping_add(k as u32)))
}
