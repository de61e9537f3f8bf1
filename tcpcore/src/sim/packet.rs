//! Packets in flight: reading the destination address from raw IP bytes, the recycled buffer
//! pool, the event queue's entries and the trace hash.

use core::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Instant;

/// Size of the scratch buffer handed to [`super::Node::poll_transmit`]: the largest IP packet.
pub(crate) const MAX_PACKET: usize = 65_536;

/// Capacity of a fresh pool buffer before any packet has been seen (an Ethernet frame fits).
const MIN_POOL_CAPACITY: usize = 2048;

/// The destination address of a raw IP packet, or `None` if it is malformed (empty, an
/// unknown version, or shorter than its fixed header).
///
/// IPv4 (RFC 791 section 3.1): version in the high nibble of byte 0, destination at 16..20.
/// IPv6 (RFC 8200 section 3): version likewise, destination at 24..40.
pub(crate) fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => {
            let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(dst)))
        }
        6 => {
            let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(dst)))
        }
        _ => None,
    }
}

/// A free list of packet buffers, so steady-state forwarding does not allocate.
///
/// Buffers are cleared, not freed, when a packet is done with. The pool grows in batches
/// (doubling the buffers it owns), so a slowly rising number of packets in flight causes a
/// handful of allocations rather than one per new high-water mark. Fresh buffers start at the
/// largest packet size seen so far, and a buffer too small for a packet grows once, so after
/// warm-up every buffer fits every packet.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    /// Buffers not in use; capacity always covers every buffer owned.
    free: Vec<Vec<u8>>,
    /// Buffers owned, in use or free.
    owned: usize,
    /// The largest packet seen.
    largest: usize,
}

impl BufferPool {
    /// A buffer holding a copy of `bytes`.
    pub(crate) fn copy_of(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.largest = self.largest.max(bytes.len());
        if self.free.is_empty() {
            self.grow(self.owned.max(64), self.largest);
        }
        let mut buf = self.free.pop().unwrap_or_default();
        buf.clear();
        if buf.capacity() < self.largest {
            buf.reserve_exact(self.largest);
        }
        buf.extend_from_slice(bytes);
        buf
    }

    /// Add `count` free buffers able to hold `size` bytes each (at least an Ethernet frame).
    pub(crate) fn grow(&mut self, count: usize, size: usize) {
        self.largest = self.largest.max(size);
        self.owned += count;
        self.free.reserve(self.owned - self.free.len());
        let capacity = self.largest.max(MIN_POOL_CAPACITY);
        self.free.extend((0..count).map(|_| Vec::with_capacity(capacity)));
    }

    /// Buffers owned, in use or free.
    pub(crate) fn owned(&self) -> usize {
        self.owned
    }

    /// Return a buffer to the pool.
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        self.free.push(buf);
    }
}

/// A packet on a link, waiting for its arrival time.
#[derive(Debug)]
pub(crate) struct InFlight {
    /// When it arrives.
    pub(crate) at: Instant,
    /// Insertion counter: breaks ties so equal times keep the order they were sent in.
    pub(crate) seq: u64,
    /// Index of the link it travels on.
    pub(crate) link: usize,
    /// The packet's bytes.
    pub(crate) bytes: Vec<u8>,
}

impl InFlight {
    fn key(&self) -> (Instant, u64) {
        (self.at, self.seq)
    }
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    /// Reversed, so a `BinaryHeap` (a max-heap) pops the earliest `(at, seq)` first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// A running, order-sensitive, non-cryptographic hash of delivered packets, built for speed
/// (8 bytes per multiply) rather than strength: it only has to tell two runs apart.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> Self {
        // The FNV-1a 64-bit offset basis.
        TraceHash(0xcbf2_9ce4_8422_2325)
    }
}

impl TraceHash {
    /// Mix in one delivery.
    pub(crate) fn delivery(&mut self, at: Instant, from: usize, to: usize, packet: &[u8]) {
        self.word(at.as_micros());
        self.word(((from as u64) << 32) ^ to as u64);
        self.word(packet.len() as u64);
        // Four independent lanes over 32-byte blocks, so the multiplies overlap.
        let mut lanes = [self.0, self.0 ^ 1, self.0 ^ 2, self.0 ^ 3];
        let mut blocks = packet.chunks_exact(32);
        for block in &mut blocks {
            for (lane, w) in lanes.iter_mut().zip(block.chunks_exact(8)) {
                *lane = mix(*lane, le_word(w));
            }
        }
        lanes.iter().for_each(|&lane| self.word(lane));
        for w in blocks.remainder().chunks(8) {
            self.word(le_word(w));
        }
    }

    fn word(&mut self, w: u64) {
        self.0 = mix(self.0, w);
    }

    /// The hash so far.
    pub(crate) fn value(self) -> u64 {
        self.0
    }
}

/// One multiply-xorshift round of the trace hash.
fn mix(h: u64, w: u64) -> u64 {
    let h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

/// Up to 8 bytes as a little-endian word, zero-padded.
fn le_word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_reads_both_versions_and_rejects_malformed() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[16..20].copy_from_slice(&[192, 0, 2, 7]);
        assert_eq!(destination(&v4), Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))));
        assert_eq!(destination(&v4[..19]), None);

        let mut v6 = [0u8; 40];
        v6[0] = 0x60;
        v6[39] = 1;
        assert_eq!(destination(&v6), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(destination(&v6[..39]), None);

        assert_eq!(destination(&[]), None);
        assert_eq!(destination(&[0x55; 40]), None);
    }

    #[test]
    fn pool_reuses_buffers() {
        let mut pool = BufferPool::default();
        let a = pool.copy_of(&[1; 1500]);
        let ptr = a.as_ptr();
        pool.recycle(a);
        let b = pool.copy_of(&[2; 40]);
        assert_eq!(b.as_ptr(), ptr);
        assert_eq!(b, vec![2; 40]);
    }
}
