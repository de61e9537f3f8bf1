//! Congestion window validation (RFC 5681 §4.1, RFC 7661): the restart window after an idle
//! period (RX-10) and no cwnd growth while the sender does not use its window (RX-11), for
//! NewReno and CUBIC, against a hand-played peer.
mod common;
use common::*;
use tcpcore::config::CongestionAlgorithm;
use tcpcore::ConnConfig;

const ALGORITHMS: [CongestionAlgorithm; 2] =
    [CongestionAlgorithm::NewReno, CongestionAlgorithm::Cubic];

fn cfg(congestion: CongestionAlgorithm) -> ConnConfig {
    ConnConfig { congestion, ..Sc::plain() }
}

/// Ends of the data segments in `out`.
fn ends(out: &[Out]) -> Vec<u32> {
    out.iter().filter(|o| o.len() > 0).map(|o| o.seq() + o.len() as u32).collect()
}

/// The peer acknowledges every data segment (those ending at `first`, then whatever the
/// connection sends) on its own, 1 ms apart, until nothing is outstanding; returns how many
/// segments were sent.
#[track_caller]
fn ack_each_until_idle(sc: &mut Sc, first: Vec<u32>) -> usize {
    let mut pending: std::collections::VecDeque<u32> = first.into();
    let mut sent = pending.len();
    while let Some(end) = pending.pop_front() {
        sc.advance(ms(1));
        sc.deliver(Seg::ack(P, end));
        let more = ends(&sc.output());
        sent += more.len();
        pending.extend(more);
    }
    assert_eq!(sc.conn.info().unacked, 0);
    sent
}

/// Established, then 30 segments sent and acknowledged one by one: slow start grew cwnd
/// to at least 30 segments, and nothing is outstanding.
#[track_caller]
fn after_slow_start(algo: CongestionAlgorithm) -> Sc {
    let mut sc = Sc::established(cfg(algo));
    sc.conn.write(&bytes(0, 30 * MSS as usize)).unwrap();
    let first = ends(&sc.output());
    assert_eq!(ack_each_until_idle(&mut sc, first), 30);
    let grown = sc.conn.info().cwnd;
    assert!(grown >= 30 * MSS, "{algo:?}: slow start grew cwnd to {grown}");
    sc
}

/// RX-10: after an idle period longer than the RTO, the next burst is the restart window
/// min(IW, cwnd) = 10 segments, not the window grown before the pause.
#[test]
fn rx_10_restart_window_after_idle_longer_than_rto() {
    for algo in ALGORITHMS {
        let mut sc = after_slow_start(algo);
        let grown = sc.conn.info().cwnd;
        // Idle for 10 s (the RTO is about 200 ms), then a large write.
        sc.advance(secs(10));
        sc.conn.write(&bytes(0, 30 * MSS as usize)).unwrap();
        let burst = ends(&sc.output());
        assert_eq!(burst.len(), 10, "{algo:?}: the restart window, not cwnd {grown}");
        assert_eq!(sc.conn.info().cwnd, 10 * MSS, "{algo:?}");
        // It slow-starts again from there.
        assert_eq!(ack_each_until_idle(&mut sc, burst), 30);
    }
}

/// RX-10: with `slow_start_after_idle` off (Linux `tcp_slow_start_after_idle=0`, as
/// packetdrill's defaults set it), cwnd survives an idle period longer than the RTO.
#[test]
fn rx_10_no_restart_after_idle_with_slow_start_after_idle_off_like_linux() {
    for algo in ALGORITHMS {
        let mut sc = Sc::established(ConnConfig { slow_start_after_idle: false, ..cfg(algo) });
        sc.conn.write(&bytes(0, 30 * MSS as usize)).unwrap();
        let first = ends(&sc.output());
        ack_each_until_idle(&mut sc, first);
        let grown = sc.conn.info().cwnd;
        assert!(grown >= 30 * MSS, "{algo:?}: slow start grew cwnd to {grown}");
        sc.advance(secs(10));
        sc.conn.write(&bytes(0, 30 * MSS as usize)).unwrap();
        assert_eq!(ends(&sc.output()).len(), 30, "{algo:?}: the whole write fits cwnd");
        assert_eq!(sc.conn.info().cwnd, grown, "{algo:?}");
    }
}

/// RX-10: a pause shorter than the RTO keeps cwnd (no restart).
#[test]
fn rx_10_no_restart_after_a_pause_shorter_than_rto() {
    for algo in ALGORITHMS {
        let mut sc = after_slow_start(algo);
        let grown = sc.conn.info().cwnd;
        sc.advance(ms(50));
        assert!(sc.conn.info().rto > ms(50));
        sc.conn.write(&bytes(0, 30 * MSS as usize)).unwrap();
        assert_eq!(ends(&sc.output()).len(), 30, "{algo:?}: the whole write fits cwnd");
        assert_eq!(sc.conn.info().cwnd, grown, "{algo:?}");
    }
}

/// RX-11: an application that writes one segment at a time and waits for its ACK never
/// uses more than one segment of its window: cwnd stays at the initial window.
#[test]
fn rx_11_no_cwnd_growth_while_application_limited() {
    for algo in ALGORITHMS {
        let mut sc = Sc::established(cfg(algo));
        for i in 0..100u32 {
            sc.conn.write(&bytes(0, 1000)).unwrap();
            let out = sc.expect_one();
            assert_data(&out, D + i * 1000, 1000);
            sc.advance(ms(10));
            sc.deliver(Seg::ack(P, D + (i + 1) * 1000));
            sc.advance(ms(10));
        }
        assert_eq!(sc.conn.info().cwnd, 10 * MSS, "{algo:?}: never cwnd-limited");
    }
}

/// RX-11: a sender limited by the peer's window far below cwnd (rwnd-limited) does not grow
/// cwnd either once out of slow start's 2x allowance.
#[test]
fn rx_11_no_cwnd_growth_while_receive_window_limited() {
    for algo in ALGORITHMS {
        let mut sc = Sc::established(cfg(algo));
        sc.deliver(Seg::ack(P, D).window(2 * MSS as u16));
        sc.conn.write(&bytes(0, 60 * MSS as usize)).unwrap();
        let mut acked = D;
        for _ in 0..30 {
            let out = sc.output();
            let end = ends(&out).into_iter().max().expect("window allows two segments");
            sc.advance(ms(10));
            acked = acked.max(end);
            sc.deliver(Seg::ack(P, acked).window(2 * MSS as u16));
        }
        assert_eq!(sc.conn.info().cwnd, 10 * MSS, "{algo:?}: 2 segments in flight of 10");
    }
}
