//! The connection table: 4-tuple → handle, O(1), keyed against hash flooding.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::SocketAddr;

use crate::rng::SipKey;

/// A connection's identity: our address and the peer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FourTuple {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

/// Map key carrying its keyed hash, so the map's own hasher only passes it through.
#[derive(Clone, Copy, Debug)]
struct Key {
    hash: u64,
    tuple: FourTuple,
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.tuple == other.tuple
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Passes a precomputed `u64` through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// 4-tuple → value, hashed with SipHash under a secret key (attackers choose 4-tuples).
#[derive(Debug)]
pub(crate) struct Demux<V> {
    key: SipKey,
    map: HashMap<Key, V, BuildHasherDefault<PassThrough>>,
}

impl<V> Demux<V> {
    pub(crate) fn new(key: SipKey) -> Self {
        Demux { key, map: HashMap::default() }
    }

    fn key(&self, tuple: FourTuple) -> Key {
        Key { hash: super::isn::hash_tuple(&self.key, tuple.local, tuple.remote), tuple }
    }

    pub(crate) fn get(&self, tuple: FourTuple) -> Option<&V> {
        self.map.get(&self.key(tuple))
    }

    pub(crate) fn contains(&self, tuple: FourTuple) -> bool {
        self.get(tuple).is_some()
    }

    pub(crate) fn insert(&mut self, tuple: FourTuple, value: V) {
        let k = self.key(tuple);
        self.map.insert(k, value);
    }

    pub(crate) fn remove(&mut self, tuple: FourTuple) -> Option<V> {
        let k = self.key(tuple);
        self.map.remove(&k)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
