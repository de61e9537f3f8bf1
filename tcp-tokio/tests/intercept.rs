//! Interception through the tokio API (AI-01, AI-02): a client stack dials addresses that
//! are not the server stack's; the server intercepts them, completes some and refuses the
//! others, and the client sees what a kernel client would.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tcp_tokio::{InterceptOptions, MemLink, Refusal, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

fn pair() -> (Stack, Stack) {
    let (a, b) = MemLink::pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    (server, client)
}

/// Echo one read back, then close.
async fn echo_once(mut s: tcp_tokio::net::TcpStream) {
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.unwrap();
    s.write_all(&buf[..n]).await.unwrap();
}

async fn ping(client: &Stack, to: &str) -> std::io::Result<()> {
    let mut c = client.connect(to).await?;
    assert_eq!(c.peer_addr()?, to.parse::<SocketAddr>().unwrap());
    c.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping");
    Ok(())
}

/// AI-02: the server decides by destination port: 80 completes (and echoes), 81 is reset,
/// 82 gets ICMP port unreachable, 83 administratively prohibited, 84 is dropped. The
/// decisions are taken before any SYN-ACK, with the SYN's options at hand.
#[tokio::test(start_paused = true)]
async fn ai_02_decide_each_request_before_the_handshake() {
    let (server, client) = pair();
    let interceptor = server.intercept().unwrap();
    assert_eq!(
        server.intercept().unwrap_err().kind(),
        ErrorKind::AddrInUse,
        "one interceptor per stack"
    );
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let req = interceptor.next().await;
            let syn = *req.syn().expect("the SYN's options");
            seen_tx.send((req.local_addr(), req.peer_addr(), syn.mss)).unwrap();
            match req.local_addr().port() {
                80 => {
                    let local = req.local_addr();
                    let s = req.accept().await.unwrap();
                    assert_eq!(s.local_addr().unwrap(), local, "the dialled address");
                    tokio::spawn(echo_once(s));
                }
                81 => req.refuse(Refusal::Reset),
                82 => req.refuse(Refusal::PortUnreachable),
                83 => req.refuse(Refusal::AdminProhibited),
                _ => drop(req),
            }
        }
    });
    ping(&client, "203.0.113.5:80").await.unwrap();
    ping(&client, "198.51.100.1:80").await.unwrap();
    let (local, peer, mss) = seen.recv().await.unwrap();
    assert_eq!(local, "203.0.113.5:80".parse().unwrap());
    assert_eq!(peer.ip(), client.ipv4().unwrap());
    assert_eq!(mss, Some(1460));

    let err = client.connect("203.0.113.5:81").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "RST");
    let err = client.connect("203.0.113.5:82").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "ICMP port unreachable");
    let err = client.connect("203.0.113.5:83").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostUnreachable, "ICMP admin prohibited (IPv4)");
    let dropped = tokio::time::timeout(Duration::from_secs(20), client.connect("203.0.113.5:84"));
    assert!(dropped.await.is_err(), "a dropped SYN is never answered");
    assert!(server.stats().intercept.requests >= 7);
    assert!(server.stats().intercept.dropped >= 2, "the SYN and its retransmissions");
}

/// AI-01: `intercept_all` accepts every connection, whatever address the client dialled,
/// while a listener bound on the stack keeps its own.
#[tokio::test(start_paused = true)]
async fn ai_01_intercept_all_accepts_any_address_and_listeners_keep_theirs() {
    let (server, client) = pair();
    let own = server.bind("10.0.0.1:7").await.unwrap();
    let all = server.intercept_all().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = own.accept().await.unwrap();
            assert_eq!(s.local_addr().unwrap(), "10.0.0.1:7".parse().unwrap());
            tokio::spawn(echo_once(s));
        }
    });
    let (tx, mut got) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (s, peer) = all.accept().await.unwrap();
            tx.send((s.local_addr().unwrap(), peer)).unwrap();
            tokio::spawn(echo_once(s));
        }
    });
    ping(&client, "10.0.0.1:7").await.unwrap();
    for to in ["192.0.2.1:443", "192.0.2.200:1", "10.0.0.1:8"] {
        ping(&client, to).await.unwrap();
        let (local, peer) = got.recv().await.unwrap();
        assert_eq!(local, to.parse().unwrap());
        assert_eq!(peer.ip(), client.ipv4().unwrap());
    }
    assert!(got.try_recv().is_err(), "the listener's connection was not intercepted");
}

/// Dropping the interceptor turns interception off: the stack drops packets for other
/// addresses again, so a connect there times out instead of being refused or answered.
#[tokio::test(start_paused = true)]
async fn ai_01_dropping_the_interceptor_turns_interception_off() {
    let (server, client) = pair();
    let all = server.intercept_all_with(InterceptOptions::default()).unwrap();
    drop(all);
    let attempt = tokio::time::timeout(Duration::from_secs(10), client.connect("192.0.2.1:443"));
    assert!(attempt.await.is_err());
    let _again = server.intercept().unwrap();
}
