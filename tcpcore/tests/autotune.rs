//! RX-05 / issue 6 item 5: receive-window auto-tuning (Linux `tcp_moderate_rcvbuf`) in the
//! simulator. A bulk transfer over a long fat path grows the receiver's buffer geometrically
//! toward `max_recv_buffer` and never beyond it; with room for the bandwidth-delay product
//! the transfer fills a 1 Gbit/s, 100 ms path within 5 s (window scaling from the maximum
//! buffer, timestamps on every ACK feeding HyStart, auto-tuning).
//!
//! Send-buffer auto-tuning (Linux `tcp_sndbuf_expand`): a sender whose buffer, not the
//! network, limits it grows the buffer to twice its congestion window, up to
//! `max_send_buffer`; one that never fills its buffer keeps the initial size.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tcpcore::config::SlowStartExit;
use tcpcore::sim::{BulkApp, Host, LinkConfig, Network, NodeId};
use tcpcore::{ConnConfig, Connection, EndpointConfig, Instant, SeqVars, TcpInfo};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const PORT: u16 = 80;
const RATE: u64 = 1_000_000_000;
const RTT: Duration = Duration::from_millis(100);

/// The client sends (more than it can within the run) to the server, which sends nothing.
struct Bulk {
    net: Network<Host<BulkApp>>,
    client: NodeId,
    server: NodeId,
}

impl Bulk {
    fn new(max_recv_buffer: usize) -> Bulk {
        let base = ConnConfig::default();
        // These tests are about the receiver: give the sender a buffer the size of the path.
        let client_conn = ConnConfig { send_buffer: 32 << 20, max_send_buffer: 32 << 20, ..base };
        let server_conn = ConnConfig { max_recv_buffer, ..base };
        Bulk::with(client_conn, server_conn, RATE, 1 << 40)
    }

    /// The client sends `total` bytes with `client_conn` over a `rate` bit/s, `RTT` path.
    fn with(client_conn: ConnConfig, server_conn: ConnConfig, rate: u64, total: u64) -> Bulk {
        let ep = |seed, conn| EndpointConfig { seed, conn, ..EndpointConfig::default() };
        let mut client = Host::new(ep(1, client_conn));
        let mut server = Host::new(ep(2, server_conn));
        server
            .listen(SocketAddr::new(SERVER, PORT), |_: &Connection| BulkApp::new(0, 2, 1))
            .unwrap();
        let app = BulkApp::new(total, 1, 2);
        client.connect(Instant::ZERO, CLIENT, SocketAddr::new(SERVER, PORT), app).unwrap();
        let mut net = Network::new(7);
        let c = net.add_node(client, &[CLIENT]);
        let server = net.add_node(server, &[SERVER]);
        let bdp = (rate / 8) as usize * RTT.as_millis() as usize / 1000;
        let link = LinkConfig {
            delay: RTT / 2,
            rate_bps: rate,
            queue_bytes: bdp,
            mtu: 1500,
            ..LinkConfig::default()
        };
        net.link(c, server, link);
        Bulk { net, client: c, server }
    }

    /// Bytes the server's application has read.
    fn received(&self) -> u64 {
        self.net.node(self.server).apps().next().map_or(0, |a| a.recv_hash.len())
    }

    fn server_info(&self) -> TcpInfo {
        self.net.node(self.server).connections().next().expect("server connection").1.info()
    }

    fn client_info(&self) -> TcpInfo {
        self.net.node(self.client).connections().next().expect("client connection").1.info()
    }

    /// Run to `secs`, returning the goodput (payload bits per second) of each 0.5 s
    /// interval, printed with the receive buffer at its end.
    fn run(&mut self, secs: u64) -> Vec<f64> {
        let mut rates = Vec::new();
        let mut last = 0;
        for i in 1..=2 * secs {
            self.net.run_until(Instant::from_millis(500 * i));
            let got = self.received();
            let rate = (got - last) as f64 * 8.0 / 0.5;
            last = got;
            let info = self.server_info();
            eprintln!(
                "{:>4.1} s  {:>7.1} Mbit/s  rcv_buf {:>9}  rcv_wnd {:>9}",
                i as f64 / 2.0,
                rate / 1e6,
                info.rcv_buf,
                info.rcv_wnd
            );
            rates.push(rate);
        }
        rates
    }
}

/// Goodput the bottleneck allows: 1448 payload bytes per 1500-byte packet (timestamps on).
fn goodput_capacity() -> f64 {
    RATE as f64 * 1448.0 / 1500.0
}

#[test]
fn rx_05_autotuning_fills_a_1_gbit_100_ms_path_within_5_s() {
    let mut b = Bulk::new(32 << 20);
    let rates = b.run(6);
    let info = b.server_info();
    eprintln!("server: {info:?}");
    eprintln!("client: {:?}", b.client_info());
    assert_eq!(info.wscale.0, 10, "shift sized for the 32 MiB maximum (RFC 7323 §2.3)");
    // Grown by doubling from 256 KiB: a power-of-two multiple of it, within the maximum.
    let growth = info.rcv_buf / (256 << 10);
    assert!(info.rcv_buf > 256 << 10 && info.rcv_buf <= 32 << 20, "{}", info.rcv_buf);
    assert_eq!(info.rcv_buf % (256 << 10), 0);
    assert!(growth.is_power_of_two(), "{growth}");
    assert_eq!(info.timeouts, 0);
    let at_5s = rates[9];
    assert!(
        at_5s >= 0.9 * RATE as f64,
        "4.5-5 s: {:.1} Mbit/s, {:.1} % of the bottleneck ({:.1} % of its goodput)",
        at_5s / 1e6,
        100.0 * at_5s / RATE as f64,
        100.0 * at_5s / goodput_capacity()
    );
}

#[test]
fn rx_05_autotuning_never_grows_beyond_max_recv_buffer() {
    // The 6 MiB default cannot hold this path's 12.5 MB bandwidth-delay product: the buffer
    // stops at the cap and the window limits the transfer to about 6 MiB per RTT.
    let mut b = Bulk::new(ConnConfig::default().max_recv_buffer);
    let rates = b.run(4);
    let info = b.server_info();
    assert_eq!(info.wscale.0, 7, "6 MiB needs shift 7");
    assert_eq!(info.rcv_buf, 6 << 20);
    let window_limit = (6u64 << 20) as f64 * 8.0 / RTT.as_secs_f64();
    let last = rates[rates.len() - 1];
    assert!(last <= window_limit * 1.01, "{:.1} Mbit/s above the window's limit", last / 1e6);
    assert!(last >= window_limit * 0.8, "{:.1} Mbit/s: the window is not used", last / 1e6);
}

#[test]
fn rx_05_no_autotuning_when_the_maximum_is_the_initial_buffer() {
    let mut b = Bulk::new(256 << 10);
    b.run(2);
    let info = b.server_info();
    assert_eq!((info.rcv_buf, info.wscale.0), (256 << 10, 3));
}

/// Goodput of a 100 Mbit/s, 100 ms path (1.25 MB bandwidth-delay product) from 4 to 6 s,
/// and the sender's final state, with the default 256 KiB initial send buffer.
fn send_side(max_send_buffer: usize) -> (f64, TcpInfo, SeqVars) {
    const SLOW: u64 = 100_000_000;
    // HyStart++ (RFC 9406), which sees the queue a round late on this path, so that slow
    // start overshoots into the queue and the repair of a large flight is exercised (with
    // Linux's HyStart, the default, the ACK train ends slow start before the queue overflows).
    let slow_start_exit = SlowStartExit::HyStartPlusPlus;
    let client = ConnConfig { max_send_buffer, slow_start_exit, ..ConnConfig::default() };
    let mut b = Bulk::with(client, ConnConfig::default(), SLOW, 1 << 40);
    b.net.run_until(Instant::from_secs(4));
    let before = b.received();
    b.net.run_until(Instant::from_secs(6));
    let rate = (b.received() - before) as f64 * 8.0 / 2.0;
    let info = b.client_info();
    eprintln!("{:.1} Mbit/s, client: {info:?}", rate / 1e6);
    let vars = b.net.node(b.client).connections().next().expect("client").1.seq_vars();
    (rate / SLOW as f64, info, vars)
}

#[test]
fn send_buffer_grows_to_twice_the_window_when_it_limits_the_sender() {
    let (share, info, v) = send_side(ConnConfig::default().max_send_buffer);
    // 256 KiB per 100 ms would be 21 Mbit/s: the grown buffer lets the window fill the path.
    assert!(share >= 0.9, "{:.1} % of the path", 100.0 * share);
    assert!(info.snd_buf > 1_250_000 && info.snd_buf <= 4 << 20, "{}", info.snd_buf);
    // Slow start overshoots into the bottleneck's queue (about every other segment of a
    // ~1900-segment flight lost): SACK and RACK repair it, no RTO (RX-04). With a 256-entry
    // scoreboard the entries covered several segments, none was ever SACKed whole, and it
    // took 1-3 RTOs.
    assert_eq!(info.timeouts, 0, "{info:?}");
    assert!(info.fast_retransmits > 0 && info.rack_marked_lost > 0, "{info:?}");
    // The growth is for data in flight: what the application queued beyond it stays within
    // the initial size.
    let unsent = v.send_buffered - v.snd_max.since(v.snd_una) as usize;
    assert!(unsent <= 256 << 10, "{unsent} bytes queued unsent");
    assert!(v.send_buffered > 1 << 20, "{v:?}");
}

#[test]
fn send_buffer_is_fixed_when_the_maximum_is_the_initial_size() {
    let (share, info, _) = send_side(256 << 10);
    assert_eq!(info.snd_buf, 256 << 10);
    let limit = (256u64 << 10) as f64 * 8.0 / RTT.as_secs_f64() / 100e6;
    assert!(share <= limit * 1.05, "{:.1} % of the path with a 256 KiB buffer", 100.0 * share);
}

#[test]
fn send_buffer_stays_at_its_initial_size_when_never_full() {
    // 200 KB never fill the 256 KiB buffer: however large the window gets, no growth.
    let mut b = Bulk::with(ConnConfig::default(), ConnConfig::default(), RATE, 200_000);
    // Until the last byte arrives (the client's connection lives on for the FIN exchange).
    let mut ms = 0;
    while b.received() < 200_000 && ms < 3000 {
        ms += 1;
        b.net.run_until(Instant::from_millis(ms));
    }
    assert_eq!(b.received(), 200_000);
    assert_eq!(b.client_info().snd_buf, 256 << 10);
}
