//! The `sim` target's harness: a client and a server [`Host`] joined through the simulator
//! by links with fuzz-chosen faults, with applications that write, read, shut down, close and
//! abort when the fuzz input says. Both hosts check the sweep's invariants after every step;
//! every byte read must be the other side's stream at its position (what is delivered is
//! always a prefix of what was sent), and a run without partition, close or abort must
//! deliver both streams completely.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use tcpcore::sim::{App, Host, LinkConfig, Loss, Network, NodeId};
use tcpcore::{ConnConfig, Connection, EndpointConfig, Event, Instant, ReadError, State};

use crate::{stream_fill, stream_mismatch};

/// The faults of one direction.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Faults {
    /// One-way delay: 100 µs × (1 + n).
    pub delay: u8,
    /// Jitter up to half the delay.
    pub jitter: bool,
    /// Loss, in tenths of a percent (modulo 101: up to 10 %).
    pub loss: u8,
    /// Bursty (Gilbert-Elliott) rather than uniform loss.
    pub bursty: bool,
    /// Reordering, in tenths of a percent (modulo 101), held back up to `reorder_ms` + 1 ms.
    pub reorder: u8,
    /// Longest reordering hold-back.
    pub reorder_ms: u8,
    /// Duplication, in tenths of a percent (modulo 51).
    pub duplicate: u8,
    /// Corruption (one flipped bit), in tenths of a percent (modulo 21).
    pub corrupt: u8,
    /// A bottleneck of 1 Mbit/s × (1 + n) with a 64 KiB queue.
    pub rate: Option<u8>,
}

impl Faults {
    fn link(&self, mtu: usize) -> LinkConfig {
        let delay = Duration::from_micros(100 * (1 + u64::from(self.delay)));
        let p = |n: u8, m: u8| f64::from(n % m) / 1000.0;
        let loss = p(self.loss, 101);
        LinkConfig {
            delay,
            jitter: if self.jitter { delay / 2 } else { Duration::ZERO },
            rate_bps: self.rate.map_or(0, |r| 1_000_000 * (1 + u64::from(r))),
            queue_bytes: 64 * 1024,
            mtu,
            loss: match (loss, self.bursty) {
                (0.0, _) => Loss::None,
                (l, false) => Loss::Uniform(l),
                (l, true) => Loss::GilbertElliott {
                    p_good_to_bad: l,
                    p_bad_to_good: 0.5,
                    loss_in_good: 0.0,
                    loss_in_bad: 0.5,
                },
            },
            reorder: p(self.reorder, 101),
            reorder_delay: Duration::from_millis(1 + u64::from(self.reorder_ms)),
            duplicate: p(self.duplicate, 51),
            corrupt: p(self.corrupt, 21),
            ..LinkConfig::default()
        }
    }
}

/// How the run is set up.
#[derive(Arbitrary, Clone, Debug)]
pub struct Setup {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// MTU of the links and both endpoints: 576 (1280 for IPv6) plus this modulo 8424.
    pub mtu: u16,
    /// Send and receive buffers: 2 KiB << (n % 8).
    pub buffers: u8,
    /// Offer timestamps.
    pub timestamps: bool,
    /// Offer SACK.
    pub sack: bool,
    /// Offer window scaling.
    pub window_scaling: bool,
    /// Nagle off.
    pub nodelay: bool,
    /// The simulator's seed.
    pub seed: u64,
    /// Client to server.
    pub up: Faults,
    /// Server to client.
    pub down: Faults,
}

/// Which side an application call is for.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The side that connects.
    Client,
    /// The side that accepts.
    Server,
}

/// One step of the run.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Action {
    /// Run the network for 2^(n % 25) microseconds.
    Run(u8),
    /// The application wants to write this many more bytes (as room allows).
    Write(Side, u16),
    /// The application may read this many more bytes.
    Read(Side, u16),
    /// The application reads everything from now on.
    ReadAll(Side),
    /// The application shuts down writing once its writes are done.
    Shutdown(Side),
    /// The application closes.
    Close(Side),
    /// The application aborts.
    Abort(Side),
    /// Cut (true) or heal the links.
    Partition(bool),
}

/// The whole fuzz input.
#[derive(Arbitrary, Clone, Debug)]
pub struct Input {
    /// The setup.
    pub setup: Setup,
    /// The steps.
    pub actions: Vec<Action>,
}

/// Salt of a side's stream (see [`crate::stream_byte`]).
fn salt(side: Side) -> u32 {
    match side {
        Side::Client => 0x636c_6e74,
        Side::Server => 0x7372_7672,
    }
}

/// An application that does what the fuzz input tells it, checking every byte it reads.
#[derive(Debug)]
pub struct ScriptApp {
    side: Side,
    /// Bytes the application still wants to write.
    to_write: u64,
    /// Bytes written so far.
    pub written: u64,
    /// Bytes it may still read (unless `read_all`).
    read_budget: u64,
    read_all: bool,
    /// Bytes read so far.
    pub read: u64,
    /// The peer's stream ended.
    pub eof: bool,
    shutdown: bool,
    close: bool,
    abort: bool,
    /// The connection failed.
    pub error: Option<tcpcore::ConnectionError>,
    /// Set at the end of the input: shut down and read everything (shared by both sides, so
    /// a connection accepted late sees it too).
    finishing: Rc<Cell<bool>>,
    buf: Vec<u8>,
}

impl ScriptApp {
    fn new(side: Side, finishing: Rc<Cell<bool>>) -> Self {
        ScriptApp {
            finishing,
            side,
            to_write: 0,
            written: 0,
            read_budget: 0,
            read_all: false,
            read: 0,
            eof: false,
            shutdown: false,
            close: false,
            abort: false,
            error: None,
            buf: vec![0; 16 * 1024],
        }
    }

    fn other(&self) -> Side {
        match self.side {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    fn write(&mut self, conn: &mut Connection) {
        while self.to_write > 0 {
            let n = (self.to_write as usize).min(self.buf.len());
            stream_fill(salt(self.side), self.written as u32, &mut self.buf[..n]);
            match conn.write(&self.buf[..n]) {
                Ok(k) if k > 0 => {
                    self.written += k as u64;
                    self.to_write -= k as u64;
                }
                _ => break,
            }
        }
    }

    fn read(&mut self, conn: &mut Connection) {
        loop {
            let budget = if self.read_all { u64::MAX } else { self.read_budget };
            let n = (budget.min(self.buf.len() as u64)) as usize;
            if n == 0 {
                return;
            }
            match conn.read(&mut self.buf[..n]) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(k) => {
                    let at = self.read as u32;
                    if let Some(i) = stream_mismatch(salt(self.other()), at, &self.buf[..k]) {
                        panic!(
                            "{:?} read byte {} not sent by the peer",
                            self.side,
                            self.read + i as u64
                        );
                    }
                    self.read += k as u64;
                    self.read_budget = self.read_budget.saturating_sub(k as u64);
                }
                Err(ReadError::Failed(e)) => {
                    self.error = Some(e);
                    return;
                }
                Err(_) => return,
            }
        }
    }
}

impl App for ScriptApp {
    fn on_event(&mut self, _now: Instant, _conn: &mut Connection, event: Event) {
        if let Event::Closed(Some(e)) = event {
            self.error = Some(e);
        }
    }

    fn poll(&mut self, _now: Instant, conn: &mut Connection) {
        if self.abort {
            conn.abort();
            return;
        }
        if self.finishing.get() {
            self.shutdown = true;
        }
        // An application that is done writing drains its input to the end of stream (the
        // host drops a connection once it is closed, unread data or not).
        self.read_all |= self.shutdown;
        self.write(conn);
        self.read(conn);
        if self.close {
            conn.close();
        } else if self.shutdown && self.to_write == 0 && conn.state() != State::SynSent {
            // Not in SYN-SENT, where it would drop the connection (nothing queued to send).
            conn.shutdown_write();
        }
    }
}

/// Everything the run has done that excuses an incomplete transfer.
#[derive(Clone, Copy, Debug, Default)]
struct Excuses {
    partitioned: bool,
    closed: bool,
    aborted: bool,
}

/// The network, the two hosts and what the run did.
pub struct Harness {
    net: Network<Host<ScriptApp>>,
    client: NodeId,
    server: NodeId,
    excuses: Excuses,
    finishing: Rc<Cell<bool>>,
}

/// Most bytes an application is asked to write in one run (keeps runs fast).
const MAX_WRITE: u64 = 1 << 20;
/// The server's port.
const PORT: u16 = 80;
/// Most packets lost or corrupted (both ways together) in a run that must complete. The
/// fuzzer picks the simulator's seed, so it can find the rare seed where the links lose
/// every SYN; each failed handshake attempt or retransmission round costs at least one
/// loss, and the stack gives up only after 7 attempts (6 SYN retries) or 16 rounds
/// (15 data retries), so with at most 6 losses a correct stack always completes.
const MAX_LOSSES: u64 = 6;
/// When set (replaying a failure), both directions are captured and written to
/// `$FUZZ_PCAP_DIR/{up,down}.pcap` at the end of the input.
const PCAP_DIR: &str = "FUZZ_PCAP_DIR";

impl Harness {
    /// Two hosts as `s` says, the client connecting at once.
    pub fn new(s: &Setup) -> Self {
        let min_mtu = if s.v6 { 1280 } else { 576 };
        let mtu = min_mtu + s.mtu % (9000 - min_mtu);
        let conn = ConnConfig {
            mtu,
            send_buffer: 2048 << (s.buffers % 8),
            recv_buffer: 2048 << ((s.buffers / 8) % 8),
            timestamps: s.timestamps,
            sack: s.sack,
            window_scaling: s.window_scaling,
            nodelay: s.nodelay,
            ..ConnConfig::default()
        };
        let (c_ip, s_ip): (IpAddr, IpAddr) = if s.v6 {
            ("fd00::1".parse().expect("addr"), "fd00::2".parse().expect("addr"))
        } else {
            ([10, 0, 0, 1].into(), [10, 0, 0, 2].into())
        };
        let host = |seed| {
            let mut h = Host::new(EndpointConfig { seed, conn, ..Default::default() });
            h.set_checks(true);
            h
        };
        let mut server_host = host(2);
        let server_addr = SocketAddr::new(s_ip, PORT);
        let finishing = Rc::new(Cell::new(false));
        let f = finishing.clone();
        server_host
            .listen(server_addr, move |_| ScriptApp::new(Side::Server, f.clone()))
            .expect("listen");
        let mut net = Network::new(s.seed);
        let client = net.add_node(host(1), &[c_ip]);
        let server = net.add_node(server_host, &[s_ip]);
        net.link_dir(client, server, s.up.link(usize::from(mtu)));
        net.link_dir(server, client, s.down.link(usize::from(mtu)));
        let now = net.now();
        let app = ScriptApp::new(Side::Client, finishing.clone());
        net.node_mut(client).connect(now, c_ip, server_addr, app).expect("connect");
        if std::env::var_os(PCAP_DIR).is_some() {
            net.capture(client, server);
            net.capture(server, client);
        }
        Harness { net, client, server, excuses: Excuses::default(), finishing }
    }

    fn app(&mut self, side: Side) -> Option<&mut ScriptApp> {
        let id = if side == Side::Client { self.client } else { self.server };
        let host = self.net.node_mut(id);
        let h = host.connections().next().map(|(h, _, _)| h)?;
        host.connection_mut(h).map(|(_, app)| app)
    }

    /// Let the side's application act now (the hosts run applications only after network
    /// steps, and an idle network takes none).
    fn poke(&mut self, side: Side) {
        let now = self.net.now();
        let id = if side == Side::Client { self.client } else { self.server };
        let host = self.net.node_mut(id);
        let Some(h) = host.connections().next().map(|(h, _, _)| h) else { return };
        if let Some((conn, app)) = host.connection_mut(h) {
            app.poll(now, conn);
        }
    }

    /// Run one action, then check that neither side read more than the other wrote.
    pub fn step(&mut self, action: Action) {
        match action {
            Action::Run(n) => {
                let to = self.net.now() + Duration::from_micros(1 << (n % 25));
                self.net.run_until(to);
            }
            Action::Write(side, n) => {
                if let Some(app) = self.app(side) {
                    if app.written + app.to_write < MAX_WRITE {
                        app.to_write += u64::from(n);
                    }
                }
            }
            Action::Read(side, n) => {
                if let Some(app) = self.app(side) {
                    app.read_budget += u64::from(n);
                }
            }
            Action::ReadAll(side) => self.app(side).into_iter().for_each(|a| a.read_all = true),
            Action::Shutdown(side) => self.app(side).into_iter().for_each(|a| a.shutdown = true),
            Action::Close(side) => {
                self.excuses.closed = true;
                self.app(side).into_iter().for_each(|a| a.close = true);
            }
            Action::Abort(side) => {
                self.excuses.aborted = true;
                self.app(side).into_iter().for_each(|a| a.abort = true);
            }
            Action::Partition(cut) => {
                self.excuses.partitioned |= cut;
                self.net.set_partition(self.client, self.server, cut);
            }
        }
        if let Action::Write(side, _)
        | Action::Read(side, _)
        | Action::ReadAll(side)
        | Action::Shutdown(side)
        | Action::Close(side)
        | Action::Abort(side) = action
        {
            self.poke(side);
        }
        self.check_prefix();
    }

    /// Totals (written, read, eof, error) of the side's applications, finished ones included.
    fn totals(&self, id: NodeId) -> (u64, u64, bool, bool) {
        self.net.node(id).apps().fold((0, 0, false, false), |t, a| {
            (t.0 + a.written, t.1 + a.read, t.2 || a.eof, t.3 || a.error.is_some())
        })
    }

    fn check_prefix(&self) {
        let (c_written, c_read, _, _) = self.totals(self.client);
        let (s_written, s_read, _, _) = self.totals(self.server);
        assert!(c_read <= s_written, "client read {c_read} of {s_written} written");
        assert!(s_read <= c_written, "server read {s_read} of {c_written} written");
    }

    /// End of input: heal the network, let both applications finish their writes, shut
    /// down and read everything, and run until both connections are done (or an hour of
    /// virtual time). Without partition, close or abort, and with few losses (see
    /// [`MAX_LOSSES`]), both streams must be complete.
    pub fn finish(&mut self) {
        self.net.set_partition(self.client, self.server, false);
        self.finishing.set(true);
        let end = self.net.now() + Duration::from_secs(3600);
        let (client, server) = (self.client, self.server);
        let done = |net: &Network<Host<ScriptApp>>| {
            [client, server].iter().all(|id| {
                net.node(*id)
                    .connections()
                    .all(|(_, c, _)| matches!(c.state(), State::TimeWait | State::Closed))
            })
        };
        while !done(&self.net) && self.net.now() < end {
            self.poke(Side::Client);
            self.poke(Side::Server);
            let to = self.net.now() + Duration::from_secs(1);
            self.net.run_until(to);
        }
        if let Some(dir) = std::env::var_os(PCAP_DIR) {
            let dir = std::path::Path::new(&dir);
            let up = self.net.write_pcap(client, server, dir.join("up.pcap"));
            let down = self.net.write_pcap(server, client, dir.join("down.pcap"));
            up.and(down).expect("write the captures");
        }
        self.check_prefix();
        let e = self.excuses;
        let lost = |a, b| {
            let l = self.net.link_stats(a, b);
            l.dropped_loss + l.corrupted
        };
        let lost = lost(client, server) + lost(server, client);
        if e.partitioned || e.closed || e.aborted || lost > MAX_LOSSES {
            return;
        }
        let (c_written, c_read, c_eof, c_err) = self.totals(self.client);
        let (s_written, s_read, s_eof, s_err) = self.totals(self.server);
        let state = || {
            let conns = |id| {
                let host: &Host<ScriptApp> = self.net.node(id);
                host.connections().map(|(_, c, _)| (c.state(), c.seq_vars())).collect::<Vec<_>>()
            };
            let apps = |id| {
                let host: &Host<ScriptApp> = self.net.node(id);
                host.apps().map(|a| (a.written, a.read, a.eof, a.error)).collect::<Vec<_>>()
            };
            let (now, c, s) = (self.net.now(), client, server);
            format!(
                "at {now}: client {:?} apps {:?}, server {:?} apps {:?}, links {:?} {:?}",
                conns(c),
                apps(c),
                conns(s),
                apps(s),
                self.net.link_stats(c, s),
                self.net.link_stats(s, c),
            )
        };
        assert!(!c_err && !s_err, "a connection failed without partition: {}", state());
        assert_eq!(s_read, c_written, "server did not get the client's stream: {}", state());
        assert_eq!(c_read, s_written, "client did not get the server's stream: {}", state());
        assert!(c_eof && s_eof, "a stream did not end: {}", state());
    }
}
