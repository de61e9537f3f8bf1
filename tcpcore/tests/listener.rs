//! The endpoint as a server, against hand-played clients: listeners, the SYN queue and the
//! accept queue (LQ-01, LQ-02), SYN-ACK retransmission (HS-07, LQ-06), old duplicate SYNs
//! (HS-05), SYN cookies (LQ-03, LQ-04) and ISNs (HS-10). Every packet the endpoint sends is
//! read back with `wire::parse` and checked field by field, at its exact virtual time.

mod common;
mod lq_util;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use common::{ms, secs, Seg};
use lq_util::{client, dst, plain, src, Srv, C_ISN, SERVER};
use tcpcore::wire::{TcpFlags, TcpOptions, Timestamps};
use tcpcore::{
    ConnConfig, EndpointConfig, EndpointError, Instant, ListenOptions, State, SynCookies,
};

fn opts(backlog: u32, syn_backlog: u32, syn_cookies: SynCookies) -> ListenOptions {
    ListenOptions { backlog, syn_backlog, syn_cookies, ..ListenOptions::default() }
}

fn seeded(seed: u64) -> EndpointConfig {
    EndpointConfig { seed, ..EndpointConfig::default() }
}

/// Times (since zero) of packets, in milliseconds.
fn times(v: &[common::Out]) -> Vec<u64> {
    v.iter().map(|o| o.at.as_micros() / 1000).collect()
}

// ---------------------------------------------------------------------------------------------
// HS-01, HS-05, HS-07: the passive side of the handshake

#[test]
fn hs_01_listener_answers_syn_and_port_without_listener_gets_rst_ack() {
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let sa = s.syn(client(40000), Seg::syn(C_ISN));
    assert_eq!(src(&sa), SERVER);
    assert_eq!(sa.tcp.options.mss, Some(1460), "our MSS: MTU 1500 less 40");
    assert_eq!(s.ep.half_open_count(), 1);
    assert_eq!((s.ep.stats().syns_received, s.ep.stats().syn_acks_sent), (1, 1));

    // RFC 9293 §3.10.7.1: no listener on port 81 → <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>.
    let closed = SocketAddr::new(SERVER.ip(), 81);
    assert_eq!(s.deliver_to(client(40001), closed, Seg::syn(7_000)), None);
    let rst = s.expect_one();
    rst.assert_flags(TcpFlags::RST | TcpFlags::ACK).assert_seq_ack(0, 7_001);
    assert_eq!((src(&rst), dst(&rst)), (closed, client(40001)));
    assert_eq!((s.ep.stats().no_connection, s.ep.stats().resets_sent), (1, 1));
    assert_eq!(s.ep.half_open_count(), 1, "no state for the closed port");

    // The port gets a listener: the same SYN now gets a SYN-ACK.
    s.ep.listen(closed).unwrap();
    assert_eq!(s.deliver_to(client(40001), closed, Seg::syn(7_000)), None);
    let sa = s.expect_one();
    sa.assert_flags(TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!((sa.ack(), src(&sa)), (7_001, closed));
}

#[test]
fn hs_01_listen_rejects_port_zero_and_a_second_listener_on_the_same_address() {
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    assert_eq!(s.ep.listen(SERVER), Err(EndpointError::AddrInUse));
    assert_eq!(s.ep.listen(SocketAddr::new(SERVER.ip(), 0)), Err(EndpointError::InvalidAddress));
}

#[test]
fn hs_01_wildcard_listener_answers_from_the_address_the_syn_was_sent_to() {
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let any = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8080);
    s.ep.listen_with(any, opts(16, 16, SynCookies::Never)).unwrap();
    let to = SocketAddr::new(SERVER.ip(), 8080);
    s.deliver_to(client(1), to, Seg::syn(C_ISN));
    let sa = s.expect_one();
    sa.assert_flags(TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!((src(&sa), dst(&sa)), (to, client(1)));
    let h = s.deliver_to(client(1), to, Seg::ack(C_ISN + 1, sa.seq().wrapping_add(1))).unwrap();
    assert_eq!(s.ep.accept(any), Some(h));
    assert_eq!(s.conns[&h].local_addr(), to);
    assert_eq!(s.ep.accept(SERVER), None, "the exact listener on port 80 is another one");
}

#[test]
fn lq_01_unlisten_returns_the_accept_queue_and_forgets_half_open_entries() {
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let (h1, _) = s.handshake(client(1));
    let isn2 = s.syn(client(2), Seg::syn(C_ISN)).seq();
    assert_eq!(s.ep.unlisten(SERVER), vec![h1]);
    assert_eq!(s.ep.half_open_count(), 0);
    assert!(s.advance(secs(70)).is_empty(), "no SYN-ACK retransmissions for a closed listener");
    // No listener: the late ACK and a new SYN are reset.
    s.deliver(client(2), Seg::ack(C_ISN + 1, isn2.wrapping_add(1)));
    s.expect_one().assert_flags(TcpFlags::RST).assert_seq_ack(isn2.wrapping_add(1), 0);
    s.deliver(client(3), Seg::syn(C_ISN));
    s.expect_one().assert_flags(TcpFlags::RST | TcpFlags::ACK).assert_seq_ack(0, C_ISN + 1);
    assert_eq!(s.ep.unlisten(SERVER), vec![]);
}

#[test]
fn hs_05_old_duplicate_syn_reset_by_client_drops_half_open_entry() {
    // syn_backlog 1: whether the slot is freed shows in how the next SYN is treated.
    let mut s = Srv::new(seeded(1), opts(16, 1, SynCookies::WhenFull));
    let c = client(40000);
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    assert_eq!(s.ep.half_open_count(), 1);

    // A RST with the wrong sequence number is not the client's answer: ignored.
    s.advance(ms(10));
    s.deliver(c, Seg::rst(C_ISN + 2));
    s.expect_none();
    assert_eq!((s.ep.half_open_count(), s.ep.stats().syn_queue_reset), (1, 0));

    // The client in SYN-SENT (another ISN) finds our ACK unacceptable and answers
    // <SEQ=SEG.ACK><CTL=RST>: SEG.ACK is ISN_c + 1. SYN-RECEIVED → LISTEN.
    s.deliver(c, Seg::rst(C_ISN + 1));
    s.expect_none();
    assert_eq!(s.ep.half_open_count(), 0);
    assert_eq!(s.ep.stats().syn_queue_reset, 1);
    assert_eq!(s.ep.accept(SERVER), None);
    assert_eq!(s.ep.accept_queue_len(SERVER), 0);

    // No SYN-ACK retransmissions for the dropped entry.
    assert!(s.advance(secs(70)).is_empty());
    assert_eq!(s.ep.stats().syn_ack_retransmits, 0);

    // A late ACK of the old SYN-ACK finds LISTEN: <SEQ=SEG.ACK><CTL=RST>, no connection.
    assert_eq!(s.deliver(c, Seg::ack(C_ISN + 1, isn.wrapping_add(1))), None);
    s.expect_one().assert_flags(TcpFlags::RST).assert_seq_ack(isn.wrapping_add(1), 0);
    assert_eq!(s.ep.connection_count(), 0);

    // The half-open slot was given back: the next SYN gets an entry, not a cookie.
    s.syn(client(40001), Seg::syn(9_000));
    assert_eq!((s.ep.half_open_count(), s.ep.stats().cookies_sent), (1, 0));
}

#[test]
fn hs_07_syn_ack_retransmitted_with_same_isn_then_entry_dropped_at_63_s() {
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let c = client(40000);
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    assert_eq!(s.ep.poll_timeout(), Some(Instant::from_secs(1)));

    let out = s.advance_to(Instant::from_millis(62_999));
    assert_eq!(times(&out), [1_000, 3_000, 7_000, 15_000, 31_000], "backoff 1, 2, 4, 8, 16 s");
    for o in &out {
        o.assert_flags(TcpFlags::SYN | TcpFlags::ACK).assert_seq_ack(isn, C_ISN + 1);
        assert_eq!(dst(o), c);
    }
    assert_eq!(s.ep.half_open_count(), 1);
    assert_eq!(s.ep.poll_timeout(), Some(Instant::from_secs(63)));

    // After the fifth retransmission's 32 s: dropped, nothing sent.
    assert!(s.advance(ms(1)).is_empty());
    assert_eq!(s.ep.half_open_count(), 0);
    let st = s.ep.stats();
    assert_eq!((st.syn_acks_sent, st.syn_ack_retransmits, st.syn_queue_expired), (6, 5, 1));
    assert_eq!(s.ep.poll_timeout(), None);
    assert!(s.advance(secs(300)).is_empty());
}

#[test]
fn lq_08_defer_accept_drops_bare_acks_until_data_like_linux() {
    // Linux TCP_DEFER_ACCEPT of 5 s = 3 SYN-ACK timeouts (gVisor's tcp_defer_accept.pkt).
    let mut s = Srv::new(seeded(1), ListenOptions { defer_accept: 3, ..ListenOptions::default() });
    let c = client(40000);
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    // The bare ACK completing the handshake is dropped: no connection, nothing sent.
    assert_eq!(s.deliver(c, Seg::ack(C_ISN + 1, isn + 1)), None);
    s.expect_none();
    assert_eq!(s.ep.half_open_count(), 1);
    // No SYN-ACK retransmission at 1 s: the peer has the connection.
    assert!(s.advance_to(Instant::from_millis(2_500)).is_empty());
    assert_eq!(s.deliver(c, Seg::ack(C_ISN + 1, isn + 1)), None, "still deferred");
    // Data completes it.
    s.advance(ms(300));
    let h = s.deliver(c, Seg::ack(C_ISN + 1, isn + 1).data(b"data"));
    assert!(h.is_some(), "data ends the deferral");
    assert_eq!(s.ep.stats().defer_accept_drops, 2);
}

#[test]
fn lq_08_defer_accept_resends_the_syn_ack_at_its_end_then_takes_a_bare_ack_like_linux() {
    // TCP_DEFER_ACCEPT of 3 s = 2 timeouts (gVisor's tcp_defer_accept_timeout.pkt): the
    // SYN-ACK goes again at the last deferred timeout (3 s), then a bare ACK is accepted.
    let mut s = Srv::new(seeded(1), ListenOptions { defer_accept: 2, ..ListenOptions::default() });
    let c = client(40000);
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    assert_eq!(s.deliver(c, Seg::ack(C_ISN + 1, isn + 1)), None);
    let out = s.advance_to(Instant::from_millis(3_500));
    assert_eq!(times(&out), [3_000], "no SYN-ACK at 1 s, one at 3 s");
    out[0].assert_flags(TcpFlags::SYN | TcpFlags::ACK).assert_seq_ack(isn, C_ISN + 1);
    assert!(s.deliver(c, Seg::ack(C_ISN + 1, isn + 1)).is_some(), "accepted after it");
}

#[test]
fn hs_01_listener_max_segment_set_after_listen_clamps_the_syn_ack_mss_like_linux() {
    // mss/mss-setsockopt-tcp_maxseg-server.pkt: TCP_MAXSEG on the listening socket.
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let o = ListenOptions { max_segment: Some(1100), ..ListenOptions::default() };
    s.ep.set_listen_options(SERVER, o).unwrap();
    let c = client(40000);
    let sa = s.syn(c, Seg::syn(C_ISN));
    assert_eq!(sa.tcp.options.mss, Some(1100));
    let h = s.deliver(c, Seg::ack(C_ISN + 1, sa.seq() + 1)).expect("established");
    assert_eq!(s.conns[&h].info().snd_mss, 1100, "the peer's 1460 capped");
}

#[test]
fn hs_07_retransmitted_client_syn_gets_the_syn_ack_again_at_once() {
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let c = client(40000);
    let first = s.syn(c, Seg::syn(C_ISN));
    s.advance(ms(500));
    // Same SYN (same ISN): our SYN-ACK was lost. Resent now, same ISN, no new entry.
    let again = s.syn(c, Seg::syn(C_ISN));
    assert_eq!(again.at, Instant::from_millis(500));
    assert_eq!(again.seq(), first.seq());
    assert_eq!(s.ep.half_open_count(), 1);
    assert_eq!(s.ep.stats().syn_acks_sent, 2);
    // A SYN from the same 4-tuple with another ISN does not replace the entry.
    s.deliver(c, Seg::syn(C_ISN + 77));
    s.expect_none();
    assert_eq!(s.ep.half_open_count(), 1);
    // The backoff schedule is unchanged: next at 1 s.
    let out = s.advance(ms(600));
    assert_eq!(times(&out), [1_000]);
    out[0].assert_seq_ack(first.seq(), C_ISN + 1);
    // The handshake still completes, with the SYN-ACK's ISN.
    let h = s.deliver(c, Seg::ack(C_ISN + 1, first.seq().wrapping_add(1))).unwrap();
    assert_eq!(s.conns[&h].state(), State::Established);
    assert_eq!(s.ep.half_open_count(), 0);
}

/// LQ-07: a burst of duplicate SYNs to a half-open entry gets at most one SYN-ACK per
/// `invalid_ack_interval` (500 ms; Linux answers them through `tcp_oow_rate_limited` with
/// the request's `last_oow_ack_time`), so a peer cannot turn one entry into a reflector.
#[test]
fn lq_07_syn_ack_for_duplicate_syns_is_rate_limited() {
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let c = client(40000);
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    s.advance(ms(100));
    // The first duplicate is answered at once (HS-07) ...
    s.syn(c, Seg::syn(C_ISN)).assert_seq_ack(isn, C_ISN + 1);
    // ... the next 20 within 500 ms of it are not.
    for _ in 0..20 {
        s.advance(ms(10));
        s.deliver(c, Seg::syn(C_ISN));
        s.expect_none();
    }
    assert_eq!(s.ep.stats().syn_acks_sent, 2);
    assert_eq!(s.ep.stats().dup_syns_rate_limited, 20);
    // 500 ms after the last answered duplicate, one more is answered.
    s.advance(ms(300));
    s.syn(c, Seg::syn(C_ISN)).assert_seq_ack(isn, C_ISN + 1);
    assert_eq!(s.ep.half_open_count(), 1);
}

#[test]
fn hs_07_rtt_sample_only_from_a_syn_ack_sent_once() {
    // Sent once, ACKed 30 ms later: SRTT 30 ms (RFC 6298 §2.2).
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let c = client(40000);
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    s.advance(ms(30));
    let h = s.deliver(c, Seg::ack(C_ISN + 1, isn.wrapping_add(1))).unwrap();
    assert_eq!(s.conns[&h].info().srtt, Some(ms(30)));

    // Resent for a retransmitted SYN (whichever copy the ACK answers is unknown): no sample
    // (Karn, RFC 6298 §3; Linux counts it in num_retrans).
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    s.syn(c, Seg::syn(C_ISN));
    s.advance(ms(500));
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    s.advance(ms(30));
    let h = s.deliver(c, Seg::ack(C_ISN + 1, isn.wrapping_add(1))).unwrap();
    assert_eq!(s.conns[&h].info().srtt, None, "no RTT sample from an ambiguous SYN-ACK");
    // ... yet the resend does not use up a timer retry: still 5 timer retransmissions.
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    s.syn(c, Seg::syn(C_ISN));
    s.advance(ms(500));
    s.syn(c, Seg::syn(C_ISN));
    let out = s.advance(secs(70));
    assert_eq!(times(&out), [1_000, 3_000, 7_000, 15_000, 31_000]);
}

#[test]
fn hs_07_after_a_syn_ack_timeout_data_starts_with_a_3_s_rto() {
    // RFC 6298 §5.7: the SYN-ACK timed out (no RTT sample): data transmission begins with
    // RTO 3 s (Linux TCP_TIMEOUT_FALLBACK).
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let c = client(40000);
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    assert_eq!(times(&s.advance(ms(1_100))), [1_000]);
    let h = s.deliver(c, Seg::ack(C_ISN + 1, isn.wrapping_add(1))).unwrap();
    let info = s.conns[&h].info();
    assert_eq!((info.srtt, info.rto), (None, secs(3)));

    // Without a timeout: the first sample sets the RTO (30 ms + 4 x 15 ms, clamped to 200 ms).
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    s.advance(ms(30));
    let h = s.deliver(c, Seg::ack(C_ISN + 1, isn.wrapping_add(1))).unwrap();
    assert_eq!(s.conns[&h].info().rto, ms(200));
}

#[test]
fn hs_04_third_segment_with_data_completes_and_delivers() {
    for cookies in [SynCookies::Never, SynCookies::Always] {
        let mut s = Srv::new(seeded(1), opts(16, 16, cookies));
        let c = client(40000);
        let isn = s.syn(c, Seg::syn(C_ISN)).seq();
        let third = Seg::ack(C_ISN + 1, isn.wrapping_add(1)).data(b"hello").psh();
        let h = s.deliver(c, third).expect("data with an acceptable ACK completes");
        let conn = s.conns.get_mut(&h).unwrap();
        assert_eq!(conn.state(), State::Established);
        let mut b = [0u8; 16];
        assert_eq!(conn.read(&mut b), Ok(5), "{cookies:?}");
        assert_eq!(&b[..5], b"hello");
    }
}

#[test]
fn hs_04_unacceptable_ack_in_syn_received_gets_rst_and_keeps_the_entry() {
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let c = client(40000);
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    // RFC 9293 §3.10.7.4 SYN-RECEIVED: bad ACK → <SEQ=SEG.ACK><CTL=RST>.
    assert_eq!(s.deliver(c, Seg::ack(C_ISN + 1, isn.wrapping_add(9))), None);
    s.expect_one().assert_flags(TcpFlags::RST).assert_seq_ack(isn.wrapping_add(9), 0);
    assert_eq!(s.ep.half_open_count(), 1);
    assert!(s.deliver(c, Seg::ack(C_ISN + 1, isn.wrapping_add(1))).is_some());
}

// ---------------------------------------------------------------------------------------------
// LQ-06: the SYN-ACK retry limit

#[test]
fn lq_06_synack_retries_configurable_down() {
    for (retries, sends, expiry) in
        [(2u8, vec![1_000u64, 3_000], 7_000u64), (0, vec![], 1_000), (1, vec![1_000], 3_000)]
    {
        let conn = ConnConfig { synack_retries: retries, ..ConnConfig::default() };
        let mut s = Srv::with_conn(conn, ListenOptions::default());
        s.syn(client(40000), Seg::syn(C_ISN));
        let out = s.advance_to(Instant::from_millis(expiry - 1));
        assert_eq!(times(&out), sends, "synack_retries {retries}");
        assert_eq!(s.ep.half_open_count(), 1, "synack_retries {retries}");
        assert!(s.advance(ms(1)).is_empty());
        assert_eq!(s.ep.half_open_count(), 0, "dropped at {expiry} ms");
        assert_eq!(s.ep.stats().syn_queue_expired, 1);
        assert_eq!(s.ep.stats().syn_ack_retransmits, sends.len() as u64);
    }
    assert_eq!(ConnConfig::default().synack_retries, 5, "tcp_synack_retries");
}

// ---------------------------------------------------------------------------------------------
// LQ-01, LQ-02: the two queues

#[test]
fn lq_01_syn_queue_bounded_by_syn_backlog_accept_queue_by_min_backlog_somaxconn() {
    assert_eq!(EndpointConfig::default().somaxconn, 4096);
    let d = ListenOptions::default();
    assert_eq!((d.backlog, d.syn_backlog, d.syn_cookies), (1024, 1024, SynCookies::WhenFull));

    // backlog 10 but somaxconn 3: the accept queue holds 3.
    let cfg = EndpointConfig { seed: 1, somaxconn: 3, ..EndpointConfig::default() };
    let mut s = Srv::new(cfg, opts(10, 2, SynCookies::Never));
    let isn1 = s.syn(client(1), Seg::syn(C_ISN)).seq();
    let isn2 = s.syn(client(2), Seg::syn(C_ISN)).seq();
    assert_eq!(s.ep.half_open_count(), 2);
    // SYN queue full, no cookies: dropped.
    s.deliver(client(3), Seg::syn(C_ISN));
    s.expect_none();
    assert_eq!((s.ep.half_open_count(), s.ep.stats().syn_queue_drops), (2, 1));

    // Completed handshakes move to the accept queue and wait there.
    let h1 = s.deliver(client(1), Seg::ack(C_ISN + 1, isn1.wrapping_add(1))).unwrap();
    let h2 = s.deliver(client(2), Seg::ack(C_ISN + 1, isn2.wrapping_add(1))).unwrap();
    assert_eq!((s.ep.half_open_count(), s.ep.accept_queue_len(SERVER)), (0, 2));
    let (h3, _) = s.handshake(client(3));
    assert_eq!(s.ep.accept_queue_len(SERVER), 3);
    assert_eq!(s.ep.stats().passive_opens, 3);

    // min(10, 3) reached: SYNs are dropped (Linux ListenOverflows).
    s.deliver(client(4), Seg::syn(C_ISN));
    s.expect_none();
    assert_eq!((s.ep.half_open_count(), s.ep.stats().listen_overflows), (0, 1));

    // A queued connection the owner closes leaves the queue and frees its place.
    let c2 = s.conns.remove(&h2).unwrap();
    s.ep.connection_closed(h2, &c2);
    assert_eq!(s.ep.accept_queue_len(SERVER), 2);
    let (h4, _) = s.handshake(client(4));
    assert_eq!(s.ep.accept_queue_len(SERVER), 3);

    // accept() hands them out oldest first, never the closed one.
    assert_eq!(s.ep.accept(SERVER), Some(h1));
    assert_eq!(s.ep.accept(SERVER), Some(h3));
    assert_eq!(s.ep.accept(SERVER), Some(h4));
    assert_eq!(s.ep.accept(SERVER), None);
    assert_eq!(s.ep.accept_queue_len(SERVER), 0);

    // Accepted connections no longer count against the backlog; closing one later leaves
    // the queue alone.
    let later: Vec<_> = (5..8).map(|p| s.handshake(client(p)).0).collect();
    assert_eq!(s.ep.accept_queue_len(SERVER), 3);
    let c1 = s.conns.remove(&h1).unwrap();
    s.ep.connection_closed(h1, &c1);
    assert_eq!(s.ep.accept_queue_len(SERVER), 3);
    assert_eq!(s.ep.accept(SERVER), Some(later[0]));
    assert_eq!(s.ep.connection_count(), 5, "h3, h4 and three later");
}

#[test]
fn lq_02_accept_queue_full_drops_completing_ack_until_accept_makes_room() {
    let mut s = Srv::new(seeded(1), opts(1, 16, SynCookies::Never));
    let (c1, c2, c3) = (client(1), client(2), client(3));
    let isn1 = s.syn(c1, Seg::syn(C_ISN)).seq();
    let isn2 = s.syn(c2, Seg::syn(C_ISN)).seq();
    let h1 = s.deliver(c1, Seg::ack(C_ISN + 1, isn1.wrapping_add(1))).unwrap();
    assert_eq!(s.ep.accept_queue_len(SERVER), 1);

    // Queue full: c2's ACK is dropped silently, its half-open entry kept.
    s.advance(ms(100));
    assert_eq!(s.deliver(c2, Seg::ack(C_ISN + 1, isn2.wrapping_add(1))), None);
    s.expect_none();
    assert_eq!((s.ep.half_open_count(), s.ep.stats().listen_overflows), (1, 1));
    // New SYNs are dropped while the queue is full.
    s.deliver(c3, Seg::syn(C_ISN));
    s.expect_none();
    assert_eq!((s.ep.half_open_count(), s.ep.stats().listen_overflows), (1, 2));

    // c2's entry still retransmits its SYN-ACK at 1 s, prompting the client's ACK again.
    let out = s.advance_to(Instant::from_millis(1_100));
    assert_eq!(times(&out), [1_000]);
    out[0].assert_flags(TcpFlags::SYN | TcpFlags::ACK).assert_seq_ack(isn2, C_ISN + 1);
    assert_eq!(dst(&out[0]), c2);

    // Still full: dropped again.
    assert_eq!(s.deliver(c2, Seg::ack(C_ISN + 1, isn2.wrapping_add(1))), None);
    assert_eq!(s.ep.stats().listen_overflows, 3);

    // accept() makes room: the next ACK completes.
    assert_eq!(s.ep.accept(SERVER), Some(h1));
    let h2 = s.deliver(c2, Seg::ack(C_ISN + 1, isn2.wrapping_add(1))).unwrap();
    s.expect_none();
    assert_eq!(s.conns[&h2].state(), State::Established);
    assert_eq!((s.ep.half_open_count(), s.ep.accept_queue_len(SERVER)), (0, 1));
    assert_eq!(s.ep.stats().resets_sent, 0, "no RST without abort_on_overflow");
    assert!(s.advance(secs(70)).is_empty(), "the completed entry retransmits nothing");
}

#[test]
fn lq_02_abort_on_overflow_answers_the_completing_ack_with_rst() {
    let o = ListenOptions { abort_on_overflow: true, ..opts(1, 16, SynCookies::Never) };
    let mut s = Srv::new(seeded(1), o);
    let (c1, c2) = (client(1), client(2));
    let isn1 = s.syn(c1, Seg::syn(C_ISN)).seq();
    let isn2 = s.syn(c2, Seg::syn(C_ISN)).seq();
    s.deliver(c1, Seg::ack(C_ISN + 1, isn1.wrapping_add(1))).unwrap();

    assert_eq!(s.deliver(c2, Seg::ack(C_ISN + 1, isn2.wrapping_add(1))), None);
    let rst = s.expect_one();
    rst.assert_flags(TcpFlags::RST).assert_seq_ack(isn2.wrapping_add(1), 0);
    assert_eq!(dst(&rst), c2);
    assert_eq!(s.ep.half_open_count(), 0, "the entry is gone");
    assert_eq!((s.ep.stats().listen_overflows, s.ep.stats().resets_sent), (1, 1));
    assert_eq!(s.ep.accept_queue_len(SERVER), 1);
    assert!(s.advance(secs(70)).is_empty(), "nothing left to retransmit");
}

// ---------------------------------------------------------------------------------------------
// LQ-03: a full SYN queue

#[test]
fn lq_03_syn_queue_full_without_cookies_drops_new_syns() {
    let mut s = Srv::new(seeded(1), opts(16, 1, SynCookies::Never));
    s.syn(client(1), Seg::syn(C_ISN));
    for p in 2..5 {
        s.deliver(client(p), Seg::syn(C_ISN));
        s.expect_none();
    }
    let st = s.ep.stats();
    assert_eq!((st.syns_received, st.syn_queue_drops, st.cookies_sent), (4, 3, 0));
    assert_eq!(s.ep.half_open_count(), 1);
}

#[test]
fn lq_03_syn_queue_full_when_full_cookies_answer_without_state() {
    let mut s = Srv::new(seeded(1), opts(16, 1, SynCookies::WhenFull));
    let isn1 = s.syn(client(1), Seg::syn(C_ISN)).seq();
    assert_eq!(s.ep.stats().cookies_sent, 0, "room in the queue: a normal entry");
    let cookie = s.syn(client(2), Seg::syn(C_ISN)).seq();
    let st = s.ep.stats();
    assert_eq!((st.cookies_sent, st.syn_acks_sent, st.syn_queue_drops), (1, 2, 0));
    assert_eq!(s.ep.half_open_count(), 1, "no state for the cookie");

    // Only the real entry retransmits.
    let out = s.advance_to(Instant::from_millis(1_500));
    assert_eq!(times(&out), [1_000]);
    assert_eq!((dst(&out[0]), out[0].seq()), (client(1), isn1));

    // The cookie's ACK creates the connection from nothing.
    let h = s.deliver(client(2), Seg::ack(C_ISN + 1, cookie.wrapping_add(1))).unwrap();
    assert_eq!(s.conns[&h].state(), State::Established);
    assert_eq!(s.ep.stats().cookies_accepted, 1);
    assert_eq!(s.ep.accept(SERVER), Some(h));
    assert_eq!(s.ep.half_open_count(), 1);
}

#[test]
fn lq_03_always_cookies_every_syn_and_keeps_no_half_open_state() {
    let mut s = Srv::new(seeded(1), opts(16, 1024, SynCookies::Always));
    let cookies: Vec<u32> = (1..4).map(|p| s.syn(client(p), Seg::syn(C_ISN)).seq()).collect();
    assert_eq!(s.ep.half_open_count(), 0);
    assert_eq!(s.ep.stats().cookies_sent, 3);
    assert_eq!(s.ep.poll_timeout(), None, "no SYN-ACK retransmission timer");
    assert!(s.advance(secs(10)).is_empty());
    // Still within the cookie's lifetime: each ACK completes.
    for (p, cookie) in (1..4).zip(&cookies) {
        let h = s.deliver(client(p), Seg::ack(C_ISN + 1, cookie.wrapping_add(1))).unwrap();
        assert_eq!(s.conns[&h].remote_addr(), client(p));
    }
    assert_eq!((s.ep.stats().cookies_accepted, s.ep.accept_queue_len(SERVER)), (3, 3));
}

// ---------------------------------------------------------------------------------------------
// LQ-04: what a cookie restores, and what it refuses

/// A SYN with MSS `mss` (or none) at an `Always` listener, then its completing ACK: the new
/// connection's TcpInfo.
fn cookie_conn(mss: Option<u16>, v6: bool) -> tcpcore::TcpInfo {
    let mut s = Srv::new(seeded(1), opts(16, 16, SynCookies::Always));
    let (server, c) = if v6 {
        let ip = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
        let server = SocketAddr::new(ip, 80);
        s.ep.listen_with(server, opts(16, 16, SynCookies::Always)).unwrap();
        (server, SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)), 4000))
    } else {
        (SERVER, client(40000))
    };
    let mut syn = Seg::syn(C_ISN);
    syn.options.mss = mss;
    s.deliver_to(c, server, syn);
    let sa = s.expect_one();
    assert_eq!(s.ep.half_open_count(), 0);
    let h = s.deliver_to(c, server, Seg::ack(C_ISN + 1, sa.seq().wrapping_add(1))).unwrap();
    s.conns[&h].info()
}

#[test]
fn lq_04_cookie_carries_mss_from_the_table() {
    for (mss, v6, want) in [
        (Some(1460), false, 1460),
        (Some(1400), false, 1300),
        (Some(1300), false, 1300),
        (Some(1450), false, 1440),
        (None, false, 536),
        (None, true, 1220),
        (Some(1440), true, 1440),
    ] {
        let info = cookie_conn(mss, v6);
        assert_eq!(info.snd_mss, want, "SYN MSS {mss:?} (IPv6 {v6})");
        assert_eq!(info.state, State::Established);
        assert_eq!((info.wscale, info.sack, info.timestamps), ((0, 0), false, false));
    }
}

/// The client's SYN options: MSS 1460, timestamps, and optionally WS and SACK.
fn ts_syn(wscale: Option<u8>, sack: bool) -> Seg {
    let o = TcpOptions {
        mss: Some(1460),
        window_scale: wscale,
        sack_permitted: sack,
        timestamps: Some(Timestamps { tsval: 100, tsecr: 0 }),
        ..TcpOptions::default()
    };
    Seg::syn(C_ISN).opts(o)
}

#[test]
fn lq_04_cookie_with_timestamps_keeps_window_scale_and_sack_in_tsval_low_bits() {
    // (SYN WS, SYN SACK, low 6 bits of our TSval, our/peer shift)
    for (ws, sack, bits, wscale) in [
        (Some(7), true, 0x17, (7, 7)),
        (None, true, 0x1f, (0, 0)),
        (Some(14), false, 0x0e, (7, 14)),
        (Some(0), false, 0x00, (7, 0)),
    ] {
        let mut s = Srv::new(seeded(1), opts(16, 16, SynCookies::Always));
        s.advance(secs(5));
        let c = client(40000);
        let sa = s.syn(c, ts_syn(ws, sack));
        let o = sa.tcp.options;
        let ts = o.timestamps.expect("timestamps answered");
        assert_eq!(ts.tsecr, 100);
        assert_eq!(ts.tsval & 0x3f, bits, "SYN WS {ws:?} SACK {sack}");
        assert_eq!(o.window_scale, ws.map(|_| 7), "6 MiB auto-tuning maximum: shift 7");
        assert_eq!(o.sack_permitted, sack);
        assert_eq!(s.ep.half_open_count(), 0);

        s.advance(ms(20));
        let ack = Seg::ack(C_ISN + 1, sa.seq().wrapping_add(1)).ts(101, ts.tsval);
        let h = s.deliver(c, ack).expect("cookie verified");
        let info = s.conns[&h].info();
        assert_eq!(info.state, State::Established);
        assert_eq!(info.wscale, wscale, "SYN WS {ws:?}");
        assert_eq!((info.sack, info.timestamps), (sack, true));
        assert_eq!(info.snd_mss, 1448, "1460 less the timestamp option");
    }
}

#[test]
fn lq_04_cookie_without_timestamps_offers_no_window_scale_or_sack() {
    let mut s = Srv::new(seeded(1), opts(16, 16, SynCookies::Always));
    let o = TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        ..TcpOptions::default()
    };
    let sa = s.syn(client(40000), Seg::syn(C_ISN).opts(o));
    let so = sa.tcp.options;
    assert_eq!((so.mss, so.window_scale, so.sack_permitted), (Some(1460), None, false));
    assert_eq!(so.timestamps, None);
    let h = s.deliver(client(40000), Seg::ack(C_ISN + 1, sa.seq().wrapping_add(1))).unwrap();
    let info = s.conns[&h].info();
    assert_eq!((info.wscale, info.sack, info.snd_mss), ((0, 0), false, 1460));

    // A normal (queued) SYN-ACK offers everything the SYN did: the difference is the cookie.
    let mut q = Srv::new(seeded(1), ListenOptions::default());
    let so = q.syn(client(40000), Seg::syn(C_ISN).opts(o)).tcp.options;
    assert_eq!((so.window_scale, so.sack_permitted), (Some(7), true));
}

#[test]
fn lq_04_wrong_cookie_is_dropped_and_counted() {
    let mut s = Srv::new(seeded(1), opts(16, 16, SynCookies::Always));
    let c = client(40000);
    let cookie = s.syn(c, Seg::syn(C_ISN)).seq();
    for bad in [
        Seg::ack(C_ISN + 1, cookie.wrapping_add(1 + 0x1000)),
        Seg::ack(C_ISN + 1, cookie.wrapping_add(1 ^ 0x8000_0000)),
        Seg::ack(C_ISN + 1 + 100_000, cookie.wrapping_add(1)),
        // MSS index 3 (1460) + 4: beyond the table. (Like Linux, an error of less than the
        // table size only moves the index: 4 guesses in 2^24 instead of 1.)
        Seg::ack(C_ISN + 1, cookie.wrapping_add(1 + 4)),
    ] {
        assert_eq!(s.deliver(c, bad.clone()), None, "{bad:?}");
        s.expect_none();
    }
    // Another client replaying this client's cookie.
    assert_eq!(s.deliver(client(40001), Seg::ack(C_ISN + 1, cookie.wrapping_add(1))), None);
    s.expect_none();
    assert_eq!(s.ep.stats().cookies_rejected, 5);
    assert_eq!((s.ep.stats().cookies_accepted, s.ep.connection_count()), (0, 0));
    assert_eq!(s.ep.accept(SERVER), None);
    // The right one still works.
    assert!(s.deliver(c, Seg::ack(C_ISN + 1, cookie.wrapping_add(1))).is_some());
}

#[test]
fn lq_04_cookie_older_than_two_minute_counts_is_rejected() {
    let mut s = Srv::new(seeded(1), opts(16, 16, SynCookies::Always));
    s.advance(secs(30));
    let (c1, c2) = (client(1), client(2));
    let k1 = s.syn(c1, Seg::syn(C_ISN)).seq();
    let k2 = s.syn(c2, Seg::syn(C_ISN)).seq();
    // Issued in minute 0: valid through minute 1 (Linux MAX_SYNCOOKIE_AGE 2).
    s.advance_to(Instant::from_millis(119_999));
    assert!(s.deliver(c1, Seg::ack(C_ISN + 1, k1.wrapping_add(1))).is_some());
    s.advance(ms(1));
    assert_eq!(s.deliver(c2, Seg::ack(C_ISN + 1, k2.wrapping_add(1))), None);
    s.expect_none();
    assert_eq!((s.ep.stats().cookies_accepted, s.ep.stats().cookies_rejected), (1, 1));
    assert_eq!(s.ep.connection_count(), 1);
}

#[test]
fn lq_04_when_full_checks_cookies_only_after_a_recent_overflow() {
    let mut s = Srv::new(seeded(1), opts(16, 1, SynCookies::WhenFull));
    // No overflow yet: an ACK at the listener is answered <SEQ=SEG.ACK><CTL=RST>.
    s.deliver(client(9), Seg::ack(C_ISN + 1, 12_345));
    s.expect_one().assert_flags(TcpFlags::RST).assert_seq_ack(12_345, 0);
    assert_eq!(s.ep.stats().cookies_rejected, 0);
    // Overflow: a cookie, which verifies a little later.
    s.syn(client(1), Seg::syn(C_ISN));
    let k = s.syn(client(2), Seg::syn(C_ISN)).seq();
    s.advance(secs(50));
    assert!(s.deliver(client(2), Seg::ack(C_ISN + 1, k.wrapping_add(1))).is_some());
    // A bad cookie during the overflow window is dropped without a RST.
    s.deliver(client(9), Seg::ack(C_ISN + 1, 12_345));
    s.expect_none();
    assert_eq!(s.ep.stats().cookies_rejected, 1);
}

#[test]
fn lq_04_cookie_connection_is_plain_with_plain_config() {
    let mut s = Srv::with_conn(plain(), opts(16, 16, SynCookies::Always));
    let sa = s.syn(client(1), ts_syn(Some(7), true));
    let so = sa.tcp.options;
    assert_eq!((so.window_scale, so.sack_permitted, so.timestamps), (None, false, None));
    let h = s.deliver(client(1), Seg::ack(C_ISN + 1, sa.seq().wrapping_add(1)).ts(101, 0)).unwrap();
    let info = s.conns[&h].info();
    assert_eq!(
        (info.wscale, info.sack, info.timestamps, info.snd_mss),
        ((0, 0), false, false, 1460)
    );
}

// ---------------------------------------------------------------------------------------------
// HS-10: ISNs (RFC 6528: M + F(4-tuple, key), M a 4 µs clock)

/// Our ISN for a SYN from `c` at `at` on a fresh endpoint seeded `seed`.
fn isn_at(seed: u64, at: Instant, c: SocketAddr) -> u32 {
    let mut s = Srv::new(seeded(seed), ListenOptions::default());
    s.advance_to(at);
    s.syn(c, Seg::syn(C_ISN)).seq()
}

#[test]
fn hs_10_isn_differs_per_four_tuple_per_time_and_per_seed() {
    let t0 = Instant::from_secs(1);
    let base = isn_at(1, t0, client(40000));
    assert_eq!(isn_at(1, t0, client(40000)), base, "deterministic for one seed");

    // Per 4-tuple: other client ports, same instant, one endpoint.
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    s.advance_to(t0);
    let isns: Vec<u32> = (40000..40008).map(|p| s.syn(client(p), Seg::syn(C_ISN)).seq()).collect();
    assert_eq!(isns[0], base);
    for (i, a) in isns.iter().enumerate() {
        for b in &isns[i + 1..] {
            assert_ne!(a, b, "ISNs of different 4-tuples");
        }
    }

    // Over time: the clock part ticks every 4 µs.
    let at = |us: u64| isn_at(1, Instant::from_micros(t0.as_micros() + us), client(40000));
    assert_eq!(at(3), base);
    assert_eq!(at(4), base.wrapping_add(1));
    assert_eq!(at(1_000), base.wrapping_add(250));
    assert_eq!(at(60_000_000), base.wrapping_add(15_000_000));

    // Per seed: the key differs.
    let seeds: Vec<u32> = (1..6).map(|seed| isn_at(seed, t0, client(40000))).collect();
    for (i, a) in seeds.iter().enumerate() {
        for b in &seeds[i + 1..] {
            assert_ne!(a, b, "ISNs of different seeds");
        }
    }
}

/// FA-02: a connection reset while it waits in the accept queue stays there, counted against
/// the backlog, with its data (Linux keeps the socket, in TCP_CLOSE, until `accept`): it is
/// not drained while no application call has touched it; its 4-tuple is free at once, so a
/// segment for it meanwhile is answered as one for no connection (RFC 9293 §3.10.7.1). `accept` returns it; reads give
/// the data, then `ConnectionReset` once, then end of stream (Linux `tcp_recvmsg`); from the
/// first read it is the application's and drained.
#[test]
fn fa_02_reset_before_accept_stays_queued_with_its_data() {
    let mut s = Srv::new(seeded(1), opts(1, 16, SynCookies::Never));
    let c = client(40000);
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    let third = Seg::ack(C_ISN + 1, isn.wrapping_add(1)).data(b"hello").psh();
    let h = s.deliver(c, third).expect("data with an acceptable ACK completes");
    s.conn_output(h);
    s.deliver(c, Seg::rst(C_ISN + 6));
    let conn = &s.conns[&h];
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.error(), Some(tcpcore::ConnectionError::Reset));
    assert!(!conn.is_drained(), "held for accept");
    assert_eq!(s.ep.accept_queue_len(SERVER), 1);
    // The backlog (1) still counts it: a new client's SYN is dropped (ListenOverflows).
    s.deliver(client(40001), Seg::syn(C_ISN));
    s.expect_none();
    // Its 4-tuple left the table with the reset: a stray ACK for it reaches the listener,
    // which answers it as one for no connection, <SEQ=SEG.ACK><CTL=RST>; never a RST for a
    // RST. The held connection sees neither.
    s.deliver(c, Seg::ack(C_ISN + 6, isn.wrapping_add(1)));
    let out = s.output();
    assert_eq!(out.len(), 1, "{out:#?}");
    out[0].assert_flags(TcpFlags::RST).assert_seq_ack(isn.wrapping_add(1), 0);
    s.deliver(c, Seg::rst(C_ISN + 6));
    s.expect_none();
    assert!(s.conn_output(h).is_empty());

    assert_eq!(s.ep.accept(SERVER), Some(h));
    let conn = s.conns.get_mut(&h).unwrap();
    let mut b = [0u8; 16];
    assert_eq!(conn.read(&mut b), Ok(5));
    assert_eq!(&b[..5], b"hello");
    // The application holds it now: it leaves the endpoint, and reads go on from the object.
    assert!(conn.is_drained());
    let mut conn = s.conns.remove(&h).unwrap();
    s.ep.connection_closed(h, &conn);
    assert_eq!(s.ep.connection_count(), 0);
    let reset = tcpcore::ConnectionError::Reset;
    assert_eq!(conn.read(&mut b), Err(tcpcore::ReadError::Failed(reset)));
    assert_eq!(conn.read(&mut b), Ok(0));
}

/// FA-02: a reset connection nobody accepts is released when its listener closes (the owner
/// aborts what `unlisten` returns): drained at once, no RST sent, its data freed.
#[test]
fn fa_02_reset_unaccepted_connection_is_freed_when_the_listener_closes() {
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let c = client(40000);
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    let third = Seg::ack(C_ISN + 1, isn.wrapping_add(1)).data(b"hello").psh();
    let h = s.deliver(c, third).unwrap();
    s.conn_output(h);
    s.deliver(c, Seg::rst(C_ISN + 6));
    assert!(!s.conns[&h].is_drained());
    assert_eq!(s.ep.unlisten(SERVER), vec![h]);
    let conn = s.conns.get_mut(&h).unwrap();
    conn.abort();
    assert!(conn.is_drained());
    assert_eq!(conn.buffer_bytes(), 0, "unread data freed");
    assert!(s.conn_output(h).is_empty(), "nothing to reset");
}

/// FA-02: a connection reset by its peer before the application read anything gives up its
/// 4-tuple at once (Linux: `tcp_done` unhashes it, TCP_CLOSE) while its owner keeps it: the
/// peer's new SYN from the same port reaches the listener, gets a SYN-ACK and makes a new
/// connection, which is accepted; the old one still reads its data, then `ConnectionReset`
/// once, then end of stream; dropping it later frees its slot once and leaves the new
/// connection's 4-tuple alone.
#[test]
fn fa_02_new_syn_on_a_reset_held_four_tuple_reaches_the_listener() {
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let c = client(40000);
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    let third = Seg::ack(C_ISN + 1, isn.wrapping_add(1)).data(b"hello").psh();
    let old = s.deliver(c, third).expect("data with an acceptable ACK completes");
    s.conn_output(old);
    assert_eq!(s.ep.accept(SERVER), Some(old), "accepted, not read yet");
    s.deliver(c, Seg::rst(C_ISN + 6));
    assert_eq!(s.conns[&old].state(), State::Closed);
    assert!(!s.conns[&old].is_drained(), "held for the application");
    assert_eq!((s.ep.connection_count(), s.ep.stats().tuples_released), (1, 1));

    // The peer's new SYN from the same port: the listener answers it, not the old connection.
    let new_isn = C_ISN + 100_000;
    let isn2 = s.syn(c, Seg::syn(new_isn)).seq();
    assert!(s.conn_output(old).is_empty(), "the held connection saw nothing");
    let new = s.deliver(c, Seg::ack(new_isn + 1, isn2.wrapping_add(1)).data(b"again").psh());
    let new = new.expect("the handshake completes a new connection");
    assert_ne!(new, old);
    assert_eq!(s.ep.accept(SERVER), Some(new));
    assert_eq!(s.ep.connection_count(), 2);
    assert_eq!(s.conns[&new].state(), State::Established);

    // The old connection: its data, then the reset once, then end of stream.
    let conn = s.conns.get_mut(&old).unwrap();
    let mut b = [0u8; 16];
    assert_eq!(conn.read(&mut b), Ok(5));
    assert_eq!(&b[..5], b"hello");
    let reset = tcpcore::ConnectionError::Reset;
    assert_eq!(conn.read(&mut b), Err(tcpcore::ReadError::Failed(reset)));
    assert_eq!(conn.read(&mut b), Ok(0));
    assert!(conn.is_drained());
    let conn = s.conns.remove(&old).unwrap();
    s.ep.connection_closed(old, &conn);
    assert_eq!(s.ep.connection_count(), 1);
    s.ep.connection_closed(old, &conn); // a second call changes nothing
    assert_eq!(s.ep.connection_count(), 1);

    // The new connection still owns the 4-tuple: its segments reach it.
    s.deliver(c, Seg::ack(new_isn + 6, isn2.wrapping_add(1)).data(b"!").psh());
    let conn = s.conns.get_mut(&new).unwrap();
    assert_eq!(conn.read(&mut b), Ok(6));
    assert_eq!(&b[..6], b"again!");
    conn.abort();
    let conn = s.conns.remove(&new).unwrap();
    s.ep.connection_closed(new, &conn);
    assert_eq!(s.ep.connection_count(), 0);
}

/// FA-02: the same while the reset connection still waits in the accept queue, never
/// touched: the new connection queues behind it, and `accept` returns the old one (its data,
/// then the reset) first, then the new one.
#[test]
fn fa_02_new_syn_on_a_reset_unaccepted_four_tuple_queues_a_new_connection() {
    let mut s = Srv::new(seeded(1), ListenOptions::default());
    let c = client(40000);
    let isn = s.syn(c, Seg::syn(C_ISN)).seq();
    let third = Seg::ack(C_ISN + 1, isn.wrapping_add(1)).data(b"hello").psh();
    let old = s.deliver(c, third).unwrap();
    s.conn_output(old);
    s.deliver(c, Seg::rst(C_ISN + 6));
    let new_isn = C_ISN + 100_000;
    let isn2 = s.syn(c, Seg::syn(new_isn)).seq();
    let new = s.deliver(c, Seg::ack(new_isn + 1, isn2.wrapping_add(1))).unwrap();
    assert_eq!(s.ep.accept_queue_len(SERVER), 2);
    assert_eq!((s.ep.accept(SERVER), s.ep.accept(SERVER)), (Some(old), Some(new)));
    let conn = s.conns.get_mut(&old).unwrap();
    let mut b = [0u8; 16];
    assert_eq!(conn.read(&mut b), Ok(5));
    let reset = tcpcore::ConnectionError::Reset;
    assert_eq!(conn.read(&mut b), Err(tcpcore::ReadError::Failed(reset)));
    assert_eq!(conn.read(&mut b), Ok(0));
    let conn = s.conns.remove(&old).unwrap();
    s.ep.connection_closed(old, &conn);
    assert_eq!(s.ep.connection_count(), 1);
    assert_eq!(s.conns[&new].state(), State::Established);
}
