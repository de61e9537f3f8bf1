//! Wire formats: arbitrary bytes through every parser of `tcpcore::wire` (never a panic), and
//! everything that parses emitted again and re-parsed to the same `Repr`.
//!
//! - IPv4/IPv6 + TCP with options ([`wire::parse`], [`wire::emit`]), with the full and the
//!   offloaded checksum ([`TcpChecksum::Partial`] then [`wire::ip::complete_tcp_checksum`]);
//! - ICMP / ICMPv6 ([`icmp::parse`], [`icmp::emit`]);
//! - TCP options alone ([`TcpOptions::parse`], [`TcpOptions::emit`]);
//! - the zero-copy views' accessors ([`Ipv4Packet`], [`Ipv6Packet`], [`TcpPacket`],
//!   [`QuotedTcp`]) after their checked constructors.
//!
//! Emission is canonical: a Repr that came from a parse and went through one emit/parse round
//! trip emits the same bytes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpcore::wire::icmp::{self, QuotedTcp};
use tcpcore::wire::ipv4::Ipv4Packet;
use tcpcore::wire::ipv6::Ipv6Packet;
use tcpcore::wire::tcp::TcpPacket;
use tcpcore::wire::{self, ip::complete_tcp_checksum, Segment, TcpChecksum, TcpOptions, TcpRepr};

fuzz_target!(|data: &[u8]| {
    views(data);
    tcp_round_trip(data);
    icmp_round_trip(data);
    options_round_trip(data.get(..40).unwrap_or(data));
});

/// Every accessor of every view whose checked constructor accepts `data` (none may panic).
fn views(data: &[u8]) {
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        let _ = (p.version(), p.header_len(), p.total_len(), p.ident(), p.dont_frag());
        let _ = (p.more_frags(), p.frag_offset(), p.ttl(), p.protocol(), p.checksum());
        let _ = (p.src(), p.dst(), p.header(), p.payload(), p.verify_checksum());
        tcp_view(p.payload());
    }
    if let Ok(p) = Ipv6Packet::new_checked(data) {
        let _ = (p.version(), p.traffic_class(), p.flow_label(), p.payload_len());
        let _ = (p.next_header(), p.hop_limit(), p.src(), p.dst(), p.payload());
        let _ = (p.tcp_payload(), p.tcp_offset());
        if let Ok(tcp) = p.tcp_payload() {
            tcp_view(tcp);
        }
    }
    if let Ok(q) = QuotedTcp::new_checked(data) {
        let _ = (q.bytes(), q.is_ipv4(), q.src(), q.dst(), q.seq());
    }
}

fn tcp_view(data: &[u8]) {
    if let Ok(t) = TcpPacket::new_checked(data) {
        let _ = (t.src_port(), t.dst_port(), t.seq(), t.ack(), t.header_len(), t.flags());
        let _ = (t.window(), t.checksum(), t.urgent(), t.options(), t.payload());
        let _ = TcpRepr::parse(&t);
    }
}

/// What a Repr looks like after one emit: the SACK blocks that fit beside the other options
/// (and no stale blocks past the count, which `PartialEq` would compare).
fn canonical(mut repr: TcpRepr) -> TcpRepr {
    let n = repr.options.emitted_sacks();
    repr.options.sack_count = n as u8;
    for b in &mut repr.options.sack_blocks[n..] {
        *b = Default::default();
    }
    repr
}

fn emit_tcp(seg: &Segment<'_>, csum: TcpChecksum) -> Vec<u8> {
    let mut buf = vec![0u8; 20 + 40 + seg.tcp.header_len() + seg.payload.len()];
    // A parsed segment always fits its IP length field again: the options never grow past
    // 40 bytes and IPv6 extension headers are not emitted.
    let n = wire::emit_with(&mut buf, seg.src, seg.dst, &seg.tcp, [seg.payload, &[]], csum)
        .expect("a parsed segment emits");
    buf.truncate(n);
    buf
}

fn tcp_round_trip(data: &[u8]) {
    let full = wire::parse(data);
    let partial = wire::parse_with(data, TcpChecksum::Partial);
    let seg = match full {
        Ok(seg) => seg,
        // Without checksum verification only the checksum error may go away.
        Err(wire::ParseError::BadTcpChecksum) => return,
        Err(e) => {
            assert_eq!(partial, Err(e), "parse_with(Partial) disagrees on a non-checksum error");
            return;
        }
    };
    assert_eq!(partial, Ok(seg), "parse_with(Partial) differs from parse on a valid packet");
    let bytes = emit_tcp(&seg, TcpChecksum::Full);
    let again = wire::parse(&bytes).expect("an emitted segment parses");
    assert_eq!(again.src, seg.src);
    assert_eq!(again.dst, seg.dst);
    assert_eq!(again.payload, seg.payload);
    assert_eq!(again.tcp, canonical(seg.tcp), "TcpRepr changed in an emit/parse round trip");
    assert_eq!(emit_tcp(&again, TcpChecksum::Full), bytes, "emission is not canonical");
    // Transmit checksum offload: the device's completion gives the same packet.
    let mut offloaded = emit_tcp(&again, TcpChecksum::Partial);
    assert!(complete_tcp_checksum(&mut offloaded));
    assert_eq!(offloaded, bytes, "partial checksum completed differs from the full one");
}

fn icmp_round_trip(data: &[u8]) {
    let Ok(msg) = icmp::parse(data) else { return };
    let mut buf = vec![0u8; 40 + msg.repr.len()];
    let n = icmp::emit(&mut buf, msg.src, msg.dst, &msg.repr).expect("a parsed message emits");
    let again = icmp::parse(&buf[..n]).expect("an emitted ICMP message parses");
    assert_eq!(again, msg, "ICMP message changed in an emit/parse round trip");
    let mut twice = vec![0u8; n];
    assert_eq!(icmp::emit(&mut twice, again.src, again.dst, &again.repr), Ok(n));
    assert_eq!(twice, &buf[..n], "ICMP emission is not canonical");
}

fn options_round_trip(data: &[u8]) {
    let Ok(opts) = TcpOptions::parse(data) else { return };
    let len = opts.wire_len();
    assert!(len <= 40 && len % 4 == 0, "options wire_len {len}");
    let mut buf = [0xffu8; 40];
    opts.emit(&mut buf[..len]);
    let again = TcpOptions::parse(&buf[..len]).expect("emitted options parse");
    let repr = TcpRepr { options: opts, ..Default::default() };
    assert_eq!(again, canonical(repr).options, "options changed in an emit/parse round trip");
}
