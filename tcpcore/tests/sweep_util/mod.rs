//! The seeded transfer harness shared by the sweep, determinism, allocation and application
//! scenario tests: two [`Host`]s joined by a faulty link, running a pair of applications
//! ([`Apps`]: bulk both ways, echo, slow or stalling reader, request/response, half-close,
//! close with unread data), with fault parameters and applications drawn from the seed.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use tcpcore::rng::Rng;
use tcpcore::sim::{Host, LinkConfig, Loss, Model, ModelApp, Network, NodeId, SimError};
use tcpcore::{ConnConfig, Connection, ConnectionError, EndpointConfig, Instant};

/// One mebibyte, the default stream length per direction.
pub const MIB: u64 = 1 << 20;

/// The server's port.
pub const PORT: u16 = 80;

/// The pair of applications a run uses: what the client and the server do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Apps {
    /// Both send `bytes` and read promptly, both directions at once.
    Bulk,
    /// The client sends `bytes` and reads; the server echoes, reading only while it can
    /// write (`Model::Echo`): backpressure both ways.
    Echo,
    /// As `Echo`, but the client stops reading for `pause` after reading `after` bytes: the
    /// echo's send buffer fills, it stops reading, and both windows close.
    EchoStall { after: u64, pause: Duration },
    /// The server sends `bytes`; the client reads `bytes` every `every`.
    SlowReader { bytes: u64, every: Duration },
    /// The server sends `bytes`; the client reads `after` bytes, stops for `pause`, resumes.
    Stall { after: u64, pause: Duration },
    /// `rounds` requests of 100 bytes, each answered with 1-3 KB (Nagle and delayed ACK on).
    ReqResp { rounds: u32 },
    /// The client sends a 1,000-byte request and FIN; the server then sends `bytes`.
    HalfClose,
    /// The client sends `bytes`; the server reads `after` and closes with more unread: the
    /// client must see `ConnectionReset`.
    CloseUnread { after: u64 },
}

/// Bytes of the request/response requests and of the half-close request.
pub const REQUEST: u64 = 100;
pub const HALF_CLOSE_REQUEST: u64 = 1000;

impl Apps {
    /// One of the models, drawn from `seed` (its own stream, so the faults a seed draws do
    /// not depend on it): bulk in a quarter of the seeds, echo (half of them with a stalling
    /// client) in an eighth, each other model in an eighth.
    pub fn from_seed(seed: u64) -> Self {
        let mut r = Rng::new(seed ^ 0xa995_a995_a995_a995);
        match r.below(8) {
            0 | 1 => Apps::Bulk,
            2 if r.chance(0.5) => Apps::Echo,
            2 => Apps::EchoStall {
                after: 16 * 1024 + r.below(512 * 1024),
                pause: Duration::from_secs(5 + r.below(55)),
            },
            3 => Apps::SlowReader {
                bytes: 4096 + r.below(60 * 1024),
                every: Duration::from_millis(10 + r.below(190)),
            },
            4 => Apps::Stall {
                after: 16 * 1024 + r.below(512 * 1024),
                pause: Duration::from_secs(30 + r.below(270)),
            },
            5 => Apps::ReqResp { rounds: 20 + r.below(180) as u32 },
            6 => Apps::HalfClose,
            _ => Apps::CloseUnread { after: r.below(64 * 1024) },
        }
    }

    /// The client's and the server's models, with the bytes each sends.
    pub fn models(self, bytes: u64, seed: u64) -> ((Model, u64), (Model, u64)) {
        match self {
            Apps::Bulk => ((Model::Bulk, bytes), (Model::Bulk, bytes)),
            Apps::Echo => ((Model::Bulk, bytes), (Model::Echo, bytes)),
            Apps::EchoStall { after, pause } => {
                ((Model::Stall { after, pause }, bytes), (Model::Echo, bytes))
            }
            Apps::SlowReader { bytes: per, every } => {
                ((Model::SlowReader { bytes: per, every }, 0), (Model::Bulk, bytes))
            }
            Apps::Stall { after, pause } => {
                ((Model::Stall { after, pause }, 0), (Model::Bulk, bytes))
            }
            Apps::ReqResp { rounds } => (
                (Model::Requester { rounds, request: REQUEST, seed }, 0),
                (Model::Responder { rounds, request: REQUEST, seed }, 0),
            ),
            Apps::HalfClose => ((Model::Bulk, HALF_CLOSE_REQUEST), (Model::AfterEof, bytes)),
            Apps::CloseUnread { after } => {
                ((Model::Bulk, bytes), (Model::CloseUnread { after }, 0))
            }
        }
    }

    /// The run ends in a reset by design (the server closes with unread data).
    pub fn resets(self) -> bool {
        matches!(self, Apps::CloseUnread { .. })
    }
}

/// Everything a seed decides about a run.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub seed: u64,
    /// Bytes each side sends.
    pub bytes: u64,
    pub v6: bool,
    /// Link MTU, also the MTU of both endpoints.
    pub mtu: u16,
    /// Round-trip propagation time (twice the one-way delay).
    pub rtt: Duration,
    /// Extra one-way delay, uniform in `0..jitter`.
    pub jitter: Duration,
    pub loss: Loss,
    /// Long-run fraction of packets lost by `loss`.
    pub loss_rate: f64,
    pub reorder: f64,
    pub reorder_delay: Duration,
    pub duplicate: f64,
    pub corrupt: f64,
    /// Bottleneck rate (0: unlimited) and its drop-tail queue.
    pub rate_bps: u64,
    pub queue_bytes: usize,
    /// Send and receive buffer sizes of both endpoints.
    pub buffer: usize,
    /// The receive buffer's auto-tuning limit, which sets our window-scale shift.
    pub max_recv_buffer: usize,
    /// RFC 7323 timestamps and window scaling offered.
    pub timestamps: bool,
    pub window_scaling: bool,
    /// What the two applications do.
    pub apps: Apps,
}

/// Log-uniform in `[lo, hi]`.
fn log_uniform(r: &mut Rng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + r.unit() * (hi.ln() - lo.ln())).exp()
}

impl Params {
    /// No faults, 10 ms RTT, MTU 1500, IPv4.
    pub fn clean(seed: u64, bytes: u64) -> Self {
        Params {
            seed,
            bytes,
            v6: false,
            mtu: 1500,
            rtt: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: Loss::None,
            loss_rate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            duplicate: 0.0,
            corrupt: 0.0,
            rate_bps: 0,
            queue_bytes: 0,
            buffer: 256 * 1024,
            max_recv_buffer: ConnConfig::default().max_recv_buffer,
            timestamps: true,
            window_scaling: true,
            apps: Apps::Bulk,
        }
    }

    /// The fault matrix: each fault is present in about half the seeds, with its strength
    /// drawn log-uniformly from its range (loss 0.1-10 % uniform or bursty, reordering
    /// 1-10 %, duplication 1-5 %, corruption 0.1-1 %, MTU 576-9000, RTT 0.1-300 ms). A
    /// quarter of the seeds use IPv6 (MTU >= 1280), a quarter small buffers (8-256 KiB),
    /// a quarter no timestamps and a quarter no window scaling; a third have a bottleneck.
    pub fn from_seed(seed: u64, bytes: u64) -> Self {
        let mut r = Rng::new(seed ^ 0x5eed_5eed_5eed_5eed);
        let mut p = Params::clean(seed, bytes);
        p.rtt = Duration::from_nanos((log_uniform(&mut r, 0.1, 300.0) * 1e6) as u64);
        p.mtu = 576 + r.below(9000 - 576 + 1) as u16;
        if r.below(4) == 0 && p.mtu >= 1280 {
            p.v6 = true;
        }
        if r.chance(0.5) {
            p.jitter = p.rtt / 10;
        }
        match r.below(3) {
            0 => {}
            1 => {
                p.loss_rate = log_uniform(&mut r, 0.001, 0.10);
                p.loss = Loss::Uniform(p.loss_rate);
            }
            _ => {
                // Bursty: a bad state lasting 1.7-2.5 packets on average, losing 30-50 % of
                // them, entered so that the long-run loss rate is `mean`. A packet following
                // a lost one is lost with probability at most 0.3 (`Params::chain`): harsher
                // bursts, counted in packets whatever the time between them, make chains of
                // lost retransmissions (each doubling the RTO) a matter of luck, not of the
                // engine.
                let mean = log_uniform(&mut r, 0.001, 0.10);
                let p_bad_to_good = 0.4 + 0.2 * r.unit();
                let loss_in_bad = 0.3 + 0.2 * r.unit();
                let bad = mean / loss_in_bad;
                p.loss_rate = mean;
                p.loss = Loss::GilbertElliott {
                    p_good_to_bad: bad * p_bad_to_good / (1.0 - bad),
                    p_bad_to_good,
                    loss_in_good: 0.0,
                    loss_in_bad,
                };
            }
        }
        if r.chance(0.5) {
            p.reorder = log_uniform(&mut r, 0.01, 0.10);
            let most = (p.rtt / 2).max(Duration::from_millis(1));
            p.reorder_delay = Duration::from_micros(1 + r.below(most.as_micros() as u64));
        }
        if r.chance(0.5) {
            p.duplicate = log_uniform(&mut r, 0.01, 0.05);
        }
        if r.chance(0.5) {
            p.corrupt = log_uniform(&mut r, 0.001, 0.01);
        }
        if r.below(4) == 0 {
            p.buffer = 8192 + r.below(256 * 1024 - 8192) as usize;
        }
        p.timestamps = r.below(4) != 0;
        p.window_scaling = r.below(4) != 0;
        if r.below(3) == 0 {
            p.rate_bps = log_uniform(&mut r, 10e6, 1e9) as u64;
            // At least two windows of the receive buffer, or a BDP.
            let bdp = (p.rate_bps as f64 / 8.0 * p.rtt.as_secs_f64()) as usize;
            p.queue_bytes = bdp.max(64 * 1024);
        }
        p.apps = Apps::from_seed(seed);
        if matches!(p.apps, Apps::SlowReader { .. } | Apps::Stall { .. } | Apps::EchoStall { .. }) {
            // A fixed receive buffer (as with SO_RCVBUF), so the reader's window closes.
            p.max_recv_buffer = p.buffer;
        }
        p
    }

    /// Payload bytes per full segment: the MSS less the timestamp option.
    pub fn payload(&self) -> u64 {
        u64::from(self.mtu) - if self.v6 { 60 } else { 40 } - if self.timestamps { 12 } else { 0 }
    }

    /// Segments per direction.
    pub fn segments(&self) -> u64 {
        self.bytes.div_ceil(self.payload())
    }

    /// Probability that a packet does not arrive intact (loss or a flipped bit, which the
    /// checksum catches).
    pub fn bad_rate(&self) -> f64 {
        self.loss_rate + self.corrupt
    }

    /// Probability that a packet is lost given that the previous one on its link was: the
    /// chance that a retransmission fails again.
    pub fn chain(&self) -> f64 {
        let loss = match self.loss {
            Loss::None => 0.0,
            Loss::Uniform(p) => p,
            Loss::GilbertElliott { p_bad_to_good, loss_in_good, loss_in_bad, .. } => {
                (1.0 - p_bad_to_good) * loss_in_bad + p_bad_to_good * loss_in_good
            }
        };
        loss + self.corrupt
    }

    /// How long the run may take in virtual time: [`Params::transfer_secs`] for the
    /// segments the applications exchange, plus what the applications themselves take:
    ///
    /// - bulk, half-close, close with unread data: the transfer of `bytes` each way;
    /// - echo: twice that (every byte crosses the path twice, and the echo's window closes
    ///   whenever the client's does); with a stalling client, plus the stall as below;
    /// - slow reader: plus the reading time, one period per batch;
    /// - stall: plus the pause, and when packets can be lost two maximal (120 s) persist
    ///   intervals for a lost window update; without loss the reopened window must be
    ///   announced and used at once (FL-03), not found by a backed-off probe;
    /// - request/response: the transfer of every round's segments (one request, up to a
    ///   3,072-byte response) plus 200 ms per round for Nagle waiting on a delayed ACK
    ///   (RFC 896 with RFC 1122 §4.2.3.2; 40 ms here).
    pub fn time_bound(&self) -> Duration {
        let n = self.segments() as f64;
        let secs = match self.apps {
            Apps::Bulk | Apps::HalfClose | Apps::CloseUnread { .. } => self.transfer_secs(n),
            Apps::Echo => 2.0 * self.transfer_secs(n),
            Apps::SlowReader { bytes, every } => {
                let batches = self.bytes.div_ceil(bytes) as f64;
                self.transfer_secs(n) + batches * every.as_secs_f64()
            }
            Apps::Stall { pause, .. } => {
                self.transfer_secs(n) + pause.as_secs_f64() + self.lost_update()
            }
            Apps::EchoStall { pause, .. } => {
                2.0 * self.transfer_secs(n) + pause.as_secs_f64() + self.lost_update()
            }
            Apps::ReqResp { rounds } => {
                let per_round = 1 + 3072u64.div_ceil(self.payload());
                let rounds = f64::from(rounds);
                self.transfer_secs(rounds * per_round as f64) + rounds * 0.2
            }
        };
        Duration::from_secs_f64(secs)
    }

    /// Allowance for a lost window update after a stall: two maximal (120 s) persist
    /// intervals when packets can be lost, none otherwise.
    fn lost_update(&self) -> f64 {
        if self.bad_rate() > 0.0 {
            240.0
        } else {
            0.0
        }
    }

    /// Seconds a transfer of `n` segments each way may take:
    ///
    /// ```text
    /// T = 30 s                        handshake: up to four lost SYNs (1 + 2 + 4 + 8 s)
    ///   + n (RTT + d) (1 + 20 q)      one RTT per segment (a cwnd of one), inflated by loss
    ///   + 8 n q RTO                   every lost segment may cost an RTO, some backed off
    ///   + 2 B                         a segment lost k times in a row, in each direction:
    ///                                 B = sum(i = 0..=k) min(RTO 2^i, 120 s), with k the
    ///                                 smallest count such that c^k <= 1e-4
    ///   + 2 n MTU 8 / rate            serialisation of both directions' data
    /// ```
    ///
    /// where q is the chance a packet is lost or corrupted, c the same given the previous
    /// packet was (`Params::chain`), d the extra delay (jitter plus the reordering
    /// hold-back) and RTO = max(300 ms, 3 RTT + 4 d).
    pub fn transfer_secs(&self, n: f64) -> f64 {
        let q = self.bad_rate();
        let d = (self.jitter + self.reorder_delay).as_secs_f64();
        let rtt = self.rtt.as_secs_f64() + d;
        let rto = (3.0 * rtt + 4.0 * d).max(0.3);
        let c = self.chain();
        let mut k = 0;
        while c.powi(k) > 1e-4 {
            k += 1;
        }
        let backoff: f64 = (0..=k).map(|i| (rto * 2f64.powi(i)).min(120.0)).sum();
        let ser = if self.rate_bps == 0 {
            0.0
        } else {
            2.0 * n * f64::from(self.mtu) * 8.0 / self.rate_bps as f64
        };
        30.0 + n * rtt * (1.0 + 20.0 * q) + 8.0 * n * q * rto + 2.0 * backoff + ser
    }

    /// The link configuration (both directions).
    pub fn link(&self) -> LinkConfig {
        LinkConfig {
            delay: self.rtt / 2,
            jitter: self.jitter,
            rate_bps: self.rate_bps,
            queue_bytes: self.queue_bytes,
            mtu: usize::from(self.mtu),
            loss: self.loss,
            reorder: self.reorder,
            reorder_delay: self.reorder_delay,
            duplicate: self.duplicate,
            corrupt: self.corrupt,
            ..LinkConfig::default()
        }
    }

    pub fn client_ip(&self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
        }
    }

    pub fn server_ip(&self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))
        }
    }
}

/// A built run: the network and its two hosts.
pub struct Run {
    pub p: Params,
    pub net: Network<Host<ModelApp>>,
    pub client: NodeId,
    pub server: NodeId,
}

/// How a finished run went.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// When both applications were finished (both streams read, both FINs acknowledged;
    /// or the reset, for `Apps::CloseUnread`).
    pub done: Instant,
    pub steps: u64,
    pub delivered: u64,
    pub trace_hash: u64,
}

impl Run {
    /// Two hosts, the client connecting to the server at time zero. With `checks`, each
    /// host checks its connections' invariants after every step (see `Host`).
    pub fn new(p: Params, checks: bool) -> Self {
        let conn = ConnConfig {
            mtu: p.mtu,
            send_buffer: p.buffer,
            recv_buffer: p.buffer,
            max_recv_buffer: p.max_recv_buffer,
            timestamps: p.timestamps,
            window_scaling: p.window_scaling,
            ..ConnConfig::default()
        };
        let ep =
            |salt: u64| EndpointConfig { seed: p.seed ^ salt, conn, ..EndpointConfig::default() };
        let (cseed, sseed) = (p.seed.wrapping_mul(2), p.seed.wrapping_mul(2) + 1);
        let mut client = Host::new(ep(0xc1));
        let mut server = Host::new(ep(0x5e));
        client.set_checks(checks);
        server.set_checks(checks);
        let ((cmodel, cbytes), (smodel, sbytes)) = p.apps.models(p.bytes, p.seed);
        // The echo sends back the client's own stream.
        let echo = matches!(p.apps, Apps::Echo | Apps::EchoStall { .. });
        let sseed = if echo { cseed } else { sseed };
        server
            .listen(SocketAddr::new(p.server_ip(), PORT), move |_: &Connection| {
                ModelApp::new(smodel, sbytes, sseed, cseed)
            })
            .expect("listen");
        let app = ModelApp::new(cmodel, cbytes, cseed, sseed);
        let remote = SocketAddr::new(p.server_ip(), PORT);
        client.connect(Instant::ZERO, p.client_ip(), remote, app).expect("connect");
        let mut net = Network::new(p.seed);
        let c = net.add_node(client, &[p.client_ip()]);
        let s = net.add_node(server, &[p.server_ip()]);
        net.link(c, s, p.link());
        Run { p, net, client: c, server: s }
    }

    /// Record both directions for [`Run::write_pcap`].
    pub fn capture(&mut self) {
        self.net.capture(self.client, self.server);
        self.net.capture(self.server, self.client);
    }

    /// Both applications have finished.
    pub fn done(&self) -> bool {
        done_in(&self.net, [self.client, self.server])
    }

    /// Drive until both applications are finished, checking the cross-host invariants after every
    /// step when `checks` is set; the transfers must end within the time bound. Then let
    /// both connections close and drain (TIME-WAIT included).
    pub fn drive(&mut self, checks: bool) -> Result<Outcome, String> {
        let deadline = Instant::ZERO + self.p.time_bound();
        let ids = [self.client, self.server];
        let res = self.net.drive_bounded(50_000_000, |net| {
            if checks {
                cross_check(net, ids);
            }
            done_in(net, ids) || net.now() > deadline
        });
        match res {
            Ok(_) if self.done() => {}
            Ok(_) => {
                return Err(format!("not done by the time bound {deadline}: {}", self.status()))
            }
            Err(SimError::Idle) => return Err(format!("network went idle: {}", self.status())),
            Err(e) => return Err(format!("{e}: {}", self.status())),
        }
        let done = self.done_at();
        self.verify()?;
        let outcome = Outcome {
            done,
            steps: self.net.stats().steps,
            delivered: self.net.stats().delivered,
            trace_hash: self.net.trace_hash(),
        };
        // Close down: TIME-WAIT lasts 2 MSL, then both endpoints must be empty.
        let res = self.net.drive_bounded(1_000_000, |net| {
            ids.iter().all(|&id| net.node(id).endpoint().connection_count() == 0)
        });
        if let Err(e) = res {
            return Err(format!("connections did not drain ({e}): {}", self.status()));
        }
        for id in [self.client, self.server] {
            for f in self.net.node(id).finished() {
                if f.error.is_some() && !self.p.apps.resets() {
                    return Err(format!("{} -> {} closed with {:?}", f.local, f.remote, f.error));
                }
            }
        }
        Ok(outcome)
    }

    /// When the later of the two sides finished.
    fn done_at(&self) -> Instant {
        let at = |id| {
            let apps = self.net.node(id).apps();
            apps.filter_map(|a: &ModelApp| a.io.done_at.or(a.closed_at)).max()
        };
        at(self.client).max(at(self.server)).unwrap_or(self.net.now())
    }

    /// The client's and the server's applications.
    pub fn apps(&self) -> Result<(&ModelApp, &ModelApp), String> {
        let c = self.net.node(self.client).apps().next().ok_or("client app missing")?;
        let s = self.net.node(self.server).apps().next().ok_or("server app missing")?;
        Ok((c, s))
    }

    /// Every stream arrived byte-exact: the receiver's hash equals the sender's. With
    /// `Apps::CloseUnread`, what arrived is a prefix of the stream (no wrong byte), the server
    /// read what it meant to and aborted, and the client saw the reset.
    fn verify(&self) -> Result<(), String> {
        let (c, s) = self.apps()?;
        for (dir, from, to) in [("client->server", c, s), ("server->client", s, c)] {
            if let Some(at) = to.io.first_mismatch {
                return Err(format!("{dir}: first wrong byte at offset {at}"));
            }
            if let (Some(e), false) = (to.io.error, self.p.apps.resets()) {
                return Err(format!("{dir}: receiver failed with {e:?}"));
            }
            if self.p.apps.resets() {
                continue;
            }
            if from.io.sent_hash.value() != to.io.recv_hash.value() {
                return Err(format!(
                    "{dir}: sent {} bytes hash {:x}, received {} bytes hash {:x}",
                    from.io.sent_hash.len(),
                    from.io.sent_hash.value(),
                    to.io.recv_hash.len(),
                    to.io.recv_hash.value()
                ));
            }
            if to.io.recv_hash.len() != from.io.to_send {
                return Err(format!("{dir}: received {} bytes", to.io.recv_hash.len()));
            }
        }
        if let Apps::CloseUnread { after } = self.p.apps {
            let errors = (c.io.error, s.io.error);
            if errors != (Some(ConnectionError::Reset), Some(ConnectionError::Aborted)) {
                return Err(format!("close with unread data: client, server errors {errors:?}"));
            }
            if s.io.read_bytes() != after {
                return Err(format!("server read {} bytes, not {after}", s.io.read_bytes()));
            }
        }
        Ok(())
    }

    /// A one-line summary of where both sides are, for failure messages.
    pub fn status(&self) -> String {
        let mut out = format!("t={} {:?} ", self.net.now(), self.p.apps);
        for (name, id) in [("client", self.client), ("server", self.server)] {
            let host = self.net.node(id);
            for (_, conn, app) in host.connections() {
                let i = conn.info();
                out += &format!(
                    "[{name} {:?} wrote {}/{} read {} eof {} err {:?} cwnd {} rto {:?} \
                     unacked {} retx {} timeouts {} probes {} {:?}] ",
                    conn.state(),
                    app.io.written,
                    app.io.to_send,
                    app.io.recv_hash.len(),
                    app.io.eof,
                    app.io.error,
                    i.cwnd,
                    i.rto,
                    i.unacked,
                    i.retransmits,
                    i.timeouts,
                    i.probes_out,
                    conn.seq_vars()
                );
            }
            for f in host.finished() {
                out += &format!("[{name} finished at {} error {:?}] ", f.at, f.error);
            }
        }
        out
    }

    /// Write both directions, merged in time order, as one pcap file.
    pub fn write_pcap(&mut self, path: &std::path::Path) -> std::io::Result<()> {
        let a = self.net.take_pcap(self.client, self.server).unwrap_or_default();
        let b = self.net.take_pcap(self.server, self.client).unwrap_or_default();
        std::fs::write(path, merge_pcaps(&a, &b))
    }
}

/// Both hosts have an application and every one of them is finished.
pub fn done_in(net: &Network<Host<ModelApp>>, ids: [NodeId; 2]) -> bool {
    ids.iter().all(|&id| {
        let host = net.node(id);
        host.apps().next().is_some() && host.apps().all(ModelApp::is_finished)
    })
}

/// SND.MAX never passes ISS + 1 (SYN) + the bytes the application wrote + 1 (FIN); and
/// cross-host invariants, for every connection whose peer is still alive: what a receiver
/// has received in order (RCV.NXT) never exceeds what the sender has sent (SND.MAX); what
/// the sender saw acknowledged (SND.UNA) never exceeds what the receiver received; and the
/// sender's right window edge (SND.UNA + SND.WND) never exceeds the receiver's advertised
/// edge RCV.ADV: the receiver records the edge it announced, scale round-off included (FL-01).
#[track_caller]
pub fn cross_check(net: &Network<Host<ModelApp>>, [a, b]: [NodeId; 2]) {
    for (me, peer) in [(a, b), (b, a)] {
        let (me, peer) = (net.node(me), net.node(peer));
        for (_, tx, app) in me.connections() {
            let s = tx.seq_vars();
            // Nothing is sent beyond the SYN, the bytes written and the FIN.
            let limit = s.iss + 2 + app.io.written as u32;
            assert!(
                s.snd_max <= limit,
                "{}: SND.MAX {:?} beyond ISS + SYN + {} bytes + FIN: {s:?}",
                net.now(),
                s.snd_max,
                app.io.written
            );
            let Some(rx) = peer.find(tx.remote_addr(), tx.local_addr()) else { continue };
            if matches!(rx.state(), tcpcore::State::SynSent | tcpcore::State::Listen) {
                continue;
            }
            let (s, r) = (tx.seq_vars(), rx.seq_vars());
            let at = net.now();
            assert!(
                r.rcv_nxt <= s.snd_max,
                "{at}: receiver {} RCV.NXT {:?} beyond sender SND.MAX {:?}\n tx {s:?}\n rx {r:?}",
                rx.local_addr(),
                r.rcv_nxt,
                s.snd_max
            );
            if tx.state().is_synchronized() {
                assert!(
                    s.snd_una <= r.rcv_nxt,
                    "{at}: sender {} SND.UNA {:?} beyond receiver RCV.NXT {:?}\n tx {s:?}\n rx {r:?}",
                    tx.local_addr(),
                    s.snd_una,
                    r.rcv_nxt
                );
                assert!(
                    s.snd_una + s.snd_wnd <= r.rcv_adv,
                    "{at}: sender {} window edge {:?} beyond receiver RCV.ADV {:?}\n tx {s:?}\n rx {r:?}",
                    tx.local_addr(),
                    s.snd_una + s.snd_wnd,
                    r.rcv_adv
                );
            }
        }
    }
}

/// Merge two pcap files (same global header) into one, records in time order.
pub fn merge_pcaps(a: &[u8], b: &[u8]) -> Vec<u8> {
    fn records(f: &[u8]) -> Vec<(u64, &[u8])> {
        let mut out = Vec::new();
        let mut i = 24;
        while i + 16 <= f.len() {
            let word = |o: usize| u32::from_le_bytes(f[i + o..i + o + 4].try_into().unwrap());
            let t = u64::from(word(0)) * 1_000_000 + u64::from(word(4));
            let end = i + 16 + word(8) as usize;
            out.push((t, &f[i..end]));
            i = end;
        }
        out
    }
    let header = if a.len() >= 24 { &a[..24] } else { &b[..b.len().min(24)] };
    let mut all = records(a);
    all.extend(records(b));
    all.sort_by_key(|r| r.0); // stable: ties keep a before b
    let mut out = header.to_vec();
    for (_, r) in all {
        out.extend_from_slice(r);
    }
    out
}

/// Run one seed, catching panics (engine or invariant). On failure, run it again with
/// capture on and write `<target>/tmp/sim_sweep_seed_<seed>.pcap`.
pub fn run_seed(p: Params, checks: bool) -> Result<Outcome, String> {
    let attempt = |capture: bool| {
        let mut run = Run::new(p, checks);
        if capture {
            run.capture();
        }
        let res = catch_unwind(AssertUnwindSafe(|| run.drive(checks)));
        let res = match res {
            Ok(r) => r,
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Err(format!("panic: {msg}"))
            }
        };
        (res, run)
    };
    let (res, _) = attempt(false);
    let Err(msg) = res else { return res };
    let (_, mut run) = attempt(true);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sim_sweep_seed_{}.pcap", p.seed));
    let wrote = run
        .write_pcap(&path)
        .map_or_else(|e| format!("(pcap failed: {e})"), |()| format!("pcap: {}", path.display()));
    Err(format!("seed {} {p:?}\n  {msg}\n  {wrote}", p.seed))
}
