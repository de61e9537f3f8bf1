//! ICMP errors through the tokio API: a hard error fails `connect` at once with the
//! kernel's error kind (IC-07); a soft one is the error of a later timeout (IC-08).

use std::future::poll_fn;
use std::io::{ErrorKind, IoSlice, IoSliceMut};
use std::time::Duration;

use tcp_tokio::{Device, MemLink, Stack, TxMeta};
use tcpcore::wire::icmp::{self, IcmpRepr, QuotedTcp};

/// Connect from a stack at 10.0.0.1 to 10.0.0.2:80 while the other end of the link
/// answers every SYN with ICMPv4 destination unreachable `code` from the peer's address.
/// Returns the error kind of `connect` and how long it took.
async fn connect_answered_by_icmp(code: u8) -> (ErrorKind, Duration) {
    let (a, mut b) = MemLink::pair();
    let stack = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let start = tokio::time::Instant::now();
    let connecting = tokio::spawn(async move { stack.connect("10.0.0.2:80").await });
    let answer = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let mut lens = [0usize; 1];
            let got = poll_fn(|cx| b.poll_recv(cx, &mut [IoSliceMut::new(&mut buf)], &mut lens));
            if got.await.is_err() {
                return;
            }
            let ihl = usize::from(buf[0] & 0xf) * 4;
            let quote = QuotedTcp::new_checked(&buf[..ihl + 8]).unwrap();
            let repr = IcmpRepr::Error { ty: 3, code, rest: [0; 4], quote };
            let mut out = vec![0u8; 2048];
            let (src, dst) = ("10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap());
            let n = icmp::emit(&mut out, src, dst, &repr).unwrap();
            let meta = [TxMeta::default()];
            poll_fn(|cx| b.poll_send(cx, &[IoSlice::new(&out[..n])], &meta)).await.unwrap();
        }
    });
    let err = connecting.await.unwrap().expect_err("connect must fail");
    answer.abort();
    (err.kind(), start.elapsed())
}

/// IC-07: ICMP port unreachable for the SYN fails `connect` at once with
/// `ConnectionRefused` (Linux: ECONNREFUSED), not after two minutes of SYN retries.
#[tokio::test(start_paused = true)]
async fn ic_07_port_unreachable_fails_connect_at_once() {
    let (kind, took) = connect_answered_by_icmp(3).await;
    assert_eq!(kind, ErrorKind::ConnectionRefused);
    assert!(took < Duration::from_millis(100), "connect took {took:?}");
    let (kind, _) = connect_answered_by_icmp(13).await;
    assert_eq!(kind, ErrorKind::HostUnreachable, "communication administratively prohibited");
}

/// IC-08: host unreachable is soft: the SYN is retried, and when `connect` gives up its
/// error is `HostUnreachable` (Linux: EHOSTUNREACH from sk_err_soft), not `TimedOut`.
#[tokio::test(start_paused = true)]
async fn ic_08_host_unreachable_is_the_error_of_the_connect_timeout() {
    let (kind, took) = connect_answered_by_icmp(1).await;
    assert_eq!(kind, ErrorKind::HostUnreachable);
    assert!(took >= Duration::from_secs(127), "connect gave up after {took:?}");
}
