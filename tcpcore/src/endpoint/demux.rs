//! The connection table: 4-tuple → handle, O(1), keyed against hash flooding.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

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

/// The keyed hash of 4-tuples for the tables: a folded multiply (the full 128-bit product of
/// two 64-bit words, its halves xored, as wyhash and aHash use) of the tuple's words mixed
/// with 256 secret bits. Attackers choose 4-tuples but never see the hashes, so without the
/// key they cannot aim at a bucket (hash flooding); ISNs and SYN cookies, whose outputs they
/// do see, keep SipHash-2-4. A few multiplies instead of SipHash's rounds: this runs for
/// every packet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TupleHasher {
    k: [u64; 4],
}

/// The 128-bit product of `a` and `b`, folded to 64 bits.
#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl TupleHasher {
    /// A hasher keyed from `key` (its two words and two more derived from them).
    pub(crate) fn new(key: SipKey) -> Self {
        TupleHasher { k: [key.0, key.1, key.hash(b"demux-k2"), key.hash(b"demux-k3")] }
    }

    /// The hash of `t`.
    #[inline]
    pub(crate) fn hash(&self, t: FourTuple) -> u64 {
        let [k0, k1, k2, k3] = self.k;
        let ports = u64::from(t.local.port()) << 16 | u64::from(t.remote.port());
        match (t.local.ip(), t.remote.ip()) {
            (IpAddr::V4(l), IpAddr::V4(r)) => {
                let addrs = u64::from(u32::from(l)) << 32 | u64::from(u32::from(r));
                fold_mul(fold_mul(addrs ^ k0, ports ^ k1) ^ k2, k3)
            }
            (l, r) => {
                // Any other pair (IPv6, or mixed families, which no valid packet has): each
                // address as 128 bits, IPv4 ones tagged so they differ from IPv6 ones.
                let wide = |a: IpAddr| match a {
                    IpAddr::V4(a) => u128::from(u32::from(a)) | 1 << 127,
                    IpAddr::V6(a) => u128::from(a),
                };
                let (l, r) = (wide(l), wide(r));
                let h = fold_mul(l as u64 ^ k0, (l >> 64) as u64 ^ k1);
                let h = fold_mul(h ^ r as u64 ^ k2, (r >> 64) as u64 ^ k3);
                fold_mul(h ^ ports ^ k1, k0 ^ k3)
            }
        }
    }
}

/// 4-tuple → value, hashed with a [`TupleHasher`] under a secret key (attackers choose
/// 4-tuples).
#[derive(Debug)]
pub(crate) struct Demux<V> {
    hasher: TupleHasher,
    map: HashMap<Key, V, BuildHasherDefault<PassThrough>>,
}

impl<V> Demux<V> {
    pub(crate) fn new(key: SipKey) -> Self {
        Demux { hasher: TupleHasher::new(key), map: HashMap::default() }
    }

    fn key(&self, tuple: FourTuple) -> Key {
        Key { hash: self.hasher.hash(tuple), tuple }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(l: &str, r: &str) -> FourTuple {
        FourTuple { local: l.parse().unwrap(), remote: r.parse().unwrap() }
    }

    #[test]
    fn tuple_hash_depends_on_every_field_and_the_key() {
        let h = TupleHasher::new(SipKey(1, 2));
        let base = tuple("10.0.0.1:80", "10.0.0.2:40000");
        let variants = [
            tuple("10.0.0.3:80", "10.0.0.2:40000"),
            tuple("10.0.0.1:81", "10.0.0.2:40000"),
            tuple("10.0.0.1:80", "10.0.0.4:40000"),
            tuple("10.0.0.1:80", "10.0.0.2:40001"),
            tuple("10.0.0.2:40000", "10.0.0.1:80"),
            tuple("[::ffff:10.0.0.1]:80", "[::ffff:10.0.0.2]:40000"),
        ];
        for v in variants {
            assert_ne!(h.hash(base), h.hash(v), "{v:?}");
        }
        assert_ne!(h.hash(base), TupleHasher::new(SipKey(1, 3)).hash(base));
        let v6 = tuple("[2001:db8::1]:443", "[2001:db8::2]:5000");
        assert_ne!(h.hash(v6), h.hash(tuple("[2001:db8::1]:443", "[2001:db8::3]:5000")));
    }

    #[test]
    fn tuple_hash_spreads_sequential_ports_over_buckets() {
        // 4096 tuples differing only in the remote port land in 1024 buckets (the low bits
        // hashbrown uses) with no bucket holding more than a handful.
        let h = TupleHasher::new(SipKey(0x1234, 0x5678));
        let mut buckets = [0u32; 1024];
        for p in 0..4096u16 {
            let t = tuple("10.0.0.1:80", &format!("10.0.0.2:{}", 1024 + p));
            buckets[(h.hash(t) & 1023) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n <= 16), "max {:?}", buckets.iter().max());
    }
}
