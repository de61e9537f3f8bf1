//! MEM-03: one server `Endpoint` holding many idle established connections, and what they
//! cost it in heap (counting allocator): the connections the endpoint handed out (owned
//! here in a `Vec<Box<Connection>>`, as an owner would keep them), its demultiplexing table
//! and slots, and its timers. Buffers are allocated on demand, so an idle connection has
//! none.
//!
//! The clients are real `Connection`s (timestamps, SACK and window scaling negotiated, as
//! between two Linux hosts) on 4-tuples chosen here, each dropped once its handshake is
//! done, so the thread's live heap is the server's alone.
//!
//! The count is `MEM_CONNS` (100,000 by default, for CI); the figure is
//! `MEM_CONNS=1000000 cargo test --release -p tcpcore --test million -- --nocapture`.

mod alloc_util;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use alloc_util::{allocs, live_bytes};
use tcpcore::wire::{self, SeqNum};
use tcpcore::{
    ConnConfig, ConnParams, Connection, DatagramEvent, Endpoint, EndpointConfig, Instant,
    ListenOptions, SharedConnConfig, State,
};

const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 443);
/// The target: 1 GiB for a million connections.
const LIMIT_PER_CONN: i64 = (1 << 30) / 1_000_000;

/// Client `i`: 60,000 ports on each of as many addresses as needed.
fn client(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0a01_0000 + (i / 60_000) as u32);
    SocketAddr::new(IpAddr::V4(ip), 2_000 + (i % 60_000) as u16)
}

fn conns_from_env() -> usize {
    std::env::var("MEM_CONNS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

struct Server {
    ep: Endpoint,
    /// The clients' settings, shared (a client allocates nothing of its own).
    client_cfg: SharedConnConfig,
    conns: Vec<Connection>,
    buf: Vec<u8>,
}

impl Server {
    fn new(capacity: usize) -> Self {
        let cfg = EndpointConfig { somaxconn: u32::MAX, ..EndpointConfig::default() };
        let mut ep = Endpoint::new(cfg);
        let opts = ListenOptions { backlog: u32::MAX, syn_backlog: u32::MAX, ..Default::default() };
        ep.listen_with(SERVER, opts).unwrap();
        let client_cfg = SharedConnConfig::from(ConnConfig::default());
        Server { ep, client_cfg, conns: Vec::with_capacity(capacity), buf: vec![0; 2048] }
    }

    /// One handshake with a client at `from`; the client is dropped afterwards.
    #[track_caller]
    fn open(&mut self, now: Instant, from: SocketAddr, i: usize) {
        let params =
            ConnParams { local: from, remote: SERVER, iss: SeqNum(i as u32), ts_offset: 0 };
        let mut c = Connection::connect(self.client_cfg.clone(), params);
        let mut out = [0u8; 256];
        let syn = c.poll_transmit(now, &mut out).expect("SYN").len;
        assert!(self.ep.handle(now, &out[..syn]).is_none(), "SYN answered by the endpoint");
        let len = self.ep.poll_transmit(now, &mut self.buf).expect("SYN-ACK").len;
        c.handle_segment(now, &wire::parse(&self.buf[..len]).unwrap());
        let ack = c.poll_transmit(now, &mut out).expect("ACK").len;
        assert_eq!(c.state(), State::Established);
        match self.ep.handle(now, &out[..ack]) {
            Some(DatagramEvent::NewConnection(h, conn)) => {
                assert_eq!(self.ep.accept(SERVER), Some(h));
                assert_eq!(conn.state(), State::Established);
                self.conns.push(*conn);
            }
            other => panic!("connection {i}: {other:?}"),
        }
    }
}

#[test]
fn mem_03_server_endpoint_holds_many_idle_connections() {
    let n = conns_from_env();
    let now = Instant::from_secs(1);
    let base = live_bytes();
    let mut s = Server::new(n);
    let before = allocs();
    for i in 0..n {
        s.open(now, client(i), i);
    }
    // The handshake allocates the connection (its box) and nothing else; the tables'
    // growth adds a few allocations over the whole run.
    let per_handshake = (allocs() - before) as f64 / n as f64;
    assert!(per_handshake < 1.01, "{per_handshake:.3} allocations per handshake");
    assert_eq!(s.ep.connection_count(), n);
    assert!(s.conns.iter().all(|c| c.buffer_bytes() == 0 && c.poll_timeout().is_none()));
    // The SYN queue's timer entries go stale as handshakes complete; they are dropped when
    // they come due.
    s.ep.handle_timeout(now + std::time::Duration::from_secs(10));
    assert_eq!(s.ep.poll_timeout(), None, "no endpoint timer left");
    let total = live_bytes() - base;
    let per = total / n as i64;
    let conn = std::mem::size_of::<Connection>();
    eprintln!(
        "{n} idle established connections: {:.1} MiB in total, {per} B per connection \
         (Connection {conn} B, the rest the endpoint's tables and the owner's Vec); \
         {per_handshake:.3} allocations per handshake",
        total as f64 / f64::from(1 << 20)
    );
    assert!(per <= LIMIT_PER_CONN, "{per} B per connection (limit {LIMIT_PER_CONN})");
}
