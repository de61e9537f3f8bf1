//! `tcp_tokio::net::UdpSocket` (UDP-01, UDP-02, UDP-04, FR-02 through the tokio API):
//! datagrams between two stacks, connected sockets and ConnectionRefused, fragmented
//! datagrams, the non-blocking variants, and many tasks waiting on one socket.

use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use tcp_tokio::net::UdpSocket;
use tcp_tokio::{MemLink, Stack};
use tokio::io::Interest;
use tokio::task::JoinSet;
use tokio::time::timeout;

/// Longer than a datagram needs to cross a lossless link.
const BOUND: Duration = Duration::from_secs(5);

fn pair() -> (Stack, Stack) {
    let (a, b) = MemLink::pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    (server, client)
}

/// The socket can be shared between tasks, as tokio's.
#[test]
fn udp_socket_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<UdpSocket>();
}

/// UDP-01: datagrams cross whole, in order on a lossless link, with their source; a
/// connected socket hears only its peer.
#[tokio::test(start_paused = true)]
async fn udp_01_datagrams_between_stacks() {
    let (server, client) = pair();
    let rx = server.bind_udp("10.0.0.1:5300").await.unwrap();
    let tx = client.bind_udp("0.0.0.0:0").await.unwrap();
    for i in 0..20u8 {
        tx.send_to(&vec![i; 100 + usize::from(i)], "10.0.0.1:5300").await.unwrap();
    }
    let mut buf = [0u8; 2000];
    for i in 0..20u8 {
        let (n, from) = rx.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &vec![i; 100 + usize::from(i)][..]);
        assert_eq!(from.ip(), "10.0.0.2".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(from.port(), tx.local_addr().unwrap().port());
    }
    // A reply to the wildcard-bound sender reaches it.
    let peer = tx.local_addr().unwrap().port();
    rx.send_to(b"reply", ("10.0.0.2", peer)).await.unwrap();
    let (n, from) = tx.recv_from(&mut buf).await.unwrap();
    assert_eq!((&buf[..n], from), (&b"reply"[..], "10.0.0.1:5300".parse().unwrap()));

    // Connected: only the peer's datagrams arrive.
    let conn = client.bind_udp("10.0.0.2:6000").await.unwrap();
    conn.connect("10.0.0.1:5300").await.unwrap();
    assert_eq!(conn.peer_addr().unwrap(), "10.0.0.1:5300".parse().unwrap());
    let other = server.bind_udp("10.0.0.1:5301").await.unwrap();
    other.send_to(b"stranger", "10.0.0.2:6000").await.unwrap();
    rx.send_to(b"peer", "10.0.0.2:6000").await.unwrap();
    let n = conn.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"peer");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(conn.try_recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// UDP-02: a connected socket's datagram to a closed port comes back as ConnectionRefused
/// on the next receive, once.
#[tokio::test(start_paused = true)]
async fn udp_02_connected_socket_gets_connection_refused() {
    let (_server, client) = pair();
    let sock = client.bind_udp("0.0.0.0:0").await.unwrap();
    sock.connect("10.0.0.1:9").await.unwrap();
    assert_eq!(sock.local_addr().unwrap().ip(), "10.0.0.2".parse::<std::net::IpAddr>().unwrap());
    sock.send(b"anyone?").await.unwrap();
    let mut buf = [0u8; 16];
    let err = tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf))
        .await
        .expect("the error arrives")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(sock.try_recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock, "once");
}

/// FR-02: a 10 KiB datagram leaves in fragments and arrives whole; so does the largest one.
#[tokio::test(start_paused = true)]
async fn fr_02_large_datagrams_fragment_and_reassemble() {
    let (server, client) = pair();
    let rx = Arc::new(server.bind_udp("10.0.0.1:5300").await.unwrap());
    let tx = client.bind_udp("10.0.0.2:0").await.unwrap();
    let mut buf = vec![0u8; 70_000];
    for n in [10_240usize, 65_507] {
        let data: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
        tx.send_to(&data, "10.0.0.1:5300").await.unwrap();
        let got = rx.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..got], &data[..]);
    }
    assert!(server.stats().frag_reassembled >= 2);
    let too_long = vec![0u8; 65_508];
    let err = tx.send_to(&too_long, "10.0.0.1:5300").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// The non-blocking and readiness variants, and the default-stack constructor.
#[tokio::test(start_paused = true)]
async fn udp_try_and_ready_variants() {
    let (server, _client) = pair();
    server.set_default();
    let a = UdpSocket::bind("10.0.0.1:7000").await.unwrap();
    let b = UdpSocket::bind("10.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(a.try_recv_from(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    assert_eq!(b.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(b.try_send(b"x").unwrap_err().kind(), ErrorKind::NotConnected);
    b.writable().await.unwrap();
    b.try_send_to(b"ping", "10.0.0.1:7000".parse().unwrap()).unwrap();
    a.readable().await.unwrap();
    let (n, from) = a.try_peek_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"ping"[..], b.local_addr().unwrap()));
    let mut rb = tokio::io::ReadBuf::new(&mut buf);
    let from = std::future::poll_fn(|cx| a.poll_recv_from(cx, &mut rb)).await.unwrap();
    assert_eq!((rb.filled(), from), (&b"ping"[..], b.local_addr().unwrap()));
    assert_eq!(UdpSocket::bind("10.0.0.1:7000").await.unwrap_err().kind(), ErrorKind::AddrInUse);
    assert_eq!(
        UdpSocket::bind("10.9.9.9:1").await.unwrap_err().kind(),
        ErrorKind::AddrNotAvailable
    );
    drop(a);
    UdpSocket::bind("10.0.0.1:7000").await.expect("the port is free after drop");
}

/// Let every spawned task run up to its first `Pending`.
async fn let_tasks_register() {
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
}

/// Wait (bounded) for every task of `set`; returns how many finished.
async fn finished(set: &mut JoinSet<()>) -> usize {
    let mut n = 0;
    while let Ok(Some(r)) = timeout(BOUND, set.join_next()).await {
        r.unwrap();
        n += 1;
    }
    n
}

/// UDP-04: two tasks receiving on one shared socket both get a datagram: each waiting `recv`
/// (and `recv_from`) is woken, as tokio wakes every waiter, not only the last to wait.
#[tokio::test(start_paused = true)]
async fn udp_04_two_concurrent_receivers_both_receive() {
    let (server, client) = pair();
    let rx = Arc::new(server.bind_udp("10.0.0.1:5400").await.unwrap());
    let tx = client.bind_udp("10.0.0.2:0").await.unwrap();
    let mut set = JoinSet::new();
    for from in [false, true] {
        let rx = rx.clone();
        set.spawn(async move {
            let mut buf = [0u8; 16];
            let n = if from {
                rx.recv_from(&mut buf).await.unwrap().0
            } else {
                rx.recv(&mut buf).await.unwrap()
            };
            assert_eq!(n, 1);
        });
    }
    let_tasks_register().await;
    for i in 0..2u8 {
        tx.send_to(&[i], "10.0.0.1:5400").await.unwrap();
    }
    assert_eq!(finished(&mut set).await, 2, "a receiver was never woken");
}

/// UDP-04: every task awaiting `readable()` or `ready(READABLE)` on one socket is woken by
/// one datagram; a cancelled waiter does not keep the others from waking.
#[tokio::test(start_paused = true)]
async fn udp_04_one_datagram_wakes_every_readiness_waiter() {
    let (server, client) = pair();
    let rx = Arc::new(server.bind_udp("10.0.0.1:5401").await.unwrap());
    let tx = client.bind_udp("10.0.0.2:0").await.unwrap();
    let mut set = JoinSet::new();
    for i in 0..10 {
        let rx = rx.clone();
        set.spawn(async move {
            if i % 2 == 0 {
                rx.readable().await.unwrap();
            } else {
                assert!(rx.ready(Interest::READABLE).await.unwrap().is_readable());
            }
        });
    }
    // A waiter that gives up before the datagram comes.
    let gone = {
        let rx = rx.clone();
        tokio::spawn(async move { rx.readable().await.unwrap() })
    };
    let_tasks_register().await;
    gone.abort();
    let_tasks_register().await;
    tx.send_to(b"x", "10.0.0.1:5401").await.unwrap();
    assert_eq!(finished(&mut set).await, 10);
    let mut buf = [0u8; 4];
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 1, "readiness consumed nothing");
}

/// UDP-04: futures awaiting `writable()` and blocked `send_to`s on a socket whose send queue
/// is full are all woken when the driver drains it.
#[tokio::test(start_paused = true)]
async fn udp_04_a_drained_send_queue_wakes_every_writer() {
    let (server, _client) = pair();
    let sock = server.bind_udp("10.0.0.1:5402").await.unwrap();
    // Fill the send queue, to the last byte (empty datagrams take the remainder); the
    // driver does not run before this task yields.
    let big = vec![0u8; 1400];
    let mut queued = 0;
    for d in [&big[..], &[]] {
        while sock.try_send_to(d, "10.0.0.2:9".parse().unwrap()).is_ok() {
            queued += 1;
            assert!(queued < 100_000, "the send queue never filled");
        }
    }
    type Pending<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;
    let mut futures: Vec<Pending<'_>> = Vec::new();
    for i in 0..4 {
        futures.push(if i % 2 == 0 {
            Box::pin(async { sock.writable().await.unwrap() })
        } else {
            Box::pin(async { sock.send_to(&big, "10.0.0.2:9").await.map(drop).unwrap() })
        });
    }
    // Each future waits with a waker of its own.
    let counts: Vec<_> = (0..futures.len()).map(|_| Arc::new(Count(AtomicUsize::new(0)))).collect();
    for (f, count) in futures.iter_mut().zip(&counts) {
        let waker = Waker::from(count.clone());
        assert!(f.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
    }
    let mut spins = 0;
    while counts.iter().any(|c| c.0.load(Ordering::Relaxed) == 0) {
        spins += 1;
        assert!(spins < 1_000, "a writer was never woken");
        tokio::task::yield_now().await;
    }
}

/// Counts its wakes.
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}
