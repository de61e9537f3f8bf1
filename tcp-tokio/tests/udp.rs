//! `tcp_tokio::net::UdpSocket` (UDP-01, UDP-02, FR-02 through the tokio API): datagrams
//! between two stacks, connected sockets and ConnectionRefused, fragmented datagrams, and
//! the non-blocking variants.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use tcp_tokio::net::UdpSocket;
use tcp_tokio::{MemLink, Stack};

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
