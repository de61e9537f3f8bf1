//! Initial sequence numbers (RFC 6528) and per-connection timestamp offsets (RFC 7323 §5.4).

use std::net::SocketAddr;

use crate::rng::SipKey;
use crate::wire::SeqNum;
use crate::Instant;

/// Serialize a 4-tuple for hashing: addresses and ports plus a family tag, no allocation.
pub(crate) fn tuple_bytes(local: SocketAddr, remote: SocketAddr, out: &mut [u8; 37]) -> &[u8] {
    let mut n = 0;
    for addr in [local, remote] {
        match addr.ip() {
            std::net::IpAddr::V4(ip) => {
                out[n..n + 4].copy_from_slice(&ip.octets());
                n += 4;
            }
            std::net::IpAddr::V6(ip) => {
                out[n..n + 16].copy_from_slice(&ip.octets());
                n += 16;
            }
        }
        out[n..n + 2].copy_from_slice(&addr.port().to_be_bytes());
        n += 2;
    }
    out[n] = u8::from(local.is_ipv6());
    &out[..=n]
}

/// Keyed hash of a 4-tuple.
pub(crate) fn hash_tuple(key: &SipKey, local: SocketAddr, remote: SocketAddr) -> u64 {
    let mut buf = [0u8; 37];
    key.hash(tuple_bytes(local, remote, &mut buf))
}

/// Keyed hash of a 4-tuple and a 32-bit value (SYN-cookie counters).
pub(crate) fn hash_tuple_with(
    key: &SipKey,
    local: SocketAddr,
    remote: SocketAddr,
    extra: u32,
) -> u64 {
    let mut buf = [0u8; 41];
    let mut tb = [0u8; 37];
    let t = tuple_bytes(local, remote, &mut tb);
    buf[..t.len()].copy_from_slice(t);
    buf[t.len()..t.len() + 4].copy_from_slice(&extra.to_be_bytes());
    key.hash(&buf[..t.len() + 4])
}

/// RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M is
/// a 4-microsecond timer and F a keyed hash (SipHash-2-4 here); and the connection's
/// timestamp offset (RFC 7323 §5.4, "Timestamp_clock + Hash(localip, localport, remoteip,
/// remoteport, secret)"). Both come from one hash: F is the low half of its 64-bit output,
/// the offset the high half. The halves of a pseudorandom function's output are independent,
/// so an ISN an attacker sees tells nothing of the offset, and one SipHash per connection
/// open is saved (Linux hashes them apart with two secrets; the result is as unpredictable).
pub(crate) fn isn_and_ts_offset(
    key: &SipKey,
    now: Instant,
    local: SocketAddr,
    remote: SocketAddr,
) -> (SeqNum, u32) {
    let m = (now.as_micros() / 4) as u32;
    let h = hash_tuple(key, local, remote);
    (SeqNum(m.wrapping_add(h as u32)), (h >> 32) as u32)
}
