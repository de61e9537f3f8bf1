//! Per-connection memory (issue 12): buffers are allocated on demand and given back once
//! they are empty and the connection has been quiet for an RTO (MEM-02); an endpoint-wide
//! budget holds buffer growth and windows under memory pressure (MEM-04).
mod common;
use common::*;
use tcpcore::Instant;

/// MEM-02: after an exchange in both directions, read and acknowledged, the rings are
/// freed after one quiet RTO, not before; the next exchange allocates them again.
#[test]
fn mem_02_empty_buffers_are_given_back_after_a_quiet_rto() {
    let mut sc = Sc::established(Sc::plain());
    assert_eq!(sc.conn.buffer_bytes(), 0, "nothing allocated by the handshake");
    assert_eq!(sc.conn.poll_timeout(), None);
    for round in 0..2u32 {
        let (d, p) = (D + 100 * round, P + 200 * round);
        sc.deliver(Seg::ack(p, d).data(&bytes(0, 200)));
        assert!(sc.conn.buffer_bytes() > 0, "the receive ring is allocated on demand");
        assert_eq!(sc.read_all(), bytes(0, 200));
        sc.conn.write(&bytes(0, 100)).unwrap();
        let out = sc.expect_one();
        out.assert_seq_ack(d, p + 200);
        assert_eq!(out.len(), 100);
        sc.advance(ms(10));
        sc.deliver(Seg::ack(p + 200, d + 100));
        let (quiet_since, rto) = (sc.now, sc.conn.info().rto);
        assert!(sc.conn.buffer_bytes() > 0);
        // Quiet: the release timer is the only one, an RTO after the last data moved.
        let release = sc.conn.poll_timeout().expect("the release timer runs");
        assert!(release + ms(10) >= quiet_since + rto, "round {round}: {release}");
        assert!(sc.advance(rto - ms(20)).is_empty());
        assert!(sc.conn.buffer_bytes() > 0, "round {round}: released too early");
        assert!(sc.advance(ms(20)).is_empty());
        assert_eq!(sc.conn.buffer_bytes(), 0, "round {round}: not released");
        assert_eq!(sc.conn.poll_timeout(), None, "no timer left on an idle connection");
    }
}

/// MEM-02: bytes the application has not read keep their ring, however long it waits; once
/// read, the ring goes after a quiet RTO (the owner is asked to poll so the timer is armed).
#[test]
fn mem_02_unread_bytes_keep_their_buffer() {
    let mut sc = Sc::established(Sc::plain());
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 300)));
    sc.advance(secs(10));
    assert!(sc.conn.buffer_bytes() > 0);
    assert_eq!(sc.conn.readable_bytes(), 300);
    assert_eq!(sc.read_all(), bytes(0, 300));
    assert!(sc.conn.wants_transmit(), "the owner must poll so the release timer is armed");
    sc.expect_none();
    let t = sc.conn.poll_timeout().expect("armed");
    assert_eq!(t, sc.now + sc.conn.info().rto);
    assert!(sc.next_timer().is_empty());
    assert_eq!(sc.conn.buffer_bytes(), 0);
    assert!(!sc.conn.wants_transmit());
    assert!(sc.now < Instant::from_secs(20));
}

mod pressure {
    //! MEM-04: the endpoint-wide memory budget (Linux `tcp_mem`), in the simulator.
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::time::Duration;

    use tcpcore::sim::{BulkApp, Host, LinkConfig, Network, NodeId};
    use tcpcore::{Connection, EndpointConfig, Instant};

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const CONNS: usize = 4;
    const MIB: usize = 1 << 20;

    struct Run {
        net: Network<Host<BulkApp>>,
        client: NodeId,
        server: NodeId,
    }

    /// `CONNS` clients sending without end over a shared 1 Gbit/s, 100 ms path: each is
    /// limited by its send buffer (3 MB of bandwidth-delay product each) until auto-tuning
    /// grows it.
    fn run(client_pressure: usize, server_pressure: usize) -> Run {
        let ep =
            |seed, mem_pressure| EndpointConfig { seed, mem_pressure, ..EndpointConfig::default() };
        let mut client = Host::new(ep(1, client_pressure));
        let mut server = Host::new(ep(2, server_pressure));
        let addr = SocketAddr::new(SERVER, 80);
        server.listen(addr, |_: &Connection| BulkApp::new(0, 2, 1)).unwrap();
        for i in 0..CONNS as u64 {
            client.connect(Instant::ZERO, CLIENT, addr, BulkApp::new(1 << 40, 1 + i, 2)).unwrap();
        }
        let mut net = Network::new(3);
        let c = net.add_node(client, &[CLIENT]);
        let s = net.add_node(server, &[SERVER]);
        let link = LinkConfig {
            delay: Duration::from_millis(50),
            rate_bps: 1_000_000_000,
            queue_bytes: 12_500_000,
            mtu: 1500,
            ..LinkConfig::default()
        };
        net.link(c, s, link);
        Run { net, client: c, server: s }
    }

    impl Run {
        /// Run for `secs`; the client's peak buffer memory and whether it saw pressure.
        fn sample(&mut self, secs: u64) -> (usize, bool) {
            let (mut peak, mut pressure) = (0, false);
            for i in 1..=secs * 10 {
                self.net.run_until(Instant::from_millis(i * 100));
                let ep = self.net.node(self.client).endpoint();
                peak = peak.max(ep.buffer_memory());
                pressure |= ep.under_memory_pressure();
            }
            (peak, pressure)
        }

        fn received(&self) -> u64 {
            self.net.node(self.server).apps().map(|a| a.recv_hash.len()).sum()
        }
    }

    /// MEM-04: above the pressure threshold, send buffers stop growing: the senders' memory
    /// stays near the threshold (one doubling of one ring beyond it at most) while the
    /// same run without pressure grows them to several MiB each; data still flows.
    #[test]
    fn mem_04_send_buffers_stop_growing_under_memory_pressure() {
        let mut free = run(usize::MAX, usize::MAX);
        let (free_peak, free_pressure) = free.sample(5);
        assert!(!free_pressure);
        assert!(free_peak > 8 * MIB, "without pressure the buffers grow: {free_peak} B");
        let mut held = run(2 * MIB, usize::MAX);
        let (held_peak, held_pressure) = held.sample(5);
        eprintln!("client buffer memory: {free_peak} B free, {held_peak} B under a 2 MiB budget");
        assert!(held_pressure);
        assert!(held_peak <= 4 * MIB, "{held_peak} B under a 2 MiB budget");
        assert!(held.received() > 10 * MIB as u64, "data still flows: {}", held.received());
    }

    /// MEM-04: under memory pressure a receiver offers at most four segments of window
    /// (Linux clamps `rcv_ssthresh` to `4 * advmss`); the edge it already offered stays.
    #[test]
    fn mem_04_receiver_offers_four_segments_under_memory_pressure() {
        // A budget of one byte: any buffer puts the server under pressure.
        let mut r = run(usize::MAX, 1);
        r.sample(3);
        assert!(r.net.node(r.server).endpoint().under_memory_pressure());
        for (_, c, _) in r.net.node(r.client).connections() {
            let wnd = c.info().snd_wnd;
            assert!(wnd <= 4 * 1460 + (1 << 14), "offered {wnd} B under pressure");
        }
        let received = r.received();
        // Four segments per 100 ms round trip per connection (and the initial window).
        let bound = (CONNS * 30 * 4 * 1460) as u64 + (CONNS * 256 * 1024) as u64;
        assert!(received <= bound, "{received} B in 3 s under pressure (bound {bound})");
        assert!(received > 0);
    }
}

/// MEM-04: an active open from a bound address (`Endpoint::connect_from`, how tcp-tokio
/// opens every connection) is charged to the endpoint's memory budget like one from
/// `Endpoint::connect`: its send buffer counts in `buffer_memory`, and dropping it gives
/// the bytes back.
#[test]
fn mem_04_connect_from_is_charged_to_the_endpoint_budget() {
    use std::net::SocketAddr;
    use tcpcore::{Endpoint, EndpointConfig};
    let mut ep = Endpoint::new(EndpointConfig { seed: 7, ..EndpointConfig::default() });
    let (local, remote): (SocketAddr, SocketAddr) =
        ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:80".parse().unwrap());
    let cfg = ep.config().conn;
    let (_, mut conn) = ep.connect_from(Instant::ZERO, local, remote, cfg).unwrap();
    conn.write(&bytes(0, 1000)).unwrap();
    let mut buf = [0u8; 1600];
    while conn.poll_transmit(Instant::ZERO, &mut buf).is_some() {}
    assert!(conn.buffer_bytes() > 0, "the send ring is allocated");
    assert_eq!(ep.buffer_memory(), conn.buffer_bytes(), "charged to the endpoint");
    drop(conn);
    assert_eq!(ep.buffer_memory(), 0, "given back when the connection goes");
}
