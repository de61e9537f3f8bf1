//! ECN-01 (RFC 3168): negotiation on the SYN exchange as Linux does (`tcp_ecn`), ECT(0) on
//! new data only, CE echoed with ECE until CWR, one congestion-window reduction per window
//! of data.
mod common;
use common::*;

use tcpcore::wire::{ecn, TcpFlags};
use tcpcore::{CaState, ConnConfig, EcnMode};

const ECE: TcpFlags = TcpFlags::ECE;
const CWR: TcpFlags = TcpFlags::CWR;

fn cfg(mode: EcnMode) -> ConnConfig {
    ConnConfig { ecn: mode, ..Sc::plain() }
}

fn ecn_syn() -> Seg {
    Seg::syn(PEER_ISS).flags(ECE | CWR)
}

/// A client with `mode` after a SYN-ACK carrying `synack_flags` (besides SYN and ACK);
/// returns it and its SYN.
#[track_caller]
fn client_after(mode: EcnMode, synack_flags: TcpFlags) -> (Sc, Out) {
    let mut sc = Sc::connect(cfg(mode));
    let syn = sc.expect_one();
    sc.advance(ms(10));
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1).flags(synack_flags));
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    assert_eq!(ack.ecn, ecn::NOT_ECT, "the handshake's ACK is a pure ACK");
    sc.events();
    (sc, syn)
}

/// An established client that negotiated ECN.
#[track_caller]
fn ecn_client() -> Sc {
    let (sc, _) = client_after(EcnMode::Request, ECE);
    assert!(sc.conn.info().ecn);
    sc
}

#[test]
fn ecn_01_client_asks_only_when_configured() {
    let (sc, syn) = client_after(EcnMode::Request, ECE);
    syn.assert_flags(TcpFlags::SYN | ECE | CWR);
    assert_eq!(syn.ecn, ecn::NOT_ECT, "RFC 3168 §6.1.1: a SYN is not ECN-capable");
    assert!(sc.conn.info().ecn);
    for mode in [EcnMode::Accept, EcnMode::Off] {
        let (sc, syn) = client_after(mode, ECE);
        syn.assert_flags(TcpFlags::SYN);
        assert!(!sc.conn.info().ecn, "{mode:?}: not asked, not on");
    }
}

#[test]
fn ecn_01_server_accepts_unless_refused() {
    for (mode, on) in [(EcnMode::Accept, true), (EcnMode::Request, true), (EcnMode::Off, false)] {
        let mut sc = Sc::accept(cfg(mode), ecn_syn());
        let sa = sc.expect_one();
        let want =
            if on { TcpFlags::SYN | TcpFlags::ACK | ECE } else { TcpFlags::SYN | TcpFlags::ACK };
        sa.assert_flags(want);
        assert_eq!(sa.ecn, ecn::NOT_ECT);
        assert_eq!(sc.conn.info().ecn, on, "{mode:?}");
        // A retransmitted SYN-ACK still accepts.
        let again = sc.next_timer();
        again[0].assert_flags(want);
    }
    // A SYN with only ECE (or only CWR) is not an ECN-setup SYN (RFC 3168 §6.1.1).
    for f in [ECE, CWR] {
        let mut sc = Sc::accept(cfg(EcnMode::Accept), Seg::syn(PEER_ISS).flags(f));
        sc.expect_one().assert_flags(TcpFlags::SYN | TcpFlags::ACK);
        assert!(!sc.conn.info().ecn);
    }
}

/// RFC 3168 §6.1.1: a SYN-ACK with both ECE and CWR set (a peer reflecting the flags) is
/// not an ECN-setup SYN-ACK; neither is one without ECE.
#[test]
fn ecn_01_broken_syn_ack_falls_back() {
    for f in [ECE | CWR, TcpFlags::default(), CWR] {
        let (mut sc, _) = client_after(EcnMode::Request, f);
        assert!(!sc.conn.info().ecn, "SYN-ACK flags {f:?}");
        sc.conn.write(&[1; 100]).unwrap();
        let d = sc.expect_one();
        assert_eq!(d.ecn, ecn::NOT_ECT, "no ECT without ECN");
    }
}

/// Linux drops the ECN request from retransmitted SYNs (`tcp_ecn_clear_syn`).
#[test]
fn ecn_01_retransmitted_syn_does_not_ask() {
    let mut sc = Sc::connect(cfg(EcnMode::Request));
    sc.expect_one().assert_flags(TcpFlags::SYN | ECE | CWR);
    let again = sc.next_timer();
    assert_eq!(again.len(), 1);
    again[0].assert_flags(TcpFlags::SYN);
}

#[test]
fn ecn_01_ect0_only_on_new_data() {
    let mut sc = ecn_client();
    sc.conn.write(&bytes(0, 3000)).unwrap();
    let data = sc.output();
    assert_eq!(data.len(), 3);
    for d in &data {
        assert_eq!(d.ecn, ecn::ECT0, "new data carries ECT(0), never ECT(1)");
        assert!(!d.has(ECE) && !d.has(CWR));
    }
    // The retransmission after a timeout is not ECN-capable (RFC 3168 §6.1.5).
    let rtx = sc.next_timer();
    assert_data(&rtx[0], D, MSS as usize);
    assert_eq!(rtx[0].ecn, ecn::NOT_ECT, "retransmission");
    // Pure ACKs are not either (§6.1.4).
    sc.deliver(Seg::ack(P, D + 3000).data(&[7; 100]));
    let ack = sc.expect_one();
    assert_eq!((ack.len(), ack.ecn), (0, ecn::NOT_ECT), "pure ACK");
    // Nor a zero-window probe.
    sc.deliver(Seg::ack(P + 100, D + 3000).window(0));
    sc.conn.write(&[1; 10]).unwrap();
    sc.expect_none();
    let probe = sc.next_timer();
    assert!(probe.iter().all(|o| o.ecn == ecn::NOT_ECT), "window probe: {probe:?}");
}

#[test]
fn ecn_01_ce_echoed_until_cwr() {
    let mut sc = ecn_client();
    sc.deliver_ecn(Seg::ack(P, D).data(&[1; 100]), ecn::CE);
    let ack = sc.expect_one();
    assert!(ack.has(ECE), "CE is acknowledged at once, with ECE");
    assert_eq!(sc.conn.info().ecn_ce_received, 1);
    // Every ACK echoes until CWR arrives, CE or not.
    for i in 1..4u32 {
        sc.advance(ms(50));
        sc.deliver_ecn(Seg::ack(P + 100 * i, D).data(&[1; 100]), ecn::ECT0);
        let acks = sc.advance(ms(50));
        assert!(!acks.is_empty() && acks.iter().all(|a| a.has(ECE)), "{acks:?}");
    }
    // Our own data segments carry ECE too.
    sc.conn.write(&[2; 10]).unwrap();
    let d = sc.expect_one();
    assert!(d.has(ECE) && !d.has(CWR) && d.ecn == ecn::ECT0);
    sc.deliver_ecn(Seg::ack(P + 400, D + 10).data(&[1; 100]).flags(CWR), ecn::ECT0);
    let acks = sc.advance(ms(100));
    assert!(!acks.is_empty() && acks.iter().all(|a| !a.has(ECE)), "CWR ends the echo");
    // Not-ECN connections ignore CE.
    let (mut plain, _) = client_after(EcnMode::Accept, ECE);
    plain.deliver_ecn(Seg::ack(P, D).data(&[1; 100]), ecn::CE);
    assert!(plain.advance(ms(100)).iter().all(|a| !a.has(ECE)));
}

#[test]
fn ecn_01_one_reduction_per_window() {
    let mut sc = ecn_client();
    sc.conn.write(&bytes(0, 30 * MSS as usize)).unwrap();
    let first = sc.output();
    assert_eq!(first.len(), 10, "initial window");
    let cwnd0 = sc.conn.info().cwnd;
    sc.advance(ms(20));
    sc.deliver(Seg::ack(P, D + MSS).flags(ECE));
    let i = sc.conn.info();
    assert_eq!((i.ecn_reductions, i.ca_state), (1, CaState::Cwr));
    assert!(i.ssthresh < cwnd0, "reduced: ssthresh {} from cwnd {}", i.ssthresh, cwnd0);
    let ssthresh = i.ssthresh;
    assert_eq!(i.retransmits, 0, "ECN reduces without retransmitting");
    // More ECE within the same window: no further reduction; the first new data segment
    // sent after the reduction, and only it, carries CWR.
    let mut sent = sc.output();
    for k in 2..=9u32 {
        sc.deliver(Seg::ack(P, D + k * MSS).flags(ECE));
        sent.extend(sc.output());
    }
    assert_eq!(sc.conn.info().ecn_reductions, 1, "once per window of data");
    assert!(!sent.is_empty());
    assert!(sent[0].has(CWR), "CWR on the first new data segment: {:?}", sent[0].tcp);
    assert_eq!(sent[0].seq(), first.last().unwrap().seq() + MSS);
    assert_eq!(sent[0].ecn, ecn::ECT0);
    assert!(sent[1..].iter().all(|o| !o.has(CWR)), "CWR once");
    // ACKs up to the end of the reduced window may still echo the same CE: no reduction.
    sc.deliver(Seg::ack(P, D + 10 * MSS).flags(ECE));
    assert_eq!(sc.conn.info().ecn_reductions, 1, "ECE up to the window's end");
    assert_eq!(sc.conn.info().ca_state, CaState::Cwr);
    // PRR (RFC 6937) took cwnd down to what is in flight plus what it lets out.
    let i = sc.conn.info();
    assert!(i.cwnd < cwnd0 && i.cwnd <= i.unacked + MSS, "PRR: cwnd {}", i.cwnd);
    // Once data beyond it (the CWR segment) is acknowledged, the reduction ends at ssthresh
    // and ECE reduces again.
    let high = sc.log.iter().map(|o| o.seq() + o.len() as u32).max().unwrap();
    sc.deliver(Seg::ack(P, high));
    let i = sc.conn.info();
    assert_eq!(i.ca_state, CaState::Open);
    // From ssthresh, grown by this ACK in congestion avoidance.
    assert!(i.cwnd >= ssthresh && i.cwnd < ssthresh + MSS, "{} from {ssthresh}", i.cwnd);
    sc.output();
    sc.deliver(Seg::ack(P, high).flags(ECE));
    assert_eq!(sc.conn.info().ecn_reductions, 2);
    assert_eq!(sc.conn.info().retransmits, 0);
}

// ---- in the simulator ---------------------------------------------------------------------

mod sim {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::time::Duration;

    use tcpcore::sim::{BulkApp, Host, LinkConfig, Network, NodeId};
    use tcpcore::{
        ConnConfig, Connection, EcnMode, EndpointConfig, Instant, ListenOptions, SynCookies,
        TcpInfo,
    };

    /// What one bulk transfer measured over its last `secs - warm-up` seconds.
    pub(super) struct Run {
        pub(super) goodput_bps: f64,
        /// Segments the sender retransmitted after the warm-up.
        pub(super) retransmits: u64,
        pub(super) sender: TcpInfo,
        pub(super) receiver: TcpInfo,
        pub(super) ce_marked: u64,
        pub(super) dropped: u64,
    }

    fn info(net: &Network<Host<BulkApp>>, n: NodeId) -> TcpInfo {
        net.node(n).connections().next().expect("a connection").1.info()
    }

    /// A bulk transfer client → server over `data` (the ACK path is clean), the client
    /// asking for ECN when `ecn` is set; goodput measured between `warm_up` and `end`.
    pub(super) fn bulk(
        ecn: bool,
        rtt: Duration,
        data: LinkConfig,
        warm_up: Duration,
        end: Duration,
    ) -> Run {
        let client = if ecn { EcnMode::Request } else { EcnMode::Accept };
        let modes = (client, EcnMode::Accept, SynCookies::default());
        bulk_with(modes, rtt, data, warm_up, end)
    }

    /// [`bulk`] with the client's and the server's ECN modes and the listener's cookies.
    pub(super) fn bulk_with(
        (client_ecn, server_ecn, syn_cookies): (EcnMode, EcnMode, SynCookies),
        rtt: Duration,
        data: LinkConfig,
        warm_up: Duration,
        end: Duration,
    ) -> Run {
        let client_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let server_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let conn = |ecn| ConnConfig {
            send_buffer: 8 << 20,
            recv_buffer: 8 << 20,
            ecn,
            ..ConnConfig::default()
        };
        let ep =
            |seed: u64, ecn| EndpointConfig { seed, conn: conn(ecn), ..EndpointConfig::default() };
        let mut client = Host::new(ep(1, client_ecn));
        let mut server = Host::new(ep(2, server_ecn));
        let opts = ListenOptions { syn_cookies, ..ListenOptions::default() };
        server
            .listen_with(SocketAddr::new(server_ip, 80), opts, |_: &Connection| {
                BulkApp::new(0, 2, 1)
            })
            .expect("listen");
        let remote = SocketAddr::new(server_ip, 80);
        client.connect(Instant::ZERO, client_ip, remote, BulkApp::new(1 << 40, 1, 2)).unwrap();
        let mut net = Network::new(7);
        let c = net.add_node(client, &[client_ip]);
        let s = net.add_node(server, &[server_ip]);
        net.link_dir(c, s, LinkConfig { delay: rtt / 2, ..data });
        net.link_dir(s, c, LinkConfig { delay: rtt / 2, ..LinkConfig::default() });
        net.run_until(Instant::ZERO + warm_up);
        let before = info(&net, c);
        let l0 = net.link_stats(c, s);
        net.run_until(Instant::ZERO + end);
        let sender = info(&net, c);
        let acked = sender.bytes_acked - before.bytes_acked;
        let goodput_bps = acked as f64 * 8.0 / (end - warm_up).as_secs_f64();
        let l = net.link_stats(c, s);
        Run {
            goodput_bps,
            retransmits: sender.retransmits - before.retransmits,
            sender,
            receiver: info(&net, s),
            ce_marked: l.ce_marked - l0.ce_marked,
            dropped: l.dropped() - l0.dropped(),
        }
    }
}

use std::time::Duration;
use tcpcore::sim::LinkConfig;

#[track_caller]
fn report(path: &str, plain: &sim::Run, ecn: &sim::Run) {
    for (name, r) in [("no ECN, no marks", plain), ("ECN, marked", ecn)] {
        eprintln!(
            "{path}, {name}: {:.2} Mbit/s, {} retransmitted, {} dropped, {} CE-marked, {} \
             window reductions on ECE",
            r.goodput_bps / 1e6,
            r.retransmits,
            r.dropped,
            r.ce_marked,
            r.sender.ecn_reductions
        );
    }
    assert!(ecn.sender.ecn && ecn.receiver.ecn, "ECN negotiated");
    assert!(ecn.ce_marked > 100, "too few marks to judge: {}", ecn.ce_marked);
    assert!(ecn.sender.ecn_reductions > 0 && ecn.receiver.ecn_ce_received > 0);
    assert_eq!((ecn.retransmits, ecn.dropped), (0, 0), "marks, not losses");
    assert!(
        ecn.goodput_bps >= 0.9 * plain.goodput_bps,
        "goodput {:.2} Mbit/s with marks vs {:.2} without",
        ecn.goodput_bps / 1e6,
        plain.goodput_bps / 1e6
    );
}

/// The measure: 1 % of ECT packets marked CE at random on the bottleneck; after the
/// warm-up, no retransmission and goodput within 10 % of the same path without marks. At a
/// 1 % mark rate CUBIC averages about 12 segments (RFC 9438 §5.1, its Reno-friendly region:
/// the same window as at 1 % loss, measured here too: 6.8 Mbit/s on 100 Mbit/s × 20 ms), so
/// the path is one whose bandwidth-delay product (4.3 segments) that window fills, with a
/// buffer (64 KiB) the window never overflows between marks.
#[test]
fn ecn_01_random_ce_marks_cost_no_retransmission() {
    let rtt = Duration::from_millis(5);
    let link = LinkConfig { rate_bps: 10_000_000, queue_bytes: 64 * 1024, ..LinkConfig::default() };
    let (warm_up, end) = (Duration::from_secs(2), Duration::from_secs(32));
    let plain = sim::bulk(false, rtt, link, warm_up, end);
    let marked = sim::bulk(true, rtt, LinkConfig { ecn_mark: 0.01, ..link }, warm_up, end);
    report("10 Mbit/s x 5 ms, 64 KiB buffer, 1 % random CE", &plain, &marked);
}

/// An AQM marking at half a bandwidth-delay product of backlog on a 100 Mbit/s × 20 ms
/// path with a 1-BDP drop-tail buffer: with ECN the queue is held by marks, without loss,
/// at the goodput of the drop-tail path; without ECN the path is drop-tail and drops.
#[test]
fn ecn_01_aqm_marks_instead_of_dropping() {
    let rtt = Duration::from_millis(20);
    let bdp = 250_000;
    let link = LinkConfig { rate_bps: 100_000_000, queue_bytes: bdp, ..LinkConfig::default() };
    let aqm = LinkConfig { ecn_mark_threshold: bdp / 2, ..link };
    let (warm_up, end) = (Duration::from_secs(2), Duration::from_secs(12));
    let plain = sim::bulk(false, rtt, link, warm_up, end);
    let marked = sim::bulk(true, rtt, aqm, warm_up, end);
    report("100 Mbit/s x 20 ms, 1-BDP buffer, AQM at 0.5 BDP", &plain, &marked);
    let not_ect = sim::bulk(false, rtt, aqm, warm_up, end);
    assert!(not_ect.dropped > 0 && not_ect.ce_marked == 0, "Not-ECT traffic is not marked");
}

/// Negotiation end to end through the endpoint: the SYN queue and SYN cookies (the TSval's
/// ECN bit, as Linux), for each pair of modes; the CE marks of the link reach the sender
/// only when negotiated.
#[test]
fn ecn_01_negotiated_through_syn_queue_and_cookies() {
    use tcpcore::SynCookies;
    let link = LinkConfig { rate_bps: 10_000_000, ecn_mark: 0.01, ..LinkConfig::default() };
    let (ms_100, s_1) = (Duration::from_millis(100), Duration::from_secs(1));
    for cookies in [SynCookies::Never, SynCookies::Always] {
        for (client, server, on) in [
            (EcnMode::Request, EcnMode::Accept, true),
            (EcnMode::Request, EcnMode::Request, true),
            (EcnMode::Request, EcnMode::Off, false),
            (EcnMode::Accept, EcnMode::Request, false),
        ] {
            let r = sim::bulk_with((client, server, cookies), ms(10), link, ms_100, s_1);
            let what = format!("{client:?} → {server:?}, cookies {cookies:?}");
            assert_eq!((r.sender.ecn, r.receiver.ecn), (on, on), "{what}");
            assert_eq!(r.ce_marked > 0, on, "{what}: only ECT packets are marked");
            assert_eq!(r.sender.ecn_reductions > 0, on, "{what}");
        }
    }
}
