//! TFO (RFC 7413): TCP Fast Open between two endpoints in the simulator, in virtual time, and
//! a server endpoint against hand-played clients.
//! - TFO-01 a repeat connection saves one round trip (time to the first response byte);
//! - TFO-02 the fallbacks: a lost SYN-ACK with Fast Open data recovers, the data arriving
//!   once; a forged or stale (rotated-out) cookie falls back to the normal handshake and the
//!   data still arrives (the previous key stays valid after one rotation); a Fast Open SYN
//!   flood does not bypass the listener's limits (its Fast Open queue, the accept queue,
//!   SYN cookies).

mod common;
mod lq_util;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::Seg;
use lq_util::{client, Srv, C_ISN, SERVER};
use tcpcore::sim::{App, Host, LinkConfig, Network};
use tcpcore::wire::{self, FastOpenOption, TcpFlags, TcpOptions};
use tcpcore::{ConnConfig, Connection, EndpointConfig, Instant, ListenOptions, State, SynCookies};

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1));
const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2));
const REQUEST: usize = 300;
const RESPONSE: usize = 2000;
/// One-way delay of the simulated path: RTT 100 ms.
const ONE_WAY: Duration = Duration::from_millis(50);

/// A client that sent its request at open and reads the response.
#[derive(Debug, Default)]
struct Client {
    got: usize,
    first_byte: Option<Instant>,
    closed: bool,
}

impl App for Client {
    fn poll(&mut self, now: Instant, conn: &mut Connection) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            self.first_byte.get_or_insert(now);
            assert!(buf[..n].iter().all(|b| *b == b'r'), "response bytes intact");
            self.got += n;
        }
        if self.got >= RESPONSE && !self.closed {
            self.closed = true;
            conn.close();
        }
    }
}

/// A server that answers a whole request with the response, then closes.
#[derive(Debug, Default)]
struct Server {
    got: usize,
    answered: bool,
}

impl App for Server {
    fn poll(&mut self, _now: Instant, conn: &mut Connection) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|b| *b == b'q'), "request bytes intact");
            self.got += n;
        }
        assert!(self.got <= REQUEST, "the request arrives once: {} bytes", self.got);
        if self.got == REQUEST && !self.answered {
            self.answered = true;
            assert_eq!(conn.write(&[b'r'; RESPONSE]), Ok(RESPONSE));
            conn.shutdown_write();
        }
    }
}

/// Either end of the simulated request/response.
#[derive(Debug)]
enum Side {
    C(Client),
    S(Server),
}

impl App for Side {
    fn poll(&mut self, now: Instant, conn: &mut Connection) {
        match self {
            Side::C(c) => c.poll(now, conn),
            Side::S(s) => s.poll(now, conn),
        }
    }
}

struct Sim {
    net: Network<Host<Side>>,
    c: tcpcore::sim::NodeId,
    s: tcpcore::sim::NodeId,
}

impl Sim {
    /// Two hosts 100 ms apart; the server listens with a Fast Open queue, the client opens
    /// with `TCP_FASTOPEN_CONNECT`.
    fn new() -> Sim {
        let conn = ConnConfig { fast_open_connect: true, ..ConnConfig::default() };
        let mut client = Host::new(EndpointConfig { seed: 1, conn, ..EndpointConfig::default() });
        client.set_checks(true);
        let mut server = Host::new(EndpointConfig { seed: 2, ..EndpointConfig::default() });
        let opts = ListenOptions { fast_open_queue: 16, ..ListenOptions::default() };
        server
            .listen_with(SocketAddr::new(SERVER_IP, 80), opts, |_| Side::S(Server::default()))
            .unwrap();
        let mut net = Network::new(3);
        let c = net.add_node(client, &[CLIENT_IP]);
        let s = net.add_node(server, &[SERVER_IP]);
        net.link(c, s, LinkConfig { delay: ONE_WAY, ..LinkConfig::default() });
        Sim { net, c, s }
    }

    /// Open a connection that writes the request at once; returns when it started.
    fn open(&mut self) -> Instant {
        let now = self.net.now();
        let host = self.net.node_mut(self.c);
        let remote = SocketAddr::new(SERVER_IP, 80);
        let h = host.connect(now, CLIENT_IP, remote, Side::C(Client::default())).unwrap();
        let (conn, _) = host.connection_mut(h).unwrap();
        assert_eq!(conn.write(&[b'q'; REQUEST]), Ok(REQUEST));
        now
    }

    /// Run until the client's connection is gone; its time to the first response byte.
    #[track_caller]
    fn finish(&mut self, start: Instant) -> Duration {
        let c = self.c;
        self.net
            .drive_bounded(1_000_000, |n| !n.node(c).finished().is_empty())
            .expect("the exchange completes");
        let done = self.net.node_mut(c).take_finished();
        let Side::C(app) = &done[0].app else { panic!("client app") };
        assert_eq!(app.got, RESPONSE, "whole response");
        assert_eq!(done[0].error, None);
        app.first_byte.expect("response arrived") - start
    }

    fn server_stats(&self) -> &tcpcore::EndpointStats {
        self.net.node(self.s).endpoint().stats()
    }
}

/// TFO-01: the first connection asks for a cookie and needs two round trips to the first
/// response byte; the second carries its request on the SYN with the cached cookie and the
/// server answers before the handshake completes: one round trip saved, in virtual time.
#[test]
fn tfo_01_repeat_connection_saves_one_rtt() {
    // TFO-01
    let mut sim = Sim::new();
    let start = sim.open();
    let first = sim.finish(start);
    let cookie = sim.net.node(sim.c).endpoint().cached_fast_open_cookie(SERVER_IP);
    assert!(cookie.is_some_and(|c| c.len == 8), "the client learned the cookie");
    assert_eq!(sim.server_stats().fast_open_cookie_requests, 1);

    sim.net.run_until(sim.net.now() + Duration::from_secs(1));
    let start = sim.open();
    let second = sim.finish(start);
    assert_eq!(sim.server_stats().fast_open_accepted, 1);
    let rtt = 2 * ONE_WAY;
    eprintln!("time to first response byte: {first:?} without a cookie, {second:?} with one");
    assert!(first >= 2 * rtt && first < 2 * rtt + Duration::from_millis(5), "{first:?}");
    assert!(second >= rtt && second < rtt + Duration::from_millis(5), "{second:?}");
    assert!(first - second >= rtt - Duration::from_millis(1), "one RTT saved");
}

/// TFO-02: the SYN-ACK of a Fast Open SYN is lost. The client retransmits its SYN without
/// data (as Linux), the server's child answers it with the SYN-ACK again, which
/// acknowledges the data it already took: the request arrives once, the exchange completes.
#[test]
fn tfo_02_lost_syn_ack_with_fast_open_data_recovers_and_data_arrives_once() {
    // TFO-02
    let mut sim = Sim::new();
    let start = sim.open();
    sim.finish(start);
    sim.net.run_until(sim.net.now() + Duration::from_secs(1));
    let start = sim.open();
    // The SYN with data arrives at 50 ms; the SYN-ACK is in flight until 100 ms.
    sim.net.run_until(start + Duration::from_millis(60));
    assert_eq!(sim.server_stats().fast_open_accepted, 1, "the child took the data");
    sim.net.set_partition(sim.c, sim.s, true);
    sim.net.run_until(start + Duration::from_millis(150));
    sim.net.set_partition(sim.c, sim.s, false);
    let ttfb = sim.finish(start);
    // The SYN is retransmitted after the initial RTO (1 s), then one RTT more.
    assert!(ttfb >= Duration::from_secs(1), "{ttfb:?}");
    assert!(ttfb < Duration::from_millis(1200), "{ttfb:?}");
    // Server's assertion: `got <= REQUEST` held all along (the data arrived once).
}

/// TFO-02: cookies made with the previous key still work after one rotation; after a
/// second the client's cookie is stale: the SYN's data is dropped, the SYN-ACK hands out a
/// fresh cookie, the client sends its data again after the handshake, and the exchange
/// completes (one RTT later).
#[test]
fn tfo_02_stale_cookie_falls_back_and_data_still_arrives() {
    // TFO-02
    let mut sim = Sim::new();
    let start = sim.open();
    sim.finish(start);
    let old = sim.net.node(sim.c).endpoint().cached_fast_open_cookie(SERVER_IP).unwrap();
    sim.net.node_mut(sim.s).endpoint_mut().rotate_fast_open_key([7; 16]);
    let start = sim.open();
    let ttfb = sim.finish(start);
    assert_eq!(sim.server_stats().fast_open_accepted, 1, "the previous key still valid");
    assert!(ttfb < Duration::from_millis(105), "{ttfb:?}");

    sim.net.node_mut(sim.s).endpoint_mut().rotate_fast_open_key([8; 16]);
    let start = sim.open();
    let ttfb = sim.finish(start);
    assert_eq!(sim.server_stats().fast_open_accepted, 1, "no child for a rotated-out cookie");
    assert_eq!(sim.server_stats().fast_open_cookie_rejected, 1);
    assert!(ttfb >= Duration::from_millis(200), "normal handshake: {ttfb:?}");
    let new = sim.net.node(sim.c).endpoint().cached_fast_open_cookie(SERVER_IP).unwrap();
    assert_ne!(new, old, "the fallback's SYN-ACK gave a fresh cookie");
    let start = sim.open();
    let ttfb = sim.finish(start);
    assert_eq!(sim.server_stats().fast_open_accepted, 2, "the fresh cookie works");
    assert!(ttfb < Duration::from_millis(105), "{ttfb:?}");
}

/// A SYN from `from` with `data` and Fast Open option `fo`.
fn fo_syn(fo: Option<FastOpenOption>, data: &[u8]) -> Seg {
    let o = TcpOptions { mss: Some(1460), fast_open: fo, ..TcpOptions::default() };
    Seg::syn(C_ISN).opts(o).data(data)
}

/// The Fast Open option of a packet the endpoint sent.
fn fo_of(o: &common::Out) -> Option<FastOpenOption> {
    wire::parse(&o.packet).unwrap().tcp.options.fast_open
}

fn fo_server(opts: ListenOptions) -> Srv {
    let conn = ConnConfig { timestamps: false, ..ConnConfig::default() };
    Srv::new(EndpointConfig { seed: 5, conn, ..EndpointConfig::default() }, opts)
}

/// TFO-02 against a hand-played client: a forged cookie (right length, wrong bytes) gets
/// the real cookie in the SYN-ACK, which acknowledges only the SYN; the data is taken when
/// the client sends it again after the handshake. The real cookie then makes a child.
#[test]
fn tfo_02_forged_cookie_gets_the_real_one_and_the_data_comes_after_the_handshake() {
    // TFO-02
    let mut s = fo_server(ListenOptions { fast_open_queue: 4, ..ListenOptions::default() });
    let c = client(1);
    let real = s.ep.fast_open_cookie(c.ip(), SERVER.ip());
    let forged = FastOpenOption::with_cookie(&[0xAB; 8], false);
    assert_eq!(s.deliver(c, fo_syn(Some(forged), b"hello")), None, "no child");
    let sa = s.expect_one();
    sa.assert_flags(TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(sa.ack(), C_ISN + 1, "the data is not acknowledged");
    assert_eq!(fo_of(&sa), Some(FastOpenOption::with_cookie(&real, false)));
    assert_eq!(s.ep.stats().fast_open_cookie_rejected, 1);
    let ack = Seg::ack(C_ISN + 1, sa.seq() + 1).data(b"hello");
    let h = s.deliver(c, ack).expect("the handshake completes with the data");
    let mut buf = [0u8; 16];
    assert_eq!(s.conns.get_mut(&h).unwrap().read(&mut buf), Ok(5));
    assert!(!s.conns[&h].info().syn_data);

    // The experimental option kind is answered in kind, with the real cookie.
    let c2 = client(2);
    let real2 = s.ep.fast_open_cookie(c2.ip(), SERVER.ip());
    assert_eq!(real2, real, "the cookie depends on the addresses, not the port");
    let exp = FastOpenOption::with_cookie(&real, true);
    let h2 = s.deliver(c2, fo_syn(Some(exp), b"again")).expect("a valid cookie: a child");
    s.expect_none();
    let sa = s.conn_output(h2);
    assert_eq!(sa[0].ack(), C_ISN + 1 + 5, "the SYN-ACK acknowledges the data");
    assert_eq!(s.conns[&h2].state(), State::SynReceived);
    assert!(s.conns[&h2].info().syn_data);
}

/// TFO-02: a Fast Open SYN carrying more than the receive buffer holds has the excess
/// trimmed (the window trim of RFC 9293 §3.10.7.4, before any window was offered): the
/// SYN-ACK acknowledges what was kept and the client sends the rest again after the
/// handshake. (Found by the endpoint fuzzer: the buffer went past its limit.)
#[test]
fn tfo_02_syn_data_beyond_the_receive_buffer_is_trimmed() {
    // TFO-02
    let conn = ConnConfig {
        timestamps: false,
        recv_buffer: 1024,
        max_recv_buffer: 1024,
        ..ConnConfig::default()
    };
    let opts = ListenOptions { fast_open_queue: 4, ..ListenOptions::default() };
    let mut s = Srv::new(EndpointConfig { seed: 5, conn, ..EndpointConfig::default() }, opts);
    let c = client(1);
    let cookie = FastOpenOption::with_cookie(&s.ep.fast_open_cookie(c.ip(), SERVER.ip()), false);
    let h = s.deliver(c, fo_syn(Some(cookie), &[b'q'; 1400])).expect("a valid cookie: a child");
    let kept = s.conns[&h].info().bytes_received;
    assert!((1..=1152).contains(&kept), "{kept} bytes kept");
    let sa = s.conn_output(h);
    assert_eq!(sa[0].ack(), C_ISN + 1 + kept as u32, "the SYN-ACK acknowledges what was kept");
}

/// TFO-02: a flood of Fast Open SYNs, all with the valid cookie of one address (the worst
/// case: an attacker that owns it), never holds more children than the listener's Fast Open
/// queue: the rest are plain SYNs whose data is dropped. Children count against the accept
/// queue, and SYNs answered with SYN cookies (a flood) never make one.
#[test]
fn tfo_02_syn_flood_does_not_bypass_the_listener_limits() {
    // TFO-02
    let mut s = fo_server(ListenOptions {
        fast_open_queue: 3,
        syn_backlog: 8,
        syn_cookies: SynCookies::Never,
        ..ListenOptions::default()
    });
    let cookie = s.ep.fast_open_cookie(client(1).ip(), SERVER.ip());
    let fo = Some(FastOpenOption::with_cookie(&cookie, false));
    let mut children = 0;
    for port in 1..=20 {
        if s.deliver(client(port), fo_syn(fo, b"flood")).is_some() {
            children += 1;
        }
    }
    let st = s.ep.stats();
    assert_eq!(children, 3, "the Fast Open queue bounds the children");
    assert_eq!(st.fast_open_queue_full, 8, "then plain SYNs while the SYN queue has room");
    assert_eq!(s.ep.half_open_count(), 8, "the SYN queue bound holds too");
    assert_eq!(st.syn_queue_drops, 9);
    // A child's completing ACK frees its place in the Fast Open queue.
    let h = *s.conns.keys().next().unwrap();
    let sa = s.conn_output(h);
    let port = s.conns[&h].remote_addr().port();
    s.deliver(client(port), Seg::ack(C_ISN + 1 + 5, sa[0].seq() + 1));
    assert_eq!(s.conns[&h].state(), State::Established);
    s.ep.set_listen_options(
        SERVER,
        ListenOptions { fast_open_queue: 3, syn_backlog: 64, ..ListenOptions::default() },
    )
    .unwrap();
    assert!(s.deliver(client(100), fo_syn(fo, b"one more")).is_some(), "a place again");
    assert!(s.deliver(client(101), fo_syn(fo, b"too many")).is_none());

    // Children sit in the accept queue: a full accept queue drops Fast Open SYNs too.
    let mut s = fo_server(ListenOptions {
        fast_open_queue: 10,
        backlog: 2,
        syn_cookies: SynCookies::Never,
        ..ListenOptions::default()
    });
    let made = (1..=5).filter(|p| s.deliver(client(*p), fo_syn(fo, b"x")).is_some()).count();
    assert_eq!(made, 2);
    assert_eq!(s.ep.stats().listen_overflows, 3);

    // Under SYN cookies no SYN makes a child: the cookie SYN-ACK acknowledges the SYN only.
    let mut s = fo_server(ListenOptions {
        fast_open_queue: 10,
        syn_cookies: SynCookies::Always,
        ..ListenOptions::default()
    });
    assert_eq!(s.deliver(client(1), fo_syn(fo, b"cookie")), None);
    let sa = s.expect_one();
    assert_eq!(sa.ack(), C_ISN + 1);
    assert_eq!(fo_of(&sa), None);
    assert_eq!((s.ep.stats().fast_open_accepted, s.ep.stats().cookies_sent), (0, 1));
}
