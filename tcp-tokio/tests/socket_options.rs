//! Per-socket options change what goes on the wire: keepalive timing (KA-01), the user
//! timeout (KA-02), buffer sizes (the window offered, the bytes in flight), TTL and TOS.
//! Every packet of the client stack passes a tap that records it and can play a dead
//! network; time is tokio's paused clock.

use std::io::{self, ErrorKind, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tcp_tokio::net::{TcpKeepalive, TcpListener, TcpSocket, TcpStream};
use tcp_tokio::{Capabilities, CongestionAlgorithm, Device, MemLink, Stack, TxMeta};
use tcpcore::wire::{self, TcpChecksum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// One packet through the tap.
#[derive(Clone, Copy, Debug)]
struct Rec {
    at: Instant,
    /// Sent by the client (else received).
    out: bool,
    ttl: u8,
    tos: u8,
    seq: u32,
    ack: u32,
    syn: bool,
    window: u16,
    len: u32,
}

/// What the tap shares with the test.
#[derive(Default)]
struct TapState {
    log: Mutex<Vec<Rec>>,
    /// Drop every packet both ways, as a dead network would.
    dead: AtomicBool,
}

impl TapState {
    fn log(&self) -> Vec<Rec> {
        self.log.lock().unwrap().clone()
    }

    fn record(&self, packet: &[u8], out: bool) {
        let Ok(seg) = wire::parse_with(packet, TcpChecksum::Partial) else { return };
        let t = &seg.tcp;
        self.log.lock().unwrap().push(Rec {
            at: Instant::now(),
            out,
            ttl: packet[8],
            tos: packet[1],
            seq: t.seq.0,
            ack: t.ack.0,
            syn: t.flags.syn(),
            window: t.window,
            len: seg.payload.len() as u32,
        });
    }
}

/// A device that records every (IPv4) packet of the link it wraps.
struct Tap {
    link: MemLink,
    state: Arc<TapState>,
}

impl Device for Tap {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        lens: &mut [usize],
    ) -> Poll<io::Result<usize>> {
        loop {
            let r = self.link.poll_recv(cx, bufs, lens);
            if let Poll::Ready(Ok(n)) = r {
                if self.state.dead.load(Ordering::Relaxed) {
                    continue;
                }
                for (b, &len) in bufs.iter().zip(lens.iter()).take(n) {
                    self.state.record(&b[..len], false);
                }
            }
            return r;
        }
    }

    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &[IoSlice<'_>],
        meta: &[TxMeta],
    ) -> Poll<io::Result<usize>> {
        for p in packets {
            self.state.record(p, true);
        }
        if self.state.dead.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(packets.len()));
        }
        self.link.poll_send(cx, packets, meta)
    }

    fn mtu(&self) -> usize {
        self.link.mtu()
    }

    fn capabilities(&self) -> Capabilities {
        self.link.capabilities()
    }
}

const SERVER: &str = "10.0.0.1:80";

/// A server stack and a client stack whose device is tapped, 1 ms apart.
fn stacks() -> (Stack, Stack, Arc<TapState>) {
    stacks_on(MemLink::builder().delay(Duration::from_millis(1)))
}

/// As [`stacks`], over the link `link` builds.
fn stacks_on(link: tcp_tokio::MemLinkBuilder) -> (Stack, Stack, Arc<TapState>) {
    let (a, b) = link.pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let state = Arc::new(TapState::default());
    let tap = Tap { link: b, state: state.clone() };
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(tap).unwrap();
    (server, client, state)
}

fn server_addr() -> SocketAddr {
    SERVER.parse().unwrap()
}

/// `socket` connected to a listener on the server; returns both ends.
async fn connect(socket: TcpSocket, listener: &TcpListener) -> (TcpStream, TcpStream) {
    let c = socket.connect(server_addr()).await.unwrap();
    let (s, _) = listener.accept().await.unwrap();
    (c, s)
}

/// KA-01 per socket: with `TcpKeepalive` set on the socket, the first probe goes out after
/// the idle time set (not the stack's two hours), then one per interval; after the retries
/// set the connection fails with `TimedOut`.
#[tokio::test(start_paused = true)]
async fn ka_01_per_socket_keepalive_probes_then_timed_out() {
    let (server, client, tap) = stacks();
    let listener = server.bind(SERVER).await.unwrap();
    let socket = client.socket_v4().unwrap();
    let ka = TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(2))
        .with_retries(3);
    socket.set_tcp_keepalive(&ka).unwrap();
    let (mut c, _s) = connect(socket, &listener).await;
    assert!(c.keepalive().unwrap());
    assert_eq!(c.keepalive_time().unwrap(), Duration::from_secs(10));
    // Let the handshake's last ACK settle, then the network dies.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let last = tap.log().last().unwrap().at;
    tap.dead.store(true, Ordering::Relaxed);
    let err = c.read(&mut [0; 8]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    let probes: Vec<Duration> =
        tap.log().iter().filter(|r| r.out && r.at > last).map(|r| r.at - last).collect();
    assert_eq!(probes.len(), 3, "three probes: {probes:?}");
    let first = probes[0];
    assert!(first >= Duration::from_secs(10) && first < Duration::from_secs(11), "{first:?}");
    assert_eq!(probes[1] - probes[0], Duration::from_secs(2));
    assert_eq!(probes[2] - probes[1], Duration::from_secs(2));
    assert_eq!(Instant::now() - last - probes[2], Duration::from_secs(2), "fails one interval on");
}

/// Keepalive turned on for a live stream, with its timing changed there, probes as set.
#[tokio::test(start_paused = true)]
async fn ka_01_keepalive_set_on_a_live_stream() {
    let (server, client, tap) = stacks();
    let listener = server.bind(SERVER).await.unwrap();
    let (mut c, _s) = connect(client.socket_v4().unwrap(), &listener).await;
    assert!(!c.keepalive().unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let set_at = Instant::now();
    c.set_tcp_keepalive(&TcpKeepalive::new().with_time(Duration::from_secs(5)).with_retries(1))
        .unwrap();
    assert_eq!(c.keepalive_retries().unwrap(), 1);
    tap.dead.store(true, Ordering::Relaxed);
    let err = c.read(&mut [0; 8]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    let probes: Vec<_> = tap.log().into_iter().filter(|r| r.out && r.at > set_at).collect();
    assert_eq!(probes.len(), 1, "{probes:?}");
    assert_eq!(probes[0].at - set_at, Duration::from_secs(5));
    // The stack's interval (75 s) after the one probe.
    assert_eq!(Instant::now() - probes[0].at, Duration::from_secs(75));
}

/// KA-02 per socket: a user timeout of 5 s fails a connection whose data the dead peer
/// never acknowledges 5 s after it was sent, long before the retransmission limit.
#[tokio::test(start_paused = true)]
async fn ka_02_per_socket_user_timeout() {
    let (server, client, tap) = stacks();
    let listener = server.bind(SERVER).await.unwrap();
    let socket = client.socket_v4().unwrap();
    socket.set_tcp_user_timeout(Some(Duration::from_secs(5))).unwrap();
    let (mut c, _s) = connect(socket, &listener).await;
    assert_eq!(c.tcp_user_timeout().unwrap(), Some(Duration::from_secs(5)));
    tap.dead.store(true, Ordering::Relaxed);
    let sent = Instant::now();
    c.write_all(b"into the void").await.unwrap();
    let err = c.read(&mut [0; 8]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    let elapsed = Instant::now() - sent;
    assert!(elapsed >= Duration::from_secs(5) && elapsed < Duration::from_secs(6), "{elapsed:?}");
    let retransmits = tap.log().iter().filter(|r| r.out && r.len > 0).count();
    assert!(retransmits >= 3, "the data was retransmitted meanwhile: {retransmits}");
}

/// Without a user timeout the same dead peer is still being retried after a minute.
#[tokio::test(start_paused = true)]
async fn ka_02_without_user_timeout_retries_go_on() {
    let (server, client, tap) = stacks();
    let listener = server.bind(SERVER).await.unwrap();
    let (mut c, _s) = connect(client.socket_v4().unwrap(), &listener).await;
    tap.dead.store(true, Ordering::Relaxed);
    c.write_all(b"into the void").await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(60), c.read(&mut [0; 8])).await;
    assert!(read.is_err(), "still open after a minute: {read:?}");
}

/// The largest span, over the tap's log, between the end of the data one side sent and the
/// latest acknowledgment the other side sent before it (`out`: the client's data).
fn max_in_flight(log: &[Rec], out: bool) -> u32 {
    let (mut acked, mut most) = (None::<u32>, 0);
    for r in log {
        if r.syn {
            continue;
        }
        if r.out != out {
            acked = Some(acked.map_or(r.ack, |a| a.max(r.ack)));
        } else if let (Some(a), true) = (acked, r.len > 0) {
            most = most.max((r.seq + r.len).wrapping_sub(a));
        }
    }
    most
}

/// `SO_RCVBUF` set on the socket before connecting bounds the window the client offers, and
/// so the bytes the server has in flight; without it the window grows far beyond.
#[tokio::test(start_paused = true)]
async fn recv_buffer_size_bounds_the_offered_window() {
    for set in [Some(4096u32), None] {
        let (server, client, tap) = stacks();
        let listener = server.bind(SERVER).await.unwrap();
        let socket = client.socket_v4().unwrap();
        if let Some(size) = set {
            socket.set_recv_buffer_size(size).unwrap();
            assert_eq!(socket.recv_buffer_size().unwrap(), size);
        }
        let (mut c, mut s) = connect(socket, &listener).await;
        let data = vec![7u8; 1 << 20];
        let writer = tokio::spawn(async move { s.write_all(&data).await.map(|()| s) });
        let mut got = vec![0u8; 1 << 20];
        c.read_exact(&mut got).await.unwrap();
        let _s = writer.await.unwrap().unwrap();
        let in_flight = max_in_flight(&tap.log(), false);
        match set {
            Some(size) => {
                assert!(in_flight <= size, "{in_flight} bytes in flight");
                assert_eq!(c.recv_buffer_size().unwrap(), size, "no auto-tuning");
                let syn_window = tap.log().iter().find(|r| r.out && r.syn).unwrap().window;
                assert!(u32::from(syn_window) <= size, "SYN window {syn_window}");
            }
            None => assert!(in_flight > 64 * 1024, "{in_flight} bytes in flight"),
        }
    }
}

/// `SO_SNDBUF` set on the socket bounds the client's bytes in flight (it holds them until
/// acknowledged), and auto-tuning leaves it alone; without it the client sends far more.
#[tokio::test(start_paused = true)]
async fn send_buffer_size_bounds_bytes_in_flight() {
    for set in [Some(4096u32), None] {
        let (server, client, tap) = stacks();
        let listener = server.bind(SERVER).await.unwrap();
        let socket = client.socket_v4().unwrap();
        if let Some(size) = set {
            socket.set_send_buffer_size(size).unwrap();
        }
        let (mut c, mut s) = connect(socket, &listener).await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.map(|_| got.len())
        });
        c.write_all(&vec![1u8; 1 << 20]).await.unwrap();
        c.shutdown().await.unwrap();
        assert_eq!(reader.await.unwrap().unwrap(), 1 << 20);
        let in_flight = max_in_flight(&tap.log(), true);
        match set {
            Some(size) => {
                assert!(in_flight <= size, "{in_flight} bytes in flight");
                assert_eq!(c.send_buffer_size().unwrap(), size, "no auto-tuning");
            }
            None => assert!(in_flight > 64 * 1024, "{in_flight} bytes in flight"),
        }
    }
}

/// `IP_TTL` and `IP_TOS`: set on the socket they mark the SYN; changed on the stream, the
/// packets after it. A listener's TTL marks its SYN-ACKs and the connections it accepts.
#[tokio::test(start_paused = true)]
async fn ttl_and_tos_on_the_wire() {
    let (server, client, tap) = stacks();
    let listener = server.bind(SERVER).await.unwrap();
    listener.set_ttl(44).unwrap();
    let socket = client.socket_v4().unwrap();
    socket.set_tos_v4(0x20).unwrap();
    let (mut c, s) = connect(socket, &listener).await;
    assert_eq!(s.ttl().unwrap(), 44, "accepted connections take the listener's TTL");
    let log = tap.log();
    let syn = log.iter().find(|r| r.out && r.syn).unwrap();
    assert_eq!((syn.ttl, syn.tos), (64, 0x20));
    let syn_ack = log.iter().find(|r| !r.out && r.syn).unwrap();
    assert_eq!(syn_ack.ttl, 44);
    c.set_ttl(9).unwrap();
    c.set_tos_v4(0x48).unwrap();
    let since = Instant::now();
    c.write_all(b"marked").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let data = tap.log().into_iter().find(|r| r.out && r.at >= since && r.len > 0).unwrap();
    assert_eq!((data.ttl, data.tos), (9, 0x48));
    let reply = tap.log().into_iter().find(|r| !r.out && r.at >= since).unwrap();
    assert_eq!(reply.ttl, 44, "the server's ACK");
}

/// PACE-03 through the socket API: `SO_MAX_PACING_RATE` set on a live stream paces it (and
/// turns pacing on): 2 MB at 1 MB/s take about 2 s of the paused clock, the data leaving in
/// small releases served by the driver's timers, not in window-sized bursts.
#[tokio::test(start_paused = true)]
async fn pace_03_max_pacing_rate_on_a_live_stream() {
    const TOTAL: usize = 2_000_000;
    let (server, client, tap) = stacks();
    let listener = server.bind(SERVER).await.unwrap();
    let (mut c, s) = connect(client.socket_v4().unwrap(), &listener).await;
    c.set_max_pacing_rate(Some(1_000_000)).unwrap();
    assert_eq!(c.max_pacing_rate().unwrap(), Some(1_000_000));
    let start = send_and_read(&mut c, s, TOTAL).await;
    let secs = (Instant::now() - start).as_secs_f64();
    eprintln!("2 MB in {secs:.3} s at a 1 MB/s cap");
    assert!((1.9..=2.2).contains(&secs), "{secs:.3} s for 2 MB at 1 MB/s");
    // No 10 ms without data while the transfer runs: released steadily.
    let data: Vec<Instant> =
        tap.log().iter().filter(|r| r.out && r.len > 0 && r.at >= start).map(|r| r.at).collect();
    let gap = data.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(gap <= Duration::from_millis(10), "a gap of {gap:?}");
}

/// Write `total` bytes on `c` while a task reads them all from `s`; returns when the writer
/// started (the transfer has ended when this returns).
async fn send_and_read(c: &mut TcpStream, mut s: TcpStream, total: usize) -> Instant {
    let reader = tokio::spawn(async move {
        let (mut buf, mut n) = (vec![0; 1 << 16], 0);
        while n < total {
            let k = s.read(&mut buf).await.unwrap();
            assert!(k > 0, "early end of stream");
            n += k;
        }
    });
    let start = Instant::now();
    c.write_all(&vec![7u8; total]).await.unwrap();
    reader.await.unwrap();
    start
}

/// Goodput in bit/s of 16 MiB over a MemLink with 5 ms of delay each way, in tokio's paused
/// time, the client paced or not.
async fn paced_goodput(pacing: bool) -> f64 {
    const TOTAL: usize = 16 << 20;
    let (a, b) = MemLink::builder().delay(Duration::from_millis(5)).pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    let listener = server.bind(SERVER).await.unwrap();
    let socket = client.socket_v4().unwrap();
    socket.set_pacing(pacing).unwrap();
    let (mut c, s) = connect(socket, &listener).await;
    let start = send_and_read(&mut c, s, TOTAL).await;
    let goodput = TOTAL as f64 * 8.0 / (Instant::now() - start).as_secs_f64();
    eprintln!("pacing {pacing}: {:.0} Mbit/s", goodput / 1e6);
    goodput
}

/// PACE-05 over tokio's timers, which fire up to 1 ms late: the stack tells the engine so
/// (`ConnConfig::timer_granularity`), pacing forgives that lateness, and a paced transfer is
/// not slower than an unpaced one. Measured: 0.85 Gbit/s paced, 0.2 unpaced; over 64 MiB
/// 1.2 against 0.2, and 0.5 paced when only half a release's lateness was forgiven (Linux's
/// rule, made for its microsecond timers).
#[tokio::test(start_paused = true)]
async fn pace_05_tokio_timers_do_not_slow_a_paced_transfer() {
    let unpaced = paced_goodput(false).await;
    let paced = paced_goodput(true).await;
    assert!(paced >= 0.97 * unpaced, "{paced:.0} bit/s paced, {unpaced:.0} unpaced");
}

/// BBR-04: `TCP_CONGESTION` selects BBR for one socket (the stack's default stays CUBIC,
/// as the accepted end shows), and a live stream switches to it; both transfers complete.
/// On this 2 ms path with a 100 Mbit/s bottleneck (a 25 KB BDP) BBR holds its flight near
/// its model's bound (twice the BDP plus the offload budget), where CUBIC's slow start,
/// meeting no loss in the link's deep queue, grows it to the window.
#[tokio::test(start_paused = true)]
async fn bbr_04_congestion_control_per_socket() {
    let mut flights = Vec::new();
    for algorithm in [Some(CongestionAlgorithm::Bbr), None, Some(CongestionAlgorithm::Cubic)] {
        let link = MemLink::builder().delay(Duration::from_millis(1)).rate(12_500_000);
        let (server, client, tap) = stacks_on(link);
        let listener = server.bind(SERVER).await.unwrap();
        let socket = client.socket_v4().unwrap();
        if let Some(CongestionAlgorithm::Bbr) = algorithm {
            socket.set_tcp_congestion(CongestionAlgorithm::Bbr).unwrap();
        }
        let (mut c, mut s) = connect(socket, &listener).await;
        assert_eq!(s.tcp_congestion().unwrap(), CongestionAlgorithm::Cubic, "stack default");
        if algorithm == Some(CongestionAlgorithm::Cubic) {
            // Switched on the live stream, as Linux allows.
            c.set_tcp_congestion(CongestionAlgorithm::Bbr).unwrap();
        }
        let expect =
            if algorithm.is_some() { CongestionAlgorithm::Bbr } else { CongestionAlgorithm::Cubic };
        assert_eq!(c.tcp_congestion().unwrap(), expect);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.map(|_| got.len())
        });
        c.write_all(&vec![7u8; 8 << 20]).await.unwrap();
        c.shutdown().await.unwrap();
        assert_eq!(reader.await.unwrap().unwrap(), 8 << 20);
        flights.push(max_in_flight(&tap.log(), true));
    }
    eprintln!(
        "most bytes in flight: BBR {}, CUBIC {}, switched {}",
        flights[0], flights[1], flights[2]
    );
    // Measured: 194,032 bytes for BBR (both ways of choosing it), 2,585,024 for CUBIC. (Over
    // the unlimited link BBR measured only the pacer: 130,320 while tokio's 1 ms timers held
    // it to one 64 KiB release a millisecond, the receive window once they no longer did.)
    assert!(flights[0] < flights[1] / 2, "{flights:?}");
    assert!(flights[2] < flights[1] / 2, "{flights:?}");
}
