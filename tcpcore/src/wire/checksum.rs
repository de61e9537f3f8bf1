//! The Internet checksum (RFC 1071) and the TCP pseudo-headers (RFC 9293 §3.1, RFC 8200 §8.1).
//!
//! The checksum is the 16-bit one's complement of the one's complement sum of the data taken
//! as big-endian 16-bit words. Because 2^16 ≡ 1 (mod 2^16 − 1), the sum may be accumulated in
//! wider words and folded at the end (RFC 1071 §2(C), "parallel summation"): [`sum`] adds 64
//! bits at a time with end-around carry into a `u64` accumulator, [`fold`] reduces it to 16
//! bits and [`finish`] complements the result.
//!
//! Accumulators compose: `sum(b, sum(a, acc))` equals `sum(ab, acc)` as long as `a` has an even
//! length. Data split at an odd offset must be copied together first (what
//! [`super::emit`] does: it writes the payload into the output buffer and checksums that).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Add `w` to `acc` with end-around carry (one's complement addition on 64-bit words).
#[inline]
fn add_carry(acc: u64, w: u64) -> u64 {
    let (s, overflow) = acc.overflowing_add(w);
    // When the addition overflowed, `s < w <= u64::MAX`, so adding the carry cannot overflow.
    s + u64::from(overflow)
}

/// Add the bytes of `data`, as big-endian 16-bit words, to the accumulator `acc` (start with
/// 0) and return the new accumulator. An odd final byte is padded with a zero byte on the
/// right (RFC 1071 §1: "the octet is padded with zero"). The result is only meaningful after
/// [`fold`].
pub fn sum(data: &[u8], acc: u64) -> u64 {
    // RFC 1071 §2(B), byte-order independence: add native-endian 32-bit words into eight
    // 64-bit lanes (plain adds: no carry leaves a lane below 2^32 words, and fixed indices
    // let the compiler vectorise), fold to 16 bits, then swap to network order.
    let mut lanes = [0u64; 8];
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        if let Ok(b) = <&[u8; 32]>::try_from(b) {
            for (i, lane) in lanes.iter_mut().enumerate() {
                let w = [b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]];
                *lane += u64::from(u32::from_ne_bytes(w));
            }
        }
    }
    let mut ne = lanes.iter().fold(0, |s, &l| add_carry(s, l));
    let mut words = blocks.remainder().chunks_exact(2);
    for w in &mut words {
        ne = add_carry(ne, u64::from(u16::from_ne_bytes([w[0], w[1]])));
    }
    if let [last] = words.remainder() {
        // The odd byte is the high byte of a zero-padded big-endian word.
        ne = add_carry(ne, u64::from(u16::from_ne_bytes([*last, 0])));
    }
    let be = if cfg!(target_endian = "little") { fold(ne).swap_bytes() } else { fold(ne) };
    add_carry(acc, u64::from(be))
}

/// Fold a 64-bit accumulator to the 16-bit one's complement sum (not yet complemented).
pub fn fold(acc: u64) -> u16 {
    let mut s = acc;
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The checksum field value for an accumulator: the complement of [`fold`].
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// The Internet checksum of one contiguous buffer: `finish(sum(data, 0))`.
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data, 0))
}

/// True when `acc`, summed over data that includes its checksum field, verifies: the folded
/// sum is all ones (RFC 1071 §1: "the result is checked by ... all 1 bits").
pub fn is_valid(acc: u64) -> bool {
    fold(acc) == 0xffff
}

/// Accumulator for the IPv4 pseudo-header of RFC 9293 §3.1: source address, destination
/// address, a zero byte, the protocol and the 16-bit TCP length (header plus data).
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u64 {
    let mut acc = u64::from(u32::from(src));
    acc = add_carry(acc, u64::from(u32::from(dst)));
    acc = add_carry(acc, u64::from(proto));
    add_carry(acc, u64::from(len))
}

/// Accumulator for the IPv6 pseudo-header of RFC 8200 §8.1: source address, destination
/// address, the 32-bit upper-layer packet length, three zero bytes and the next header.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, len: u32) -> u64 {
    let mut acc = sum(&src.octets(), 0);
    acc = sum(&dst.octets(), acc);
    acc = add_carry(acc, u64::from(proto));
    add_carry(acc, u64::from(len))
}

/// Accumulator for the pseudo-header of either family. With mixed families (which no valid
/// packet has) it sums both addresses in their own format and the length as 32 bits; the
/// result is then meaningless but the function does not panic. For IPv4, `len` above 65535
/// cannot occur in a valid packet and is summed as a 32-bit value.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> u64 {
    let addr = |a: IpAddr, acc: u64| match a {
        IpAddr::V4(a) => add_carry(acc, u64::from(u32::from(a))),
        IpAddr::V6(a) => sum(&a.octets(), acc),
    };
    let acc = addr(dst, addr(src, 0));
    add_carry(add_carry(acc, u64::from(proto)), u64::from(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward 16-bit reference from RFC 1071 §4.1.
    fn naive(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            s += u32::from(data[i]) << 8 | u32::from(data[i + 1]);
            s = (s & 0xffff) + (s >> 16);
            i += 2;
        }
        if i < data.len() {
            s += u32::from(data[i]) << 8;
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn rfc1071_example() {
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d, 0)), 0xddf2);
        assert_eq!(checksum(&d), 0x220d);
    }

    #[test]
    fn matches_naive_on_random_lengths() {
        let mut rng = crate::rng::Rng::new(7);
        let mut buf = [0u8; 300];
        for _ in 0..2000 {
            let len = rng.below(300) as usize;
            for b in buf.iter_mut().take(len) {
                *b = rng.next_u32() as u8;
            }
            assert_eq!(checksum(&buf[..len]), naive(&buf[..len]), "len {len}");
        }
        // All ones everywhere exercises every carry.
        let ff = [0xffu8; 257];
        for len in 0..ff.len() {
            assert_eq!(checksum(&ff[..len]), naive(&ff[..len]), "len {len}");
        }
    }

    #[test]
    fn accumulators_compose_and_verify() {
        let mut data = [0u8; 64];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i * 37 + 11) as u8;
        }
        let whole = sum(&data, 0);
        for split in (0..=64).step_by(2) {
            assert_eq!(fold(sum(&data[split..], sum(&data[..split], 0))), fold(whole));
        }
        let c = checksum(&data[..62]);
        data[62..64].copy_from_slice(&c.to_be_bytes());
        assert!(is_valid(sum(&data, 0)));
    }

    #[test]
    fn pseudo_headers_agree() {
        let (s4, d4) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(192, 168, 1, 200));
        let mut ph = [0u8; 12];
        ph[..4].copy_from_slice(&s4.octets());
        ph[4..8].copy_from_slice(&d4.octets());
        ph[9] = 6;
        ph[10..12].copy_from_slice(&1234u16.to_be_bytes());
        let expect = fold(sum(&ph, 0));
        assert_eq!(fold(pseudo_header_v4(s4, d4, 6, 1234)), expect);
        assert_eq!(fold(pseudo_header(s4.into(), d4.into(), 6, 1234)), expect);

        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d6: Ipv6Addr = "fe80::ffff:1:2:3".parse().unwrap();
        let mut ph = [0u8; 40];
        ph[..16].copy_from_slice(&s6.octets());
        ph[16..32].copy_from_slice(&d6.octets());
        ph[32..36].copy_from_slice(&70000u32.to_be_bytes());
        ph[39] = 6;
        let expect = fold(sum(&ph, 0));
        assert_eq!(fold(pseudo_header_v6(s6, d6, 6, 70000)), expect);
        assert_eq!(fold(pseudo_header(s6.into(), d6.into(), 6, 70000)), expect);
    }
}
