//! Device offloads: super-segments for a device that does GSO/TSO, partial checksums for one
//! that completes them, and skipping the receive check for one that verified them.

mod common;

use common::*;
use tcpcore::wire::{self, TcpChecksum, TcpFlags};
use tcpcore::{ConnConfig, Endpoint, EndpointConfig, Offload};

fn gso(cfg: ConnConfig) -> ConnConfig {
    ConnConfig { offload: Offload { gso_max_size: 65_535, ..Offload::default() }, ..cfg }
}

/// Everything the connection sends now, with the `Transmit` of each.
fn transmits(sc: &mut Sc) -> Vec<(tcpcore::Transmit, Out)> {
    let mut buf = vec![0; 65_535];
    let mut v = Vec::new();
    while let Some(t) = sc.conn.poll_transmit(sc.now, &mut buf) {
        v.push((t, Out::parse(sc.now, &buf[..t.len])));
    }
    v
}

#[test]
fn gso_new_data_leaves_as_one_super_segment_of_whole_segments() {
    let mut sc = Sc::established(gso(Sc::plain()));
    sc.conn.write(&bytes(0, 100_000)).unwrap();
    let out = transmits(&mut sc);
    // The initial window (RFC 6928: 10 segments) in one packet for the device to cut.
    assert_eq!(out.len(), 1, "{:?}", out.iter().map(|(t, _)| t).collect::<Vec<_>>());
    let (t, o) = &out[0];
    assert_eq!(t.gso_size, Some(MSS as u16));
    assert!(!t.csum_partial);
    assert_data(o, D, 10 * MSS as usize);
    assert_eq!(o.payload, bytes(0, 10 * MSS as usize));
    // The ACK of the first two segments opens the window by three (slow start with ABC):
    // again one super-segment.
    sc.advance(ms(10));
    sc.deliver(Seg::ack(P, D + 2 * MSS));
    let out = transmits(&mut sc);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.gso_size, Some(MSS as u16));
    assert_data(&out[0].1, D + 10 * MSS, 4 * MSS as usize);
}

#[test]
fn gso_short_tail_and_single_segments_go_as_plain_packets() {
    let mut sc = Sc::established(gso(Sc::plain()));
    sc.conn.write(&bytes(0, 3 * MSS as usize + 100)).unwrap();
    let out = transmits(&mut sc);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].0.gso_size, Some(MSS as u16));
    assert_data(&out[0].1, D, 3 * MSS as usize);
    // The 100-byte tail is a segment of its own, not part of the super-segment.
    assert_eq!(out[1].0.gso_size, None);
    assert_data(&out[1].1, D + 3 * MSS, 100);
    assert!(out[1].1.has(TcpFlags::PSH));
    assert!(out[0].1.has(TcpFlags::PSH), "a fresh burst is pushed too (Linux)");
}

#[test]
fn psh_on_each_fresh_super_segment_like_linux() {
    // Linux pushes each TSO burst of new data (slow_start/slow-start-ack-per-1pkt.pkt:
    // `P. 1:10001(10000)`, then `P. 10001:12001(2000)` per ACK), though the buffer holds
    // more; a single segment in the middle of the buffer (limited transmit) and
    // retransmissions are not pushed. RFC 9293 §3.9.1 leaves PSH to the sender.
    let mut sc = Sc::established(gso(Sc::plain()));
    sc.conn.write(&bytes(0, 100_000)).unwrap();
    let out = transmits(&mut sc);
    assert_eq!(out.len(), 1);
    assert_data(&out[0].1, D, 10 * MSS as usize);
    assert!(out[0].1.has(TcpFlags::PSH));
    // The ACK of the first segment: slow start sends more; a burst of more than one
    // segment is pushed, a lone segment is not.
    sc.advance(ms(10));
    sc.deliver(Seg::ack(P, D + MSS));
    let out = transmits(&mut sc);
    assert!(out.iter().all(|(_, o)| o.has(TcpFlags::PSH) == (o.len() > MSS as usize)));
    // The retransmission after the RTO: one segment, no PSH.
    let out = sc.advance(secs(1));
    assert_data(&out[0], D + MSS, MSS as usize);
    assert!(!out[0].has(TcpFlags::PSH));
}

#[test]
fn gso_retransmissions_are_single_segments() {
    let mut sc = Sc::established(gso(Sc::plain()));
    sc.conn.write(&bytes(0, 10 * MSS as usize)).unwrap();
    assert_eq!(transmits(&mut sc).len(), 1);
    // The RTO (RFC 6298 §5.4): the head goes again, one segment, not a super-segment.
    let rtx = sc.next_timer();
    assert_eq!(rtx.len(), 1, "{} segments", rtx.len());
    assert_data(&rtx[0], D, MSS as usize);
}

/// Move 2 MiB from client to server over a `Pair` (which hands each packet over whole, as a
/// GRO link does) dropping the client packets `drop` selects; returns the client's packets.
fn transfer(drop: fn(usize, &Out) -> bool) -> Vec<Out> {
    let cfg = gso(ConnConfig::default());
    let mut pair = Pair::new(cfg, cfg, ms(5));
    pair.drop = Box::new(move |dir, i, out| dir == Dir::CtoS && drop(i, out));
    pair.run_until(secs(2), |p| p.client.state() == tcpcore::State::Established);
    let data = bytes(0, 2 << 20);
    let mut written = 0;
    let mut got = Vec::new();
    let mut buf = vec![0; 1 << 16];
    pair.run_until(secs(60), |p| {
        written += p.client.write(&data[written..]).unwrap_or(0);
        if let Some(s) = p.server.as_mut() {
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        got.len() == data.len()
    });
    assert!(got == data, "payload differs");
    pair.sent(Dir::CtoS).into_iter().cloned().collect()
}

/// Payload per segment with timestamps.
const TS_MSS: usize = 1448;

#[test]
fn gso_super_segments_carry_a_transfer_in_far_fewer_packets() {
    let sent = transfer(|_, _| false);
    let largest = sent.iter().map(|o| o.len()).max().unwrap();
    assert_eq!(largest % TS_MSS, 0, "a super-segment of {largest} bytes is not whole segments");
    assert!(largest + 20 + 60 <= 65_535, "super-segment of {largest} bytes");
    assert!(largest >= 20 * TS_MSS, "largest super-segment only {largest} bytes");
    let segments = (2 << 20) / TS_MSS;
    assert!(sent.len() < segments / 8, "{} packets for {segments} segments", sent.len());
}

#[test]
fn gso_super_segments_are_byte_exact_across_a_lossy_gro_link() {
    // Every 7th client packet is lost, super-segments included; SACK recovery resends the
    // lost parts segment by segment.
    let sent = transfer(|i, out| out.len() > 0 && i % 7 == 3);
    assert!(sent.iter().any(|o| o.len() > TS_MSS), "no super-segments");
}

#[test]
fn gso_tx_checksum_offload_leaves_the_pseudo_header_sum() {
    let cfg =
        ConnConfig { offload: Offload { tx_checksum: true, ..Offload::default() }, ..Sc::plain() };
    // The handshake by hand: `Sc` parses (and so verifies) everything it sees.
    let mut conn = tcpcore::Connection::connect(cfg, Sc::params());
    let mut buf = vec![0; 2048];
    assert!(conn.poll_transmit(at(0), &mut buf).unwrap().csum_partial);
    let syn_ack = Seg::syn_ack(PEER_ISS, ISS + 1).packet(PEER, US);
    conn.handle_segment(at(10), &wire::parse(&syn_ack).unwrap());
    conn.write(&bytes(0, 1000)).unwrap();
    let t = conn.poll_transmit(at(10), &mut buf).unwrap();
    assert!(t.csum_partial);
    let pkt = &mut buf[..t.len];
    // Not a valid packet as it stands...
    assert!(wire::parse(pkt).is_err());
    assert!(wire::parse_with(pkt, TcpChecksum::Partial).is_ok());
    // ...but completed as a device does (sum from the TCP header on, complement into the
    // field), it is.
    assert!(wire::ip::complete_tcp_checksum(pkt));
    let seg = wire::parse(pkt).expect("completed checksum verifies");
    assert_eq!(seg.payload, &bytes(0, 1000)[..]);
}

#[test]
fn gso_rx_checksum_offload_skips_only_the_tcp_checksum() {
    let mut pkt = Seg::syn(PEER_ISS).packet(PEER, US);
    pkt[36] ^= 0xff; // break the TCP checksum
    for (rx_checksum, accepted) in [(false, false), (true, true)] {
        let mut cfg = EndpointConfig::default();
        cfg.conn.offload.rx_checksum = rx_checksum;
        let mut ep = Endpoint::new(cfg);
        ep.add_local_addr(US.ip());
        ep.listen(US).unwrap();
        ep.handle(at(0), &pkt);
        let mut out = vec![0; 1500];
        let answered = ep.poll_transmit(at(0), &mut out).is_some();
        assert_eq!(answered, accepted, "rx_checksum {rx_checksum}");
    }
    // A broken IPv4 header checksum is caught either way.
    let mut bad_ip = Seg::syn(PEER_ISS).packet(PEER, US);
    bad_ip[10] ^= 0xff;
    assert!(wire::parse_with(&bad_ip, TcpChecksum::Partial).is_err());
}
