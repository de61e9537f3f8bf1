//! The Internet checksum (RFC 1071) and the TCP pseudo-headers (RFC 9293 §3.1, RFC 8200 §8.1).
//!
//! The checksum is the 16-bit one's complement of the one's complement sum of the data taken
//! as big-endian 16-bit words. Because 2^16 ≡ 1 (mod 2^16 − 1), the sum may be accumulated in
//! wider words and folded at the end (RFC 1071 §2(C), "parallel summation"): [`sum`] adds 64
//! bits at a time with end-around carry into a `u64` accumulator, [`fold`] reduces it to 16
//! bits and [`finish`] complements the result.
//!
//! Accumulators compose: `sum(b, sum(a, acc))` equals `sum(ab, acc)` as long as `a` has an even
//! length; [`add_at`] joins a piece that starts at an odd offset. [`copy_and_sum`] sums
//! while copying, so a payload copied anyway is read once (what [`super::emit`] does).

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
    if data.len() < 32 {
        // Headers and short payloads: no blocks, and the empty accumulators fold away.
        return finish_block_sums(&[0; 2], data, acc);
    }
    // RFC 1071 §2(B), byte-order independence: add native-endian 64-bit words into two
    // 128-bit accumulators (an add and an add-with-carry each: two independent chains that
    // stay in registers), fold to 16 bits, then swap to network order.
    let mut acc2 = [0u128; 2];
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        if let Ok(b) = <&[u8; 32]>::try_from(b) {
            add_block(&mut acc2, b);
        }
    }
    finish_block_sums(&acc2, blocks.remainder(), acc)
}

/// [`sum`] of a fixed-size block under 32 bytes (an IPv4 header without options), inlined
/// so that the word additions unroll for its length.
#[inline(always)]
pub fn sum_array<const N: usize>(data: &[u8; N], acc: u64) -> u64 {
    if N < 32 {
        return finish_block_sums(&[0; 2], data, acc);
    }
    sum(data, acc)
}

/// Copy `src` into `dst` (which must be as long) and return `sum(src, acc)`, reading each
/// byte once: the payload is checksummed while it is copied into the packet or out of it
/// (RFC 1071 §2(B), §4: computing the sum during a copy). `dst` is left unchanged if the
/// lengths differ, and the sum is then of `src` alone.
pub fn copy_and_sum(dst: &mut [u8], src: &[u8], acc: u64) -> u64 {
    if dst.len() != src.len() {
        return sum(src, acc);
    }
    if src.is_empty() {
        return acc; // the second piece of a payload that did not wrap, a bare ACK
    }
    let mut acc2 = [0u128; 2];
    let mut blocks = src.chunks_exact(32);
    let mut out = dst.chunks_exact_mut(32);
    for (b, o) in (&mut blocks).zip(&mut out) {
        if let Ok(b) = <&[u8; 32]>::try_from(b) {
            o.copy_from_slice(b);
            add_block(&mut acc2, b);
        }
    }
    let rest = blocks.remainder();
    out.into_remainder().copy_from_slice(rest);
    finish_block_sums(&acc2, rest, acc)
}

/// Add the four native-endian 64-bit words of `b` to the accumulators, alternately. A
/// 128-bit sum of at most 2^16 words cannot overflow.
#[inline(always)]
fn add_block(acc2: &mut [u128; 2], b: &[u8; 32]) {
    for (i, w) in b.chunks_exact(8).enumerate() {
        let w = [w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]];
        acc2[i % 2] += u128::from(u64::from_ne_bytes(w));
    }
}

/// Fold the accumulators and the last `rest` bytes (under 32) into `acc` as [`sum`] does.
#[inline(always)]
fn finish_block_sums(acc2: &[u128; 2], rest: &[u8], acc: u64) -> u64 {
    // 2^64 ≡ 1 (mod 2^64 − 1): the high half of each accumulator adds to its low half.
    let mut ne = acc2.iter().fold(0, |s, &a| add_carry(add_carry(s, a as u64), (a >> 64) as u64));
    // The rest in 8-, 4- and 2-byte native-endian words: any width sums the same 16-bit
    // words (RFC 1071 §2(B)), and a 20-byte IP header takes 3 additions instead of 10.
    let mut words = rest.chunks_exact(8);
    for w in &mut words {
        let w = [w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]];
        ne = add_carry(ne, u64::from_ne_bytes(w));
    }
    let mut rest = words.remainder();
    if let [a, b, c, d, more @ ..] = rest {
        ne = add_carry(ne, u64::from(u32::from_ne_bytes([*a, *b, *c, *d])));
        rest = more;
    }
    if let [a, b, more @ ..] = rest {
        ne = add_carry(ne, u64::from(u16::from_ne_bytes([*a, *b])));
        rest = more;
    }
    if let [last] = rest {
        // The odd byte is the high byte of a zero-padded big-endian word.
        ne = add_carry(ne, u64::from(u16::from_ne_bytes([*last, 0])));
    }
    let be = if cfg!(target_endian = "little") { fold(ne).swap_bytes() } else { fold(ne) };
    add_carry(acc, u64::from(be))
}

/// Add `part`, the accumulator of bytes that follow `at` bytes of data, to `acc`: when `at`
/// is odd, `part`'s words straddle the data's words and its sum is byte-swapped (RFC 1071
/// §2(B)). This lets a payload split at any offset (a ring's wrap) be summed in pieces.
pub fn add_at(acc: u64, part: u64, at: usize) -> u64 {
    let part = if at % 2 == 1 { u64::from(fold(part).swap_bytes()) } else { part };
    add_carry(acc, part)
}

/// Fold a 64-bit accumulator to the 16-bit one's complement sum (not yet complemented).
pub fn fold(acc: u64) -> u16 {
    // A fixed sequence instead of a loop: no branch to mispredict on every packet. Each
    // step adds the high part to the low part (2^32 ≡ 2^16 ≡ 1 mod 2^16 − 1):
    // < 2^33, then < 2^17 + 2^16, then <= 0xffff + 1, then <= 0xffff.
    let s = (acc & 0xffff_ffff) + (acc >> 32);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
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

    /// The branch-free `fold` equals folding until 16 bits remain, at every boundary.
    #[test]
    fn fold_matches_looping_fold() {
        let looping = |mut s: u64| {
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            s as u16
        };
        let mut rng = crate::rng::Rng::new(11);
        let edges = [0, 1, 0xfffe, 0xffff, 0x1_0000, 0x1_0001, 0x1_fffe, 0xffff_ffff];
        let mut values: Vec<u64> =
            edges.iter().flat_map(|&e| [e, e << 32, !e, u64::MAX - e]).collect();
        values.extend(
            (0..10_000).map(|_| u64::from(rng.next_u32()) << 32 | u64::from(rng.next_u32())),
        );
        for v in values {
            assert_eq!(fold(v), looping(v), "{v:#x}");
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
    fn copy_and_sum_copies_and_sums_at_any_split() {
        let mut rng = crate::rng::Rng::new(9);
        let mut src = [0u8; 300];
        for b in src.iter_mut() {
            *b = rng.next_u32() as u8;
        }
        for _ in 0..500 {
            let len = rng.below(300) as usize;
            let split = rng.below(len as u64 + 1) as usize;
            let mut dst = [0u8; 300];
            let (d0, d1) = dst[..len].split_at_mut(split);
            let a = copy_and_sum(d0, &src[..split], 0);
            let acc = add_at(a, copy_and_sum(d1, &src[split..len], 0), split);
            assert_eq!(&dst[..len], &src[..len]);
            assert_eq!(finish(acc), naive(&src[..len]), "len {len} split {split}");
        }
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
