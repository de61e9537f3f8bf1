//! The life of a stack: `Stack::shutdown`, the process default, and the driver ending by
//! itself once nothing refers to the stack.

use std::io::{ErrorKind, IoSlice, IoSliceMut};
use std::task::{Context, Poll};
use std::time::Duration;

use tcp_tokio::net::TcpStream;
use tcp_tokio::{Device, EndpointConfig, ListenOptions, MemLink, Stack, TxMeta};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;
use tokio::time::{timeout, Instant};

/// A [`MemLink`] end that reports when it is dropped, which happens when the driver task
/// that owns it ends.
struct DropProbe {
    link: MemLink,
    dropped: Option<oneshot::Sender<()>>,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        if let Some(tx) = self.dropped.take() {
            let _ = tx.send(());
        }
    }
}

impl Device for DropProbe {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        lens: &mut [usize],
    ) -> Poll<std::io::Result<usize>> {
        self.link.poll_recv(cx, bufs, lens)
    }

    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        packets: &[IoSlice<'_>],
        meta: &[TxMeta],
    ) -> Poll<std::io::Result<usize>> {
        self.link.poll_send(cx, packets, meta)
    }

    fn mtu(&self) -> usize {
        self.link.mtu()
    }

    fn capabilities(&self) -> tcp_tokio::Capabilities {
        self.link.capabilities()
    }
}

/// A stack at `ip` whose driver's end is reported on the returned receiver.
fn probed(ip: &str, link: MemLink, seed: u64) -> (Stack, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    let device = DropProbe { link, dropped: Some(tx) };
    let stack = Stack::builder().address(ip.parse().unwrap()).seed(seed).build(device).unwrap();
    (stack, rx)
}

/// Whether the driver has ended within `secs` seconds (of the paused clock).
async fn ended_within(rx: &mut oneshot::Receiver<()>, secs: u64) -> bool {
    timeout(Duration::from_secs(secs), rx).await.is_ok()
}

/// 1,000 open connections: the peers of a third close when they see FIN (graceful), a third
/// never close (FIN-WAIT-2 until the deadline), and a third have data stuck behind a full
/// peer window, so their FIN never leaves. `shutdown` returns at the deadline, having
/// aborted exactly the last two thirds, and every peer has seen FIN or RST.
#[tokio::test(start_paused = true)]
async fn shutdown_closes_a_thousand_connections_within_its_deadline() {
    const CONNS: usize = 1000;
    const DEADLINE: Duration = Duration::from_secs(5);
    let (a, b) = MemLink::builder().queue_len(1 << 14).pair();
    let mut cfg = EndpointConfig { somaxconn: 4096, ..EndpointConfig::default() };
    cfg.conn.send_buffer = 64 << 10;
    cfg.conn.recv_buffer = 16 << 10;
    cfg.conn.max_recv_buffer = 16 << 10;
    let build = |ip: &str, seed, link| {
        Stack::builder().address(ip.parse().unwrap()).config(cfg).seed(seed).build(link).unwrap()
    };
    let server = build("10.0.0.1", 1, a);
    let client = build("10.0.0.2", 2, b);
    let opts = ListenOptions { backlog: 4096, ..Default::default() };
    let listener = server.bind_with("10.0.0.1:80", opts).await.unwrap();
    let accept = tokio::spawn(async move {
        let mut streams = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            streams.push(listener.accept().await.unwrap().0);
        }
        (listener, streams)
    });
    let mut peers = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        peers.push(client.connect("10.0.0.1:80").await.unwrap());
    }
    let (listener, served) = accept.await.unwrap();
    let kind = |port: u16| port % 3;
    let mut stuck = 0;
    for s in &served {
        if kind(s.peer_addr().unwrap().port()) == 0 {
            // More than the peer's 16 KiB window: the FIN queues behind the rest.
            assert_eq!(s.try_write(&[7; 48 << 10]).unwrap(), 48 << 10);
            stuck += 1;
        }
    }
    let mut readers = Vec::new();
    let mut held = Vec::new();
    for p in peers {
        let port = p.local_addr().unwrap().port();
        if kind(port) == 0 {
            held.push(p); // reads only after the shutdown
        } else {
            readers.push(tokio::spawn(read_until_fin_or_rst(p, kind(port) == 2)));
        }
    }
    assert_eq!(server.state_counts().get(tcp_tokio::State::Established), CONNS);

    let started = Instant::now();
    let aborted = server.shutdown(DEADLINE).await;
    assert!(started.elapsed() <= DEADLINE, "shutdown took {:?}", started.elapsed());
    let never_closing = served.iter().filter(|s| kind(s.peer_addr().unwrap().port()) == 2);
    assert_eq!(aborted, stuck + never_closing.count());
    assert_eq!(server.connection_count(), 0);

    let mut outcomes = std::collections::HashMap::new();
    for r in readers {
        let (outcome, _stream) = r.await.unwrap();
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    for p in held {
        let (outcome, _stream) = read_until_fin_or_rst(p, false).await;
        assert_eq!(outcome, Outcome::Reset, "a peer whose FIN was stuck must see RST");
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    assert_eq!(outcomes.values().sum::<usize>(), CONNS, "{outcomes:?}");
    assert!(outcomes.contains_key(&Outcome::Fin) && outcomes.contains_key(&Outcome::Reset));

    // After the shutdown: the handles answer with clear errors.
    let down = |e: std::io::Error| e.kind();
    assert_eq!(
        server.bind("10.0.0.1:81").await.map(drop).map_err(down),
        Err(ErrorKind::NetworkDown)
    );
    let connect = server.connect("10.0.0.2:80").await.map(drop).map_err(down);
    assert_eq!(connect, Err(ErrorKind::NetworkDown));
    assert_eq!(listener.accept().await.map(drop).map_err(down), Err(ErrorKind::NetworkDown));
    assert!(server.is_shut_down());
    let mut stuck_stream =
        served.into_iter().find(|s| kind(s.peer_addr().unwrap().port()) == 0).unwrap();
    // The failure is reported once, then reads end the stream (FA-02, as Linux reports
    // `sk_err` once in tcp_recvmsg); writes stay `BrokenPipe`.
    let mut buf = [0; 8];
    let read = stuck_stream.read(&mut buf).await.map_err(down);
    assert_eq!(read, Err(ErrorKind::ConnectionAborted));
    assert_eq!(stuck_stream.try_write(b"x").map_err(down), Err(ErrorKind::BrokenPipe));
    assert_eq!(stuck_stream.read(&mut buf).await.map_err(down), Ok(0));
}

/// How a peer's connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Outcome {
    Fin,
    Reset,
}

/// Read until end-of-file or a reset (within a minute of the paused clock); unless `keep`,
/// close the stream once the FIN came.
async fn read_until_fin_or_rst(mut s: TcpStream, keep: bool) -> (Outcome, Option<TcpStream>) {
    let mut sink = Vec::new();
    let read = timeout(Duration::from_secs(60), s.read_to_end(&mut sink)).await;
    let outcome = match read.expect("neither FIN nor RST within a minute") {
        Ok(_) => Outcome::Fin,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Outcome::Reset,
        Err(e) => panic!("unexpected error {e}"),
    };
    (outcome, keep.then_some(s))
}

/// The driver ends by itself once the last handle, listener and connection are gone, and
/// not before.
#[tokio::test(start_paused = true)]
async fn driver_ends_when_its_last_handle_listener_and_connection_are_gone() {
    let (a, b) = MemLink::pair();
    let (server, mut server_end) = probed("10.0.0.1", a, 1);
    let (client, mut client_end) = probed("10.0.0.2", b, 2);
    let listener = server.bind("10.0.0.1:80").await.unwrap();
    let c = client.connect("10.0.0.1:80").await.unwrap();
    let (s, _) = listener.accept().await.unwrap();
    drop(server);
    drop(client);
    assert!(!ended_within(&mut server_end, 10).await, "ended while a listener and a stream live");
    drop(listener);
    assert!(!ended_within(&mut server_end, 10).await, "ended while a stream lives");
    drop(s);
    drop(c);
    // Both close gracefully; the side that closed first keeps only a TIME-WAIT entry.
    assert!(ended_within(&mut server_end, 120).await, "server driver still running");
    assert!(ended_within(&mut client_end, 120).await, "client driver still running");
}

/// The process default holds its stack until cleared; a scoped default restores the
/// previous one; `shutdown` of the default clears it. (One test: the default is global.)
#[tokio::test(start_paused = true)]
async fn the_default_stack_is_replaceable_clearable_and_scoped() {
    let (a, b) = MemLink::pair();
    let (first, mut first_end) = probed("10.0.0.1", a, 1);
    let (second, _second_end) = probed("10.0.0.2", b, 2);
    first.set_default();
    drop(first);
    assert!(!ended_within(&mut first_end, 10).await, "the default must keep its stack");
    {
        let _guard = second.scoped_default();
        assert_eq!(Stack::default_stack().unwrap().ipv4(), second.ipv4());
    }
    let restored = Stack::default_stack().unwrap();
    assert_eq!(restored.ipv4(), Some("10.0.0.1".parse().unwrap()));
    drop(restored);
    assert!(Stack::clear_default().is_some());
    assert!(Stack::default_stack().is_none());
    assert!(ended_within(&mut first_end, 10).await, "a cleared default must not pin its stack");

    second.set_default();
    assert_eq!(second.shutdown(Duration::from_secs(1)).await, 0);
    assert!(Stack::default_stack().is_none(), "shutdown clears the default it named");
    let e = tcp_tokio::net::TcpListener::bind("10.0.0.2:80").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

/// While a shutdown waits for connections to close, the stack's listeners are gone: a new
/// SYN gets RST as at a port with no listener (HS-01), so `connect` is refused.
#[tokio::test(start_paused = true)]
async fn hs_01_shutdown_refuses_new_syns_with_rst_during_its_grace_period() {
    let (a, b) = MemLink::pair();
    let (server, _end) = probed("10.0.0.1", a, 1);
    let (client, _client_end) = probed("10.0.0.2", b, 2);
    let listener = server.bind("10.0.0.1:80").await.unwrap();
    let _c = client.connect("10.0.0.1:80").await.unwrap();
    let (_s, _) = listener.accept().await.unwrap();
    let stopping = server.clone();
    let shutdown = tokio::spawn(async move { stopping.shutdown(Duration::from_secs(30)).await });
    while !server.is_shut_down() {
        tokio::task::yield_now().await;
    }
    let started = Instant::now();
    let e = client.connect("10.0.0.1:80").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert!(started.elapsed() < Duration::from_secs(1), "refused at once, not timed out");
    assert!(!shutdown.is_finished(), "the open connection holds the shutdown");
    assert_eq!(shutdown.await.unwrap(), 1, "the client never closed: reset at the deadline");
    assert_eq!(server.totals().endpoint.resets_sent, 1, "one RST for the refused SYN");
}
