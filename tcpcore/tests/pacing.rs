//! PACE: pacing (issue 15 item 3), in the simulator's virtual time.
//!
//! - PACE-01: slow start into a bottleneck. On a shallow buffer (0.1 bandwidth-delay
//!   product, 100 Mbit/s × 100 ms) unpaced CUBIC loses its bursts' tails early in slow start
//!   and leaves it with a fraction of the path; paced, it reaches the path's rate. Issue 15
//!   also asks that on the recovery tests' path (a queue of one BDP) pacing cut the
//!   overshoot's losses five-fold: with Linux's HyStart the unpaced sender loses nothing
//!   there, so there is nothing to cut five-fold, and that test is ignored with the reason
//!   (see its comment).
//! - SSX-04: on that path CUBIC leaves slow start before the queue overflows, paced (SSX-03)
//!   or not (SSX-01).
//! - PACE-02: the pacing rate follows Linux's rule: the spacing of the sender's releases
//!   gives 2× cwnd/SRTT in slow start and 1.2× in congestion avoidance.
//! - PACE-04: the pacing timer wakes the sender about once per millisecond-sized release,
//!   not per packet: wake-ups per MiB are bounded, with and without GSO.
//! - PACE-05: on a fast path without a bottleneck pacing costs a bulk transfer at most a few
//!   percent of its goodput.
//!
//! PACE-03 (a controller's own rate is honoured) is a unit test in `src/conn/pacing_tests.rs`:
//! only the crate can plug a controller in. The sender's invariants are checked after every
//! step.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tcpcore::sim::{BulkApp, Host, LinkConfig, Network, Node, NodeId};
use tcpcore::{
    CaState, ConnConfig, Connection, EcnMode, EndpointConfig, Instant, Offload, TcpInfo,
};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const MIB: f64 = (1 << 20) as f64;

/// One release of data: when it left, its bytes, and the sender's state right after.
#[derive(Clone, Copy, Debug)]
struct Release {
    at: Instant,
    bytes: u64,
    info: TcpInfo,
}

/// A host that records its departures (grouped into releases: packets sent at the same
/// instant) and counts its timer wake-ups.
struct Tap {
    host: Host<BulkApp>,
    record: bool,
    releases: Vec<Release>,
    wakeups: u64,
    packets: u64,
}

impl Tap {
    fn new(host: Host<BulkApp>, record: bool) -> Self {
        Tap { host, record, releases: Vec::new(), wakeups: 0, packets: 0 }
    }

    fn info(&self) -> TcpInfo {
        self.host.connections().next().expect("connection").1.info()
    }
}

impl Node for Tap {
    fn handle(&mut self, now: Instant, packet: &[u8]) {
        self.host.handle(now, packet);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let len = self.host.poll_transmit(now, buf)?;
        if self.record && len > 100 {
            self.packets += 1;
            let info = self.info();
            match self.releases.last_mut() {
                Some(r) if r.at == now => {
                    r.bytes += len as u64;
                    r.info = info;
                }
                _ => self.releases.push(Release { at: now, bytes: len as u64, info }),
            }
        }
        Some(len)
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.host.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.wakeups += 1;
        self.host.handle_timeout(now);
    }

    fn after_step(&mut self, now: Instant) {
        self.host.after_step(now);
    }
}

/// A client sending without end to a server over `data` (the ACK path is clean).
struct Path {
    net: Network<Tap>,
    client: NodeId,
    server: NodeId,
}

impl Path {
    fn new(conn: ConnConfig, data: LinkConfig, rtt: Duration, record: bool) -> Path {
        Path::sending(1 << 40, conn, data, rtt, record)
    }

    /// The client sends `total` bytes.
    fn sending(
        total: u64,
        conn: ConnConfig,
        data: LinkConfig,
        rtt: Duration,
        record: bool,
    ) -> Path {
        let ep = |seed, conn| EndpointConfig { seed, conn, ..EndpointConfig::default() };
        let mut client = Host::new(ep(1, conn));
        client.set_checks(true);
        let server_conn = ConnConfig { offload: conn.offload, ..ConnConfig::default() };
        let server_conn = ConnConfig { recv_buffer: 8 << 20, ..server_conn };
        let mut server = Host::new(ep(2, server_conn));
        let addr = SocketAddr::new(SERVER, 80);
        server.listen(addr, |_: &Connection| BulkApp::new(0, 2, 1)).unwrap();
        client.connect(Instant::ZERO, CLIENT, addr, BulkApp::new(total, 1, 2)).unwrap();
        let mut net = Network::new(7);
        let c = net.add_node(Tap::new(client, record), &[CLIENT]);
        let s = net.add_node(Tap::new(server, false), &[SERVER]);
        net.link_dir(c, s, LinkConfig { delay: rtt / 2, ..data });
        net.link_dir(s, c, LinkConfig { delay: rtt / 2, ..LinkConfig::default() });
        Path { net, client: c, server: s }
    }

    fn client(&self) -> &Tap {
        self.net.node(self.client)
    }

    /// Bytes the server's application has read.
    fn received(&self) -> u64 {
        let apps = self.net.node(self.server).host.apps().next().map(|a| a.recv_hash.len());
        apps.unwrap_or(0)
    }
}

fn paced(conn: ConnConfig) -> ConnConfig {
    ConnConfig { pacing: true, ..conn }
}

/// The recovery tests' path (`loss_recovery.rs`) without its random loss: 100 Mbit/s, a
/// drop-tail queue of `queue_bdp` bandwidth-delay products, 100 ms RTT, 8 MiB buffers.
/// Returns the segments dropped at the bottleneck in the first `secs` seconds, the goodput
/// and the sender's state at the end.
fn slow_start_into(queue_bdp: f64, pacing: bool, secs: u64) -> (u64, f64, TcpInfo) {
    const RATE: u64 = 100_000_000;
    let rtt = Duration::from_millis(100);
    let bdp = (RATE / 8) as f64 * rtt.as_secs_f64();
    let conn =
        ConnConfig { send_buffer: 8 << 20, recv_buffer: 8 << 20, pacing, ..ConnConfig::default() };
    let queue_bytes = (bdp * queue_bdp) as usize;
    let link = LinkConfig { rate_bps: RATE, queue_bytes, mtu: 1500, ..LinkConfig::default() };
    let mut p = Path::new(conn, link, rtt, false);
    p.net.run_until(Instant::from_secs(secs));
    let dropped = p.net.link_stats(p.client, p.server).dropped_queue;
    let goodput = p.received() as f64 * 8.0 / secs as f64;
    let info = p.client().info();
    eprintln!(
        "queue {queue_bdp} BDP, pacing {pacing}: {dropped} segments dropped at the bottleneck, \
         {:.1} Mbit/s, cwnd {} ssthresh {} timeouts {}",
        goodput / 1e6,
        info.cwnd,
        info.ssthresh,
        info.timeouts
    );
    (dropped, goodput, info)
}

/// PACE-01: on a shallow buffer, pacing keeps slow start from ending in its own bursts'
/// losses: the paced sender gets at least 1.4 times the unpaced one's goodput in 10 s, and
/// over 70 % of the path. Measured: 77.3 Mbit/s paced, 48.9 unpaced (1.6×). It was 72.7
/// and 29.9 (2.4×) while the receiver held at most 32 out-of-order ranges: the unpaced
/// burst's losses left more holes than that, and the data beyond them was dropped and sent
/// again.
#[test]
fn pace_01_paced_slow_start_fills_a_shallow_buffered_path() {
    // PACE-01
    let (_, unpaced, _) = slow_start_into(0.1, false, 10);
    let (_, paced, _) = slow_start_into(0.1, true, 10);
    assert!(
        paced >= 1.4 * unpaced,
        "{:.1} Mbit/s paced, {:.1} unpaced",
        paced / 1e6,
        unpaced / 1e6
    );
    assert!(paced >= 0.7e8, "{:.1} Mbit/s paced", paced / 1e6);
}

/// On the recovery tests' path (100 Mbit/s, 100 ms, a queue of one BDP): when slow start
/// ended (ssthresh set), the segments dropped at the bottleneck from the start to one RTT
/// after that, and ssthresh in segments.
fn slow_start_exit(pacing: bool) -> (Instant, u64, u32) {
    let conn =
        ConnConfig { send_buffer: 8 << 20, recv_buffer: 8 << 20, pacing, ..ConnConfig::default() };
    let link = LinkConfig {
        rate_bps: 100_000_000,
        queue_bytes: 1_250_000,
        mtu: 1500,
        ..LinkConfig::default()
    };
    let rtt = Duration::from_millis(100);
    let mut p = Path::new(conn, link, rtt, false);
    let mut t = Instant::ZERO;
    while p.client().info().ssthresh == u32::MAX {
        assert!(t < Instant::from_secs(5), "pacing {pacing}: still in slow start");
        t += Duration::from_millis(1);
        p.net.run_until(t);
    }
    let ssthresh = p.client().info().ssthresh / 1448;
    p.net.run_until(t + rtt);
    let dropped = p.net.link_stats(p.client, p.server).dropped_queue;
    eprintln!("pacing {pacing}: slow start ended at {t} with ssthresh {ssthresh} segments, {dropped} segments dropped by one RTT later");
    (t, dropped, ssthresh)
}

/// SSX-04: on the recovery tests' path (100 Mbit/s, 100 ms, a queue of one BDP: 863 segments
/// each) HyStart ends slow start before the queue overflows, paced or not: no segment is
/// dropped at the bottleneck up to one RTT after it ended, within 1.2 s. Unpaced, the ACK
/// train ends it (SSX-01: 1,040 segments, 1.2 BDP); paced, the delay of a later block of the
/// round's samples (SSX-03: 1,550 segments). With Linux's rule alone (a paced sender's delay
/// judged on the first samples of a round only) the paced sender overshot to 2,250 segments
/// and lost 615; with HyStart++ (RFC 9406, the earlier default) 665 unpaced, 1,391 paced.
#[test]
fn ssx_04_slow_start_on_the_recovery_path_ends_before_the_queue_overflows() {
    // SSX-04
    for pacing in [false, true] {
        let (at, dropped, ssthresh) = slow_start_exit(pacing);
        assert_eq!(dropped, 0, "pacing {pacing}: {dropped} segments dropped");
        assert!(at <= Instant::from_millis(1200), "pacing {pacing}: slow start ended at {at}");
        assert!(ssthresh >= 863, "pacing {pacing}: ssthresh {ssthresh} below the BDP");
    }
}

/// PACE-01, issue 15's criterion: "with pacing on, CUBIC's slow-start overshoot on the
/// 100 Mbit/s × 100 ms path of the recovery tests loses at least 5× fewer segments than
/// without". It cannot hold with Linux's HyStart (the default, `cc/hystart.rs`): there the
/// unpaced sender overshoots by nothing. The bottleneck spaces an unpaced round's ACKs as it
/// would a paced one's, so the ACK train (SSX-01) measures cwnd against the path's BDP and ends
/// slow start at 1,040 segments (1.2 BDP), before the queue of one BDP overflows: 0 segments
/// dropped in slow start (SSX-04). Paced (SSX-03), slow start ends at 1,550 segments without a
/// drop either. What the 10 s count holds is congestion avoidance's first loss, as Linux's
/// CUBIC grows 5 % a round until then: 93 segments dropped paced and unpaced alike (88.1
/// Mbit/s both), unchanged by pacing. The criterion was written against HyStart++ (RFC 9406),
/// which judges only the first samples of a round and sees the queue a round late: 665
/// segments dropped unpaced and 1,391 paced.
#[test]
#[ignore = "issue 15's 5x criterion cannot hold: with Linux's HyStart neither sender drops a segment in slow start here (see the comment)"]
fn pace_01_overshoot_on_the_recovery_path_loses_five_fold_fewer_segments() {
    // PACE-01
    let (unpaced, _, _) = slow_start_into(1.0, false, 10);
    let (paced, _, _) = slow_start_into(1.0, true, 10);
    assert!(paced * 5 <= unpaced, "{paced} segments lost paced, {unpaced} unpaced");
}

/// Median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The sending rate as a multiple of cwnd/SRTT, in windows of `WINDOW`: the bytes of the
/// releases in a window over its length, times SRTT over max(cwnd, flight), both averaged
/// over the window's first and last release. Split by phase: slow start (cwnd < ssthresh / 2,
/// once cwnd is 100 segments), and congestion avoidance (in the Open state only).
fn rate_ratios(releases: &[Release]) -> (Vec<f64>, Vec<f64>) {
    const WINDOW: Duration = Duration::from_millis(5);
    let (mut ss, mut ca) = (Vec::new(), Vec::new());
    let mut rest = releases;
    while let Some(first) = rest.first() {
        let n = rest.iter().take_while(|r| r.at < first.at + WINDOW).count();
        let (window, after) = rest.split_at(n);
        rest = after;
        let last = window[n - 1];
        let Some(srtt) = first.info.srtt else { continue };
        let flight = |i: &TcpInfo| f64::from(i.cwnd.max(i.unacked));
        let w = (flight(&first.info) + flight(&last.info)) / 2.0;
        let bytes: u64 = window.iter().map(|r| r.bytes).sum();
        let ratio = bytes as f64 / WINDOW.as_secs_f64() * srtt.as_secs_f64() / w;
        let (i, j) = (first.info, last.info);
        if j.cwnd < j.ssthresh / 2 && i.cwnd >= 100 * 1448 {
            ss.push(ratio);
        } else if i.cwnd >= i.ssthresh / 2 && [i.ca_state, j.ca_state] == [CaState::Open; 2] {
            ca.push(ratio);
        }
    }
    (ss, ca)
}

/// PACE-02: the observed spacing of the sender's releases gives Linux's rate: 2× cwnd/SRTT
/// in slow start, 1.2× in congestion avoidance. The path has no bottleneck (1 Gbit/s, no
/// queue build-up at these windows) and 50 ms RTT; ECN marks (1 in 2,000 data packets) end
/// slow start without losses and keep the sender in congestion avoidance. The ratio is
/// measured on wire bytes (headers included), so it is a little above the payload rate.
#[test]
fn pace_02_release_spacing_follows_linux_pacing_rate() {
    // PACE-02
    let conn = ConnConfig {
        send_buffer: 8 << 20,
        recv_buffer: 8 << 20,
        ecn: EcnMode::Request,
        ..paced(ConnConfig::default())
    };
    let link = LinkConfig {
        rate_bps: 1_000_000_000,
        mtu: 1500,
        ecn_mark: 0.0005,
        ..LinkConfig::default()
    };
    let mut p = Path::new(conn, link, Duration::from_millis(50), true);
    p.net.run_until(Instant::from_secs(8));
    let tap = p.client();
    let info = tap.info();
    assert!(info.ecn && info.ecn_reductions > 0, "{info:?}");
    assert_eq!(info.retransmits, 0, "{info:?}");
    let (mut ss, mut ca) = rate_ratios(&tap.releases);
    assert!(ss.len() >= 10 && ca.len() >= 200, "{} / {} samples", ss.len(), ca.len());
    // 1500 wire bytes carry 1448 of payload: the ratios are of wire bytes to payload.
    let wire = 1500.0 / 1448.0;
    let (ss, ca) = (median(&mut ss) / wire, median(&mut ca) / wire);
    eprintln!("releases spaced at {ss:.3}× cwnd/SRTT in slow start, {ca:.3}× after");
    // Within 6 %: a release that starts late (after the window held the sender) is forgiven
    // up to half a quantum of the delay, as in Linux, which raises the average a little.
    assert!((ss / 2.0 - 1.0).abs() <= 0.06, "slow start: {ss:.3}× cwnd/SRTT");
    assert!((ca / 1.2 - 1.0).abs() <= 0.06, "congestion avoidance: {ca:.3}× cwnd/SRTT");
}

/// PACE-03 (the part the public API reaches): `max_pacing_rate` (Linux
/// `SO_MAX_PACING_RATE`) caps the sending rate, and turns pacing on by itself.
#[test]
fn pace_03_max_pacing_rate_caps_the_sender() {
    // PACE-03
    const CAP: u64 = 1_000_000; // bytes per second
    let conn = ConnConfig { max_pacing_rate: Some(CAP), ..ConnConfig::default() };
    let mut p = Path::new(conn, LinkConfig::default(), Duration::from_millis(20), false);
    p.net.run_until(Instant::from_secs(2));
    let before = p.client().info().bytes_sent;
    p.net.run_until(Instant::from_secs(6));
    let rate = (p.client().info().bytes_sent - before) as f64 / 4.0;
    eprintln!("{rate:.0} B/s under a cap of {CAP} B/s");
    assert!(rate <= CAP as f64 * 1.01 && rate >= CAP as f64 * 0.97, "{rate:.0} B/s");
}

/// Timer wake-ups of the sender per MiB sent and packets per MiB, from 2 s to 8 s of a
/// transfer paced at `rate` bit/s (`max_pacing_rate`) over a faster path (1 Gbit/s, 20 ms):
/// the sender is paced all along, never held by its window.
fn wakeups(rate: u64, gso: bool) -> (f64, f64) {
    let offload = Offload { gso_max_size: if gso { 65_535 } else { 0 }, ..Offload::default() };
    let conn = ConnConfig {
        send_buffer: 4 << 20,
        max_pacing_rate: Some(rate / 8),
        offload,
        ..ConnConfig::default()
    };
    let link = LinkConfig { rate_bps: 1_000_000_000, ..LinkConfig::default() };
    let mut p = Path::new(conn, link, Duration::from_millis(20), true);
    p.net.run_until(Instant::from_secs(2));
    let (w0, n0, b0) = (p.client().wakeups, p.client().packets, p.client().info().bytes_sent);
    p.net.run_until(Instant::from_secs(8));
    let tap = p.client();
    let mib = (tap.info().bytes_sent - b0) as f64 / MIB;
    let per_mib = ((tap.wakeups - w0) as f64 / mib, (tap.packets - n0) as f64 / mib);
    eprintln!(
        "{} Mbit/s, GSO {gso}: {:.1} wake-ups and {:.1} packets per MiB, {:.1} Mbit/s sent",
        rate / 1_000_000,
        per_mib.0,
        per_mib.1,
        mib * MIB * 8.0 / 6.0 / 1e6,
    );
    per_mib
}

/// PACE-04: the pacing timer wakes the sender once per release of about 1 ms of data (at
/// least two segments), not per packet: at 100 Mbit/s a release is 8 segments (90 per MiB),
/// at 10 Mbit/s 2 segments (362 per MiB); with GSO each release is one super-segment.
#[test]
fn pace_04_timer_wakeups_per_mib_are_bounded() {
    // PACE-04
    for gso in [false, true] {
        let (fast, packets) = wakeups(100_000_000, gso);
        assert!(fast <= 100.0, "{fast:.1} wake-ups per MiB at 100 Mbit/s");
        if gso {
            assert!(packets <= 1.1 * fast, "{packets:.1} super-segments for {fast:.1} wake-ups");
        } else {
            assert!(fast * 7.0 <= packets, "{fast:.1} wake-ups for {packets:.1} packets");
        }
        let (slow, _) = wakeups(10_000_000, gso);
        assert!(slow <= 400.0, "{slow:.1} wake-ups per MiB at 10 Mbit/s");
    }
}

/// Goodput of a 64 MiB transfer over `link` with 10 ms RTT: its bytes over the time until
/// the server has read the last.
fn transfer_goodput(link: LinkConfig, pacing: bool) -> f64 {
    const TOTAL: u64 = 64 << 20;
    let conn =
        ConnConfig { send_buffer: 8 << 20, recv_buffer: 8 << 20, pacing, ..ConnConfig::default() };
    let mut p = Path::sending(TOTAL, conn, link, Duration::from_millis(10), false);
    let server = p.server;
    let read = |net: &mut Network<Tap>| {
        net.node(server).host.apps().next().map_or(0, |a| a.recv_hash.len())
    };
    p.net.drive_bounded(50_000_000, |net| read(net) >= TOTAL).expect("transfer");
    let secs = p.net.now().as_micros() as f64 / 1e6;
    let goodput = TOTAL as f64 * 8.0 / secs;
    eprintln!("pacing {pacing}: {:.1} Mbit/s ({secs:.3} s)", goodput / 1e6);
    goodput
}

/// PACE-05: on fast paths without a bottleneck queue that fills, pacing costs a bulk
/// transfer at most 3 % of its goodput: one limited only by the windows (no link rate),
/// and one over a 1 Gbit/s link whose queue holds the path's BDP.
#[test]
fn pace_05_pacing_does_not_slow_a_bulk_transfer_on_a_fast_path() {
    // PACE-05
    let open = LinkConfig { mtu: 1500, ..LinkConfig::default() };
    let gbit = LinkConfig { rate_bps: 1_000_000_000, queue_bytes: 1_250_000, ..open };
    for link in [open, gbit] {
        let unpaced = transfer_goodput(link, false);
        let paced = transfer_goodput(link, true);
        assert!(
            paced >= 0.97 * unpaced,
            "{:.1} Mbit/s paced, {:.1} unpaced",
            paced / 1e6,
            unpaced / 1e6
        );
    }
}
