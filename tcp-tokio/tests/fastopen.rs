//! TCP Fast Open through the tokio API (RFC 7413), as Linux offers it: `TCP_FASTOPEN` on the
//! listening socket (`TcpSocket::set_fastopen`) and `TCP_FASTOPEN_CONNECT` on the client
//! (`TcpSocket::set_fastopen_connect`): the second connection's `connect` returns at once,
//! its first write rides on the SYN, and the response comes one round trip sooner (TFO-01).
//! Time is tokio's paused clock.

use std::net::SocketAddr;
use std::time::Duration;

use tcp_tokio::{MemLink, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const ONE_WAY: Duration = Duration::from_millis(10);
const SERVER: &str = "10.0.0.1:80";

/// One request/response on a new Fast Open connection: how long `connect` took, the time
/// from the start to the first response byte, and the response.
async fn exchange(client: &Stack, server: SocketAddr) -> (Duration, Duration, Vec<u8>) {
    let start = Instant::now();
    let socket = client.socket_v4().unwrap();
    socket.set_fastopen_connect(true).unwrap();
    assert!(socket.fastopen_connect().unwrap());
    let mut stream = socket.connect(server).await.unwrap();
    let connect = start.elapsed();
    stream.write_all(b"ping").await.unwrap();
    let mut first = [0u8; 1];
    stream.read_exact(&mut first).await.unwrap();
    let ttfb = start.elapsed();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    rest.insert(0, first[0]);
    (connect, ttfb, rest)
}

/// TFO-01 through tcp-tokio: the first connection learns the cookie (two round trips to
/// the response), the second sends its request on the SYN (one round trip); the server sees
/// the SYN's data (`TcpInfo::syn_data`) only on the second.
#[tokio::test(start_paused = true)]
async fn tfo_01_fastopen_connect_saves_a_round_trip() {
    // TFO-01
    let (a, b) = MemLink::builder().delay(ONE_WAY).pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).build(b).unwrap();
    let addr: SocketAddr = SERVER.parse().unwrap();
    let socket = server.socket_v4().unwrap();
    socket.bind(addr).unwrap();
    socket.set_fastopen(8).unwrap();
    let listener = socket.listen(16).unwrap();
    let serve = tokio::spawn(async move {
        let mut syn_data = Vec::new();
        for _ in 0..2 {
            let (mut s, _) = listener.accept().await.unwrap();
            syn_data.push(s.info().syn_data);
            let mut req = [0u8; 4];
            s.read_exact(&mut req).await.unwrap();
            assert_eq!(&req, b"ping");
            s.write_all(b"pong").await.unwrap();
            s.shutdown().await.unwrap();
        }
        syn_data
    });

    let (connect1, first, resp) = exchange(&client, addr).await;
    assert_eq!(resp, b"pong");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (connect2, second, resp) = exchange(&client, addr).await;
    assert_eq!(resp, b"pong");
    let rtt = 2 * ONE_WAY;
    assert!(connect1 >= rtt, "without a cookie connect waits for the handshake");
    assert_eq!(connect2, Duration::ZERO, "with a cookie connect returns at once");
    assert!(first >= 2 * rtt, "{first:?}");
    assert!(second < first - rtt + Duration::from_millis(2), "{first:?} then {second:?}");
    assert_eq!(serve.await.unwrap(), [false, true]);
}
