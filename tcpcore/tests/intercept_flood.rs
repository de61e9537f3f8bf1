//! AI-01 and AI-02 in the simulator: an intercepting host behind a default route, as a
//! transparent forwarder sits behind a TUN, terminates connections to any address; under a
//! spoofed-SYN flood to random addresses and ports, legitimate clients dialling arbitrary
//! destinations through the same link still connect and exchange their bytes, and the
//! forwarder's heap stays bounded.
//!
//! One client node carries both the attacker and the legitimate clients, so spoofed SYNs and
//! real handshakes share the one client → forwarder link; the forwarder owns every address
//! nobody else does ([`Network::set_default_route`]). Its answers to spoofed sources have
//! nowhere to go and are dropped as "no route".
//!
//! The same with a flood of IP fragments that never complete (FR-01): the forwarder's
//! reassembly stays within its budget and its heap with it, and TCP goes on unharmed.
//!
//! `TCPCORE_AI_FLOOD_SYNS` and `TCPCORE_AI_FLOOD_FRAGS` set the number of spoofed SYNs or
//! fragments per run (default 1,000,000 each; they are sent at 100,000 per second of virtual
//! time, so the count sets the flood's length).

mod alloc_util;

mod flood_util;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant as WallClock};

use alloc_util::{live_bytes, peak_bytes, reset_peak};
use flood_util::{spoofed_ip, spoofed_syn, EchoApp, Ending, Lazy};
use tcpcore::rng::Rng;
use tcpcore::sim::{Host, LinkConfig, Network, Node, NodeId};
use tcpcore::wire;
use tcpcore::{
    ConnConfig, ConnectionError, Decision, EndpointConfig, EndpointStats, Instant, InterceptMode,
    InterceptOptions, SynCookies,
};

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const FORWARDER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// Spoofed packets per run, unless `TCPCORE_AI_FLOOD_SYNS` or `TCPCORE_AI_FLOOD_FRAGS` says
/// otherwise.
const FLOOD_PACKETS: u64 = 1_000_000;
/// Spoofed packets per millisecond of virtual time (100,000 per second).
const PER_MS: u64 = 100;
/// Legitimate clients, each sending `REQUEST` bytes and reading them back.
const LEGIT: u32 = 1000;
const REQUEST: usize = 100;
/// The forwarder's SYN queue and pending-request table (Linux's `tcp_max_syn_backlog`).
const BACKLOG: u32 = 1024;
/// The bound on the forwarder's heap during the run, whatever the flood's size: its endpoint
/// (connections, SYN queue, pending requests, demultiplexer), the applications of its
/// connections and the test's own records. About 0.9 MiB is measured with the SYN queue
/// full, 0.4 MiB without.
const HEAP_BOUND: i64 = 2 << 20;

/// How many packets a flood of `kind` sends (at least 10 ms worth).
fn flood_size(kind: Flood) -> u64 {
    let var = match kind {
        Flood::Syn => "TCPCORE_AI_FLOOD_SYNS",
        Flood::Fragment => "TCPCORE_AI_FLOOD_FRAGS",
    };
    let n = std::env::var(var).ok().and_then(|v| v.parse().ok());
    n.unwrap_or(FLOOD_PACKETS).max(10 * PER_MS)
}

/// A random address outside the simulated hosts' and a random port other than 0.
fn random_dest(rng: &mut Rng) -> SocketAddr {
    SocketAddr::new(spoofed_ip(rng), 1 + rng.below(65_535) as u16)
}

/// What the attacker sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flood {
    /// SYNs from random addresses and ports to random addresses and ports.
    Syn,
    /// IPv4 fragments that never complete, from and to random addresses with a random
    /// identification: each opens a reassembly (FR-01).
    Fragment,
}

/// Data in each flood fragment, and the furthest (in 8-byte units) it starts in its
/// datagram: each pending datagram holds a buffer of up to 8 KiB.
const FRAG_DATA: usize = 256;
const FRAG_MAX_OFFSET8: u64 = 1000;

/// Sends `left` packets of its `kind`, `PER_MS` every millisecond.
struct Attacker {
    kind: Flood,
    rng: Rng,
    left: u64,
    next: Instant,
    /// SYNs due but not yet sent.
    due: u64,
    sent: u64,
}

impl Attacker {
    fn packet(&mut self, buf: &mut [u8]) -> usize {
        match self.kind {
            Flood::Syn => self.syn(buf),
            Flood::Fragment => self.fragment(buf),
        }
    }

    /// A middle fragment of a UDP datagram: more fragments follow, and the first and last
    /// never come (RFC 791 §3.1 header, checksum included, so it reaches reassembly).
    fn fragment(&mut self, buf: &mut [u8]) -> usize {
        let (IpAddr::V4(src), IpAddr::V4(dst)) =
            (spoofed_ip(&mut self.rng), spoofed_ip(&mut self.rng))
        else {
            unreachable!("random_ip makes IPv4 addresses")
        };
        let len = 20 + FRAG_DATA;
        let offset8 = 1 + self.rng.below(FRAG_MAX_OFFSET8) as u16;
        buf[..len].fill(0xa5);
        buf[..20].fill(0);
        buf[0] = 0x45;
        buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        buf[4..6].copy_from_slice(&(self.rng.next_u32() as u16).to_be_bytes());
        buf[6..8].copy_from_slice(&(0x2000 | offset8).to_be_bytes());
        (buf[8], buf[9]) = (64, 17);
        buf[12..16].copy_from_slice(&src.octets());
        buf[16..20].copy_from_slice(&dst.octets());
        let c = wire::checksum::checksum(&buf[..20]);
        buf[10..12].copy_from_slice(&c.to_be_bytes());
        len
    }

    /// A spoofed SYN as Linux clients send it, from and to random addresses.
    fn syn(&mut self, buf: &mut [u8]) -> usize {
        let (src, dst) = (spoofed_ip(&mut self.rng), random_dest(&mut self.rng));
        spoofed_syn(&mut self.rng, src, dst, buf)
    }
}

/// Starts one legitimate client to each of `dests`, one every `gap` from `next`.
struct Legit {
    dests: Vec<SocketAddr>,
    started: usize,
    next: Instant,
    gap: Duration,
}

/// A host with, on the client side, an attacker and a schedule of legitimate clients
/// behind it. Tracks the heap its host allocates and the forwarder's table sizes.
struct Side {
    host: Lazy,
    attacker: Option<Attacker>,
    legit: Option<Legit>,
    /// Bytes the host's calls allocated and did not free, its construction included.
    heap: i64,
    /// The highest `heap`, within calls too.
    peak_heap: i64,
    max_half_open: usize,
    max_pending: usize,
    /// The most memory reassembly held (charged bytes).
    max_reassembly: usize,
}

impl Side {
    fn new(host: Lazy, heap: i64) -> Self {
        Side {
            host,
            attacker: None,
            legit: None,
            heap,
            peak_heap: heap,
            max_half_open: 0,
            max_pending: 0,
            max_reassembly: 0,
        }
    }

    /// Run `f` on the host, counting what it allocates and frees.
    fn metered<R>(&mut self, f: impl FnOnce(&mut Lazy) -> R) -> R {
        let before = live_bytes();
        reset_peak();
        let r = f(&mut self.host);
        self.peak_heap = self.peak_heap.max(self.heap + peak_bytes() - before);
        self.heap += live_bytes() - before;
        r
    }

    fn host(&self) -> &Host<EchoApp> {
        self.host.host()
    }
}

impl Node for Side {
    fn handle(&mut self, now: Instant, packet: &[u8]) {
        self.metered(|h| h.handle(now, packet));
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if let Some(a) = self.attacker.as_mut().filter(|a| a.due > 0) {
            a.due -= 1;
            a.sent += 1;
            return Some(a.packet(buf));
        }
        self.metered(|h| h.poll_transmit(now, buf))
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let attack = self.attacker.as_ref().filter(|a| a.left > 0).map(|a| a.next);
        let legit = self.legit.as_ref().filter(|l| l.started < l.dests.len()).map(|l| l.next);
        [self.metered(Lazy::poll_timeout), attack, legit].into_iter().flatten().min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.metered(|h| h.handle_timeout(now));
        if let Some(a) = self.attacker.as_mut() {
            while a.left > 0 && a.next <= now {
                let n = PER_MS.min(a.left);
                a.due += n;
                a.left -= n;
                a.next += Duration::from_millis(1);
            }
        }
        let Some(l) = self.legit.as_mut() else { return };
        while l.started < l.dests.len() && l.next <= now {
            let seed = l.started as u32;
            let app = EchoApp::client(now, Ending::CleanClientFirst, seed, REQUEST);
            let to = l.dests[l.started];
            self.host.host_mut().connect(now, CLIENT_IP, to, app).expect("connect");
            l.started += 1;
            l.next += l.gap;
        }
    }

    fn after_step(&mut self, now: Instant) {
        self.metered(|h| h.after_step(now));
        let ep = self.host.host().endpoint();
        self.max_half_open = self.max_half_open.max(ep.half_open_count());
        self.max_pending = self.max_pending.max(ep.pending_requests());
        self.max_reassembly = self.max_reassembly.max(ep.reassembly_usage().1);
    }
}

/// Small buffers: a thousand short echo connections need no more.
fn conn_config() -> ConnConfig {
    ConnConfig { send_buffer: 16 * 1024, recv_buffer: 16 * 1024, ..ConnConfig::default() }
}

/// A 1 Gbit/s link with a 1 MiB drop-tail queue and 1 ms of delay: it carries the flood
/// (100,000 60-byte SYNs per second, 48 Mbit/s) with room to spare.
fn link() -> LinkConfig {
    LinkConfig { rate_bps: 1_000_000_000, queue_bytes: 1 << 20, ..LinkConfig::default() }
}

/// What one flood run measured.
#[derive(Debug)]
struct Report {
    kind: Flood,
    /// Spoofed packets sent.
    sent: u64,
    flood_len: Duration,
    completed: u32,
    completed_in_flood: u32,
    failed: u32,
    slowest_handshake: Duration,
    peak_heap: i64,
    end_heap: i64,
    max_half_open: usize,
    max_pending: usize,
    max_reassembly: usize,
    stats: EndpointStats,
    wall: Duration,
}

/// The forwarder intercepting in `mode`: in `Decide`, it completes the requests to the
/// legitimate clients' destinations (its upstream connections succeed) and resets the
/// others, at once.
fn forwarder(mode: InterceptMode, dests: &[SocketAddr]) -> Host<EchoApp> {
    let cfg = EndpointConfig { seed: 2, conn: conn_config(), ..EndpointConfig::default() };
    let mut host = Host::new(cfg);
    let mut opts = InterceptOptions { mode, max_pending: BACKLOG, ..InterceptOptions::default() };
    opts.listen.syn_backlog = BACKLOG;
    opts.listen.syn_cookies = SynCookies::WhenFull;
    let reachable: BTreeSet<SocketAddr> = dests.iter().copied().collect();
    host.intercept(
        opts,
        |_| EchoApp::server(Instant::ZERO, Ending::CleanClientFirst, 0),
        move |_, req| {
            if reachable.contains(&req.local()) {
                Decision::Complete
            } else {
                Decision::Reset
            }
        },
    );
    host
}

/// Run the client node and the forwarder (intercepting in `mode`, reaching `reachable`)
/// joined by [`link`], the forwarder the default route, until every client is done (or
/// gave up), the attacker sent its flood (`attack`: what, how many packets) and the
/// forwarder has forgotten everything.
/// One client dials each of `dests`, the first at `first`, then one every `gap`.
fn run(
    mode: InterceptMode,
    reachable: &[SocketAddr],
    dests: Vec<SocketAddr>,
    attack: (Flood, u64),
    first: Instant,
    gap: Duration,
) -> (Network<Side>, NodeId, NodeId) {
    let before = live_bytes();
    let server = Lazy::new(forwarder(mode, reachable));
    let server = Side::new(server, live_bytes() - before);
    let client_host =
        Host::new(EndpointConfig { seed: 1, conn: conn_config(), ..EndpointConfig::default() });
    let mut client = Side::new(Lazy::new(client_host), 0);
    let (kind, left) = attack;
    let rng = Rng::new(0xf100d);
    client.attacker = Some(Attacker { kind, rng, left, next: Instant::ZERO, due: 0, sent: 0 });
    client.legit = Some(Legit { dests, started: 0, next: first, gap });

    let mut net = Network::new(5);
    let c = net.add_node(client, &[CLIENT_IP]);
    let s = net.add_node(server, &[FORWARDER_IP]);
    net.link(c, s, link());
    net.set_default_route(Some(s));
    let done = |net: &mut Network<Side>| {
        let side = net.node(c);
        let ep = net.node(s).host().endpoint();
        side.legit.as_ref().is_some_and(|l| l.started == l.dests.len())
            && side.attacker.as_ref().is_some_and(|a| a.left == 0 && a.due == 0)
            && net.in_flight() == 0
            && side.host().connections().next().is_none()
            && ep.connection_count() == 0
            && ep.half_open_count() == 0
            && ep.pending_requests() == 0
            && ep.reassembly_usage().0 == 0
    };
    net.drive_bounded(100_000_000, done).expect("the run ends");
    (net, c, s)
}

/// The flood: [`flood_size`] spoofed packets of `kind` at the forwarder intercepting in
/// `mode`, and `LEGIT` clients to random destinations during it. Checks that the
/// forwarder's connections were exactly the clients' ones, on their dialled addresses.
fn flood(mode: InterceptMode, kind: Flood) -> Report {
    let started = WallClock::now();
    let size = flood_size(kind);
    let flood_len = Duration::from_millis(size.div_ceil(PER_MS));
    let mut rng = Rng::new(0xa1f100d);
    let dests: Vec<SocketAddr> = (0..LEGIT).map(|_| random_dest(&mut rng)).collect();

    // The legitimate clients start during the flood's second tenth to its sixth.
    let (first, gap) = (Instant::ZERO + flood_len / 10, flood_len / 2 / LEGIT);
    let reachable = dests.clone();
    let (net, c, s) = run(mode, &reachable, dests, (kind, size), first, gap);
    let flood_end = Instant::ZERO + flood_len;
    let apps: Vec<&EchoApp> = net.node(c).host().apps().collect();
    assert_eq!(apps.len(), LEGIT as usize, "every legitimate client ran");
    let forwarder = net.node(s);
    let mut locals: Vec<_> = forwarder.host().finished().iter().map(|f| f.local).collect();
    let mut dialled = reachable;
    locals.sort();
    dialled.sort();
    assert_eq!(locals, dialled, "only the clients got connections, on their dialled addresses");
    let report = Report {
        kind,
        sent: net.node(c).attacker.as_ref().map_or(0, |a| a.sent),
        flood_len,
        completed: apps.iter().filter(|a| a.ok()).count() as u32,
        completed_in_flood: apps.iter().filter(|a| a.ok() && a.replied_at < Some(flood_end)).count()
            as u32,
        failed: apps.iter().filter(|a| a.error.is_some()).count() as u32,
        slowest_handshake: apps
            .iter()
            .filter_map(|a| Some(a.connected_at? - a.started))
            .max()
            .unwrap_or(Duration::ZERO),
        peak_heap: forwarder.peak_heap,
        end_heap: forwarder.heap,
        max_half_open: forwarder.max_half_open,
        max_pending: forwarder.max_pending,
        max_reassembly: forwarder.max_reassembly,
        stats: *forwarder.host().endpoint().stats(),
        wall: started.elapsed(),
    };
    println!(
        "AI flood ({mode:?}): {} spoofed {kind:?} packets to random addresses over {flood_len:?}; \
         {}/{LEGIT} legitimate clients to random destinations completed their handshake and \
         echo ({} during the flood, {} failed), slowest handshake {:?}. Forwarder heap: peak \
         {} B, at the end {} B; most half-open {}, most pending {}, most reassembly memory \
         {} B. syns {} syn_acks {} cookies sent {} accepted {}, fragments {} dropped over \
         budget {}; {:?}. Wall time {:.2?}.",
        report.sent,
        report.completed,
        report.completed_in_flood,
        report.failed,
        report.slowest_handshake,
        report.peak_heap,
        report.end_heap,
        report.max_half_open,
        report.max_pending,
        report.max_reassembly,
        report.stats.syns_received,
        report.stats.syn_acks_sent,
        report.stats.cookies_sent,
        report.stats.cookies_accepted,
        report.stats.frags_in,
        report.stats.frag_budget_drops,
        report.stats.intercept,
        report.wall,
    );
    report
}

#[track_caller]
fn assert_flood_holds(r: &Report, heap_bound: i64) {
    let size = flood_size(r.kind);
    assert!(r.sent >= size, "only {} spoofed packets were sent", r.sent);
    let seen = match r.kind {
        Flood::Syn => r.stats.syns_received,
        Flood::Fragment => r.stats.frags_in,
    };
    assert!(seen >= size, "the forwarder saw {seen} flood packets of {size}");
    // Without cookies (or decisions) they would complete only after the flood, on a SYN
    // retransmission: count those that got their echo while it lasted.
    assert!(
        r.completed_in_flood * 1000 >= LEGIT * 999,
        "only {}/{LEGIT} legitimate clients exchanged their bytes during the flood",
        r.completed_in_flood
    );
    assert_eq!(r.completed_in_flood, r.completed, "none completed late");
    assert!(r.max_half_open <= BACKLOG as usize, "SYN queue bounded: {}", r.max_half_open);
    assert!(r.max_pending <= BACKLOG as usize, "pending table bounded: {}", r.max_pending);
    assert!(
        r.peak_heap <= heap_bound,
        "the forwarder's heap peaked at {} B (bound {heap_bound} B)",
        r.peak_heap
    );
}

/// AI-01 under a flood (and LQ-05 for interception): the forwarder accepts whatever is
/// dialled; the spoofed SYNs fill its SYN queue at once, and from then on every SYN gets a
/// cookie, so the legitimate clients complete through cookies.
#[test]
fn ai_01_spoofed_syn_flood_at_an_any_ip_host_in_the_simulator_cookies_let_clients_in() {
    let r = flood(InterceptMode::Accept, Flood::Syn);
    assert_flood_holds(&r, HEAP_BOUND);
    assert_eq!(r.max_half_open, BACKLOG as usize, "spoofed SYNs fill the SYN queue");
    assert!(r.stats.cookies_sent >= r.sent - u64::from(BACKLOG), "{:?}", r.stats.cookies_sent);
    if r.flood_len < Duration::from_secs(63) {
        // The spoofed entries hold the SYN queue for 63 s (the SYN-ACK retries), longer
        // than the flood: every legitimate client comes in through a cookie.
        assert_eq!(r.stats.cookies_accepted, u64::from(r.completed));
    }
    assert_eq!(r.stats.intercept.requests, 0, "no decision in accept mode");
}

/// AI-02 under a flood: the forwarder holds every SYN for its application, which completes
/// the legitimate destinations and resets the rest in the step the SYN arrives; the pending
/// table and the SYN queue never fill and no cookie is needed.
#[test]
fn ai_02_spoofed_syn_flood_at_an_any_ip_host_in_the_simulator_prompt_decisions() {
    let r = flood(InterceptMode::Decide, Flood::Syn);
    assert_flood_holds(&r, HEAP_BOUND);
    let st = r.stats.intercept;
    assert_eq!(st.completed, u64::from(LEGIT), "{st:?}");
    assert_eq!(st.reset, r.sent, "every spoofed SYN refused: {st:?}");
    assert_eq!(st.requests, st.completed + st.reset, "{st:?}");
    assert_eq!((st.pending_overflows, st.overflow_cookies, st.expired), (0, 0, 0), "{st:?}");
    assert_eq!(r.stats.cookies_sent, 0);
    assert!(r.max_pending <= 1, "decided at once: {}", r.max_pending);
}

/// An address nobody in the network owns.
fn far(i: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)), port)
}

/// AI-01 in the simulator: clients dial addresses nobody owns; the default route takes them
/// to the intercepting host, which terminates each connection on the dialled address.
#[test]
fn ai_01_a_host_behind_the_default_route_terminates_connections_to_any_address() {
    let dests = vec![far(1, 443), far(2, 22), far(1, 80)];
    let ms = Duration::from_millis(1);
    let no_flood = (Flood::Syn, 0);
    let (net, c, s) = run(InterceptMode::Accept, &[], dests.clone(), no_flood, Instant::ZERO, ms);
    assert!(net.node(c).host().apps().all(EchoApp::ok), "every client got its echo");
    let finished = net.node(s).host().finished();
    let mut locals: Vec<_> = finished.iter().map(|f| f.local).collect();
    locals.sort();
    let mut want = dests;
    want.sort();
    assert_eq!(locals, want, "one connection on each dialled address");
    assert!(finished.iter().all(|f| f.remote.ip() == CLIENT_IP && f.error.is_none()));
    assert_eq!(net.node(s).host().endpoint().stats().passive_opens, 3);
}

/// AI-02 in the simulator: the host's decider completes the destinations it can reach and
/// resets the other before any SYN-ACK, so that client's connect fails as refused.
#[test]
fn ai_02_a_host_completes_only_the_destinations_its_decider_accepts() {
    let dests = vec![far(1, 443), far(2, 22), far(3, 80)];
    let ms = Duration::from_millis(1);
    let (reachable, no_flood) = (&dests[..2], (Flood::Syn, 0));
    let (net, c, s) =
        run(InterceptMode::Decide, reachable, dests.clone(), no_flood, Instant::ZERO, ms);
    for app in net.node(c).host().apps() {
        if app.seed < 2 {
            assert!(app.ok(), "client {} to a reachable destination: {app:?}", app.seed);
        } else {
            assert_eq!(app.error, Some(ConnectionError::Refused), "{app:?}");
            assert_eq!(app.connected_at, None);
        }
    }
    let st = net.node(s).host().endpoint().stats();
    assert_eq!((st.intercept.completed, st.intercept.reset, st.syn_acks_sent), (2, 1, 2));
}

/// FR-01 and AI-01 under a fragment flood: 1,000,000 fragments that never complete, from and
/// to random addresses, at the intercepting forwarder while the clients connect through it.
/// Reassembly fills its budget (Linux's 4 MiB `ipfrag_high_thresh`) and drops the rest; the
/// forwarder's heap stays within the budget plus its fixed tables, and TCP, which needs no
/// reassembly, is unharmed.
#[test]
fn fr_01_fragment_flood_at_an_any_ip_host_in_the_simulator_stays_in_budget() {
    let r = flood(InterceptMode::Accept, Flood::Fragment);
    let budget = EndpointConfig::default().ipfrag_high_thresh;
    assert_flood_holds(&r, HEAP_BOUND + budget as i64);
    assert!(r.max_reassembly <= budget, "reassembly held {} B", r.max_reassembly);
    assert!(r.max_reassembly > budget / 2, "the budget was used: {} B", r.max_reassembly);
    assert!(r.stats.frag_budget_drops > r.sent / 2, "the flood hit the budget: {:?}", r.stats);
    assert_eq!(r.stats.frag_reassembled, 0, "no flood datagram completes");
}
