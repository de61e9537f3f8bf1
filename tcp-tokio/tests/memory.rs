//! Heap bytes per connection at the tokio level, counted by a counting global allocator
//! (issue 12): an idle established connection, and one that has moved 1 MiB each way and
//! then idled for a few RTOs. Both stacks run in this test's thread (a current-thread
//! runtime), so the per-thread counters see every allocation of both; a figure "per
//! connection" is per end (one socket), the total divided by twice the connections.

#[path = "../../tcpcore/tests/alloc_util/mod.rs"]
mod alloc_util;

use std::time::Duration;

use alloc_util::live_bytes;
use tcp_tokio::net::{TcpListener, TcpStream};
use tcp_tokio::{EndpointConfig, ListenOptions, MemLink, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Idle established connections measured: enough that the tables' growth steps average out.
const IDLE_CONNS: usize = 10_000;
/// The limit asserted per idle connection (per end): the target of 1 KiB. Reached
/// today: 1,016 B (978 B before pacing, Fast Open and BBR's rate state added 38 B; 1,209 B
/// before the compact demultiplexing keys, the 8-byte `Option<Instant>` and the smaller
/// tokio cell, 2,374 B before issue 12's work). What it is made of: the tokio cell (the
/// connection, 808 B, and about 100 B of wakers, timer and lock), the endpoint's
/// demultiplexing entry (24 B, about 40 at the table's load factor), and the slots of the
/// endpoint's and the stack's handle tables.
const IDLE_LIMIT: i64 = 1024;
/// Connections that each move [`BULK`] bytes each way.
const BUSY_CONNS: usize = 32;
const BULK: usize = 1 << 20;
/// The target per connection after a bulk transfer and a few idle RTOs.
const BUSY_LIMIT: i64 = 4096;

/// Two stacks on a MemLink, a listener, and one warm connection (so the driver's own
/// buffers exist before the baseline is taken).
async fn setup() -> (Stack, Stack, TcpListener, (TcpStream, TcpStream)) {
    let (a, b) = MemLink::builder().queue_len(1 << 14).pair();
    let cfg = EndpointConfig { somaxconn: 1 << 16, ..EndpointConfig::default() };
    let stack =
        |ip: &str, seed| Stack::builder().address(ip.parse().unwrap()).config(cfg).seed(seed);
    let server = stack("10.0.0.1", 1).build(a).unwrap();
    let client = stack("10.0.0.2", 2).build(b).unwrap();
    let opts = ListenOptions { backlog: 1 << 16, syn_backlog: 1 << 16, ..Default::default() };
    let listener = server.bind_with("10.0.0.1:7", opts).await.unwrap();
    let warm = open(&client, &listener).await;
    (server, client, listener, warm)
}

async fn open(client: &Stack, listener: &TcpListener) -> (TcpStream, TcpStream) {
    let c = client.connect("10.0.0.1:7").await.unwrap();
    let (s, _) = listener.accept().await.unwrap();
    (c, s)
}

/// Let every timer of an idle connection run out (delayed ACKs, probes): several RTOs.
async fn idle() {
    tokio::time::sleep(Duration::from_secs(5)).await;
}

/// Heap bytes per end of `conns` connections opened since `base`.
fn per_end(base: i64, conns: usize) -> i64 {
    (live_bytes() - base) / (2 * conns as i64)
}

/// MEM-01: what an idle established connection costs in heap at the tokio level (measured
/// over 10,000 connections: stream, cell, connection, endpoint tables, timers); see
/// [`IDLE_LIMIT`].
#[tokio::test(start_paused = true)]
async fn mem_01_idle_connection_heap_is_bounded() {
    let (server, client, listener, _warm) = setup().await;
    let mut held = Vec::with_capacity(IDLE_CONNS);
    idle().await;
    let base = live_bytes();
    for _ in 0..IDLE_CONNS {
        held.push(open(&client, &listener).await);
    }
    idle().await;
    assert_eq!(server.connection_count(), IDLE_CONNS + 1);
    let per = per_end(base, IDLE_CONNS);
    eprintln!("idle established connection: {per} B of heap per end");
    assert!(per <= IDLE_LIMIT, "an idle connection holds {per} B (limit {IDLE_LIMIT})");
    drop(held);
    drop(client);
}

/// MEM-02: after 1 MiB each way, all of it read, and a few idle RTOs, a connection gives its
/// buffers back: at most 4 KiB of heap per end (the rings held 551 KB before).
#[tokio::test(start_paused = true)]
async fn mem_02_connection_gives_buffers_back_after_bulk() {
    let (_server, client, listener, _warm) = setup().await;
    // A first round brings the shared parts (the driver's packet buffers, the link's
    // queues, the timer heap) to their working size; the second is measured.
    let warm = bulk_round(&client, &listener).await;
    idle().await;
    let base = live_bytes();
    let held = bulk_round(&client, &listener).await;
    idle().await;
    let per = per_end(base, BUSY_CONNS);
    eprintln!("after 1 MiB each way and an idle period: {per} B of heap per end");
    assert!(per <= BUSY_LIMIT, "a connection holds {per} B after a transfer (limit {BUSY_LIMIT})");
    drop((warm, held));
}

/// [`BUSY_CONNS`] connections each moving [`BULK`] bytes each way at once; returns their
/// streams.
async fn bulk_round(client: &Stack, listener: &TcpListener) -> Vec<TcpStream> {
    let mut tasks = Vec::with_capacity(2 * BUSY_CONNS);
    for _ in 0..BUSY_CONNS {
        let (c, s) = open(client, listener).await;
        tasks.push(tokio::spawn(exchange(c)));
        tasks.push(tokio::spawn(exchange(s)));
    }
    let mut streams = Vec::with_capacity(2 * BUSY_CONNS);
    for t in tasks {
        streams.push(t.await.unwrap());
    }
    streams
}

/// Write [`BULK`] bytes on `s` while reading the peer's [`BULK`] bytes; return the stream.
async fn exchange(mut s: TcpStream) -> TcpStream {
    let (mut r, mut w) = s.split();
    let send = async {
        let chunk = [7u8; 16 << 10];
        for _ in 0..BULK / chunk.len() {
            w.write_all(&chunk).await.unwrap();
        }
    };
    let recv = async {
        let mut buf = [0u8; 16 << 10];
        let mut got = 0;
        while got < BULK {
            got += r.read(&mut buf).await.unwrap();
        }
        got
    };
    let ((), got) = tokio::join!(send, recv);
    assert_eq!(got, BULK);
    s
}
