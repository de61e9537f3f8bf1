//! The connection table: 4-tuple → handle, O(1), keyed against hash flooding.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};

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

/// Map key of an IPv4 tuple, packed: our address, the peer's, and both ports (ours in the
/// high half). 12 bytes instead of [`Key`]'s 72, so an IPv4 entry costs a third of an
/// IPv6 one; its hash is computed from it by [`KeyedV4`] rather than stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct V4Key([u32; 3]);

impl V4Key {
    fn new(local: SocketAddrV4, remote: SocketAddrV4) -> Self {
        let ports = u32::from(local.port()) << 16 | u32::from(remote.port());
        V4Key([u32::from(*local.ip()), u32::from(*remote.ip()), ports])
    }

    /// The words [`TupleHasher::hash_v4`] mixes.
    fn words(self) -> (u64, u64) {
        let [l, r, ports] = self.0;
        (u64::from(l) << 32 | u64::from(r), u64::from(ports))
    }
}

impl Hash for V4Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (addrs, ports) = self.words();
        state.write_u128(u128::from(addrs) << 64 | u128::from(ports));
    }
}

/// Builds [`V4Hasher`]s keyed with the table's secret.
#[derive(Clone, Copy, Debug)]
struct KeyedV4(TupleHasher);

impl BuildHasher for KeyedV4 {
    type Hasher = V4Hasher;
    fn build_hasher(&self) -> V4Hasher {
        V4Hasher { key: self.0, hash: 0 }
    }
}

/// Hashes the one `u128` a [`V4Key`] writes with [`TupleHasher::hash_v4`].
struct V4Hasher {
    key: TupleHasher,
    hash: u64,
}

impl Hasher for V4Hasher {
    fn finish(&self) -> u64 {
        self.hash
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `V4Key`; still keyed, for completeness.
        for b in bytes {
            self.hash = self.key.hash_v4(self.hash, u64::from(*b));
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.hash = self.key.hash_v4((n >> 64) as u64, n as u64);
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

    /// The hash of an IPv4 tuple: both addresses (ours high) and both ports (ours high).
    #[inline]
    fn hash_v4(&self, addrs: u64, ports: u64) -> u64 {
        let [k0, k1, k2, k3] = self.k;
        fold_mul(fold_mul(addrs ^ k0, ports ^ k1) ^ k2, k3)
    }

    /// The hash of `t`.
    #[inline]
    pub(crate) fn hash(&self, t: FourTuple) -> u64 {
        let [k0, k1, k2, k3] = self.k;
        let ports = u64::from(t.local.port()) << 16 | u64::from(t.remote.port());
        match (t.local.ip(), t.remote.ip()) {
            (IpAddr::V4(l), IpAddr::V4(r)) => {
                let addrs = u64::from(u32::from(l)) << 32 | u64::from(u32::from(r));
                self.hash_v4(addrs, ports)
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
/// 4-tuples). IPv4 tuples, nearly all of them, live in a map of packed 12-byte keys; the
/// others (IPv6, and mixed families, which no valid packet has) in one keyed by the whole
/// tuple with its hash beside it. An IPv4 connection's entry is 24 bytes rather than 80
/// (issue 12: a million idle connections).
#[derive(Debug)]
pub(crate) struct Demux<V> {
    hasher: TupleHasher,
    v4: HashMap<V4Key, V, KeyedV4>,
    other: HashMap<Key, V, BuildHasherDefault<PassThrough>>,
}

/// Where a tuple lives in a [`Demux`].
enum Slot {
    V4(V4Key),
    Other(Key),
}

impl<V> Demux<V> {
    pub(crate) fn new(key: SipKey) -> Self {
        let hasher = TupleHasher::new(key);
        Demux { hasher, v4: HashMap::with_hasher(KeyedV4(hasher)), other: HashMap::default() }
    }

    /// By reference: matching on the tuple's copy cost two 64-byte copies per lookup.
    #[inline(always)]
    fn slot(&self, tuple: &FourTuple) -> Slot {
        match (&tuple.local, &tuple.remote) {
            (SocketAddr::V4(l), SocketAddr::V4(r)) => Slot::V4(V4Key::new(*l, *r)),
            _ => Slot::Other(Key { hash: self.hasher.hash(*tuple), tuple: *tuple }),
        }
    }

    pub(crate) fn get(&self, tuple: FourTuple) -> Option<&V> {
        match self.slot(&tuple) {
            Slot::V4(k) => self.v4.get(&k),
            Slot::Other(k) => self.other.get(&k),
        }
    }

    pub(crate) fn contains(&self, tuple: FourTuple) -> bool {
        self.get(tuple).is_some()
    }

    pub(crate) fn insert(&mut self, tuple: FourTuple, value: V) {
        match self.slot(&tuple) {
            Slot::V4(k) => self.v4.insert(k, value),
            Slot::Other(k) => self.other.insert(k, value),
        };
    }

    pub(crate) fn remove(&mut self, tuple: FourTuple) -> Option<V> {
        match self.slot(&tuple) {
            Slot::V4(k) => self.v4.remove(&k),
            Slot::Other(k) => self.other.remove(&k),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }
}

/// The endpoint's connection table: a [`Demux`] of handles that remembers the IPv4 key and
/// handle of the last connection a packet was routed to. Packets come in runs per connection
/// (a window of data, a GRO batch, a request and its ACK), so consecutive lookups mostly ask
/// for the same 4-tuple: comparing its 12-byte key costs a few instructions where the keyed
/// hash and the probe cost ~80 per packet (issue 12). The whole key is compared, and every
/// insert and remove forgets the remembered entry, so a hit is always what the map would
/// answer; the map stays keyed against hash flooding (the cache holds one entry, which an
/// attacker's packets only displace).
#[derive(Debug)]
pub(crate) struct ConnTable<V> {
    map: Demux<V>,
    last: Option<(V4Key, V)>,
}

impl<V: Copy + PartialEq> ConnTable<V> {
    pub(crate) fn new(key: SipKey) -> Self {
        ConnTable { map: Demux::new(key), last: None }
    }

    /// The value for the IPv4 or IPv6 tuple of a packet from `remote` to `local`,
    /// remembered for the next lookup when it is IPv4.
    #[inline]
    pub(crate) fn lookup(&mut self, local: (IpAddr, u16), remote: (IpAddr, u16)) -> Option<V> {
        let (IpAddr::V4(l), IpAddr::V4(r)) = (local.0, remote.0) else {
            let tuple =
                FourTuple { local: SocketAddr::from(local), remote: SocketAddr::from(remote) };
            return self.map.get(tuple).copied();
        };
        let key = V4Key::new(SocketAddrV4::new(l, local.1), SocketAddrV4::new(r, remote.1));
        if let Some((k, v)) = self.last {
            if k == key {
                return Some(v);
            }
        }
        let v = *self.map.v4.get(&key)?;
        self.last = Some((key, v));
        Some(v)
    }

    pub(crate) fn get(&self, tuple: FourTuple) -> Option<&V> {
        self.map.get(tuple)
    }

    pub(crate) fn contains(&self, tuple: FourTuple) -> bool {
        self.map.contains(tuple)
    }

    pub(crate) fn insert(&mut self, tuple: FourTuple, value: V) {
        self.last = None;
        self.map.insert(tuple, value);
    }

    pub(crate) fn remove(&mut self, tuple: FourTuple) -> Option<V> {
        self.last = None;
        self.map.remove(tuple)
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

    /// MEM-03: an IPv4 connection's table entry is a packed key and its value, hashed as
    /// [`TupleHasher::hash`] hashes the tuple; IPv4, IPv6 and mixed tuples stay distinct.
    #[test]
    fn mem_03_ipv4_entries_are_packed_and_families_stay_apart() {
        assert_eq!(core::mem::size_of::<(V4Key, crate::ConnectionHandle)>(), 24);
        let h = TupleHasher::new(SipKey(7, 9));
        let t = tuple("10.0.0.1:80", "10.0.0.2:40000");
        let (SocketAddr::V4(l), SocketAddr::V4(r)) = (t.local, t.remote) else { panic!() };
        assert_eq!(KeyedV4(h).hash_one(V4Key::new(l, r)), h.hash(t));
        let tuples = [
            t,
            tuple("10.0.0.2:40000", "10.0.0.1:80"),
            tuple("[::ffff:10.0.0.1]:80", "[::ffff:10.0.0.2]:40000"),
            tuple("10.0.0.1:80", "[::ffff:10.0.0.2]:40000"),
            tuple("[2001:db8::1]:443", "[2001:db8::2]:5000"),
        ];
        let mut d = Demux::new(SipKey(7, 9));
        for (i, &t) in tuples.iter().enumerate() {
            d.insert(t, i);
        }
        assert_eq!(d.len(), tuples.len());
        for (i, &t) in tuples.iter().enumerate() {
            assert_eq!(d.get(t), Some(&i), "{t:?}");
        }
        assert_eq!(d.remove(tuples[0]), Some(0));
        assert_eq!(d.remove(tuples[4]), Some(4));
        assert!(!d.contains(tuples[0]) && !d.contains(tuples[4]) && d.contains(tuples[2]));
        assert_eq!(d.len(), 3);
    }

    /// DMX-01: the connection table's remembered last hit always answers as the map would:
    /// the whole key is compared, and inserts and removes forget it (a handle reused for
    /// another 4-tuple, a 4-tuple reused by another handle).
    #[test]
    fn dmx_01_cached_lookup_answers_as_the_map() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (l, r) = ((ip("10.0.0.1"), 80), (ip("10.0.0.2"), 40000));
        let mut t = ConnTable::new(SipKey(3, 4));
        assert_eq!(t.lookup(l, r), None);
        t.insert(tuple("10.0.0.1:80", "10.0.0.2:40000"), 7usize);
        assert_eq!(t.lookup(l, r), Some(7));
        assert_eq!(t.lookup(l, r), Some(7), "the remembered hit");
        // Any other field: another port, another address, the reverse direction.
        assert_eq!(t.lookup(l, (ip("10.0.0.2"), 40001)), None);
        assert_eq!(t.lookup(l, (ip("10.0.0.3"), 40000)), None);
        assert_eq!(t.lookup(r, l), None);
        assert_eq!(t.lookup(l, r), Some(7));
        assert_eq!(t.remove(tuple("10.0.0.1:80", "10.0.0.2:40000")), Some(7));
        assert_eq!(t.lookup(l, r), None, "forgotten with the entry");
        t.insert(tuple("10.0.0.1:80", "10.0.0.2:40000"), 9);
        assert_eq!(t.lookup(l, r), Some(9), "the 4-tuple reused by another handle");
        // IPv6 tuples go to the map every time.
        let (l6, r6) = ((ip("2001:db8::1"), 443), (ip("2001:db8::2"), 5000));
        t.insert(tuple("[2001:db8::1]:443", "[2001:db8::2]:5000"), 11);
        assert_eq!((t.lookup(l6, r6), t.lookup(l, r)), (Some(11), Some(9)));
        assert_eq!(t.len(), 2);
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
