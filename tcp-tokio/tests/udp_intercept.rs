//! UDP interception through the tokio API (AI-01): a proxy stack receives datagrams to any
//! address with their destination and answers from it, alongside TCP interception and its
//! own bound sockets; dropping the socket turns UDP interception off.

use std::io::ErrorKind;

use tcp_tokio::{MemLink, Stack};

fn pair() -> (Stack, Stack) {
    let (a, b) = MemLink::pair();
    let proxy = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    (proxy, client)
}

/// AI-01: a 10 KiB query to a foreign address (fragmented on the way) and its 10 KiB
/// answer from that address; the proxy's own bound socket keeps its datagrams; a second
/// interception socket is refused; once the socket is dropped a connected client hears
/// port unreachable (ConnectionRefused), as from a host without the service.
#[tokio::test(start_paused = true)]
async fn ai_01_udp_intercept_round_trip_then_off() {
    let (proxy, client) = pair();
    let _tcp = proxy.intercept().unwrap();
    let all = proxy.intercept_udp().unwrap();
    assert_eq!(proxy.intercept_udp().unwrap_err().kind(), ErrorKind::AddrInUse);
    let own = proxy.bind_udp("10.0.0.1:53").await.unwrap();

    let sock = client.bind_udp("10.0.0.2:0").await.unwrap();
    sock.connect("198.51.100.9:4000").await.unwrap();
    let query: Vec<u8> = (0..10 * 1024).map(|i| (i % 251) as u8).collect();
    sock.send(&query).await.unwrap();
    client.bind_udp("10.0.0.2:0").await.unwrap().send_to(b"own", "10.0.0.1:53").await.unwrap();

    let mut buf = vec![0u8; 65_536];
    let (n, from, to) = all.recv_from_to(&mut buf).await.unwrap();
    assert_eq!((from, to), (sock.local_addr().unwrap(), "198.51.100.9:4000".parse().unwrap()));
    assert!(buf[..n] == query[..], "the reassembled query");
    let (n, _) = own.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"own");
    assert_eq!(all.try_recv_from(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);

    let answer: Vec<u8> = query.iter().rev().copied().collect();
    all.send_from_to(&answer, to, from).await.unwrap();
    let n = sock.recv(&mut buf).await.unwrap();
    assert!(buf[..n] == answer[..], "the reassembled answer, from the dialled address");
    let bad = own.send_from_to(b"x", to, from).await.unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput, "only the interception socket");

    drop(all);
    sock.send(b"anyone?").await.unwrap();
    let err = sock.recv(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}
