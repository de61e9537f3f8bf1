//! SEC-04 no-panic: ~200k deterministic pseudo-random and mutated valid packets through
//! `wire::parse`, and every truncation of valid packets. Whatever parses must re-emit and
//! parse back to the same segment.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tcpcore::rng::Rng;
use tcpcore::wire::{self, SackBlock, SeqNum, TcpFlags, TcpOptions, TcpRepr, Timestamps};

fn seeds() -> Vec<Vec<u8>> {
    let v4 = (IpAddr::from(Ipv4Addr::new(10, 1, 2, 3)), IpAddr::from(Ipv4Addr::new(10, 3, 2, 1)));
    let v6 = (
        IpAddr::from("2001:db8::a".parse::<Ipv6Addr>().unwrap()),
        IpAddr::from("2001:db8::b".parse::<Ipv6Addr>().unwrap()),
    );
    let ts = Some(Timestamps { tsval: 5, tsecr: 6 });
    let mut sack = TcpOptions { timestamps: ts, sack_count: 3, ..Default::default() };
    sack.sack_blocks = [SackBlock { left: SeqNum(10), right: SeqNum(20) }; 4];
    let opts = [
        TcpOptions::default(),
        TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: ts,
            ..Default::default()
        },
        sack,
    ];
    let mut out = Vec::new();
    for (src, dst) in [v4, v6] {
        for (i, o) in opts.iter().enumerate() {
            let tcp = TcpRepr {
                src_port: 1234,
                dst_port: 80,
                seq: SeqNum(1),
                ack: SeqNum(2),
                flags: if i == 1 { TcpFlags::SYN } else { TcpFlags::ACK | TcpFlags::PSH },
                window: 1000,
                urgent: 0,
                options: *o,
            };
            let mut buf = vec![0u8; 200];
            let n = wire::emit(&mut buf, src, dst, &tcp, [b"payload ", b"bytes"]).unwrap();
            buf.truncate(n);
            out.push(buf);
        }
    }
    out
}

/// Recompute the IPv4 header checksum and the TCP checksum of an IPv4 packet if its lengths
/// still allow it, so mutations reach the option and flag parsers.
fn fix_checksums(p: &mut [u8]) {
    if p.len() < 20 {
        return;
    }
    let (tcp_at, tcp_end, pseudo): (usize, usize, u64) = match p[0] >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0xf) * 4;
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            if ihl < 20 || ihl > total || total > p.len() {
                return;
            }
            p[10..12].fill(0);
            let c = wire::checksum::checksum(&p[..ihl]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            let acc = wire::checksum::pseudo_header_v4(src, dst, 6, (total - ihl) as u16);
            (ihl, total, acc)
        }
        6 => {
            if p.len() < 40 {
                return;
            }
            let end = 40 + usize::from(u16::from_be_bytes([p[4], p[5]]));
            if end > p.len() || p[6] != 6 {
                return;
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&p[8..24]);
            let mut b = [0u8; 16];
            b.copy_from_slice(&p[24..40]);
            let acc = wire::checksum::pseudo_header_v6(a.into(), b.into(), 6, (end - 40) as u32);
            (40, end, acc)
        }
        _ => return,
    };
    if tcp_end < tcp_at + 18 {
        return;
    }
    let seg = &mut p[tcp_at..tcp_end];
    seg[16..18].fill(0);
    let c = wire::checksum::finish(wire::checksum::sum(seg, pseudo));
    seg[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Whatever parses must survive emit → parse unchanged (modulo SACK blocks that do not fit).
fn check(p: &[u8]) -> bool {
    let Ok(seg) = wire::parse(p) else { return false };
    let mut buf = vec![0u8; 70_000];
    let n = wire::emit(&mut buf, seg.src, seg.dst, &seg.tcp, [seg.payload, &[]]).unwrap();
    let again = wire::parse(&buf[..n]).unwrap();
    let mut want = seg.tcp;
    let k = want.options.emitted_sacks();
    want.options.sack_count = k as u8;
    for b in want.options.sack_blocks.iter_mut().skip(k) {
        *b = SackBlock::default();
    }
    assert_eq!(again.tcp, want);
    assert_eq!(again.payload, seg.payload);
    assert_eq!((again.src, again.dst), (seg.src, seg.dst));
    true
}

#[test]
fn sec_04_random_and_mutated_packets_never_panic() {
    let seeds = seeds();
    for s in &seeds {
        assert!(check(s));
    }
    let mut rng = Rng::new(0x5EC0_0004);
    let mut parsed = 0u32;
    let mut buf = Vec::with_capacity(200);
    for i in 0..200_000u32 {
        buf.clear();
        match i % 4 {
            // Pure noise, with a plausible version nibble half of the time.
            0 => {
                let len = rng.below(120) as usize;
                buf.extend((0..len).map(|_| rng.next_u32() as u8));
                if len > 0 && rng.chance(0.5) {
                    buf[0] = (buf[0] & 0x0f) | if rng.chance(0.5) { 0x40 } else { 0x60 };
                }
            }
            // A valid packet with a few flipped bytes.
            1 | 2 => {
                buf.extend_from_slice(&seeds[rng.below(seeds.len() as u64) as usize]);
                for _ in 0..=rng.below(4) {
                    let at = rng.below(buf.len() as u64) as usize;
                    buf[at] = rng.next_u32() as u8;
                }
                if rng.chance(0.2) {
                    buf.truncate(rng.below(buf.len() as u64 + 1) as usize);
                }
                // Half of these get their checksums repaired to reach the TCP parsers.
                if i % 4 == 2 {
                    fix_checksums(&mut buf);
                }
            }
            // A valid packet with random TCP header/option bytes and repaired checksums.
            _ => {
                buf.extend_from_slice(&seeds[rng.below(seeds.len() as u64) as usize]);
                let ip = if buf[0] >> 4 == 4 { 20 } else { 40 };
                let hdr_end = (ip + 60).min(buf.len());
                for b in &mut buf[ip + 12..hdr_end] {
                    if rng.chance(0.3) {
                        *b = rng.next_u32() as u8;
                    }
                }
                fix_checksums(&mut buf);
            }
        }
        if check(&buf) {
            parsed += 1;
        }
    }
    // The repaired mutations must reach a real share of successful parses.
    eprintln!("{parsed} of 200000 parsed");
    assert!(parsed > 1_000, "only {parsed} parsed");
}

#[test]
fn sec_04_every_truncation_is_an_error() {
    for s in seeds() {
        for len in 0..s.len() {
            assert!(wire::parse(&s[..len]).is_err(), "len {len}");
            // With the IP length fields rewritten to match and checksums repaired, a
            // truncated segment still never panics.
            let mut t = s[..len].to_vec();
            if t.len() >= 20 && t[0] >> 4 == 4 {
                let n = t.len() as u16;
                t[2..4].copy_from_slice(&n.to_be_bytes());
            } else if t.len() >= 40 && t[0] >> 4 == 6 {
                let n = (t.len() - 40) as u16;
                t[4..6].copy_from_slice(&n.to_be_bytes());
            }
            fix_checksums(&mut t);
            let _ = check(&t);
        }
    }
}
