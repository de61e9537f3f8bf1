//! What the benches share: runtimes, a pair of stacks over [`MemLink`], and the app side of
//! each bench written once for any `AsyncRead + AsyncWrite` stream, so the userspace stack
//! and the kernel's TCP (tokio's own `TcpStream` on 127.0.0.1) run the same code.
//!
//! Run them with `cargo bench -p benches`; the README's Performance section quotes them.

pub mod sans_io;
#[cfg(target_os = "linux")]
pub mod tun_echo;

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use tcp_tokio::{EndpointConfig, MemLink, Stack};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The server stack's address.
pub const SERVER_IP: &str = "10.0.0.1";
/// The client stack's address.
pub const CLIENT_IP: &str = "10.0.0.2";

/// Bytes moved per throughput iteration: 256 MiB.
pub const BULK: u64 = 256 << 20;

/// Size of each application write and read (tokio's `copy` uses 8 KiB; bulk senders use more).
pub const APP_BUF: usize = 64 << 10;

/// The runtimes a bench runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `new_multi_thread` with one worker per core (tokio's default, as `#[tokio::main]`).
    MultiThread,
    /// `new_current_thread`: everything on the bench thread.
    CurrentThread,
}

impl Flavor {
    /// Both flavours.
    pub const ALL: [Flavor; 2] = [Flavor::MultiThread, Flavor::CurrentThread];

    /// A short name for bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::MultiThread => "mt",
            Flavor::CurrentThread => "ct",
        }
    }

    /// Build a runtime of this flavour with IO and time enabled.
    ///
    /// # Panics
    /// If the runtime cannot be built.
    pub fn runtime(self) -> tokio::runtime::Runtime {
        let mut b = match self {
            Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        };
        b.enable_all().build().expect("tokio runtime")
    }
}

/// Two stacks (server at [`SERVER_IP`], client at [`CLIENT_IP`]) joined by a perfect
/// [`MemLink`] of the given MTU, with or without its offloads (GSO/GRO and checksums, on by
/// default as on a Linux veth); the engine's MTU follows it. Call inside a runtime.
///
/// # Panics
/// If a stack cannot be built (outside a runtime).
pub fn stacks(mtu: usize, offload: bool) -> (Stack, Stack) {
    let (a, b) = MemLink::builder().mtu(mtu).offload(offload).pair();
    let mut cfg = EndpointConfig::default();
    cfg.conn.mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
    let server = Stack::builder()
        .address(SERVER_IP.parse().expect("ip"))
        .config(cfg)
        .seed(1)
        .build(a)
        .expect("server stack");
    let client = Stack::builder()
        .address(CLIENT_IP.parse().expect("ip"))
        .config(cfg)
        .seed(2)
        .build(b)
        .expect("client stack");
    (server, client)
}

/// Write `total` bytes in [`APP_BUF`] writes, then shut down writing.
///
/// # Errors
/// Any write error.
pub async fn send_bulk(mut s: impl AsyncWrite + Unpin, total: u64) -> io::Result<()> {
    let buf = vec![0xa5u8; APP_BUF];
    let mut left = total;
    while left > 0 {
        let n = left.min(APP_BUF as u64) as usize;
        s.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    s.shutdown().await
}

/// Read to EOF in [`APP_BUF`] reads; returns the bytes read.
///
/// # Errors
/// Any read error.
pub async fn recv_bulk(mut s: impl AsyncRead + Unpin) -> io::Result<u64> {
    let mut buf = vec![0u8; APP_BUF];
    let mut total = 0;
    loop {
        match s.read(&mut buf).await? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

/// The client side of one connection-rate round, on a connected stream: send one byte, read
/// it back, read the server's FIN, then drop the stream (our FIN).
///
/// # Errors
/// Any I/O error, or `InvalidData` if the echo or the EOF is missing.
pub async fn echo_one_client(mut s: impl AsyncRead + AsyncWrite + Unpin) -> io::Result<()> {
    s.write_all(b"x").await?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await?;
    if b != *b"x" || s.read(&mut b).await? != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad echo"));
    }
    Ok(())
}

/// The server side of one connection-rate round, on an accepted stream: read one byte,
/// write it back and close (the server closes first, so TIME-WAIT stays on the server as
/// with an HTTP/1.0 server and the client's ephemeral ports stay free).
///
/// # Errors
/// Any I/O error.
pub async fn echo_one_server(mut s: impl AsyncRead + AsyncWrite + Unpin) -> io::Result<()> {
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await?;
    s.write_all(&b).await?;
    s.shutdown().await
}

/// `iters` connection-rate rounds (connect, [`echo_one_client`], close) spread over
/// `parallel` client tasks; returns the wall time they took. `connect` opens one stream, on
/// whichever stack is measured.
///
/// # Panics
/// If a connection or an echo fails: the bench is then meaningless.
pub async fn echo_rounds<F, Fut, S>(iters: u64, parallel: u64, connect: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = io::Result<S>> + Send,
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..parallel)
        .map(|k| {
            let connect = connect.clone();
            let n = iters / parallel + u64::from(k < iters % parallel);
            tokio::spawn(async move {
                for _ in 0..n {
                    let s = connect().await.expect("connect");
                    echo_one_client(s).await.expect("echo");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("join");
    }
    started.elapsed()
}

/// One throughput iteration: connect and accept concurrently (`pair`), then [`BULK`] bytes
/// from the client to the server, FIN and EOF; returns the time it took, connection
/// included.
///
/// # Panics
/// If anything fails or the server does not receive exactly [`BULK`] bytes.
pub async fn bulk_once<C, S, A>(
    pair: impl Future<Output = (io::Result<C>, io::Result<(S, A)>)>,
) -> Duration
where
    C: AsyncWrite + Unpin + Send + 'static,
    S: AsyncRead + Unpin + Send + 'static,
{
    let started = Instant::now();
    let (c, s) = pair.await;
    let (c, (s, _)) = (c.expect("connect"), s.expect("accept"));
    let send = tokio::spawn(send_bulk(c, BULK));
    let recv = tokio::spawn(recv_bulk(s));
    send.await.expect("join").expect("send");
    assert_eq!(recv.await.expect("join").expect("recv"), BULK);
    started.elapsed()
}
