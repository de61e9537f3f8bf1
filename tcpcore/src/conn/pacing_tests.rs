//! PACE-03: a controller that sets its own pacing rate ([`Controller::pacing_rate`], as BBR
//! does) is paced at that rate with the connection's pacing switch off (Linux
//! `SK_PACING_NEEDED`), and `max_pacing_rate` (`SO_MAX_PACING_RATE`) still caps it. Here,
//! not in `tests/`: only the crate can plug a controller in.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::cc::{AckInfo, AnyController, Controller, NewReno};
use crate::sim::{BulkApp, Host, LinkConfig, Network};
use crate::{ConnConfig, Connection, EndpointConfig, Instant};

/// NewReno asking for a fixed pacing rate.
#[derive(Clone, Debug)]
pub(crate) struct FixedRate {
    inner: NewReno,
    rate: u64,
}

impl Controller for FixedRate {
    fn window(&self) -> u32 {
        self.inner.window()
    }
    fn ssthresh(&self) -> u32 {
        self.inner.ssthresh()
    }
    fn on_ack(&mut self, ack: &AckInfo) {
        self.inner.on_ack(ack);
    }
    fn on_loss(&mut self, now: Instant, in_flight: u32, mss: u32) {
        self.inner.on_loss(now, in_flight, mss);
    }
    fn on_recovery_end(&mut self, now: Instant, in_flight: u32, mss: u32) {
        self.inner.on_recovery_end(now, in_flight, mss);
    }
    fn on_rto(&mut self, now: Instant, in_flight: u32, mss: u32) {
        self.inner.on_rto(now, in_flight, mss);
    }
    fn set_window(&mut self, cwnd: u32, mss: u32) {
        self.inner.set_window(cwnd, mss);
    }
    fn on_idle_restart(&mut self, now: Instant, cwnd: u32, ssthresh: u32, mss: u32) {
        self.inner.on_idle_restart(now, cwnd, ssthresh, mss);
    }
    fn pacing_rate(&self) -> Option<u64> {
        Some(self.rate)
    }
}

/// Bytes per second a client sends from 2 s to 6 s over a 20 ms path without a rate limit,
/// its controller asking for `rate`, under the cap `cap`.
fn sending_rate(rate: u64, cap: Option<u64>) -> f64 {
    let (client_ip, server_ip) =
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    let conn = ConnConfig { max_pacing_rate: cap, ..ConnConfig::default() };
    assert!(!conn.pacing);
    let ep = |seed, conn| EndpointConfig { seed, conn, ..EndpointConfig::default() };
    let mut client = Host::new(ep(1, conn));
    let mut server = Host::new(ep(2, ConnConfig::default()));
    let addr = SocketAddr::new(server_ip, 80);
    server.listen(addr, |_: &Connection| BulkApp::new(0, 2, 1)).unwrap();
    let h = client.connect(Instant::ZERO, client_ip, addr, BulkApp::new(1 << 40, 1, 2)).unwrap();
    let mut net = Network::new(3);
    let c = net.add_node(client, &[client_ip]);
    let s = net.add_node(server, &[server_ip]);
    net.link(c, s, LinkConfig { delay: Duration::from_millis(10), ..LinkConfig::default() });
    // Once established (the handshake makes the configured controller for the path's MSS).
    net.run_until(Instant::from_millis(20));
    let (conn, _) = net.node_mut(c).connection_mut(h).unwrap();
    assert!(conn.state().is_synchronized());
    conn.cc = AnyController::Fixed(FixedRate { inner: NewReno::new(10, 1448), rate });
    let sent =
        |net: &Network<Host<BulkApp>>| net.node(c).connection(h).unwrap().0.info().bytes_sent;
    net.run_until(Instant::from_secs(2));
    let before = sent(&net);
    net.run_until(Instant::from_secs(6));
    (sent(&net) - before) as f64 / 4.0
}

/// PACE-03: the controller's rate is the sending rate, and the cap bounds it.
#[test]
fn pace_03_controller_pacing_rate_is_honoured() {
    // PACE-03
    for (rate, cap, expect) in [(2_000_000, None, 2e6), (2_000_000, Some(500_000), 5e5)] {
        let got = sending_rate(rate, cap);
        assert!(got >= 0.97 * expect && got <= 1.01 * expect, "{got:.0} B/s, expected {expect}");
    }
}
