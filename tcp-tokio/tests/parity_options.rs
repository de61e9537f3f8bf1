//! Parity with tokio 1.54's socket options: every option method of `TcpSocket`, and the
//! options of `TcpStream` and `TcpListener`, has tokio's exact signature (checked at compile
//! time against tokio's own types: both coerce to the same function-pointer type), and the
//! getters return what the setters set. Then `TcpSocket::bind` as `bind(2)`: the address
//! is reserved at once.

#![allow(deprecated)] // tokio 1.54 deprecates `set_linger` and the `tos` names; both have them.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::Duration;

use tcp_tokio::net::{TcpKeepalive, TcpListener, TcpSocket, TcpStream};
use tcp_tokio::{CongestionAlgorithm, MemLink, Stack};

/// `$ty::$method` coerces to `fn(&$ty, $args…) -> $ret` for tokio's type and for ours (or,
/// for a constructor, to `fn() -> io::Result<$ty>`).
macro_rules! same_signature {
    ($ty:ident, $method:ident, fn(& $(, $arg:ty)*) -> $ret:ty) => {{
        let _: fn(&tokio::net::$ty $(, $arg)*) -> $ret = tokio::net::$ty::$method;
        let _: fn(&$ty $(, $arg)*) -> $ret = $ty::$method;
    }};
    ($ty:ident, $method:ident, fn($(, $arg:ty)*) -> $ret:ty) => {{
        let _: fn($($arg),*) -> io::Result<tokio::net::$ty> = tokio::net::$ty::$method;
        let _: fn($($arg),*) -> io::Result<$ty> = $ty::$method;
    }};
}

/// Compiles only if every signature matches tokio's.
#[test]
fn signatures_match_tokio() {
    type R<T> = io::Result<T>;
    type Linger = Option<Duration>;
    same_signature!(TcpSocket, new_v4, fn() -> _);
    same_signature!(TcpSocket, new_v6, fn() -> _);
    same_signature!(TcpSocket, set_keepalive, fn(&, bool) -> R<()>);
    same_signature!(TcpSocket, keepalive, fn(&) -> R<bool>);
    same_signature!(TcpSocket, set_reuseaddr, fn(&, bool) -> R<()>);
    same_signature!(TcpSocket, reuseaddr, fn(&) -> R<bool>);
    same_signature!(TcpSocket, set_reuseport, fn(&, bool) -> R<()>);
    same_signature!(TcpSocket, reuseport, fn(&) -> R<bool>);
    same_signature!(TcpSocket, set_send_buffer_size, fn(&, u32) -> R<()>);
    same_signature!(TcpSocket, send_buffer_size, fn(&) -> R<u32>);
    same_signature!(TcpSocket, set_recv_buffer_size, fn(&, u32) -> R<()>);
    same_signature!(TcpSocket, recv_buffer_size, fn(&) -> R<u32>);
    same_signature!(TcpSocket, set_linger, fn(&, Linger) -> R<()>);
    same_signature!(TcpSocket, set_zero_linger, fn(&) -> R<()>);
    same_signature!(TcpSocket, linger, fn(&) -> R<Linger>);
    same_signature!(TcpSocket, set_nodelay, fn(&, bool) -> R<()>);
    same_signature!(TcpSocket, nodelay, fn(&) -> R<bool>);
    same_signature!(TcpSocket, tclass_v6, fn(&) -> R<u32>);
    same_signature!(TcpSocket, set_tclass_v6, fn(&, u32) -> R<()>);
    same_signature!(TcpSocket, tos_v4, fn(&) -> R<u32>);
    same_signature!(TcpSocket, tos, fn(&) -> R<u32>);
    same_signature!(TcpSocket, set_tos_v4, fn(&, u32) -> R<()>);
    same_signature!(TcpSocket, set_tos, fn(&, u32) -> R<()>);
    same_signature!(TcpSocket, local_addr, fn(&) -> R<SocketAddr>);
    same_signature!(TcpSocket, take_error, fn(&) -> R<Option<io::Error>>);
    same_signature!(TcpSocket, bind, fn(&, SocketAddr) -> R<()>);
    let _: fn(tokio::net::TcpSocket, u32) -> R<tokio::net::TcpListener> =
        tokio::net::TcpSocket::listen;
    let _: fn(TcpSocket, u32) -> R<TcpListener> = TcpSocket::listen;
    // `connect` is async: its call in `socket_options_round_trip` checks the signature.

    same_signature!(TcpStream, ttl, fn(&) -> R<u32>);
    same_signature!(TcpStream, set_ttl, fn(&, u32) -> R<()>);
    same_signature!(TcpStream, quickack, fn(&) -> R<bool>);
    same_signature!(TcpStream, set_quickack, fn(&, bool) -> R<()>);
    same_signature!(TcpStream, linger, fn(&) -> R<Linger>);
    same_signature!(TcpStream, set_linger, fn(&, Linger) -> R<()>);
    same_signature!(TcpStream, set_zero_linger, fn(&) -> R<()>);
    same_signature!(TcpStream, nodelay, fn(&) -> R<bool>);
    same_signature!(TcpStream, set_nodelay, fn(&, bool) -> R<()>);

    same_signature!(TcpListener, ttl, fn(&) -> R<u32>);
    same_signature!(TcpListener, set_ttl, fn(&, u32) -> R<()>);
}

fn stacks() -> (Stack, Stack) {
    let (a, b) = MemLink::pair();
    let server = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a).unwrap();
    let client = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b).unwrap();
    (server, client)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Every `TcpSocket` getter returns what its setter set, and the connection the socket
/// opens carries the options.
#[tokio::test(start_paused = true)]
async fn socket_options_round_trip() {
    let (server, client) = stacks();
    let _l = server.bind("10.0.0.1:80").await.unwrap();
    let s = client.socket_v4().unwrap();
    assert!(!s.keepalive().unwrap() && !s.nodelay().unwrap() && !s.reuseaddr().unwrap());
    s.set_keepalive(true).unwrap();
    s.set_reuseaddr(true).unwrap();
    s.set_reuseport(true).unwrap();
    s.set_send_buffer_size(65_536).unwrap();
    s.set_recv_buffer_size(32_768).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_tos_v4(0x10).unwrap();
    s.set_tcp_user_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_tcp_congestion(CongestionAlgorithm::NewReno).unwrap();
    let ka = TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(5))
        .with_retries(4);
    s.set_tcp_keepalive(&ka).unwrap();
    assert!(s.keepalive().unwrap() && s.reuseaddr().unwrap() && s.reuseport().unwrap());
    assert_eq!(s.send_buffer_size().unwrap(), 65_536);
    assert_eq!(s.recv_buffer_size().unwrap(), 32_768);
    assert!(s.nodelay().unwrap());
    assert_eq!((s.tos_v4().unwrap(), s.tos().unwrap()), (0x10, 0x10));
    s.set_tos(0x08).unwrap();
    assert_eq!(s.tos_v4().unwrap(), 0x08);
    assert_eq!(s.tcp_user_timeout().unwrap(), Some(Duration::from_secs(30)));
    assert_eq!(s.tcp_congestion().unwrap(), CongestionAlgorithm::NewReno);
    assert_eq!(s.keepalive_time().unwrap(), Duration::from_secs(60));
    assert_eq!(s.keepalive_interval().unwrap(), Duration::from_secs(5));
    assert_eq!(s.keepalive_retries().unwrap(), 4);
    assert_eq!(s.linger().unwrap(), None);
    s.set_linger(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::from_secs(3)));
    s.set_zero_linger().unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::ZERO));
    assert!(s.take_error().unwrap().is_none());
    // Options of the other family, and values Linux rejects.
    assert_eq!(s.set_tclass_v6(8).unwrap_err().kind(), ErrorKind::Unsupported);
    assert_eq!(s.tclass_v6().unwrap_err().kind(), ErrorKind::Unsupported);
    assert_eq!(s.set_tos_v4(256).unwrap_err().kind(), ErrorKind::InvalidInput);
    let bad = TcpKeepalive::new().with_retries(0);
    assert_eq!(s.set_tcp_keepalive(&bad).unwrap_err().kind(), ErrorKind::InvalidInput);

    let c: TcpStream = s.connect(sa("10.0.0.1:80")).await.unwrap();
    assert!(c.nodelay().unwrap() && c.keepalive().unwrap());
    assert_eq!(c.linger().unwrap(), Some(Duration::ZERO));
    assert_eq!(c.send_buffer_size().unwrap(), 65_536);
    assert_eq!(c.recv_buffer_size().unwrap(), 32_768);
    assert_eq!(c.tos_v4().unwrap(), 0x08);
    assert_eq!(c.tcp_user_timeout().unwrap(), Some(Duration::from_secs(30)));
    assert_eq!(c.tcp_congestion().unwrap(), CongestionAlgorithm::NewReno);
    assert_eq!(c.keepalive_time().unwrap(), Duration::from_secs(60));
    assert_eq!(c.keepalive_interval().unwrap(), Duration::from_secs(5));
    assert_eq!(c.keepalive_retries().unwrap(), 4);
}

/// The IPv6 traffic class on an IPv6 socket, and the IPv4 TOS refused there.
#[tokio::test(start_paused = true)]
async fn tclass_on_an_ipv6_socket() {
    let (a, _b) = MemLink::pair();
    let stack = Stack::builder().address("fd00::1".parse().unwrap()).seed(1).build(a).unwrap();
    let s = stack.socket_v6().unwrap();
    s.set_tclass_v6(0x28).unwrap();
    assert_eq!(s.tclass_v6().unwrap(), 0x28);
    assert_eq!(s.tos_v4().unwrap_err().kind(), ErrorKind::Unsupported);
}

/// Every `TcpStream` and `TcpListener` option getter returns what its setter set.
#[tokio::test(start_paused = true)]
async fn stream_and_listener_options_round_trip() {
    let (server, client) = stacks();
    let l = server.bind("10.0.0.1:80").await.unwrap();
    assert_eq!(l.ttl().unwrap(), 64);
    l.set_ttl(100).unwrap();
    assert_eq!(l.ttl().unwrap(), 100);
    assert_eq!(l.set_ttl(0).unwrap_err().kind(), ErrorKind::InvalidInput);
    let c = client.connect("10.0.0.1:80").await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    assert_eq!(s.ttl().unwrap(), 100);
    assert_eq!(c.ttl().unwrap(), 64);
    c.set_ttl(7).unwrap();
    assert_eq!(c.ttl().unwrap(), 7);
    assert_eq!(c.set_ttl(256).unwrap_err().kind(), ErrorKind::InvalidInput);
    c.set_quickack(false).unwrap();
    assert!(!c.quickack().unwrap());
    c.set_quickack(true).unwrap();
    assert!(c.quickack().unwrap());
    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());
    assert_eq!(c.linger().unwrap(), None);
    c.set_linger(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(c.linger().unwrap(), Some(Duration::from_secs(1)));
    c.set_zero_linger().unwrap();
    assert_eq!(c.linger().unwrap(), Some(Duration::ZERO));
    c.set_keepalive(true).unwrap();
    assert!(c.keepalive().unwrap());
    c.set_tcp_user_timeout(Some(Duration::from_secs(9))).unwrap();
    assert_eq!(c.tcp_user_timeout().unwrap(), Some(Duration::from_secs(9)));
    c.set_send_buffer_size(10_000).unwrap();
    assert_eq!(c.send_buffer_size().unwrap(), 10_000);
    c.set_tcp_congestion(CongestionAlgorithm::NewReno).unwrap();
    assert_eq!(c.tcp_congestion().unwrap(), CongestionAlgorithm::NewReno);
    c.set_pacing(true).unwrap();
    c.set_max_pacing_rate(Some(1 << 20)).unwrap();
    assert!(c.pacing().unwrap());
    assert_eq!(c.max_pacing_rate().unwrap(), Some(1 << 20));
    c.set_tos_v4(0x20).unwrap();
    assert_eq!(c.tos_v4().unwrap(), 0x20);
}

/// `bind` reserves at once: `local_addr` reports the port chosen for port 0, a second
/// socket binding it (or listening on it) gets `AddrInUse` at `bind`, and dropping the
/// first socket frees the port.
#[tokio::test(start_paused = true)]
async fn bind_reserves_the_address_until_dropped() {
    let (server, _client) = stacks();
    let first = server.socket_v4().unwrap();
    assert_eq!(first.local_addr().unwrap(), sa("0.0.0.0:0"), "unbound");
    first.bind(sa("10.0.0.1:0")).unwrap();
    let addr = first.local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    assert_eq!(first.bind(addr).unwrap_err().kind(), ErrorKind::InvalidInput, "bound twice");
    let second = server.socket_v4().unwrap();
    second.set_reuseaddr(true).unwrap();
    assert_eq!(second.bind(addr).unwrap_err().kind(), ErrorKind::AddrInUse);
    let wildcard = SocketAddr::new("0.0.0.0".parse().unwrap(), addr.port());
    assert_eq!(second.bind(wildcard).unwrap_err().kind(), ErrorKind::AddrInUse);
    assert_eq!(server.bind(addr).await.unwrap_err().kind(), ErrorKind::AddrInUse);
    drop(first);
    second.bind(addr).unwrap();
    let listener = second.listen(16).unwrap();
    assert_eq!(listener.local_addr().unwrap(), addr, "the reservation became the listener");
    let third = server.socket_v4().unwrap();
    assert_eq!(third.bind(addr).unwrap_err().kind(), ErrorKind::AddrInUse, "a listener");
    drop(listener);
    third.bind(addr).unwrap();
}

/// A socket bound to a port connects from it; one bound to port 0 from the port `bind`
/// chose; the bound port then holds the connection (no other bind gets it).
#[tokio::test(start_paused = true)]
async fn connect_from_the_bound_port() {
    let (server, client) = stacks();
    let _l = server.bind("10.0.0.1:80").await.unwrap();
    let s = client.socket_v4().unwrap();
    s.bind(sa("10.0.0.2:0")).unwrap();
    let chosen = s.local_addr().unwrap();
    let c = s.connect(sa("10.0.0.1:80")).await.unwrap();
    assert_eq!(c.local_addr().unwrap(), chosen);
    let other = client.socket_v4().unwrap();
    assert_eq!(other.bind(chosen).unwrap_err().kind(), ErrorKind::AddrInUse);
    let fixed = client.socket_v4().unwrap();
    fixed.bind(sa("0.0.0.0:5555")).unwrap();
    let c2 = fixed.connect(sa("10.0.0.1:80")).await.unwrap();
    assert_eq!(c2.local_addr().unwrap(), sa("10.0.0.2:5555"));
    let v6 = client.socket_v4().unwrap();
    let mixed = v6.connect(sa("[fd00::1]:80")).await.unwrap_err();
    assert_eq!(mixed.kind(), ErrorKind::InvalidInput);
}

/// A listening socket's options are those of every connection it accepts, as Linux copies
/// them into accepted sockets.
#[tokio::test(start_paused = true)]
async fn listening_socket_options_pass_to_accepted_connections() {
    let (server, client) = stacks();
    let s = server.socket_v4().unwrap();
    s.set_keepalive(true).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_recv_buffer_size(16_384).unwrap();
    s.set_tcp_congestion(CongestionAlgorithm::NewReno).unwrap();
    s.set_pacing(true).unwrap();
    s.bind(sa("10.0.0.1:80")).unwrap();
    let l = s.listen(8).unwrap();
    let _c = client.connect("10.0.0.1:80").await.unwrap();
    let (a, _) = l.accept().await.unwrap();
    assert!(a.keepalive().unwrap() && a.nodelay().unwrap());
    assert_eq!(a.recv_buffer_size().unwrap(), 16_384);
    assert_eq!(a.tcp_congestion().unwrap(), CongestionAlgorithm::NewReno);
    assert!(a.pacing().unwrap());
}
