//! LQ-05: legitimate clients connect during a spoofed SYN flood, and LQ-04: forged ACKs at a
//! cookie listener create no connection beyond what the cookie's hash width predicts.
//!
//! The flood runs in the simulator. One client node carries both the attacker and the
//! legitimate clients, so spoofed SYNs and real handshakes share the one client → server link
//! (the simulator routes by destination only, so a spoofed source address needs no route of
//! its own; the server's SYN-ACKs to spoofed addresses are dropped as "no route").
//!
//! `TCPCORE_FLOOD_SYNS` sets the number of spoofed SYNs per run (default 1,000,000; the flood
//! always lasts 100 s of virtual time, so fewer SYNs means a slower flood).

mod alloc_util;

mod flood_util;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant as WallClock};

use alloc_util::{allocs, live_bytes, peak_bytes, reset_peak};
use flood_util::{spoofed_ip, spoofed_syn, EchoApp, Ending, Lazy};
use tcpcore::rng::Rng;
use tcpcore::sim::{Host, LinkConfig, Network, Node};
use tcpcore::wire::{self, SeqNum, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use tcpcore::{
    ConnConfig, DatagramEvent, Endpoint, EndpointConfig, EndpointStats, Instant, ListenOptions,
    SynCookies,
};

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);

/// Legitimate clients, each sending `REQUEST` bytes and reading them back.
const LEGIT: u32 = 1000;
const REQUEST: usize = 100;
/// The flood lasts this long whatever its size.
const FLOOD: Duration = Duration::from_secs(100);
/// Flood alone until here (the SYN queue fills, pools and tables reach their size)...
const WARM_UP: Duration = Duration::from_secs(5);
/// ...then the allocation window, flood alone (100,000 SYNs at the default rate)...
const MEASURED: Duration = Duration::from_secs(10);
/// ...then the legitimate clients start, one every `LEGIT_GAP`, until 35 s: even the last
/// one's sixth and final SYN retransmission (63 s after its first SYN) falls in the flood.
const LEGIT_GAP: Duration = Duration::from_millis(20);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Sends `left` SYNs from random addresses and ports, `per_tick` every millisecond.
struct Attacker {
    rng: Rng,
    left: u64,
    per_tick: u64,
    next: Instant,
    /// SYNs due but not yet sent.
    due: u64,
    sent: u64,
}

impl Attacker {
    /// A spoofed SYN to the server from a random address outside 10.0.0.0/8 (which the
    /// simulated hosts use).
    fn syn(&mut self, buf: &mut [u8]) -> usize {
        let src = spoofed_ip(&mut self.rng);
        spoofed_syn(&mut self.rng, src, SERVER, buf)
    }
}

/// Starts `left` legitimate clients, one every `LEGIT_GAP` from `next`.
struct Legit {
    left: u32,
    next: Instant,
    started: u32,
}

/// A host, optionally with an attacker and a schedule of legitimate clients behind it.
struct Side {
    host: Lazy,
    attacker: Option<Attacker>,
    legit: Option<Legit>,
}

impl Node for Side {
    fn handle(&mut self, now: Instant, packet: &[u8]) {
        self.host.handle(now, packet);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if let Some(a) = self.attacker.as_mut().filter(|a| a.due > 0) {
            a.due -= 1;
            a.sent += 1;
            return Some(a.syn(buf));
        }
        self.host.poll_transmit(now, buf)
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let attack = self.attacker.as_ref().filter(|a| a.left > 0).map(|a| a.next);
        let legit = self.legit.as_ref().filter(|l| l.left > 0).map(|l| l.next);
        [self.host.poll_timeout(), attack, legit].into_iter().flatten().min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.host.handle_timeout(now);
        if let Some(a) = self.attacker.as_mut() {
            while a.left > 0 && a.next <= now {
                let n = a.per_tick.min(a.left);
                a.due += n;
                a.left -= n;
                a.next += Duration::from_millis(1);
            }
        }
        if let Some(l) = self.legit.as_mut() {
            while l.left > 0 && l.next <= now {
                let app = EchoApp::client(now, Ending::CleanClientFirst, l.started, REQUEST);
                self.host.host_mut().connect(now, CLIENT_IP, SERVER, app).expect("connect");
                l.left -= 1;
                l.started += 1;
                l.next += LEGIT_GAP;
            }
        }
    }

    fn after_step(&mut self, now: Instant) {
        self.host.after_step(now);
    }
}

/// Small buffers: a thousand short echo connections need no more.
fn conn_config() -> ConnConfig {
    ConnConfig { send_buffer: 16 * 1024, recv_buffer: 16 * 1024, ..ConnConfig::default() }
}

/// What one flood run measured.
#[derive(Debug)]
struct FloodReport {
    syns: u64,
    completed: u32,
    completed_in_flood: u32,
    failed: u32,
    slowest_handshake: Duration,
    window_syns: u64,
    window_cookies: u64,
    window_allocs: u64,
    window_live_delta: i64,
    peak_growth: i64,
    stats: EndpointStats,
    wall: Duration,
}

fn flood(mode: SynCookies) -> FloodReport {
    let started = WallClock::now();
    let syns = env_u64("TCPCORE_FLOOD_SYNS", 1_000_000);
    let per_ms = syns.div_ceil(FLOOD.as_millis() as u64);
    let cfg = |seed| EndpointConfig { seed, conn: conn_config(), ..EndpointConfig::default() };
    let mut server = Host::new(cfg(2));
    let opts = ListenOptions { syn_backlog: 128, syn_cookies: mode, ..ListenOptions::default() };
    server
        .listen_with(SERVER, opts, |_| EchoApp::server(Instant::ZERO, Ending::CleanClientFirst, 0))
        .expect("listen");
    let client = Side {
        host: Lazy::new(Host::new(cfg(1))),
        attacker: Some(Attacker {
            rng: Rng::new(0xf100d),
            left: syns,
            per_tick: per_ms,
            next: Instant::ZERO,
            due: 0,
            sent: 0,
        }),
        legit: Some(Legit {
            left: LEGIT,
            next: Instant::ZERO + WARM_UP + MEASURED + LEGIT_GAP,
            started: 0,
        }),
    };
    let mut net = Network::new(5);
    let c = net.add_node(client, &[CLIENT_IP]);
    let s =
        net.add_node(Side { host: Lazy::new(server), attacker: None, legit: None }, &[SERVER.ip()]);
    net.link(c, s, LinkConfig::default());
    let ep = |net: &Network<Side>| *net.node(s).host.host().endpoint().stats();

    // Warm-up, then the allocation window with the flood alone.
    net.run_until(Instant::ZERO + WARM_UP);
    let (before, stats0) = ((allocs(), live_bytes()), ep(&net));
    reset_peak();
    net.run_until(Instant::ZERO + WARM_UP + MEASURED);
    let (after, stats1) = ((allocs(), live_bytes()), ep(&net));
    let window_peak = peak_bytes() - before.1;

    // The legitimate clients during the rest of the flood, then until every client is done
    // (or gave up) and the server has forgotten everything.
    let done = |net: &mut Network<Side>| {
        let side = net.node(c);
        let host = net.node(s).host.host();
        side.legit.as_ref().is_some_and(|l| l.left == 0)
            && side.attacker.as_ref().is_some_and(|a| a.left == 0 && a.due == 0)
            && side.host.host().connections().next().is_none()
            && host.endpoint().connection_count() == 0
            && host.endpoint().half_open_count() == 0
    };
    net.drive_bounded(100_000_000, done).expect("the run ends");
    let flood_end = Instant::ZERO + FLOOD;
    let apps: Vec<&EchoApp> = net.node(c).host.host().apps().collect();
    assert_eq!(apps.len(), LEGIT as usize, "every legitimate client ran");
    let completed = apps.iter().filter(|a| a.ok()).count() as u32;
    let in_flood = apps.iter().filter(|a| a.ok() && a.replied_at < Some(flood_end)).count();
    let slowest = apps
        .iter()
        .filter_map(|a| Some(a.connected_at? - a.started))
        .max()
        .unwrap_or(Duration::ZERO);
    let report = FloodReport {
        syns: net.node(c).attacker.as_ref().map_or(0, |a| a.sent),
        completed,
        completed_in_flood: in_flood as u32,
        failed: apps.iter().filter(|a| a.error.is_some()).count() as u32,
        slowest_handshake: slowest,
        window_syns: stats1.syns_received - stats0.syns_received,
        window_cookies: stats1.cookies_sent - stats0.cookies_sent,
        window_allocs: after.0 - before.0,
        window_live_delta: after.1 - before.1,
        peak_growth: window_peak,
        stats: ep(&net),
        wall: started.elapsed(),
    };
    println!(
        "LQ-05 {mode:?}: {} spoofed SYNs over {FLOOD:?} of virtual time; {}/{LEGIT} legitimate \
         clients completed their handshake and echo ({} during the flood, {} failed), slowest \
         handshake {:?}. Allocation window: {} SYNs ({} answered with cookies) made {} \
         allocations, live heap {:+} B (peak {:+} B). Server: {:?}. Wall time {:.2?}.",
        report.syns,
        report.completed,
        report.completed_in_flood,
        report.failed,
        report.slowest_handshake,
        report.window_syns,
        report.window_cookies,
        report.window_allocs,
        report.window_live_delta,
        report.peak_growth,
        summary(&report.stats),
        report.wall,
    );
    // Nothing is left: no connection, no half-open entry, no TIME-WAIT (the server closes
    // second, so it never enters TIME-WAIT).
    let ep = net.node(s).host.host().endpoint();
    assert_eq!(
        (ep.connection_count(), ep.half_open_count(), ep.time_wait_count()),
        (0, 0, 0),
        "server state left after the flood"
    );
    report
}

fn summary(s: &EndpointStats) -> String {
    format!(
        "syns {} syn_acks {} cookies sent {} accepted {} rejected {} syn_queue_drops {} \
         expired {} passive_opens {}",
        s.syns_received,
        s.syn_acks_sent,
        s.cookies_sent,
        s.cookies_accepted,
        s.cookies_rejected,
        s.syn_queue_drops,
        s.syn_queue_expired,
        s.passive_opens
    )
}

/// At most this many allocations in the window of (by default) 100,000 flood SYNs: the
/// simulator's buffer pool and event queue may still grow once or twice; the endpoint must
/// not allocate per SYN at all.
const WINDOW_ALLOCS: u64 = 8;

#[track_caller]
fn assert_flood_holds(r: &FloodReport, cookies: bool) {
    let syns = env_u64("TCPCORE_FLOOD_SYNS", 1_000_000);
    assert!(r.syns >= syns, "only {} spoofed SYNs were sent", r.syns);
    let want = syns * MEASURED.as_millis() as u64 / FLOOD.as_millis() as u64;
    assert!(r.window_syns >= want, "{} SYNs in the window, want {want}", r.window_syns);
    if cookies {
        assert!(
            r.window_cookies >= r.window_syns - 128,
            "{} of {} window SYNs got cookies",
            r.window_cookies,
            r.window_syns
        );
    }
    assert!(
        r.window_allocs <= WINDOW_ALLOCS,
        "{} allocations during {} flood SYNs",
        r.window_allocs,
        r.window_syns
    );
    assert!(r.window_live_delta.abs() <= 64 * 1024, "heap grew {} B", r.window_live_delta);
}

/// LQ-05 with `tcp_syncookies = 1`: the 128-entry SYN queue fills with spoofed entries at
/// once, then every SYN gets a cookie and legitimate clients complete through cookies.
#[test]
fn lq_05_syn_flood_when_full_cookies_keep_legit_clients_connecting() {
    let r = flood(SynCookies::WhenFull);
    assert_flood_holds(&r, true);
    assert!(
        r.completed * 1000 >= LEGIT * 999,
        "only {}/{LEGIT} legitimate clients completed under the flood",
        r.completed
    );
    assert_eq!(r.completed_in_flood, r.completed, "all completed during the flood");
    assert!(r.stats.cookies_accepted >= u64::from(r.completed) - 128);
}

/// LQ-05 with `tcp_syncookies = 2`: no SYN-queue entry at all, every handshake by cookie.
#[test]
fn lq_05_syn_flood_always_cookies_keep_legit_clients_connecting() {
    let r = flood(SynCookies::Always);
    assert_flood_holds(&r, true);
    assert!(
        r.completed * 1000 >= LEGIT * 999,
        "only {}/{LEGIT} legitimate clients completed under the flood",
        r.completed
    );
    assert_eq!(r.stats.cookies_accepted, u64::from(r.completed), "every handshake by cookie");
    assert_eq!(r.stats.syn_queue_drops, 0);
}

/// LQ-05 without cookies, for contrast: the spoofed entries hold the SYN queue for their
/// whole SYN-ACK retry budget (63 s) and are replaced within microseconds, so legitimate SYNs
/// (and all six retransmissions of each) find it full and are dropped (LQ-03).
#[test]
fn lq_05_syn_flood_without_cookies_starves_legit_clients() {
    let r = flood(SynCookies::Never);
    assert_flood_holds(&r, false);
    println!(
        "LQ-05 contrast: without SYN cookies {}/{LEGIT} legitimate clients completed \
         ({} during the flood); with cookies (WhenFull, Always) at least 99.9 % do.",
        r.completed, r.completed_in_flood
    );
    assert_eq!(r.stats.cookies_sent, 0);
    assert!(r.stats.syn_queue_drops >= r.syns - 10_000, "{:?}", summary(&r.stats));
}

// ---------------------------------------------------------------------------------------------
// LQ-04: forged ACKs.

/// Forged ACKs sent at the cookie listener.
const FORGED: u64 = 1_000_000;

/// A handshake-completing ACK from `remote` with the given numbers, as an IP packet.
fn ack_packet(
    buf: &mut [u8],
    remote: SocketAddr,
    seq: u32,
    ack: u32,
    ts: Option<Timestamps>,
) -> usize {
    let repr = TcpRepr {
        src_port: remote.port(),
        dst_port: SERVER.port(),
        seq: SeqNum(seq),
        ack: SeqNum(ack),
        flags: TcpFlags::ACK,
        window: 502,
        options: TcpOptions { timestamps: ts, ..TcpOptions::default() },
        ..TcpRepr::default()
    };
    wire::emit(buf, remote.ip(), SERVER.ip(), &repr, [&[], &[]]).expect("ACK fits")
}

/// LQ-04: a forged ACK passes cookie verification only if, after removing the tuple hash
/// and its own sequence number, the 32-bit cookie it claims has (a) a top byte equal to the
/// current minute counter or the one before (`MAX_AGE` = 2 of 256 values) and (b) low 24 bits
/// that, less the second keyed hash, fall in the 4-entry MSS table (4 of 2^24 values). For a
/// uniformly random ACK number the two are independent, so
///
/// ```text
/// p = 2/256 × 4/2^24 = 2^-29 ≈ 1.86e-9 per forged ACK
/// E[accepted] = 1,000,000 × 2^-29 ≈ 0.0019
/// ```
///
/// and the count is Poisson(0.0019): we assert at most 1, which a correct implementation
/// exceeds with probability λ²/2 ≈ 1.7e-6 per random seed (this seed is fixed). Every other
/// ACK must be counted in `cookies_rejected`, answered with nothing, and leave no state.
#[test]
fn lq_04_million_forged_acks_at_cookie_listener_create_no_connection() {
    let started = WallClock::now();
    let n = env_u64("TCPCORE_FORGED_ACKS", FORGED);
    let cfg = EndpointConfig { seed: 9, conn: conn_config(), ..EndpointConfig::default() };
    let mut ep = Endpoint::new(cfg);
    let opts = ListenOptions { syn_cookies: SynCookies::Always, ..ListenOptions::default() };
    ep.listen_with(SERVER, opts).expect("listen");
    let mut rng = Rng::new(0xacc);
    let (mut pkt, mut out) = (vec![0u8; 128], vec![0u8; 2048]);
    let mut accepted = 0u64;
    let before = allocs();
    for i in 0..n {
        // Spread over five minutes, so several counter values are current in turn.
        let now = Instant::from_micros(i * 300);
        let remote = SocketAddr::new(spoofed_ip(&mut rng), 1024 + rng.below(64_512) as u16);
        let ts =
            rng.chance(0.5).then(|| Timestamps { tsval: rng.next_u32(), tsecr: rng.next_u32() });
        let len = ack_packet(&mut pkt, remote, rng.next_u32(), rng.next_u32(), ts);
        if let Some(DatagramEvent::NewConnection(..)) = ep.handle(now, &pkt[..len]) {
            accepted += 1;
        }
        assert!(ep.poll_transmit(now, &mut out).is_none(), "a forged ACK was answered");
    }
    let forged_allocs = allocs() - before;
    let s = *ep.stats();
    println!(
        "LQ-04: {n} forged ACKs at an Always-cookie listener: {accepted} accepted (expected \
         {:.4}, bound 1), {} rejected, {forged_allocs} allocations; wall time {:.2?}",
        n as f64 / f64::from(1u32 << 29),
        s.cookies_rejected,
        started.elapsed()
    );
    assert!(accepted <= 1, "{accepted} forged ACKs made connections");
    assert_eq!(s.cookies_accepted, accepted);
    assert_eq!(s.cookies_rejected, n - accepted);
    assert_eq!(ep.connection_count() as u64, accepted);
    assert_eq!(ep.half_open_count(), 0, "cookies keep no state");
    assert!(forged_allocs <= accepted * 64, "{forged_allocs} allocations for rejected ACKs");

    // The control: a genuine cookie from the same listener is accepted, so the rejections
    // above are verification at work, not a listener that accepts nothing.
    let now = Instant::from_micros(n * 300);
    let client = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40_000);
    let syn = TcpRepr {
        src_port: client.port(),
        dst_port: SERVER.port(),
        seq: SeqNum(7),
        flags: TcpFlags::SYN,
        window: 65_535,
        options: TcpOptions { mss: Some(1460), ..TcpOptions::default() },
        ..TcpRepr::default()
    };
    let len = wire::emit(&mut pkt, client.ip(), SERVER.ip(), &syn, [&[], &[]]).unwrap();
    assert!(ep.handle(now, &pkt[..len]).is_none());
    let t = ep.poll_transmit(now, &mut out).expect("a cookie SYN-ACK");
    let syn_ack = wire::parse(&out[..t.len]).expect("parses");
    assert_eq!(syn_ack.tcp.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(syn_ack.tcp.ack, SeqNum(8));
    let cookie = syn_ack.tcp.seq;
    let len = ack_packet(&mut pkt, client, 8, (cookie + 1).0, None);
    assert!(matches!(ep.handle(now, &pkt[..len]), Some(DatagramEvent::NewConnection(..))));
    assert_eq!(ep.stats().cookies_accepted, accepted + 1);
}
