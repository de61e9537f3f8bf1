//! Kernel semantics over two in-memory stacks: closing, resets, error kinds, the accept
//! queue, cancel safety and a lossy link. Every test runs on a paused clock.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tcp_tokio::net::{TcpListener, TcpStream};
use tcp_tokio::{ListenOptions, MemLink, MemLinkBuilder, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVER: &str = "10.0.0.1:80";

fn stacks_on(link: MemLinkBuilder) -> (Stack, Stack) {
    let (a, b) = link.pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    (server, client)
}

fn stacks() -> (Stack, Stack) {
    stacks_on(MemLink::builder())
}

/// A listener on the server and a connected (client, server-side) pair of streams.
async fn connected() -> (Stack, Stack, TcpListener, TcpStream, TcpStream) {
    let (server, client) = stacks();
    let listener = server.bind(SERVER).await.unwrap();
    let c = client.connect(SERVER).await.unwrap();
    let (s, peer) = listener.accept().await.unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    assert_eq!(s.local_addr().unwrap(), c.peer_addr().unwrap());
    (server, client, listener, c, s)
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ salt).collect()
}

#[test]
fn streams_are_send_sync_unpin_static() {
    fn check<T: Send + Sync + Unpin + 'static>() {}
    check::<TcpStream>();
    check::<TcpListener>();
    check::<tcp_tokio::net::tcp::OwnedReadHalf>();
    check::<tcp_tokio::net::tcp::OwnedWriteHalf>();
    check::<Stack>();
}

#[tokio::test(start_paused = true)]
async fn half_close_client_first() {
    let (_s, _c, _l, mut c, mut s) = connected().await;
    c.write_all(b"request").await.unwrap();
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"request");
    // The other direction stays open.
    s.write_all(b"response").await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"response");
    // Writing after our own shutdown is EPIPE.
    assert_eq!(c.write(b"x").await.unwrap_err().kind(), ErrorKind::BrokenPipe);
}

#[tokio::test(start_paused = true)]
async fn half_close_server_first() {
    let (_s, _c, _l, mut c, mut s) = connected().await;
    s.write_all(b"banner").await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"banner");
    c.write_all(b"still talking").await.unwrap();
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"still talking");
}

#[tokio::test(start_paused = true)]
async fn shutdown_with_data_in_flight_delivers_everything_then_fin() {
    let (_s, _c, _l, mut c, mut s) = connected().await;
    let data = pattern(4 << 20, 7);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        got
    });
    // Far more than the send buffer: write_all waits for room, then shutdown queues FIN.
    c.write_all(&data).await.unwrap();
    c.shutdown().await.unwrap();
    assert!(reader.await.unwrap() == data);
}

#[tokio::test(start_paused = true)]
async fn drop_with_queued_data_still_delivers_it() {
    let (_s, _c, _l, mut c, mut s) = connected().await;
    let data = pattern(1 << 20, 3);
    let writer = {
        let data = data.clone();
        tokio::spawn(async move {
            c.write_all(&data).await.unwrap();
            drop(c); // Graceful: the stack keeps the connection until everything is sent.
        })
    };
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    assert!(got == data);
}

#[tokio::test(start_paused = true)]
async fn copy_bidirectional_proxy_finishes() {
    // client ⇄ proxy (copy_bidirectional) ⇄ echo backend, all on the user-space stack.
    let (server, client) = stacks();
    let backend = server.bind("10.0.0.1:7").await.unwrap();
    let front = server.bind("10.0.0.1:8080").await.unwrap();
    tokio::spawn(async move {
        let (mut s, _) = backend.accept().await.unwrap();
        let (mut r, mut w) = s.split();
        tokio::io::copy(&mut r, &mut w).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let server2 = server.clone();
    let proxy = tokio::spawn(async move {
        let (mut inbound, _) = front.accept().await.unwrap();
        let mut outbound = server2.connect("10.0.0.1:7").await.unwrap();
        tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await.unwrap()
    });
    let mut c = client.connect("10.0.0.1:8080").await.unwrap();
    let data = pattern(2 << 20, 9);
    let (mut r, mut w) = c.split();
    let send = async {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let recv = async {
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        got
    };
    let ((), got) = tokio::join!(send, recv);
    assert!(got == data);
    let (up, down) = proxy.await.unwrap();
    assert_eq!((up, down), (data.len() as u64, data.len() as u64));
}

#[tokio::test(start_paused = true)]
async fn drop_with_unread_data_resets_peer() {
    let (_s, _c, _l, mut c, s) = connected().await;
    c.write_all(b"never read").await.unwrap();
    s.readable().await.unwrap();
    drop(s); // Unread data: RST, as Linux.
    let mut buf = [0; 16];
    let err = c.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

#[tokio::test(start_paused = true)]
async fn connect_to_closed_port_is_refused() {
    let (_server, client) = stacks();
    let err = client.connect("10.0.0.1:9").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[tokio::test(start_paused = true)]
async fn connect_to_silent_host_times_out() {
    let (_server, client) = stacks();
    let started = tokio::time::Instant::now();
    let err = client.connect("10.0.0.9:80").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    // Six SYN retransmissions with exponential backoff from 1 s: about two minutes.
    assert!(started.elapsed() >= Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn write_after_peer_reset_is_broken_pipe() {
    let (_s, _c, _l, mut c, s) = connected().await;
    s.set_zero_linger().unwrap();
    drop(s); // Abortive close: RST.
    c.readable().await.unwrap();
    assert_eq!(c.read(&mut [0; 8]).await.unwrap_err().kind(), ErrorKind::ConnectionReset);
    assert_eq!(c.write(b"late").await.unwrap_err().kind(), ErrorKind::BrokenPipe);
}

/// FA-02: a connection reset while it waits in the accept queue stays there with its data
/// (Linux keeps the socket, closed, until `accept`): `accept` returns it, reads give the data,
/// then `ConnectionReset` once, then end of stream, through the read half too.
#[tokio::test(start_paused = true)]
async fn fa_02_reset_before_accept_is_accepted_with_its_data() {
    let (server, client) = stacks();
    let l = server.bind(SERVER).await.unwrap();
    let mut c = client.connect(SERVER).await.unwrap();
    c.write_all(b"hello").await.unwrap();
    // Virtual time (paused clock): the data, then the RST, arrive well within it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.set_zero_linger().unwrap();
    drop(c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(l.queued(), 1, "still in the accept queue");
    let (s, _) = l.accept().await.unwrap();
    let (mut r, w) = s.into_split();
    let mut buf = [0u8; 16];
    assert_eq!(r.read(&mut buf).await.unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(r.read(&mut buf).await.unwrap_err().kind(), ErrorKind::ConnectionReset);
    assert_eq!(r.read(&mut buf).await.unwrap(), 0);
    assert_eq!(w.try_write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    drop((r, w));
    // Dropped: the connection leaves the stack (no leak), and a new one is accepted.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.connection_count(), 0);
    let _c = client.connect(SERVER).await.unwrap();
    let (_s, _) = l.accept().await.unwrap();
}

/// FA-02: while the server still holds a connection the peer reset (in its accept queue,
/// unread), the peer connects again from the same port: the new SYN reaches the listener
/// (Linux unhashes the reset socket) and a second connection is made; the first still reads
/// its data, then `ConnectionReset`, then end of stream.
#[tokio::test(start_paused = true)]
async fn fa_02_new_connection_from_the_port_of_a_reset_held_one() {
    let (server, client) = stacks();
    let l = server.bind(SERVER).await.unwrap();
    let from: SocketAddr = "10.0.0.2:40000".parse().unwrap();
    let socket = client.socket_v4().unwrap();
    socket.bind(from).unwrap();
    let mut c = socket.connect(SERVER.parse().unwrap()).await.unwrap();
    c.write_all(b"hello").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.set_zero_linger().unwrap();
    drop(c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(l.queued(), 1, "the reset connection waits in the accept queue");

    let socket = client.socket_v4().unwrap();
    socket.bind(from).unwrap();
    let connect = socket.connect(SERVER.parse().unwrap());
    let mut c2 = tokio::time::timeout(Duration::from_millis(500), connect)
        .await
        .expect("the SYN is answered by the listener at once")
        .unwrap();
    c2.write_all(b"again").await.unwrap();
    let (old, peer) = l.accept().await.unwrap();
    assert_eq!(peer, from);
    let (mut new, peer) = l.accept().await.unwrap();
    assert_eq!(peer, from);
    let mut buf = [0u8; 16];
    let mut old = old;
    assert_eq!(old.read(&mut buf).await.unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(old.read(&mut buf).await.unwrap_err().kind(), ErrorKind::ConnectionReset);
    assert_eq!(old.read(&mut buf).await.unwrap(), 0);
    drop(old);
    new.read_exact(&mut buf[..5]).await.unwrap();
    assert_eq!(&buf[..5], b"again");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.connection_count(), 1, "the old one left, the new one stays");
}

/// FA-02: a write after the RST reports it first (Linux `sk_err` is reported once, to the
/// first call; tcp-tokio's write error is `BrokenPipe`), and reads then give the data and
/// end of stream.
#[tokio::test(start_paused = true)]
async fn fa_02_write_first_after_reset_then_data_then_eof() {
    let (_s, _c, _l, mut c, mut s) = connected().await;
    c.write_all(b"hello").await.unwrap();
    s.readable().await.unwrap();
    c.set_zero_linger().unwrap();
    drop(c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.write(b"late").await.unwrap_err().kind(), ErrorKind::BrokenPipe);
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello");
}

#[tokio::test(start_paused = true)]
async fn address_errors() {
    let (server, client) = stacks();
    let _l = server.bind(SERVER).await.unwrap();
    assert_eq!(server.bind(SERVER).await.unwrap_err().kind(), ErrorKind::AddrInUse);
    assert_eq!(server.bind("10.9.9.9:80").await.unwrap_err().kind(), ErrorKind::AddrNotAvailable);
    assert_eq!(server.bind("host:80").await.unwrap_err().kind(), ErrorKind::InvalidInput);
    let any = server.bind("0.0.0.0:0").await.unwrap();
    assert_ne!(any.local_addr().unwrap().port(), 0);
    assert_eq!(client.connect("[::1]:80").await.unwrap_err().kind(), ErrorKind::NetworkUnreachable);
}

#[tokio::test(start_paused = true)]
async fn accept_queue_overflow_waits_in_syn_queue() {
    let (server, client) = stacks();
    let opts = ListenOptions { backlog: 1, ..ListenOptions::default() };
    let listener = server.bind_with(SERVER, opts).await.unwrap();
    let clients: Vec<_> = (0..3)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut c = client.connect(SERVER).await.unwrap();
                c.write_all(&[i]).await.unwrap();
                let mut b = [0; 1];
                c.read_exact(&mut b).await.unwrap();
                assert_eq!(b[0], i + 100);
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // One established connection fills the queue; the others wait.
    assert_eq!(listener.queued(), 1);
    assert!(server.stats().listen_overflows > 0);
    for _ in 0..3 {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut b = [0; 1];
        s.read_exact(&mut b).await.unwrap();
        s.write_all(&[b[0] + 100]).await.unwrap();
    }
    for c in clients {
        c.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn accept_is_cancel_safe() {
    let (server, client) = stacks();
    let listener = server.bind(SERVER).await.unwrap();
    let connects = tokio::spawn(async move {
        let mut streams = Vec::new();
        for _ in 0..20 {
            streams.push(client.connect(SERVER).await.unwrap());
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        streams
    });
    let mut accepted = Vec::new();
    let mut timeouts = 0;
    while accepted.len() < 20 {
        tokio::select! {
            r = listener.accept() => accepted.push(r.unwrap().1),
            () = tokio::time::sleep(Duration::from_millis(1)) => timeouts += 1,
        }
    }
    let streams = connects.await.unwrap();
    assert!(timeouts > 0, "the select never cancelled an accept");
    let mut want: Vec<SocketAddr> = streams.iter().map(|s| s.local_addr().unwrap()).collect();
    want.sort();
    accepted.sort();
    assert_eq!(accepted, want);
}

#[tokio::test(start_paused = true)]
async fn read_is_cancel_safe() {
    let (_s, _c, _l, mut c, mut s) = connected().await;
    let data = pattern(256 << 10, 5);
    let writer = {
        let data = data.clone();
        tokio::spawn(async move {
            for chunk in data.chunks(1000) {
                c.write_all(chunk).await.unwrap();
                tokio::time::sleep(Duration::from_micros(700)).await;
            }
            c.shutdown().await.unwrap();
        })
    };
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    let mut timeouts = 0;
    loop {
        tokio::select! {
            r = s.read(&mut buf) => match r.unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            },
            () = tokio::time::sleep(Duration::from_micros(300)) => timeouts += 1,
        }
    }
    writer.await.unwrap();
    assert!(timeouts > 0, "the select never cancelled a read");
    assert!(got == data);
}

#[tokio::test(start_paused = true)]
async fn owned_halves_and_reunite() {
    let (_s, _c, _l, c, mut s) = connected().await;
    let (mut r, mut w) = c.into_split();
    w.write_all(b"abc").await.unwrap();
    drop(w); // Dropping the owned write half sends FIN.
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"abc");
    s.write_all(b"xyz").await.unwrap();
    let mut b = [0; 3];
    r.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"xyz");

    let (_s2, _c2, _l2, c2, _s2s) = connected().await;
    let (r2, w2) = c2.into_split();
    let err = r.reunite(w2).unwrap_err();
    let (r2b, w2b) = (r2, err.1);
    assert!(r2b.reunite(w2b).is_ok());
}

fn lossy_link() -> MemLinkBuilder {
    MemLink::builder()
        .loss(0.05)
        .reorder(0.05)
        .duplicate(0.01)
        .delay(Duration::from_millis(2))
        .seed(42)
}

/// 1 MiB up, then 1 MiB down, over 5 % loss, 5 % reordering and 1 % duplication.
#[tokio::test(start_paused = true)]
async fn lossy_reordering_link_is_byte_exact() {
    let (server, client) = stacks_on(lossy_link());
    let listener = server.bind(SERVER).await.unwrap();
    let up = pattern(1 << 20, 1);
    let down = pattern(1 << 20, 2);
    let srv = {
        let down = down.clone();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (mut r, mut w) = s.into_split();
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            w.write_all(&down).await.unwrap();
            w.shutdown().await.unwrap();
            got
        })
    };
    let c = client.connect(SERVER).await.unwrap();
    let (mut r, mut w) = c.into_split();
    w.write_all(&up).await.unwrap();
    w.shutdown().await.unwrap();
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    assert!(got == down);
    assert!(srv.await.unwrap() == up);
    let info = r.info();
    assert!(info.retransmits > 0 || w.info().retransmits > 0, "the link lost nothing");
}

/// Both directions at once over the lossy link (pure ACKs after an RTO must carry SND.MAX,
/// or two sides in RTO recovery drop each other's ACKs as old).
#[tokio::test(start_paused = true)]
async fn lossy_link_both_directions_at_once() {
    let (server, client) = stacks_on(lossy_link());
    let listener = server.bind(SERVER).await.unwrap();
    let data = pattern(1 << 20, 3);
    let d2 = data.clone();
    let srv = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = s.into_split();
        let echo = tokio::spawn(async move {
            w.write_all(&d2).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        echo.await.unwrap();
        got
    });
    let c = client.connect(SERVER).await.unwrap();
    let (mut r, mut w) = c.into_split();
    let d3 = data.clone();
    let send = tokio::spawn(async move {
        w.write_all(&d3).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    send.await.unwrap();
    assert!(got == data);
    assert!(srv.await.unwrap() == data);
}

#[tokio::test(start_paused = true)]
async fn length_prefixed_frames() {
    let (_s, _c, _l, c, s) = connected().await;
    async fn send_frame(w: &mut (impl AsyncWriteExt + Unpin), body: &[u8]) {
        w.write_u32(body.len() as u32).await.unwrap();
        w.write_all(body).await.unwrap();
    }
    async fn recv_frame(r: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
        let len = match r.read_u32().await {
            Ok(n) => n as usize,
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return None,
            Err(e) => panic!("{e}"),
        };
        let mut body = vec![0; len];
        r.read_exact(&mut body).await.unwrap();
        Some(body)
    }
    let server = tokio::spawn(async move {
        let (mut r, mut w) = s.into_split();
        while let Some(f) = recv_frame(&mut r).await {
            let reply: Vec<u8> = f.iter().rev().copied().collect();
            send_frame(&mut w, &reply).await;
        }
    });
    let (mut r, mut w) = c.into_split();
    for n in [0usize, 1, 100, 1460, 1461, 70_000] {
        let body = pattern(n, n as u8);
        send_frame(&mut w, &body).await;
        let reply = recv_frame(&mut r).await.unwrap();
        assert!(reply.iter().rev().eq(body.iter()));
    }
    drop(w);
    assert!(recv_frame(&mut r).await.is_none());
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn default_stack_static_api() {
    let (server, client) = stacks();
    // One process default: both sides of this test use static calls on the server stack
    // only for bind, and the client stack explicitly.
    server.set_default();
    let listener = TcpListener::bind(SERVER).await.unwrap();
    let socket = tcp_tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("10.0.0.1:81".parse().unwrap()).unwrap();
    let _l81 = socket.listen(8).unwrap();
    let c = client.connect(SERVER).await.unwrap();
    let (s, _) = listener.accept().await.unwrap();
    assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
    assert!(client.connect("10.0.0.1:81").await.is_ok());
}

/// `poll_read_with` lends the buffered bytes in place: `f` consumes a part (the rest stays
/// for the next read), an error of `f` consumes nothing and is returned, `f` is not called
/// at end of stream (`Ok(0)`), and a reset connection reports its error.
#[tokio::test(start_paused = true)]
async fn poll_read_with_lends_the_buffer_in_place() {
    use std::future::poll_fn;
    let (_s, _c, _l, mut c, s) = connected().await;
    let data = pattern(100_000, 5);
    c.write_all(&data).await.unwrap();
    c.shutdown().await.unwrap();
    let mut got: Vec<u8> = Vec::new();
    // An error first: nothing consumed.
    let err = poll_fn(|cx| s.poll_read_with(cx, |_, _| Err(ErrorKind::WouldBlock.into()))).await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::WouldBlock);
    loop {
        let mut called = false;
        let n = poll_fn(|cx| {
            s.poll_read_with(cx, |a, b| {
                called = true;
                // At most 1,000 bytes a call, from both slices in order.
                let take = (a.len() + b.len()).min(1000);
                got.extend(a.iter().chain(b).take(take));
                Ok(take)
            })
        })
        .await
        .unwrap();
        if n == 0 {
            assert!(!called, "f is not called at end of stream");
            break;
        }
    }
    assert!(got == data, "every byte once, in order");

    // A reset connection reports its error rather than end of stream.
    let (_s, _c, _l, c, s) = connected().await;
    c.set_zero_linger().unwrap();
    drop(c);
    let r = poll_fn(|cx| s.poll_read_with(cx, |_, _| Ok(0))).await;
    assert_eq!(r.unwrap_err().kind(), ErrorKind::ConnectionReset);
}

/// A link with a rate limit is a bottleneck: 2 MB at 1 MB/s take about 2 s of the paused
/// clock, not the instant an unlimited link takes.
#[tokio::test(start_paused = true)]
async fn rate_limited_link_is_a_bottleneck() {
    const TOTAL: usize = 2_000_000;
    let (server, client) = stacks_on(MemLink::builder().rate(1_000_000));
    let listener = server.bind(SERVER).await.unwrap();
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        got.len()
    });
    let start = tokio::time::Instant::now();
    let mut c = client.connect(SERVER).await.unwrap();
    c.write_all(&vec![7u8; TOTAL]).await.unwrap();
    c.shutdown().await.unwrap();
    assert_eq!(reader.await.unwrap(), TOTAL);
    let secs = start.elapsed().as_secs_f64();
    assert!((2.0..=2.3).contains(&secs), "{secs:.3} s for 2 MB at 1 MB/s");
}
