//! A drop-in async `TcpStream` and `TcpListener` for tokio over the [`tcpcore`] engine: a
//! userspace TCP/IP stack whose API is tokio's, so porting is a `use` swap.
//!
//! ```text
//! tokio::net::{TcpListener, TcpStream, TcpSocket}  →  tcp_tokio::net::{TcpListener, TcpStream, TcpSocket}
//! tokio::net::tcp::{OwnedReadHalf, …}              →  tcp_tokio::net::tcp::{OwnedReadHalf, …}
//! ```
//!
//! # Pieces
//! - [`Stack`]: a cheap clonable handle. [`Stack::builder`] takes an IPv4 and/or an IPv6
//!   address and the engine's [`EndpointConfig`]; [`StackBuilder::build`] spawns the
//!   driver on the current runtime over a [`Device`]. Each stack's secrets (ISN, SYN-cookie,
//!   demultiplexing and port keys) derive from a seed drawn from the OS's random source;
//!   tests that must be reproducible fix it with [`StackBuilder::seed`].
//! - [`Device`]: batched receive and send of whole IP packets. [`MemLink`] joins two stacks
//!   in memory, with seeded loss, delay, reordering and duplication for tests.
//! - [`Stack::intercept`] and [`Stack::intercept_all`]: terminate TCP to any address (a
//!   VPN client or a tun2socks proxy behind a TUN), deciding on each connection before its
//!   handshake or accepting them all.
//! - [`net`]: [`TcpStream`](net::TcpStream) (tokio's `AsyncRead`/`AsyncWrite`, and the
//!   futures-io traits with feature `futures-io`), [`TcpListener`](net::TcpListener),
//!   [`TcpSocket`](net::TcpSocket) and the split halves in [`net::tcp`];
//!   [`UdpSocket`](net::UdpSocket) (datagrams larger than the MTU leave as IP fragments;
//!   the stack reassembles incoming ones).
//! - Lifecycle: [`Stack::shutdown`] stops a stack (graceful close until a deadline, then
//!   RST); the process default ([`Stack::set_default`]) can be cleared or scoped.
//! - Observability: [`Stack::connections`] (the `ss -ti` view), [`Stack::state_counts`]
//!   (the `netstat` view), [`Stack::totals`] (every packet in and out, retransmissions,
//!   drops), a `tcp_stack` tracing span per stack, and a pcap tap for Wireshark
//!   ([`PcapTap`]). With
//!   feature `serde`, the stats, `TcpInfo` and the listing implement `serde::Serialize`.
//! - Socket options: tokio's, plus those tokio leaves to `socket2` ([`net::TcpKeepalive`],
//!   user timeout, congestion control, buffer sizes on a live stream). Each is a field of the
//!   engine's [`ConnConfig`] (re-exported here with [`CongestionAlgorithm`] and the other
//!   configuration types), set per socket; [`EndpointConfig::conn`] holds the stack's
//!   defaults.
//!
//! # Design
//! One driver task owns the device and is the only one to feed the engine packets and
//! timeouts. Each connection is its own cell (the `tcpcore::Connection`, a read waker and a
//! write waker for the `poll_*` methods, and a list of the tasks awaiting readiness, behind
//! one mutex), locked briefly by its stream and by the driver, never across an await or
//! device I/O; wakers fire after unlocking. The endpoint (demultiplexing,
//! listeners, ports) has its own lock, taken by the driver once per batch of packets and by
//! connect/accept/bind, never by reads and writes. A write that makes a transmit due queues
//! its cell for the driver and wakes it. The driver bounds each pass (256 packets in, 256
//! out) and yields; its timers are a min-heap of connection deadlines (one live entry per
//! connection, stale ones skipped and compacted away once they dominate, so the heap stays
//! within twice the live connections), slept on with one `tokio::time::Sleep`. Time comes
//! from `tokio::time`, so tests can run on a paused clock.
//!
//! # Semantics
//! Those of the kernel: `flush` completes once bytes are queued; `shutdown` sends FIN after
//! every queued byte; dropping a stream closes gracefully in the background (queued data is
//! still delivered), or sends RST if received data was never read; dropping an
//! [`OwnedWriteHalf`](net::tcp::OwnedWriteHalf) shuts down writing. Errors carry the
//! kernel's `io::ErrorKind` ([`error`]).
//!
//! # Examples
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! use tcp_tokio::net::{TcpListener, TcpStream};
//! use tcp_tokio::{MemLink, Stack};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let (a, b) = MemLink::pair();
//! let server = Stack::builder().address("10.0.0.1".parse().unwrap()).build(a)?;
//! let client = Stack::builder().address("10.0.0.2".parse().unwrap()).build(b)?;
//!
//! let listener = server.bind("10.0.0.1:7").await?;
//! tokio::spawn(async move {
//!     let (mut stream, _) = listener.accept().await?;
//!     let (mut r, mut w) = stream.split();
//!     tokio::io::copy(&mut r, &mut w).await?;
//!     std::io::Result::Ok(())
//! });
//!
//! client.set_default();
//! let mut stream = TcpStream::connect("10.0.0.1:7").await?;
//! stream.write_all(b"echo").await?;
//! stream.shutdown().await?;
//! let mut echoed = Vec::new();
//! stream.read_to_end(&mut echoed).await?;
//! assert_eq!(echoed, b"echo");
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// With the re-exports below, the engine's configuration types: configuring a stack and its
// sockets needs no direct `tcpcore` dependency.
pub use tcpcore::config::CongestionAlgorithm;
pub use tcpcore::{ConnConfig, Offload};

mod cell;
mod device;
mod driver;
pub mod error;
mod intercept;
mod lifecycle;
mod memlink;
pub mod net;
mod observe;
mod pcap;
mod stack;

pub use device::{Capabilities, Device, TxMeta};
pub use intercept::{InterceptListener, InterceptRequest, Interceptor, Refusal};
pub use lifecycle::DefaultGuard;
pub use memlink::{LinkStats, MemLink, MemLinkBuilder};
pub use observe::{ConnectionEntry, StackStats};
pub use pcap::PcapTap;
pub use stack::{Stack, StackBuilder};
pub use tcpcore::{
    EndpointConfig, EndpointStats, InterceptOptions, ListenOptions, State, StateCounts, SynCookies,
    TcpInfo,
};

/// Lock a mutex, ignoring poisoning: every critical section leaves its state consistent
/// (no user code runs under these locks).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
